// Package sharedtest finds the project's shared reference data (../shared beside the checkout, or
// $GPT_SHARED_DIR) for tests. When it is missing, a test that needs it fails with a clear message in
// CI (CI set) and is skipped, saying why, elsewhere — so `make test` still passes for a user without
// the reference data, and CI never silently skips a parity check.
//
// GPT_SHARED_DIR naming an existing empty folder hides the data on purpose: every test that needs it
// skips, in CI too. CI uses it to run the tests as a newcomer without ../shared does.
package sharedtest

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// EnvDir overrides the location of the shared data.
const EnvDir = "GPT_SHARED_DIR"

// SkipPrefix starts the message of every skip for lack of the shared data (CI counts them).
const SkipPrefix = "SKIPPED (no reference data"

// Dir returns the shared data folder, failing the test when it cannot be found.
func Dir(t testing.TB) string {
	t.Helper()
	dir, err := find()
	if err != nil {
		msg := fmt.Sprintf("shared reference data not found (%v): put it at ../shared beside the checkout or set %s", err, EnvDir)
		if os.Getenv("CI") != "" || os.Getenv(EnvDir) != "" {
			t.Fatal(msg)
		}
		t.Skip(SkipPrefix + "; CI fails here): " + msg)
	}
	if hidden(dir) {
		t.Skipf("%s: %s=%s is an empty folder, hiding it)", SkipPrefix, EnvDir, dir)
	}
	return dir
}

// Path returns a file or folder inside the shared data, failing the test when it is missing.
func Path(t testing.TB, elem ...string) string {
	t.Helper()
	p := filepath.Join(append([]string{Dir(t)}, elem...)...)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("shared reference data: %v", err)
	}
	return p
}

// hidden reports whether dir is the empty folder GPT_SHARED_DIR names to hide the data.
func hidden(dir string) bool {
	if os.Getenv(EnvDir) == "" {
		return false
	}
	entries, err := os.ReadDir(dir)
	return err == nil && len(entries) == 0
}

func find() (string, error) {
	if d := os.Getenv(EnvDir); d != "" {
		if _, err := os.Stat(d); err != nil {
			return "", err
		}
		return d, nil
	}
	// ../shared beside the repository root (the folder holding go.mod).
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			shared := filepath.Join(filepath.Dir(d), "shared")
			if _, err := os.Stat(shared); err != nil {
				return "", err
			}
			return shared, nil
		}
		if filepath.Dir(d) == d {
			return "", os.ErrNotExist
		}
	}
}
