// Package sharedtest finds the project's shared reference data (../shared beside the checkout, or
// $GPT_SHARED_DIR) for tests. When it is missing, a test that needs it fails with a clear message in
// CI (CI set) and is skipped, saying why, elsewhere — so `make test` still passes for a user without
// the reference data, and CI never silently skips a parity check.
package sharedtest

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// EnvDir overrides the location of the shared data.
const EnvDir = "GPT_SHARED_DIR"

// Dir returns the shared data folder, failing the test when it cannot be found.
func Dir(t testing.TB) string {
	t.Helper()
	dir, err := find()
	if err != nil {
		msg := fmt.Sprintf("shared reference data not found (%v): put it at ../shared beside the checkout or set %s", err, EnvDir)
		if os.Getenv("CI") != "" || os.Getenv(EnvDir) != "" {
			t.Fatal(msg)
		}
		t.Skip("SKIPPED (no reference data; CI fails here): " + msg)
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
