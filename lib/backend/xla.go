//go:build cgo && ((linux && (amd64 || arm64)) || (darwin && arm64)) && !noxla

package backend

import (
	"fmt"
	"io"
	"path/filepath"

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

// Install downloads and installs a PJRT plugin with go-xla's installer, where [Discover] finds it:
// "cuda13" into go-xla's default ~/.local/lib/go-xla (plugin and NVIDIA libraries in its nvidia/
// folder), "cuda12" into ~/.local/lib/go-xla-cuda12, "cuda" one of the two chosen by the visible
// GPUs' compute capability (CUDA 13 dropped compute capability below 7.5: a Tesla V100 needs
// cuda12), and "cpu" go-xla's CPU plugin. It prints what it installs, where and why to w. It is the
// one function of this package that uses the network (pypi.org), and only when called; it is
// therefore not tested here, only the choice it makes (installTarget).
func Install(plugin string, w io.Writer) error {
	variant, dir, why, err := installTarget(plugin, HostSystem())
	if err != nil {
		return err
	}
	if why != "" {
		fmt.Fprintf(w, "%s: %s\n", variant, why)
	}
	if variant == "cpu" {
		fmt.Fprintf(w, "installing the PJRT cpu plugin into go-xla's default folder\n")
		if err := installer.AutoInstallPlugin("cpu", "", true, installer.Normal); err != nil {
			return fmt.Errorf("installing the PJRT cpu plugin: %w", err)
		}
		return nil
	}
	fmt.Fprintf(w, "installing the PJRT %s plugin into %s\n", variant, filepath.Join(dir, "nvidia"))
	if err := installCUDA(variant, dir); err != nil {
		return fmt.Errorf("installing the PJRT %s plugin into %s: %w", variant, dir, err)
	}
	return nil
}
