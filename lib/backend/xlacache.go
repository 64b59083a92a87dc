package backend

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// EnvXLACache turns on XLA's on-disk caches for the GPU compiler: "1" (compiled kernels and
// autotuning results) or "autotune" (autotuning results only). See CacheFlags.
const EnvXLACache = "GPT_XLA_CACHE"

// CacheFlags returns the XLA_FLAGS that make XLA's GPU compiler keep work across processes — a
// compiled-kernel cache file and a per-fusion autotuning cache — in a folder under root keyed by the
// plugin (its path, size and modification time), so that a different plugin version never reads
// another's cache. Flags already present in current are not repeated.
//
// go-xla cannot serialize whole executables (PJRT's Serialize/DeserializeAndLoad are not exposed),
// so these caches shorten, rather than skip, the compilation of a program seen before. They are
// opt-in (GPT_XLA_CACHE=1): an XLA build that does not know a flag refuses to start.
func CacheFlags(root string, plugin *Plugin, current string, kernels bool) (flags, dir string, err error) {
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
	if kernels {
		want = append(want, "--xla_gpu_kernel_cache_file="+filepath.Join(dir, "kernels.bin"))
	}
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
