package tutorial

import (
	"bytes"
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
