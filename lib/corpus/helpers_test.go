package corpus

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/gonb-gpt/tutorial/lib/internal/sharedtest"
	"golang.org/x/text/encoding/charmap"
)

// mirrorDir is ../shared/libru-mirror.
func mirrorDir(t testing.TB) string { return sharedtest.Path(t, "libru-mirror") }

// mirrorPage reads a page of ../shared/libru-mirror as raw bytes.
func mirrorPage(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(sharedtest.Path(t, "libru-mirror"), name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// cp1251 decodes windows-1251 bytes (what the test knows the mirror is).
func cp1251(t testing.TB, b []byte) string {
	t.Helper()
	s, err := charmap.Windows1251.NewDecoder().Bytes(b)
	if err != nil {
		t.Fatal(err)
	}
	return string(s)
}

var (
	reCountH4   = regexp.MustCompile(`(?i)<h4[\s>]`)
	reCountDD   = regexp.MustCompile(`(?i)<dd>([^\n]*)`)
	reCountTags = regexp.MustCompile(`<[^>]*>`)
	reCountNote = regexp.MustCompile(`^(&nbsp;|\s)*<u>\d+</u>`)
)

// countFromHTML counts, independently of the extractor, a page's headings (<h4>), paragraphs
// (<dd> lines with text, footnote texts excluded) and footnote texts (<dd> lines starting with
// <u>N</u>) between the section markers.
func countFromHTML(page string) (headings, paragraphs, notes int) {
	begin := strings.Index(page, "<!--Section Begins-->")
	end := strings.Index(page, "<!--Section Ends-->")
	section := page[begin:end]
	headings = len(reCountH4.FindAllString(section, -1))
	for _, m := range reCountDD.FindAllStringSubmatch(section, -1) {
		text := strings.TrimSpace(strings.ReplaceAll(reCountTags.ReplaceAllString(m[1], ""), "&nbsp;", ""))
		switch {
		case text == "":
		case reCountNote.MatchString(m[1]):
			notes++
		default:
			paragraphs++
		}
	}
	return
}
