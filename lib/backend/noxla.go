//go:build !(cgo && ((linux && (amd64 || arm64)) || (darwin && arm64)) && !noxla)

package backend

import (
	"errors"
	"io"
)

// Install is not available in builds without the XLA backend (no cgo, another platform, or the
// noxla tag).
func Install(plugin string, w io.Writer) error {
	return errors.New("this program was built without the XLA backend (it needs cgo on linux or darwin/arm64)")
}

func setExecutableCache(string) {}

func executableCacheDir() string { return "" }

func setAsyncExecution(bool) {}

// ExecutableCacheStats is always zero without the XLA backend.
func ExecutableCacheStats() (hits, misses, errs int64) { return 0, 0, 0 }
