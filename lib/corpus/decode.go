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
}

// Decode converts a page to UTF-8. The charset is taken from the Content-Type header, else from a
// byte-order mark or the page's <meta>, else detected among UTF-8, windows-1251 and KOI8-R (the
// encodings Russian pages use).
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
	text, err := enc.NewDecoder().Bytes(body)
	if err != nil {
		return Decoded{}, fmt.Errorf("decoding as %s: %w", name, err)
	}
	return Decoded{Text: string(text), Charset: name, How: how}, nil
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
	// The first 64 KiB tell the two code pages apart as well as the whole page does.
	if len(body) > 1<<16 {
		body = body[:1<<16]
	}
	best, bestName, bestScore := encoding.Encoding(charmap.Windows1251), "windows-1251", -1
	for _, c := range []struct {
		enc  encoding.Encoding
		name string
	}{{charmap.Windows1251, "windows-1251"}, {charmap.KOI8R, "koi8-r"}} {
		text, err := c.enc.NewDecoder().Bytes(body)
		if err != nil {
			continue
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
		if score > bestScore {
			best, bestName, bestScore = c.enc, c.name, score
		}
	}
	return best, bestName
}
