package tutorial

import (
	"fmt"
	"html"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gonb-gpt/tutorial/lib/gpt2"
	"github.com/gonb-gpt/tutorial/lib/progress"
	"github.com/gonb-gpt/tutorial/lib/tokenizer"
)

// Complete encodes the prompt, generates and returns the decoded text (prompt included), as the
// tutorial's tokenizer.decode(model.generate(**tokenizer(prompt))[0]) does.
func Complete(m *gpt2.Model, tok *tokenizer.Tokenizer, prompt string, opts gpt2.GenerateOptions) (string, error) {
	return CompleteTo(nil, m, tok, prompt, opts)
}

// CompleteTo is Complete that also streams the text into w as it is generated (nil: nowhere): in a
// notebook (w is the cell's os.Stdout) one block that grows in place, the prompt in bold; elsewhere
// the text as it comes, then a newline.
func CompleteTo(w io.Writer, m *gpt2.Model, tok *tokenizer.Tokenizer, prompt string, opts gpt2.GenerateOptions) (string, error) {
	e, err := tok.Encode(prompt)
	if err != nil {
		return "", err
	}
	if len(e.IDs) == 0 {
		return "", fmt.Errorf("the prompt %q encodes to no tokens", prompt)
	}
	s := NewTextStreamer(w, tok, e.IDs)
	if s != nil {
		next := opts.OnToken
		opts.OnToken = func(seq, id int) {
			if seq == 0 {
				s.Put(id)
			}
			if next != nil {
				next(seq, id)
			}
		}
	}
	out, err := m.Generate([][]int{e.IDs}, opts)
	if err != nil {
		return "", err
	}
	s.End()
	text, err := tok.Decode(out[0], true)
	return strings.TrimSpace(text), err
}

// TextStreamer shows a generated sequence as it grows, as transformers' TextStreamer prints it: the
// prompt, then each new piece of text once it is whole UTF-8 (a byte-level token can end inside a
// character). In a notebook it is one HTML block updated in place (class "gpt-generate"), in text
// the pieces are written as they come.
type TextStreamer struct {
	w      io.Writer
	live   *progress.Live // the notebook block (nil in text)
	tok    *tokenizer.Tokenizer
	ids    []int
	prompt string // the decoded prompt
	shown  string // the text after the prompt written so far
}

// NewTextStreamer starts streaming the sequence that begins with promptIDs into w (nil when w is nil).
func NewTextStreamer(w io.Writer, tok *tokenizer.Tokenizer, promptIDs []int) *TextStreamer {
	if w == nil {
		return nil
	}
	s := &TextStreamer{w: w, tok: tok, ids: append([]int(nil), promptIDs...)}
	s.prompt, _ = tok.Decode(s.ids, true)
	if live := progress.NewLive(w); live.Mode() == progress.HTML {
		s.live = live.Every(200 * time.Millisecond)
		s.live.Show(s.html(false), "")
	} else {
		fmt.Fprint(w, s.prompt)
	}
	return s
}

// Put adds a generated token.
func (s *TextStreamer) Put(id int) {
	if s == nil {
		return
	}
	s.ids = append(s.ids, id)
	rest, ok := s.generated()
	if !ok || strings.HasSuffix(rest, string(utf8.RuneError)) {
		return
	}
	if strings.HasPrefix(rest, s.shown) {
		if s.live == nil {
			fmt.Fprint(s.w, rest[len(s.shown):])
		}
		s.shown = rest
	}
	if s.live != nil && s.live.Due() {
		s.live.Show(s.html(false), "")
	}
}

// End shows the whole sequence and ends the output.
func (s *TextStreamer) End() {
	if s == nil {
		return
	}
	rest, _ := s.generated()
	if s.live != nil {
		s.shown = rest
		s.live.Final(s.html(true), "")
		return
	}
	if strings.HasPrefix(rest, s.shown) {
		fmt.Fprint(s.w, rest[len(s.shown):])
	}
	fmt.Fprintln(s.w)
}

// generated decodes the text after the prompt (false when it cannot: a decoding error, or a
// decoded sequence that does not begin with the decoded prompt).
func (s *TextStreamer) generated() (string, bool) {
	full, err := s.tok.Decode(s.ids, true)
	if err != nil || !strings.HasPrefix(full, s.prompt) {
		return "", false
	}
	return full[len(s.prompt):], true
}

func (s *TextStreamer) html(final bool) string {
	cursor := ""
	if !final {
		cursor = `<span style="opacity:0.5">▌</span>`
	}
	return fmt.Sprintf(`<div class="gpt-generate" style="white-space:pre-wrap;font-family:serif;font-size:1.1em"><b>%s</b>%s%s</div>`,
		html.EscapeString(s.prompt), html.EscapeString(s.shown), cursor)
}
