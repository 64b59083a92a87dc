package corpus

import (
	"strings"
	"testing"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
)

func TestDecode(t *testing.T) {
	raw := mirrorPage(t, "text_1860_dekabristy.shtml") // windows-1251, no <meta charset>
	want := cp1251(t, raw)
	// KOI8-R lacks some of the page's characters (dashes, quotes): they become "?" when re-encoding.
	koi8, err := encoding.ReplaceUnsupported(charmap.KOI8R.NewEncoder()).String(want)
	if err != nil {
		t.Fatal(err)
	}
	wantKOI8, err := charmap.KOI8R.NewDecoder().String(koi8)
	if err != nil {
		t.Fatal(err)
	}
	utf := []byte(want)
	withMeta := strings.Replace(string(koi8), "<head>", `<head><meta http-equiv="Content-Type" content="text/html; charset=koi8-r">`, 1)
	for _, tc := range []struct {
		name, contentType string
		body              []byte
		charset, how      string
		want              string
	}{
		{"no charset anywhere", "text/html", raw, "windows-1251", "detected", want},
		{"no content type at all", "", raw, "windows-1251", "detected", want},
		{"content-type names it", "text/html; charset=windows-1251", raw, "windows-1251", "content-type", want},
		{"KOI8-R, no charset", "text/html", []byte(koi8), "koi8-r", "detected", wantKOI8},
		{"KOI8-R named in a meta", "text/html", []byte(withMeta), "koi8-r", "meta", wantKOI8},
		{"UTF-8, no charset", "text/html", utf, "utf-8", "detected", want},
		{"UTF-8 with a BOM", "", append([]byte("\xef\xbb\xbf"), utf...), "utf-8", "bom", want},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Decode(tc.body, tc.contentType)
			if err != nil {
				t.Fatal(err)
			}
			if d.Charset != tc.charset || d.How != tc.how {
				t.Errorf("charset %q (%s), want %q (%s)", d.Charset, d.How, tc.charset, tc.how)
			}
			text := strings.TrimPrefix(d.Text, "\ufeff")
			if tc.name == "KOI8-R named in a meta" {
				text = strings.Replace(text, `<meta http-equiv="Content-Type" content="text/html; charset=koi8-r">`, "", 1)
			}
			if text != tc.want {
				t.Errorf("decoded text differs from the page (first line %q)", strings.SplitN(text, "\n", 4)[2])
			}
			if !strings.Contains(text, "Декабристы") {
				t.Error("no Cyrillic title in the decoded text")
			}
		})
	}
}
