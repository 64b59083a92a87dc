package tokenizer

import (
	"path/filepath"
	"testing"
	"unicode/utf8"

	"github.com/gonb-gpt/tutorial/lib/internal/sharedtest"
)

var fuzzSeeds = []string{"", "Мне нравится, что вы ", "Hello world! It's 2026, isn't it?  Tabs\tand\nnewlines  ",
	"   ", "<|endoftext|>", "don't I'M", "☃\u00a0\u2028x", "\xff\xfe", "a\u0301b", "1234567890", "— «Вечерело»."}

// FuzzByteLevelRoundTrip: a byte-level tokenizer decodes what it encodes to the same text.
func FuzzByteLevelRoundTrip(f *testing.F) {
	tok, err := Load(filepath.Join(sharedtest.Dir(f), "tokenizers", "rugpt3", "tokenizer.json"))
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := tok.Encode(s)
		if err != nil {
			t.Fatal(err)
		}
		if !utf8.ValidString(s) {
			return
		}
		got, err := tok.Decode(e.IDs, false)
		if err != nil {
			t.Fatal(err)
		}
		if got != s {
			t.Fatalf("decode(encode(%q)) = %q", s, got)
		}
	})
}

// FuzzEncoders: no input panics the encoders.
func FuzzEncoders(f *testing.F) {
	toks := []*Tokenizer{}
	for _, p := range [][]string{{"fixtures", "bpe-tutorial-small", "tokenizer.json"}, {"tokenizers", "gpt2", "tokenizer.json"}} {
		tok, err := Load(filepath.Join(append([]string{sharedtest.Dir(f)}, p...)...))
		if err != nil {
			f.Fatal(err)
		}
		toks = append(toks, tok)
	}
	meta := New(toks[0].Model)
	meta.PreTokenizer = NewMetaspace()
	toks = append(toks, meta)
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, tok := range toks {
			if e, err := tok.Encode(s); err == nil {
				for _, o := range e.Offsets {
					if o.Start < 0 || o.End > len(s) || o.Start > o.End {
						t.Fatalf("%s: offset %v outside %q", tok.PreTokenizer.Type(), o, s)
					}
				}
			}
		}
	})
}

// FuzzParse: no tokenizer.json panics the reader.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2},"merges":["a b"]},"pre_tokenizer":{"type":"Metaspace","replacement":"▁"}}`))
	f.Add([]byte(`{"model":{"type":"BPE","vocab":{"a":0},"merges":[["a","a"]]},"added_tokens":[{"id":5,"content":"x"}],"padding":{"strategy":{"Fixed":3}}}`))
	f.Add([]byte(`{"model":{"vocab":{"a":99999999}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tok, err := Parse(data)
		if err != nil {
			return
		}
		_, _ = tok.Encode("ab a")
		_, _ = tok.Decode([]int{0, 1, 2, 5, -1}, false)
	})
}
