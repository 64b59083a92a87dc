package tokenizer

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Span is a piece of the input: bytes [Start, End) of the text it was cut from.
type Span struct{ Start, End int }

// PreTokenizer cuts text into the pieces ("words") that the model then encodes one by one.
type PreTokenizer interface {
	// Split returns the pieces of text, as their strings (which may differ from the text, e.g.
	// byte-level mapped) and their spans in text.
	Split(text string, dst []Piece) []Piece
	// Type is the pre-tokenizer's name in tokenizer.json.
	Type() string
}

// Piece is one pre-token.
type Piece struct {
	Text string
	Span Span
}

// Character classes of the Whitespace pre-tokenizer's regex \w+|[^\w\s]+, with Rust regex's
// Unicode definitions: \w = Alphabetic ∪ M ∪ Nd ∪ Pc ∪ Join_Control, \s = White_Space.
const (
	classOther byte = iota
	classWord
	classSpace
)

// bmpClass caches the class of every rune of the Basic Multilingual Plane.
var bmpClass = func() []byte {
	t := make([]byte, 0x10000)
	for r := range rune(0x10000) {
		t[r] = computeClass(r)
	}
	return t
}()

func computeClass(r rune) byte {
	switch {
	case unicode.Is(unicode.White_Space, r):
		return classSpace
	case unicode.IsLetter(r), unicode.Is(unicode.Nl, r), unicode.Is(unicode.Other_Alphabetic, r),
		unicode.IsMark(r), unicode.Is(unicode.Nd, r), unicode.Is(unicode.Pc, r), unicode.Is(unicode.Join_Control, r):
		return classWord
	}
	return classOther
}

func wordClass(r rune) byte {
	if r < 0x10000 {
		return bmpClass[r]
	}
	return computeClass(r)
}

// Whitespace is HF's Whitespace pre-tokenizer: the regex \w+|[^\w\s]+, i.e. runs of word characters
// and runs of other non-space characters; white space separates and is dropped.
type Whitespace struct{}

// Type implements PreTokenizer.
func (Whitespace) Type() string { return "Whitespace" }

// Split implements PreTokenizer.
func (Whitespace) Split(text string, dst []Piece) []Piece {
	start, cur := -1, classSpace
	for i, r := range text {
		var c byte
		if r < utf8.RuneSelf {
			c = asciiClass[r]
		} else {
			c = wordClass(r)
		}
		if c != cur {
			if cur != classSpace && start >= 0 {
				dst = append(dst, Piece{text[start:i], Span{start, i}})
			}
			start, cur = i, c
		}
	}
	if cur != classSpace && start >= 0 {
		dst = append(dst, Piece{text[start:], Span{start, len(text)}})
	}
	return dst
}

var asciiClass = func() [utf8.RuneSelf]byte {
	var t [utf8.RuneSelf]byte
	for r := range rune(utf8.RuneSelf) {
		t[r] = computeClass(r)
	}
	return t
}()

// WhitespaceSplit is HF's WhitespaceSplit pre-tokenizer: split on white space only.
type WhitespaceSplit struct{}

// Type implements PreTokenizer.
func (WhitespaceSplit) Type() string { return "WhitespaceSplit" }

// Split implements PreTokenizer.
func (WhitespaceSplit) Split(text string, dst []Piece) []Piece {
	start := -1
	for i, r := range text {
		if unicode.Is(unicode.White_Space, r) {
			if start >= 0 {
				dst = append(dst, Piece{text[start:i], Span{start, i}})
				start = -1
			}
		} else if start < 0 {
			start = i
		}
	}
	if start >= 0 {
		dst = append(dst, Piece{text[start:], Span{start, len(text)}})
	}
	return dst
}

// Metaspace is HF's Metaspace pre-tokenizer (SentencePiece style): spaces become Replacement
// ("▁"), which is also put before the text (PrependScheme "always", or "first": only at the start
// of the input; "never"), and with Split the text is cut before each Replacement.
type Metaspace struct {
	Replacement   rune
	PrependScheme string
	Split_        bool
}

// NewMetaspace returns HF's default Metaspace: "▁", prepend "always", split.
func NewMetaspace() *Metaspace {
	return &Metaspace{Replacement: '▁', PrependScheme: "always", Split_: true}
}

// Type implements PreTokenizer.
func (*Metaspace) Type() string { return "Metaspace" }

// Split implements PreTokenizer.
func (m *Metaspace) Split(text string, dst []Piece) []Piece {
	if text == "" {
		return dst
	}
	repl := string(m.Replacement)
	prepend := (m.PrependScheme == "always" || m.PrependScheme == "first") &&
		!strings.HasPrefix(text, " ") && !strings.HasPrefix(text, repl)
	piece := func(s, e int, first bool) Piece {
		t := strings.ReplaceAll(text[s:e], " ", repl)
		if first && prepend {
			t = repl + t
		}
		return Piece{t, Span{s, e}}
	}
	if !m.Split_ {
		return append(dst, piece(0, len(text), true))
	}
	// Each space (and each "▁" already in the text) starts a new piece (HF: MergedWithNext).
	start := 0
	for i := 0; i < len(text); {
		r, n := utf8.DecodeRuneInString(text[i:])
		if (r == ' ' || r == m.Replacement) && i > start {
			dst = append(dst, piece(start, i, start == 0))
			start = i
		}
		i += n
	}
	return append(dst, piece(start, len(text), start == 0))
}
