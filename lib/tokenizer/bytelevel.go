package tokenizer

import (
	"unicode"
	"unicode/utf8"
)

// byteToRune is GPT-2's bytes_to_unicode: every byte maps to a printable character, the printable
// ASCII and Latin-1 ones to themselves and the others to U+0100 and up.
var byteToRune, runeToByte = func() ([256]rune, map[rune]byte) {
	var b2r [256]rune
	r2b := make(map[rune]byte, 256)
	n := 0
	for b := range 256 {
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			b2r[b] = rune(b)
		} else {
			b2r[b] = rune(256 + n)
			n++
		}
		r2b[b2r[b]] = byte(b)
	}
	return b2r, r2b
}()

// byteLevelString maps the bytes of s to GPT-2's printable characters.
func byteLevelString(s string) string {
	buf := make([]byte, 0, 2*len(s))
	for i := 0; i < len(s); i++ {
		buf = utf8.AppendRune(buf, byteToRune[s[i]])
	}
	return string(buf)
}

// ByteLevelAlphabet returns the 256 characters of the byte-level alphabet (HF's
// ByteLevel.alphabet()), the initial alphabet for training a byte-level BPE.
func ByteLevelAlphabet() []rune {
	out := make([]rune, 256)
	copy(out, byteToRune[:])
	return out
}

// ByteLevel is HF's ByteLevel pre-tokenizer: GPT-2's splitting regex
//
//	's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//
// (implemented as a scanner: Go's regexp has no look-ahead), then each piece's bytes mapped to
// printable characters.
type ByteLevel struct {
	AddPrefixSpace bool
	TrimOffsets    bool
	UseRegex       bool
}

// NewByteLevel returns GPT-2's settings: no prefix space, trimmed offsets, the regex.
func NewByteLevel() *ByteLevel { return &ByteLevel{TrimOffsets: true, UseRegex: true} }

// Type implements PreTokenizer.
func (*ByteLevel) Type() string { return "ByteLevel" }

// Split implements PreTokenizer.
func (b *ByteLevel) Split(text string, dst []Piece) []Piece {
	offset := 0
	if b.AddPrefixSpace && text != "" && text[0] != ' ' {
		text = " " + text
		offset = -1
	}
	mk := func(s, e int) Piece {
		return Piece{byteLevelString(text[s:e]), Span{max(0, s+offset), e + offset}}
	}
	if !b.UseRegex {
		if text == "" {
			return dst
		}
		return append(dst, mk(0, len(text)))
	}
	for i := 0; i < len(text); {
		e := gpt2Next(text, i)
		dst = append(dst, mk(i, e))
		i = e
	}
	return dst
}

// GPT-2 regex classes: \p{L}, \p{N}, \s, other — cached for the Basic Multilingual Plane.
const (
	gOther byte = iota
	gLetter
	gNumber
	gSpace
)

var gpt2BMP = func() []byte {
	t := make([]byte, 0x10000)
	for r := range rune(0x10000) {
		t[r] = gpt2ClassOf(r)
	}
	return t
}()

func gpt2ClassOf(r rune) byte {
	switch {
	case unicode.IsLetter(r):
		return gLetter
	case unicode.IsNumber(r):
		return gNumber
	case unicode.Is(unicode.White_Space, r):
		return gSpace
	}
	return gOther
}

func gpt2Class(r rune) byte {
	if r >= 0 && r < 0x10000 {
		return gpt2BMP[r]
	}
	return gpt2ClassOf(r)
}

func isL(r rune) bool { return gpt2Class(r) == gLetter }
func isN(r rune) bool { return gpt2Class(r) == gNumber }
func isS(r rune) bool { return gpt2Class(r) == gSpace }

// gpt2Next returns the end of the GPT-2 regex match that starts at i.
func gpt2Next(s string, i int) int {
	// Contractions: 's 't 're 've 'm 'll 'd (case-sensitive, as in the regex).
	if s[i] == '\'' && i+1 < len(s) {
		switch s[i+1] {
		case 's', 't', 'm', 'd':
			return i + 2
		case 'r', 'v':
			if i+2 < len(s) && s[i+2] == 'e' {
				return i + 3
			}
		case 'l':
			if i+2 < len(s) && s[i+2] == 'l' {
				return i + 3
			}
		}
	}
	r, n := utf8.DecodeRuneInString(s[i:])
	j := i // start of the class run, after an optional space
	first := r
	if r == ' ' && i+n < len(s) {
		r2, _ := utf8.DecodeRuneInString(s[i+n:])
		if !isS(r2) {
			j, first = i+n, r2
		}
	}
	var in func(rune) bool
	switch {
	case isL(first):
		in = isL
	case isN(first):
		in = isN
	case !isS(first):
		in = func(r rune) bool { return gpt2Class(r) == gOther }
	}
	if in != nil {
		k := j
		for k < len(s) {
			r, n := utf8.DecodeRuneInString(s[k:])
			if !in(r) {
				break
			}
			k += n
		}
		return k
	}
	// White space: \s+(?!\S) keeps the last space for the next word, unless the run ends the text;
	// a single space before a non-space falls to \s+.
	k, last := i, i
	for k < len(s) {
		r, n := utf8.DecodeRuneInString(s[k:])
		if !isS(r) {
			break
		}
		last = k
		k += n
	}
	if k == len(s) || last == i {
		return k
	}
	return last
}
