package corpus

import (
	"bytes"
	"fmt"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/html/charset"
	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
)

// Decoded is a page's text in UTF-8 and how its encoding was found.
type Decoded struct {
	Text string
	// Charset is the encoding's name ("windows-1251", "koi8-r", "utf-8", ...).
	Charset string
	// How says where the charset came from: "content-type", "bom", "meta" or "detected".
	How string
	// Warning is set when the charset the page was labelled with does not fit its bytes.
	Warning string
}

// Decode converts a page to UTF-8. The charset is taken from the Content-Type header, else from a
// byte-order mark or the page's <meta>, else detected among UTF-8, windows-1251 and KOI8-R (the
// encodings Russian pages use). A label of one of those three that does not fit the bytes (KOI8-R
// bytes labelled windows-1251, say) is overruled by detection, with a warning.
func Decode(body []byte, contentType string) (Decoded, error) {
	enc, name, certain := charset.DetermineEncoding(body, contentType)
	how := "content-type"
	switch {
	case certain && hasBOM(body):
		how = "bom"
	case certain:
	case name != "windows-1252" && name != "utf-8":
		// DetermineEncoding falls back to windows-1252 (or utf-8 for valid UTF-8) when nothing
		// names the charset; any other name came from a <meta> in the page.
		how = "meta"
	default:
		enc, name = detect(body)
		how = "detected"
	}
	warning := ""
	if how == "content-type" || how == "meta" {
		if denc, dname, ok := mislabelled(body, enc, name); ok {
			warning = fmt.Sprintf("the page is labelled %s (%s) but its bytes read as %s: decoded as %s", name, how, dname, dname)
			enc, name, how = denc, dname, "detected"
		}
	}
	text, err := enc.NewDecoder().Bytes(body)
	if err != nil {
		return Decoded{}, fmt.Errorf("decoding as %s: %w", name, err)
	}
	return Decoded{Text: string(text), Charset: name, How: how, Warning: warning}, nil
}

// mislabelled tells whether a page labelled UTF-8, windows-1251 or KOI8-R is in another of the
// three: UTF-8 that is not valid, or Cyrillic that reads mostly as capitals (the two code pages
// swap the cases) while another encoding reads as prose. Other labels are trusted: a Western code
// page cannot be told from a mislabelled Cyrillic one this way.
func mislabelled(body []byte, enc encoding.Encoding, name string) (encoding.Encoding, string, bool) {
	switch name {
	case "utf-8":
		if utf8.Valid(body) {
			return nil, "", false
		}
	case "windows-1251", "koi8-r":
		if russianScore(enc, sample(body)) >= 0 {
			return nil, "", false
		}
	default:
		return nil, "", false
	}
	denc, dname := detect(body)
	if dname == name || russianScore(denc, sample(body)) <= 0 {
		return nil, "", false
	}
	return denc, dname, true
}

func hasBOM(b []byte) bool {
	return bytes.HasPrefix(b, []byte("\xef\xbb\xbf")) || bytes.HasPrefix(b, []byte("\xfe\xff")) || bytes.HasPrefix(b, []byte("\xff\xfe"))
}

// detect picks UTF-8 when the bytes are valid UTF-8, else the one of windows-1251 and KOI8-R under
// which the text reads most like Russian prose: mostly lower-case Cyrillic letters. (The two code
// pages put lower and upper case in swapped halves, so the wrong one reads as mostly capitals.)
func detect(body []byte) (encoding.Encoding, string) {
	if utf8.Valid(body) {
		return encoding.Nop, "utf-8"
	}
	body = sample(body)
	best, bestName, bestScore := encoding.Encoding(charmap.Windows1251), "windows-1251", -1
	for _, c := range []struct {
		enc  encoding.Encoding
		name string
	}{{charmap.Windows1251, "windows-1251"}, {charmap.KOI8R, "koi8-r"}} {
		if score := russianScore(c.enc, body); score > bestScore {
			best, bestName, bestScore = c.enc, c.name, score
		}
	}
	return best, bestName
}

// sample is the part of a page that tells the encodings apart: the first 64 KiB do as well as
// the whole page.
func sample(body []byte) []byte {
	if len(body) > 1<<16 {
		return body[:1<<16]
	}
	return body
}

// russianScore decodes b and counts its lower-case Cyrillic letters minus its other Cyrillic
// letters: Russian prose in the right encoding scores well above zero.
func russianScore(enc encoding.Encoding, b []byte) int {
	text, err := enc.NewDecoder().Bytes(b)
	if err != nil {
		return -1 << 30
	}
	score := 0
	for _, r := range string(text) {
		if unicode.Is(unicode.Cyrillic, r) {
			if unicode.IsLower(r) {
				score++
			} else {
				score--
			}
		}
	}
	return score
}
