package sharedtest

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// recorder is a testing.TB whose Skip and Fatal end the calling goroutine, recording the message.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Helper()                   {}
func (r *recorder) Skip(args ...any)          { r.skipped = fmt.Sprint(args...); runtime.Goexit() }
func (r *recorder) Skipf(f string, a ...any)  { r.skipped = fmt.Sprintf(f, a...); runtime.Goexit() }
func (r *recorder) Fatal(args ...any)         { r.failed = fmt.Sprint(args...); runtime.Goexit() }
func (r *recorder) Fatalf(f string, a ...any) { r.failed = fmt.Sprintf(f, a...); runtime.Goexit() }

// call runs fn with a recorder, returning it and what fn returned.
func call(t *testing.T, fn func(testing.TB) string) (r *recorder, got string) {
	r = &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		got = fn(r)
	}()
	<-done
	return r, got
}

func TestDir(t *testing.T) {
	empty, full := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(full, "README.md"), []byte("shared"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := func(tb testing.TB) string { return Dir(tb) }
	// A checkout (a go.mod) with no ../shared beside it and no GPT_SHARED_DIR: a skip outside CI, a
	// failure in CI.
	checkout := filepath.Join(t.TempDir(), "repo")
	if err := os.MkdirAll(checkout, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(checkout, "go.mod"), []byte("module x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(checkout)
	t.Setenv(EnvDir, "")
	t.Setenv("CI", "")
	if r, _ := call(t, dir); !strings.HasPrefix(r.skipped, SkipPrefix) || r.failed != "" {
		t.Errorf("no ../shared outside CI: skipped %q, failed %q", r.skipped, r.failed)
	}
	t.Setenv("CI", "1")
	if r, _ := call(t, dir); r.failed == "" || r.skipped != "" {
		t.Errorf("no ../shared in CI: skipped %q, failed %q", r.skipped, r.failed)
	}
	for _, ci := range []string{"", "1"} {
		t.Setenv("CI", ci)
		// An empty GPT_SHARED_DIR hides the data: a skip, in CI too.
		t.Setenv(EnvDir, empty)
		if r, _ := call(t, dir); !strings.HasPrefix(r.skipped, SkipPrefix) || r.failed != "" {
			t.Errorf("CI=%q, empty %s: skipped %q, failed %q", ci, EnvDir, r.skipped, r.failed)
		}
		// A GPT_SHARED_DIR that does not exist is a mistake: a failure, outside CI too.
		t.Setenv(EnvDir, filepath.Join(empty, "nosuch"))
		if r, _ := call(t, dir); r.failed == "" || r.skipped != "" {
			t.Errorf("CI=%q, missing %s: skipped %q, failed %q", ci, EnvDir, r.skipped, r.failed)
		}
		// The data, and a file missing from it.
		t.Setenv(EnvDir, full)
		if r, got := call(t, dir); got != full || r.failed != "" || r.skipped != "" {
			t.Errorf("CI=%q: Dir = %q, skipped %q, failed %q", ci, got, r.skipped, r.failed)
		}
		if r, _ := call(t, func(tb testing.TB) string { return Path(tb, "fixtures", "nosuch.json") }); r.failed == "" {
			t.Errorf("CI=%q: Path of a missing file did not fail", ci)
		}
	}
}
