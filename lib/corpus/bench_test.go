package corpus

import (
	"os"
	"path"
	"path/filepath"
	"testing"

	"github.com/gonb-gpt/tutorial/lib/internal/sharedtest"
)

// BenchmarkExtractMirror reads the eight mirror pages from disk, decodes and extracts them.
func BenchmarkExtractMirror(b *testing.B) {
	dir := sharedtest.Path(b, "libru-mirror")
	var total int64
	for _, u := range DefaultURLs {
		st, err := os.Stat(filepath.Join(dir, path.Base(u)))
		if err != nil {
			b.Fatal(err)
		}
		total += st.Size()
	}
	b.SetBytes(total)
	for b.Loop() {
		for _, u := range DefaultURLs {
			body, err := os.ReadFile(filepath.Join(dir, path.Base(u)))
			if err != nil {
				b.Fatal(err)
			}
			d, err := Decode(body, "")
			if err != nil {
				b.Fatal(err)
			}
			if _, err := Extract(d.Text, ExtractOptions{}); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkTutorialCompat is the same with the tutorial's regex cleaning.
func BenchmarkTutorialCompat(b *testing.B) {
	dir := sharedtest.Path(b, "libru-mirror")
	var pages []string
	var total int64
	for _, u := range DefaultURLs {
		body, err := os.ReadFile(filepath.Join(dir, path.Base(u)))
		if err != nil {
			b.Fatal(err)
		}
		d, _ := Decode(body, "")
		pages = append(pages, d.Text)
		total += int64(len(body))
	}
	b.SetBytes(total)
	for b.Loop() {
		for _, p := range pages {
			_ = TutorialText(p)
		}
	}
}
