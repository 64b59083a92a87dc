package corpus

import (
	"regexp"
	"strings"
	"testing"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
)

var reMeta = regexp.MustCompile(`<meta http-equiv="Content-Type" content="text/html; charset=[^"]*">`)

func TestDecode(t *testing.T) {
	raw := vendoredPage(t, "text_1860_dekabristy.shtml") // windows-1251, no <meta charset>
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
		warned            bool
	}{
		{"no charset anywhere", "text/html", raw, "windows-1251", "detected", want, false},
		{"no content type at all", "", raw, "windows-1251", "detected", want, false},
		{"content-type names it", "text/html; charset=windows-1251", raw, "windows-1251", "content-type", want, false},
		{"KOI8-R, no charset", "text/html", []byte(koi8), "koi8-r", "detected", wantKOI8, false},
		{"KOI8-R named in a meta", "text/html", []byte(withMeta), "koi8-r", "meta", wantKOI8, false},
		{"UTF-8, no charset", "text/html", utf, "utf-8", "detected", want, false},
		{"UTF-8 with a BOM", "", append([]byte("\xef\xbb\xbf"), utf...), "utf-8", "bom", want, false},
		{"KOI8-R named", "text/html; charset=koi8-r", []byte(koi8), "koi8-r", "content-type", wantKOI8, false},
		{"UTF-8 named", "text/html; charset=utf-8", utf, "utf-8", "content-type", want, false},
		// A label that does not fit the bytes is overruled, with a warning.
		{"KOI8-R labelled windows-1251", "text/html; charset=windows-1251", []byte(koi8), "koi8-r", "detected", wantKOI8, true},
		{"windows-1251 labelled KOI8-R", "text/html; charset=koi8-r", raw, "windows-1251", "detected", want, true},
		{"UTF-8 labelled windows-1251", "text/html; charset=windows-1251", utf, "utf-8", "detected", want, true},
		{"windows-1251 labelled UTF-8", "text/html; charset=utf-8", raw, "windows-1251", "detected", want, true},
		{"KOI8-R in a meta saying windows-1251", "text/html", []byte(strings.Replace(withMeta, "charset=koi8-r", "charset=windows-1251", 1)), "koi8-r", "detected", wantKOI8, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Decode(tc.body, tc.contentType)
			if err != nil {
				t.Fatal(err)
			}
			if d.Charset != tc.charset || d.How != tc.how {
				t.Errorf("charset %q (%s), want %q (%s)", d.Charset, d.How, tc.charset, tc.how)
			}
			if warned := d.Warning != ""; warned != tc.warned || (warned && !strings.Contains(d.Warning, "decoded as "+tc.charset)) {
				t.Errorf("warning %q", d.Warning)
			}
			text := strings.TrimPrefix(d.Text, "\ufeff")
			if strings.Contains(tc.name, "meta") {
				text = reMeta.ReplaceAllString(text, "")
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
