//go:build cgo && ((linux && (amd64 || arm64)) || (darwin && arm64)) && !noxla

package backend

import (
	"fmt"

	// The XLA backend, without go-xla's auto-installer: nothing is downloaded unless Install is called.
	_ "github.com/gomlx/go-xla/compute/xla"
	"github.com/gomlx/go-xla/installer"
	"github.com/gomlx/go-xla/pjrt"
)

// setExecutableCache points the XLA backend's persistent executable cache (this project's go-xla
// fork, lib/third_party/go-xla) at dir, or turns it off ("").
func setExecutableCache(dir string) { pjrt.SetExecutableCacheDir(dir, 0) }

// setAsyncExecution makes XLA executions return once enqueued (this project's go-xla fork).
func setAsyncExecution(async bool) { pjrt.SetAsyncExecution(async) }

// executableCacheDir is the executable cache's folder ("" when off, or without the XLA backend).
func executableCacheDir() string { return pjrt.ExecutableCacheDir() }

// ExecutableCacheStats counts this process's compilations answered from the executable cache
// (hits), compiled and stored (misses), and cache entries that could not be used (errors).
func ExecutableCacheStats() (hits, misses, errs int64) { return pjrt.ExecutableCacheStats() }

// Install downloads and installs the named PJRT plugin ("cuda" or "cpu") into go-xla's default
// location (~/.local/lib/go-xla), where [Discover] finds it. It is the one function of this package
// that uses the network, and only when called.
func Install(plugin string) error {
	if err := installer.AutoInstallPlugin(plugin, "", true, installer.Normal); err != nil {
		return fmt.Errorf("installing the PJRT %q plugin: %w", plugin, err)
	}
	return nil
}
