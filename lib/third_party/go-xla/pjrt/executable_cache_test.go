package pjrt

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The cache folder keeps within its bound by removing the entries used longest ago; files that are
// not entries (temporary files of a write in progress) are left alone.
func TestExecutableCacheEviction(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, size int, age time.Duration) string {
		p := filepath.Join(dir, name[:2], name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, make([]byte, size), 0o644); err != nil {
			t.Fatal(err)
		}
		when := time.Now().Add(-age)
		if err := os.Chtimes(p, when, when); err != nil {
			t.Fatal(err)
		}
		return p
	}
	oldest := write("aa-oldest.pjrt", 400, 3*time.Hour)
	middle := write("bb-middle.pjrt", 400, 2*time.Hour)
	newest := write("cc-newest.pjrt", 400, time.Hour)
	tmp := write("aa.tmp-123", 5000, 4*time.Hour)
	SetExecutableCacheDir(dir, 1000)
	defer SetExecutableCacheDir("", 0)
	evictExecutables(dir)
	for p, want := range map[string]bool{oldest: false, middle: true, newest: true, tmp: true} {
		if _, err := os.Stat(p); (err == nil) != want {
			t.Errorf("%s: present=%v, want %v", filepath.Base(p), err == nil, want)
		}
	}
	if got := ExecutableCacheDir(); got != dir {
		t.Errorf("ExecutableCacheDir() = %q, want %q", got, dir)
	}
}
