package tutorial

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gonb-gpt/tutorial/lib/gpt2"
	"github.com/gonb-gpt/tutorial/lib/internal/testbackend"
	"github.com/gonb-gpt/tutorial/lib/tokenizer"
)

type htmlRecorder struct {
	bytes.Buffer
	ids   map[string]int
	shown []string
}

func (r *htmlRecorder) UpdateHTML(id, html string) {
	if r.ids == nil {
		r.ids = map[string]int{}
	}
	r.ids[id]++
	r.shown = append(r.shown, html)
}

// chunkWriter records each write.
type chunkWriter struct{ chunks []string }

func (w *chunkWriter) Write(b []byte) (int, error) {
	w.chunks = append(w.chunks, string(b))
	return len(b), nil
}

// The streamer writes the text as it comes, as transformers' TextStreamer prints it: the prompt, then
// each piece once it is whole UTF-8 — ruGPT-3's byte-level tokens split Cyrillic letters and «».
func TestTextStreamerText(t *testing.T) {
	tok, err := tokenizer.LoadDir("rugpt3tok")
	if err != nil {
		t.Fatal(err)
	}
	prompt := must(tok.Encode("Пьер закашлялся"))
	rest := must(tok.Encode(" и подошёл к окну. «Ёлки» — 🎄!"))
	var w chunkWriter
	s := NewTextStreamer(&w, tok, prompt.IDs)
	for _, id := range rest.IDs {
		s.Put(id)
	}
	s.End()
	want := must(tok.Decode(append(prompt.IDs, rest.IDs...), true)) + "\n"
	if got := strings.Join(w.chunks, ""); got != want {
		t.Errorf("streamed %q, want %q", got, want)
	}
	if len(w.chunks) < 5 {
		t.Errorf("%d writes: the text did not stream", len(w.chunks))
	}
	for _, c := range w.chunks {
		if !utf8.ValidString(c) || strings.ContainsRune(c, utf8.RuneError) {
			t.Errorf("a piece with a broken character: %q", c)
		}
	}
}

// In a notebook the generation is one block that grows in place and ends on the whole text, the
// prompt in bold, escaped as HTML.
func TestCompleteToNotebook(t *testing.T) {
	tok, err := tokenizer.LoadDir("rugpt3tok")
	if err != nil {
		t.Fatal(err)
	}
	cfg := gpt2.DefaultConfig()
	cfg.VocabSize, cfg.NPositions, cfg.NEmbd, cfg.NLayer, cfg.NHead = tok.VocabSize(), 64, 16, 1, 2
	cfg.BOSTokenID, cfg.EOSTokenID = nil, nil
	m, err := gpt2.New(testbackend.Get(t), cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	opts := gpt2.DefaultGenerateOptions()
	opts.MaxNewTokens, opts.DoSample, opts.Seed = 20, true, 3
	want, err := Complete(m, tok, "Мне <нравится>", opts)
	if err != nil {
		t.Fatal(err)
	}
	rec := &htmlRecorder{}
	got, err := CompleteTo(rec, m, tok, "Мне <нравится>", opts)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("CompleteTo returned %q, Complete %q", got, want)
	}
	if len(rec.ids) != 1 || rec.Len() != 0 {
		t.Fatalf("blocks %v, text %q: want one block and no text", rec.ids, rec.String())
	}
	last := rec.shown[len(rec.shown)-1]
	if !strings.HasPrefix(last, `<div class="gpt-generate"`) || !strings.Contains(last, "<b>Мне &lt;нравится&gt;</b>") || strings.Contains(last, "▌") {
		t.Errorf("final block %s", last)
	}
	if !strings.Contains(rec.shown[0], "▌") {
		t.Errorf("the first block has no cursor: %s", rec.shown[0])
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// transformers' TextStreamer.end flushes what is left of the decoded text even when it ends inside a
// character: decode then gives U+FFFD for the incomplete bytes, and that is what is printed. A
// prompt that itself ends inside a character is streamed too (TextStreamer decodes the prompt's
// tokens with the rest).
func TestTextStreamerEndFlushesPartialCharacter(t *testing.T) {
	tok, err := tokenizer.LoadDir("rugpt3tok")
	if err != nil {
		t.Fatal(err)
	}
	prompt := must(tok.Encode("Ёлки"))
	tree := must(tok.Encode("🎄"))
	if len(tree.IDs) < 2 {
		t.Fatalf("🎄 is one token %v: the test needs a character split across tokens", tree.IDs)
	}
	partial := tree.IDs[:len(tree.IDs)-1]
	for _, tc := range []struct {
		name           string
		promptIDs, new []int
	}{
		{"generated text ends inside a character", prompt.IDs, partial},
		{"prompt ends inside a character", append(slices.Clone(prompt.IDs), partial...), tree.IDs[len(tree.IDs)-1:]},
		{"both", append(slices.Clone(prompt.IDs), partial...), append(tree.IDs[len(tree.IDs)-1:], partial...)},
	} {
		var w chunkWriter
		s := NewTextStreamer(&w, tok, tc.promptIDs)
		for _, id := range tc.new {
			s.Put(id)
		}
		s.End()
		all := append(slices.Clone(tc.promptIDs), tc.new...)
		want := must(tok.DecodeWith(all, tokenizer.DecodeOptions{})) + "\n"
		if got := strings.Join(w.chunks, ""); got != want {
			t.Errorf("%s: streamed %q, want %q", tc.name, got, want)
		}
	}
}

// Complete returns tokenizer.decode(out[0]) with decode's defaults, as the tutorial calls it:
// special tokens shown (skip_special_tokens=False), nothing trimmed.
func TestCompleteDecodesAsTokenizerDecode(t *testing.T) {
	tok, err := tokenizer.LoadDir("rugpt3tok")
	if err != nil {
		t.Fatal(err)
	}
	m := tinyModel(t, tok)
	opts := gpt2.DefaultGenerateOptions()
	opts.MaxNewTokens = 5
	const prompt = " <|endoftext|>Мне нравится"
	got, err := Complete(m, tok, prompt, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(got, prompt) {
		t.Errorf("Complete(%q) = %q: the special token and the leading space should stay", prompt, got)
	}
	e := must(tok.Encode(prompt))
	out := must(m.Generate([][]int{e.IDs}, opts))
	if want := must(tok.DecodeWith(out[0], tokenizer.DecodeOptions{})); got != want {
		t.Errorf("Complete = %q, decode(generate) = %q", got, want)
	}
}

// The tutorial's PreTrainedTokenizerFast returns token_type_ids (zeros) and
// model.generate(**tokenizer(prompt)) passes them on: GPT-2 adds wte[0] to every input. Complete
// does the same when the tokenizer returns them, and only then.
func TestCompletePassesTokenTypes(t *testing.T) {
	tok, err := tokenizer.LoadDir("rugpt3tok")
	if err != nil {
		t.Fatal(err)
	}
	if tok.ReturnsTokenTypeIDs() {
		t.Fatal("GPT2TokenizerFast's folder: token_type_ids returned")
	}
	m := tinyModel(t, tok)
	opts := gpt2.DefaultGenerateOptions()
	opts.MaxNewTokens = 12
	const prompt = "Мне нравится, что вы"
	without := must(Complete(m, tok, prompt, opts))
	tok.ModelInputNames = []string{"input_ids", "token_type_ids", "attention_mask"}
	with := must(Complete(m, tok, prompt, opts))
	e := must(tok.Encode(prompt))
	typed := opts
	typed.TokenTypeIDs = [][]int{make([]int, len(e.IDs))}
	if want := must(tok.DecodeWith(must(m.Generate([][]int{e.IDs}, typed))[0], tokenizer.DecodeOptions{})); with != want {
		t.Errorf("with token types: Complete %q, generate with zeros %q", with, want)
	}
	if with == without {
		t.Errorf("token_type_ids of zeros changed nothing: %q", with)
	}
}

// tinyModel is a small random GPT-2 over tok's vocabulary, without special tokens.
func tinyModel(t *testing.T, tok *tokenizer.Tokenizer) *gpt2.Model {
	t.Helper()
	cfg := gpt2.DefaultConfig()
	cfg.VocabSize, cfg.NPositions, cfg.NEmbd, cfg.NLayer, cfg.NHead = tok.VocabSize(), 64, 16, 1, 2
	cfg.BOSTokenID, cfg.EOSTokenID = nil, nil
	m, err := gpt2.New(testbackend.Get(t), cfg, 5)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
