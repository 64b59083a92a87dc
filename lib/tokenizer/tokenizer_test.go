package tokenizer

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/gonb-gpt/tutorial/lib/internal/sharedtest"
)

func smallTutorial(t testing.TB) *Tokenizer {
	t.Helper()
	tok, err := Load(sharedtest.Path(t, "fixtures", "bpe-tutorial", "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// The tutorial's cells: encode a sentence, pad a batch, decode (with the spaces HF puts between
// tokens when there is no decoder).
func TestTutorialSurface(t *testing.T) {
	tok := smallTutorial(t)
	e, err := tok.Encode("Иван Сигизмундович подошел к окну и закашлялся. Вечерело.")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"Иван", "С", "иг", "изму", "н", "до", "вич", "подошел", "к", "окну", "и", "закашлялся", ".", "Вечер", "ело", "."}
	if !reflect.DeepEqual(e.Tokens, want) {
		t.Errorf("tokens %q, want %q", e.Tokens, want)
	}
	if e.Offsets[1] != (Span{9, 11}) || e.AttentionMask[0] != 1 || e.TypeIDs[0] != 0 {
		t.Errorf("offsets %v mask %v", e.Offsets[:2], e.AttentionMask[:2])
	}
	if err := tok.EnablePadding("", 0); err != nil {
		t.Fatal(err)
	}
	batch, err := tok.EncodeBatch([]string{"Мне нравится", "Пьер закашлялся и встал."})
	if err != nil {
		t.Fatal(err)
	}
	if batch[0].Len() != batch[1].Len() || batch[0].IDs[batch[0].Len()-1] != 0 || batch[0].AttentionMask[batch[0].Len()-1] != 0 || batch[0].Tokens[2] != "[PAD]" {
		t.Errorf("padding: %+v", batch[0])
	}
	text, err := tok.Decode(e.IDs, true)
	if err != nil {
		t.Fatal(err)
	}
	if text != "Иван С иг изму н до вич подошел к окну и закашлялся . Вечер ело ." {
		t.Errorf("decode = %q", text)
	}
	withPad, _ := tok.Decode(batch[0].IDs, false)
	if !strings.HasSuffix(withPad, "[PAD]") {
		t.Errorf("decode keeping specials = %q", withPad)
	}
}

// AppendIDs gives Encode's ids, appended, ignoring truncation and padding, with added tokens.
func TestAppendIDs(t *testing.T) {
	tok := smallTutorial(t)
	tok.AddSpecialTokens("<s>")
	texts := []string{"Иван Сигизмундович подошел к окну", "", "<s>Пьер закашлялся<s> и встал.", "Вечерело."}
	var want []int32
	for _, text := range texts {
		e, err := tok.Encode(text)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range e.IDs {
			want = append(want, int32(id))
		}
	}
	tok.EnableTruncation(2)
	got := []int32{7}
	for _, text := range texts {
		var err error
		if got, err = tok.AppendIDs(got, text); err != nil {
			t.Fatal(err)
		}
	}
	if !reflect.DeepEqual(got, append([]int32{7}, want...)) || len(want) < 15 {
		t.Errorf("AppendIDs %v, want 7 then %v", got, want)
	}
	if _, err := tok.AppendIDs(nil, "☃"); err == nil {
		t.Error("no error for an unknown character")
	}
}

func TestTruncation(t *testing.T) {
	tok := smallTutorial(t)
	tok.EnableTruncation(3)
	tok.Truncation.Stride = 1
	e, err := tok.Encode("Пьер закашлялся и встал . Вечерело")
	if err != nil {
		t.Fatal(err)
	}
	if e.Len() != 3 || len(e.Overflowing) == 0 || e.Overflowing[0].IDs[0] != e.IDs[2] {
		t.Errorf("truncation: %v, overflow %v", e.Tokens, e.Overflowing)
	}
	if err := tok.EnablePadding("[PAD]", 5); err != nil {
		t.Fatal(err)
	}
	e, _ = tok.Encode("Пьер")
	if e.Len() != 5 {
		t.Errorf("fixed padding: %v", e.Tokens)
	}
}

func TestUnknownCharacter(t *testing.T) {
	tok := smallTutorial(t)
	// "[UNK]" is the model's unk_token but the trainer never put it in the vocabulary: HF fails on
	// a character it has not seen, and so do we.
	if _, err := tok.Encode("☃"); err == nil || !strings.Contains(err.Error(), `unk_token "[UNK]"`) {
		t.Errorf("err = %v", err)
	}
}

// Saving and loading gives the same tokenizer, and our file holds what HF's file holds.
func TestSaveLoadRoundTrip(t *testing.T) {
	for _, p := range [][]string{{"fixtures", "bpe-tutorial", "tokenizer.json"}, {"tokenizers", "gpt2", "tokenizer.json"}, {"tokenizers", "rugpt3", "tokenizer.json"}} {
		src := sharedtest.Path(t, p...)
		t.Run(strings.Join(p[:2], "/"), func(t *testing.T) {
			tok, err := Load(src)
			if err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(t.TempDir(), "tokenizer.json")
			if err := tok.Save(out); err != nil {
				t.Fatal(err)
			}
			var a, b any
			data1, _ := os.ReadFile(src)
			data2, _ := os.ReadFile(out)
			if err := json.Unmarshal(data1, &a); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(data2, &b); err != nil {
				t.Fatalf("our file is not JSON: %v", err)
			}
			if !reflect.DeepEqual(normalizeJSON(a), normalizeJSON(b)) {
				t.Errorf("saved JSON differs from HF's in content")
			}
			again, err := Load(out)
			if err != nil {
				t.Fatal(err)
			}
			var buf1, buf2 bytes.Buffer
			_ = tok.WriteJSON(&buf1)
			_ = again.WriteJSON(&buf2)
			if !bytes.Equal(buf1.Bytes(), buf2.Bytes()) {
				t.Error("save → load → save is not stable")
			}
		})
	}
}

// normalizeJSON drops the fields whose spelling differs between HF versions but not their meaning
// (merges as "a b" strings or [a, b] pairs).
func normalizeJSON(v any) any {
	m := v.(map[string]any)
	model := m["model"].(map[string]any)
	var merges []string
	for _, x := range model["merges"].([]any) {
		switch p := x.(type) {
		case string:
			merges = append(merges, p)
		case []any:
			merges = append(merges, p[0].(string)+" "+p[1].(string))
		}
	}
	model["merges"] = merges
	return m
}

func TestTrainedSaveLoad(t *testing.T) {
	dir := sharedtest.Path(t, "fixtures", "bpe-tutorial-small")
	tok := trainTutorial(t, filepath.Join(dir, "corpus.txt"))
	out := filepath.Join(t.TempDir(), "tokenizer.json")
	if err := tok.Save(out); err != nil {
		t.Fatal(err)
	}
	// Our file equals HF's, byte for byte, but for HF's ["a","b"] layout choices we share.
	hf, _ := os.ReadFile(filepath.Join(dir, "tokenizer.json"))
	ours, _ := os.ReadFile(out)
	if !bytes.Equal(hf, ours) {
		t.Errorf("saved tokenizer.json differs from HF's (%d vs %d bytes)", len(ours), len(hf))
	}
}

func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.txt")
	_ = os.WriteFile(empty, nil, 0o644)
	if _, _, err := Train([]string{empty}, TrainOptions{}); err == nil || !strings.Contains(err.Error(), "hold no words") {
		t.Errorf("empty corpus: %v", err)
	}
	if _, _, err := Train([]string{filepath.Join(dir, "missing.txt")}, TrainOptions{}); err == nil || !strings.Contains(err.Error(), "missing.txt") {
		t.Errorf("missing corpus: %v", err)
	}
	if _, _, err := Train(nil, TrainOptions{}); err == nil {
		t.Error("no files: no error")
	}
	bad := filepath.Join(dir, "bad.txt")
	_ = os.WriteFile(bad, []byte("мир \xff\xfe мир\nвойна\n"), 0o644)
	tok, stats, err := Train([]string{bad}, TrainOptions{Trainer: &BpeTrainer{VocabSize: 20}})
	if err != nil {
		t.Fatal(err)
	}
	if stats.InvalidUTF8 != 1 || stats.Lines != 2 {
		t.Errorf("stats %+v, want 1 invalid line of 2", stats)
	}
	if _, ok := tok.Model.Vocab["\uFFFD"]; !ok {
		t.Error("invalid bytes were not replaced by U+FFFD")
	}
	if _, _, err := Train([]string{bad}, TrainOptions{Trainer: &BpeTrainer{VocabSize: 3}}); err == nil || !strings.Contains(err.Error(), "smaller than the special tokens and the alphabet") {
		t.Errorf("tiny vocab_size: %v", err)
	}
	for _, tc := range []struct{ json, field string }{
		{`{`, "not a tokenizer.json"},
		{`{"model": null}`, "model: missing"},
		{`{"model": {"type": "WordPiece", "vocab": {}}}`, "model.type"},
		{`{"model": {"type": "BPE"}}`, "model.vocab: missing"},
		{`{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a"]}}`, "model.merges[0]"},
		{`{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [["a", "b"]]}}`, "merges[0]"},
		{`{"model": {"type": "BPE", "vocab": {"a": -1}}}`, "model"},
		{`{"pre_tokenizer": {"type": "Bert"}, "model": {"type": "BPE", "vocab": {"a": 0}}}`, "pre_tokenizer.type"},
		{`{"decoder": {"type": "WordPiece"}, "model": {"type": "BPE", "vocab": {"a": 0}}}`, "decoder.type"},
		{`{"normalizer": {"type": "Sequence", "normalizers": [{"type": "Strip"}]}, "model": {"type": "BPE", "vocab": {"a": 0}}}`, "normalizer.normalizers[0].type"},
		{`{"added_tokens": [{"id": 1, "content": ""}], "model": {"type": "BPE", "vocab": {"a": 0}}}`, "added_tokens[0].content"},
	} {
		if _, err := Parse([]byte(tc.json)); err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("Parse(%s) = %v, want an error naming %q", tc.json, err, tc.field)
		}
	}
}

func TestPreTokenizers(t *testing.T) {
	texts := func(ps []Piece) []string {
		var out []string
		for _, p := range ps {
			out = append(out, p.Text)
		}
		return out
	}
	for _, tc := range []struct {
		pre  PreTokenizer
		in   string
		want []string
	}{
		{Whitespace{}, "Hey man!! How's it going?—Well", []string{"Hey", "man", "!!", "How", "'", "s", "it", "going", "?—", "Well"}},
		{Whitespace{}, "  x_1  ", []string{"x_1"}},
		{WhitespaceSplit{}, " a,b  c\td ", []string{"a,b", "c", "d"}},
		{NewMetaspace(), "Hey friend", []string{"▁Hey", "▁friend"}},
		{NewMetaspace(), "a  b", []string{"▁a", "▁", "▁b"}},
		{&Metaspace{Replacement: '▁', PrependScheme: "never", Split_: true}, "a b", []string{"a", "▁b"}},
		{NewByteLevel(), "Hello  world", []string{"Hello", "Ġ", "Ġworld"}},
		{NewByteLevel(), "I'M don't", []string{"I", "'", "M", "Ġdon", "'t"}}, // contractions are lower-case only
	} {
		if got := texts(tc.pre.Split(tc.in, nil)); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s(%q) = %q, want %q", tc.pre.Type(), tc.in, got, tc.want)
		}
	}
}

func TestMetaspaceRoundTrip(t *testing.T) {
	dir := sharedtest.Path(t, "fixtures", "bpe-tutorial-small")
	tok, _, err := Train([]string{filepath.Join(dir, "corpus.txt")}, TrainOptions{
		Trainer:      &BpeTrainer{VocabSize: 2000, SpecialTokens: []string{"[PAD]", "[UNK]"}},
		PreTokenizer: NewMetaspace(), Decoder: &MetaspaceDecoder{Replacement: '▁', PrependScheme: "always", Split: true}, UnkToken: "[UNK]"})
	if err != nil {
		t.Fatal(err)
	}
	s := "Пьер закашлялся и, подумав, сказал: «Вечерело»."
	e, err := tok.Encode(s)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := tok.Decode(e.IDs, true); got != s {
		t.Errorf("Metaspace decode(encode(s)) = %q", got)
	}
}
