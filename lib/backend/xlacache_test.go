package backend

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCacheFlags(t *testing.T) {
	dir := t.TempDir()
	plugin := filepath.Join(dir, "xla_cuda_plugin.so")
	_ = os.WriteFile(plugin, []byte("v1"), 0o644)
	root := filepath.Join(dir, "cache")
	flags, cdir, err := CacheFlags(root, &Plugin{Path: plugin}, "--xla_dump_to=/tmp/d")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(flags, "kernel_cache") {
		t.Errorf("flags %q use the kernel cache (it crashed XLA CUDA)", flags)
	}
	for _, want := range []string{"--xla_dump_to=/tmp/d", "--xla_gpu_per_fusion_autotune_cache_dir=" + cdir + "/autotune"} {
		if !strings.Contains(flags, want) {
			t.Errorf("flags %q lack %q", flags, want)
		}
	}
	if st, err := os.Stat(filepath.Join(cdir, "autotune")); err != nil || !st.IsDir() {
		t.Errorf("autotune folder not made: %v", err)
	}
	// Same plugin: same folder; flags not repeated.
	again, cdir2, _ := CacheFlags(root, &Plugin{Path: plugin}, flags)
	if cdir2 != cdir || again != flags {
		t.Errorf("not stable: %q %q", again, cdir2)
	}
	// Another plugin build (size or time changed): another folder.
	_ = os.WriteFile(plugin, []byte("v22"), 0o644)
	_ = os.Chtimes(plugin, time.Now().Add(time.Hour), time.Now().Add(time.Hour))
	if _, cdir3, _ := CacheFlags(root, &Plugin{Path: plugin}, ""); cdir3 == cdir {
		t.Error("a changed plugin shares the cache folder")
	}
	if _, _, err := CacheFlags(root, nil, ""); err == nil {
		t.Error("no plugin: no error")
	}
}
