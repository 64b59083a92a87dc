package corpus

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func linesOf(t *testing.T, content string) ([]string, error) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "t.txt")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := OpenText(p)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for l, err := range d.Lines() {
		if err != nil {
			return out, err
		}
		out = append(out, l)
	}
	return out, nil
}

// Expected values are what datasets.load_dataset("text") gives for the same bytes.
func TestTextDatasetLikeHF(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"a\nb\n", []string{"a", "b"}},
		{"a\nb", []string{"a", "b"}},
		{"a\n\nb\n\n", []string{"a", "", "b", ""}},
		{"a\r\nb\rc\n", []string{"a", "b", "c"}},
		{"\n", []string{""}},
		{"", nil},
		{"x\u2028y\n", []string{"x\u2028y"}}, // only \n, \r\n and \r break lines
	} {
		got, err := linesOf(t, tc.in)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(got, "|") != strings.Join(tc.want, "|") || len(got) != len(tc.want) {
			t.Errorf("%q → %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestTextDatasetErrors(t *testing.T) {
	if _, err := linesOf(t, "ok\n\xff\xfe\n"); err == nil || !strings.Contains(err.Error(), "line 2 is not valid UTF-8") {
		t.Errorf("err = %v", err)
	}
	if _, err := OpenText(filepath.Join(t.TempDir(), "missing.txt")); err == nil {
		t.Error("no error for a missing file")
	}
	if _, err := OpenText(t.TempDir()); err == nil {
		t.Error("no error for a folder")
	}
}

func TestTextDatasetOnFixture(t *testing.T) {
	p := filepath.Join(mirrorDir(t), "..", "fixtures", "tutorial-dataset.txt")
	d, err := OpenText(p)
	if err != nil {
		t.Fatal(err)
	}
	n, err := d.Count()
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(p)
	if want := strings.Count(string(data), "\n"); n != want {
		t.Errorf("%d examples, want %d (one per line)", n, want)
	}
}
