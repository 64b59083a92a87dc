package backend

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// EnvXLACache turns the XLA caches off ("0"); they are on by default for XLA plugins.
const EnvXLACache = "GPT_XLA_CACHE"

// CacheFlags returns the XLA_FLAGS that make XLA's GPU compiler keep its autotuning results across
// processes (--xla_gpu_per_fusion_autotune_cache_dir), in a folder under root keyed by the plugin
// (its path, size and modification time), so that a different plugin version never reads another's
// results. Flags already present in current are not repeated. [New] also keeps whole compiled
// programs in dir/executables (this project's go-xla fork: PJRT's Serialize and
// DeserializeAndLoad, as JAX's compilation cache), so a program compiled once, in any process, is
// loaded rather than compiled again; the autotuning cache still serves new shapes of known kernels.
//
// Measured on an H100 with JAX's CUDA 13 plugin (docs/benchmarks.md): the tutorial's bf16 training
// step compiles in 16.1 s cold and 9.8 s with the autotuning cache alone. XLA's compiled-kernel
// cache (--xla_gpu_kernel_cache_file) is not used: with it, the second process's first step died
// with CUDA_ERROR_ILLEGAL_INSTRUCTION.
func CacheFlags(root string, plugin *Plugin, current string) (flags, dir string, err error) {
	if plugin == nil {
		return "", "", fmt.Errorf("xla cache: no plugin")
	}
	st, err := os.Stat(plugin.Path)
	if err != nil {
		return "", "", fmt.Errorf("xla cache: %w", err)
	}
	sum := sha256.Sum256(fmt.Appendf(nil, "%s\x00%d\x00%d", plugin.Path, st.Size(), st.ModTime().UnixNano()))
	dir = filepath.Join(root, "xla", hex.EncodeToString(sum[:])[:16])
	want := []string{"--xla_gpu_per_fusion_autotune_cache_dir=" + filepath.Join(dir, "autotune")}
	var add []string
	for _, f := range want {
		name, _, _ := strings.Cut(f, "=")
		if !strings.Contains(current, name+"=") {
			add = append(add, f)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "autotune"), 0o755); err != nil {
		return "", "", fmt.Errorf("xla cache: %w", err)
	}
	return strings.TrimSpace(strings.Join(append([]string{current}, add...), " ")), dir, nil
}
