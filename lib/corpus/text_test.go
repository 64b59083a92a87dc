package corpus

import (
	"bytes"
	"compress/gzip"
	"io"
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

// What Python's bytes.decode("utf-8", errors="replace") gives (CPython 3.11, run by hand): one
// U+FFFD per maximal subpart of an ill-formed sequence, not one per byte.
func TestReplaceInvalidLikePython(t *testing.T) {
	for in, want := range map[string]string{
		"\xe2\x82":         "\ufffd",
		"\xed\xa0\x80":     "\ufffd\ufffd\ufffd",
		"\xf0\x9f\x98":     "\ufffd",
		"\xff\xfe":         "\ufffd\ufffd",
		"a\xc3":            "a\ufffd",
		"\xf4\x90\x80\x80": "\ufffd\ufffd\ufffd\ufffd",
		"\xe0\x80\x80":     "\ufffd\ufffd\ufffd",
		"\xc0\xaf":         "\ufffd\ufffd",
		"\xf0\x9f\x98x":    "\ufffdx",
		"ok \ufffd ok":     "ok \ufffd ok",
		"д\xd0д":           "д\ufffdд",
	} {
		if got := replaceInvalid([]byte(in)); got != want {
			t.Errorf("%q → %q, want %q", in, got, want)
		}
	}
}

// Several files are one dataset: a file's last line ends with the file, gzip files are read as
// text, and the bytes read add up to the files' size.
func TestTextDatasetFiles(t *testing.T) {
	dir := t.TempDir()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("c\r\nd\n"))
	zw.Close()
	files := map[string]string{"1.txt": "a\nb", "2.txt.gz": gz.String(), "3.txt": "\ne\n"}
	var paths []string
	for _, name := range []string{"1.txt", "2.txt.gz", "3.txt"} {
		paths = append(paths, filepath.Join(dir, name))
		if err := os.WriteFile(paths[len(paths)-1], []byte(files[name]), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	d, err := OpenText(paths...)
	if err != nil {
		t.Fatal(err)
	}
	r, err := d.Open()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		l, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, l)
	}
	size, _ := d.Size()
	if strings.Join(got, "|") != "a|b|c|d||e" || r.BytesRead() != size || size != int64(3+gz.Len()+3) {
		t.Errorf("lines %q, read %d of %d bytes", got, r.BytesRead(), size)
	}
	if _, err := OpenText(); err == nil {
		t.Error("no files: no error")
	}
}

func TestTextDatasetLineBound(t *testing.T) {
	p := filepath.Join(t.TempDir(), "t.txt")
	for _, tc := range []struct {
		content string
		err     string
	}{
		{"0123456789\n0123456789\r\n0123456789\r0123456789", ""},
		{"0123456789\n0123456789A\n", "line 2 is longer than 10 bytes"},
		{"0123456789\n0123456789A", "line 2 is longer than 10 bytes"},
	} {
		if err := os.WriteFile(p, []byte(tc.content), 0o644); err != nil {
			t.Fatal(err)
		}
		n, err := (&TextDataset{Paths: []string{p}, MaxLineBytes: 10}).Count()
		if tc.err == "" && (err != nil || n != 4) || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%q: %d lines, err %v, want %q", tc.content, n, err, tc.err)
		}
	}
}
