package corpus

import (
	"path"
	"strings"
	"testing"
)

// seedPieces cuts mirror pages into pieces that hold their interesting parts: the header, the
// section start with headings and footnote calls, the notes and the footer with its script.
func seedPieces(t testing.TB) []string {
	var seeds []string
	for _, u := range DefaultURLs[:2] {
		page := cp1251(t, mirrorPage(t, path.Base(u)))
		begin := strings.Index(page, "<!--Section Begins-->")
		end := strings.Index(page, "<!--Section Ends-->")
		seeds = append(seeds, page[:min(len(page), begin+4000)], page[max(0, end-3000):],
			page[begin:min(len(page), begin+2000)])
	}
	return append(seeds, "", "<sup><u>1", "<dd><u>1</u>", "<h4><h4></h4>", "&#1234567890123;", "<!--Section Begins-->x<!--Section Ends-->")
}

func FuzzExtract(f *testing.F) {
	for _, s := range seedPieces(f) {
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, page string, keepNotes bool) {
		ex, err := Extract(page, ExtractOptions{KeepNotes: keepNotes})
		if err != nil {
			return
		}
		for _, l := range ex.Lines() {
			if l == "" || strings.TrimSpace(l) != l || strings.Contains(l, "\n") {
				t.Fatalf("bad line %q", l)
			}
		}
	})
}

func FuzzTutorialText(f *testing.F) {
	for _, s := range seedPieces(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, page string) {
		out := TutorialText(page)
		if strings.Contains(out, "\n\n") {
			t.Fatalf("empty line kept: %q", out)
		}
	})
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte("<html>\xc4\xe5\xea\xe0\xe1\xf0\xe8\xf1\xf2\xfb</html>"), "text/html")
	f.Add([]byte("\xef\xbb\xbfabc"), "")
	f.Add([]byte(`<meta charset="koi8-r">\xf0\xd2\xc9`), "text/html; charset=nonsense")
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		_, _ = Decode(body, contentType)
	})
}
