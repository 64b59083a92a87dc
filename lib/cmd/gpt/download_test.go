package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gonb-gpt/tutorial/lib/hub/hubtest"
)

// gpt download --include against the hub replica: fnmatch patterns (* crosses /, DIR/ is a
// folder), offline from the cache too; a bad HF_HUB_* variable is refused by name.
func TestDownloadInclude(t *testing.T) {
	files := map[string]*hubtest.File{
		"config.json":       {Data: []byte(`{"model_type": "gpt2"}`)},
		"README.md":         {Data: []byte("# r\n")},
		"onnx/decoder.onnx": {Data: bytes.Repeat([]byte{7}, 4096), LFS: true},
		"model.safetensors": {Data: bytes.Repeat([]byte{1}, 4096), LFS: true},
	}
	repo := &hubtest.Repo{Files: files, Commit: hubtest.CommitOf(files)}
	srv, err := hubtest.Start(map[string]*hubtest.Repo{"test-only/include": repo}, hubtest.Faults{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	home := t.TempDir()
	t.Setenv("HF_HOME", home)
	t.Setenv("HF_HUB_CACHE", "")
	t.Setenv("HF_ENDPOINT", srv.URL)
	t.Setenv("HF_HUB_OFFLINE", "")
	t.Setenv("TRANSFORMERS_OFFLINE", "")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"download", "test-only/include", "--include", "*.onnx", "--include", "*.md", "--quiet"}, &stdout, &stderr); code != 0 {
		t.Fatalf("download: exit %d: %s", code, stderr.String())
	}
	snap := strings.TrimSpace(stdout.String())
	if snap != filepath.Join(home, "hub", "models--test-only--include", "snapshots", repo.Commit) {
		t.Errorf("printed %q", snap)
	}
	for f, want := range map[string]bool{"onnx/decoder.onnx": true, "README.md": true, "config.json": false, "model.safetensors": false} {
		if _, err := os.Stat(filepath.Join(snap, f)); (err == nil) != want {
			t.Errorf("%s downloaded: %v, want %v", f, err == nil, want)
		}
	}
	srv.Close()
	t.Setenv("HF_HUB_OFFLINE", "1")
	stdout.Reset()
	if code := run([]string{"download", "test-only/include", "--include", "onnx/", "--quiet"}, &stdout, &stderr); code != 0 || strings.TrimSpace(stdout.String()) != snap {
		t.Errorf("offline --include onnx/: exit %d, %q, %s", code, stdout.String(), stderr.String())
	}
	stderr.Reset()
	t.Setenv("HF_HUB_DOWNLOAD_TIMEOUT", "soon")
	if code := run([]string{"download", "test-only/include", "--quiet"}, &stdout, &stderr); code == 0 || !strings.Contains(stderr.String(), "HF_HUB_DOWNLOAD_TIMEOUT") {
		t.Errorf("HF_HUB_DOWNLOAD_TIMEOUT=soon: exit %d, %s", code, stderr.String())
	}
}
