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
// tutorial's tokenizer.decode(model.generate(**tokenizer(prompt, return_tensors="pt"), ...)[0])
// does: the tokenizer's token_type_ids go to the model when it returns them (the tutorial's
// PreTrainedTokenizerFast does: zeros, which GPT-2 embeds with wte), and the text is decoded with
// decode's defaults — special tokens shown (skip_special_tokens=False), the tokenizer's
// clean_up_tokenization_spaces, nothing trimmed.
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
	if opts.TokenTypeIDs == nil {
		opts.TokenTypeIDs = TokenTypeIDs(tok, e)
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
	return tok.DecodeWith(out[0], tokenizer.DecodeOptions{})
}

// TokenTypeIDs returns the token_type_ids the transformers wrapper of tok returns for an encoding,
// as generate's input ([][]int of one row), or nil when it returns none (see
// tokenizer.Tokenizer.ReturnsTokenTypeIDs).
func TokenTypeIDs(tok *tokenizer.Tokenizer, e *tokenizer.Encoding) [][]int {
	if !tok.ReturnsTokenTypeIDs() {
		return nil
	}
	types := make([]int, len(e.IDs))
	if len(e.TypeIDs) == len(e.IDs) {
		copy(types, e.TypeIDs)
	}
	return [][]int{types}
}

// TextStreamer shows a generated sequence as it grows, as transformers' TextStreamer prints it: the
// prompt, then each new piece of text once it is whole UTF-8 (a byte-level token can end inside a
// character), decoded as tokenizer.decode does by default (special tokens shown); at the end, what
// is left of the decoded text, even a character still incomplete (U+FFFD, as TextStreamer.end
// flushes its cache). In a notebook it is one HTML block updated in place (class "gpt-generate"), in
// text the pieces are written as they come.
type TextStreamer struct {
	w      io.Writer
	live   *progress.Live // the notebook block (nil in text)
	tok    *tokenizer.Tokenizer
	ids    []int
	prompt string // the decoded prompt (HTML: shown in bold)
	shown  string // HTML: the text after the prompt shown so far
	text   string // text: the decoded text written so far, prompt included
}

// NewTextStreamer starts streaming the sequence that begins with promptIDs into w (nil when w is nil).
func NewTextStreamer(w io.Writer, tok *tokenizer.Tokenizer, promptIDs []int) *TextStreamer {
	if w == nil {
		return nil
	}
	s := &TextStreamer{w: w, tok: tok, ids: append([]int(nil), promptIDs...)}
	s.prompt, _ = s.decode()
	if live := progress.NewLive(w); live.Mode() == progress.HTML {
		s.live = live.Every(200 * time.Millisecond)
		s.live.Show(s.html(false), "")
	} else {
		s.write(s.prompt, false)
	}
	return s
}

// Put adds a generated token.
func (s *TextStreamer) Put(id int) {
	if s == nil {
		return
	}
	s.ids = append(s.ids, id)
	full, err := s.decode()
	if err != nil {
		return
	}
	if s.live == nil {
		s.write(full, false)
		return
	}
	if rest, ok := strings.CutPrefix(full, s.prompt); ok && !strings.HasSuffix(rest, string(utf8.RuneError)) {
		s.shown = rest
	}
	if s.live.Due() {
		s.live.Show(s.html(false), "")
	}
}

// End shows the whole sequence and ends the output.
func (s *TextStreamer) End() {
	if s == nil {
		return
	}
	full, err := s.decode()
	if s.live != nil {
		if rest, ok := strings.CutPrefix(full, s.prompt); ok && err == nil {
			s.shown = rest
		} else if err == nil {
			s.prompt, s.shown = "", full
		}
		s.live.Final(s.html(true), "")
		return
	}
	if err == nil {
		s.write(full, true)
	}
	fmt.Fprintln(s.w)
}

// write writes what the decoded text full adds to what was written: nothing while it ends inside a
// character (U+FFFD), unless final. When the text written so far is no longer its beginning (a
// character completed), the rest from the same length on, as TextStreamer prints text[print_len:].
func (s *TextStreamer) write(full string, final bool) {
	if !final && strings.HasSuffix(full, string(utf8.RuneError)) {
		return
	}
	start := len(s.text)
	if !strings.HasPrefix(full, s.text) {
		start = min(start, len(full))
		for start < len(full) && !utf8.RuneStart(full[start]) {
			start++
		}
	}
	if start < len(full) {
		fmt.Fprint(s.w, full[start:])
	}
	s.text = full
}

// decode decodes the sequence as tokenizer.decode does by default.
func (s *TextStreamer) decode() (string, error) {
	return s.tok.DecodeWith(s.ids, tokenizer.DecodeOptions{})
}

func (s *TextStreamer) html(final bool) string {
	cursor := ""
	if !final {
		cursor = `<span style="opacity:0.5">▌</span>`
	}
	return fmt.Sprintf(`<div class="gpt-generate" style="white-space:pre-wrap;font-family:serif;font-size:1.1em"><b>%s</b>%s%s</div>`,
		html.EscapeString(s.prompt), html.EscapeString(s.shown), cursor)
}
