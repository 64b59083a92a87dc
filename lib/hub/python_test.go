package hub

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gonb-gpt/tutorial/lib/hub/hubtest"
)

// pythonInterop is run by python3 with huggingface_hub: "download" fetches files with
// hf_hub_download (online, against HF_ENDPOINT); "read" (run with HF_HUB_OFFLINE=1) resolves them
// from the cache. Both print {file: [path, content hex]} as JSON.
const pythonInterop = `
import json, sys
from huggingface_hub import hf_hub_download
repo, files = sys.argv[2], sys.argv[3:]
out = {}
for f in files:
    p = hf_hub_download(repo, f)
    out[f] = [p, open(p, "rb").read().hex()]
print(json.dumps(out))
`

// Python's huggingface_hub and this package share one cache both ways: Python downloads from the
// replica and this client reads that cache offline; this client downloads and Python reads its
// cache offline. It needs python3 with huggingface_hub, which the device machine has (PyPI is
// unreachable here): set GPT_HF_PYTHON_CHECK=1 to run it.
func TestPythonInterop(t *testing.T) {
	if os.Getenv("GPT_HF_PYTHON_CHECK") != "1" {
		t.Skip("SKIPPED: needs python3 with huggingface_hub; run on the device machine with GPT_HF_PYTHON_CHECK=1 (docs/hub.md)")
	}
	python := os.Getenv("GPT_HF_PYTHON")
	if python == "" {
		python = "python3"
	}
	repo := testRepo(t)
	srv := startHub(t, repo, hubtest.Faults{})
	clearEnv(t)
	runPy := func(home string, offline bool, files []string) map[string][2]string {
		t.Helper()
		cmd := exec.Command(python, append([]string{"-c", pythonInterop, "x", repoID}, files...)...)
		// clearEnv set the HF_* variables to "": huggingface_hub reads an empty HF_HUB_ETAG_TIMEOUT as
		// int("") and fails to import (constants.py), so empty ones are left out of Python's environment.
		var env []string
		for _, kv := range os.Environ() {
			if k, v, _ := strings.Cut(kv, "="); v != "" || !(strings.HasPrefix(k, "HF_") || strings.HasPrefix(k, "HUGGING") || k == "TRANSFORMERS_OFFLINE" || k == "XDG_CACHE_HOME") {
				env = append(env, kv)
			}
		}
		cmd.Env = append(env, "HF_HOME="+home, "HF_ENDPOINT="+srv.URL, "HF_HUB_DISABLE_TELEMETRY=1", "HF_HUB_DISABLE_XET=1")
		if offline {
			cmd.Env = append(cmd.Env, "HF_HUB_OFFLINE=1")
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("python (offline %v): %v\n%s", offline, err, stderr.String())
		}
		res := map[string][2]string{}
		if err := json.Unmarshal(out, &res); err != nil {
			t.Fatalf("python printed %q: %v", out, err)
		}
		return res
	}
	check := func(who string, snap string, res map[string][2]string) {
		t.Helper()
		for _, f := range modelFiles {
			want := filepath.Join(snap, f)
			if res[f][0] != want {
				t.Errorf("%s: %s at %q, want %q", who, f, res[f][0], want)
			}
			if res[f][1] != hex.EncodeToString(repo.Files[f].Data) {
				t.Errorf("%s: %s content differs", who, f)
			}
		}
	}

	// Python writes, Go reads offline; the layouts agree.
	pyHome := t.TempDir()
	res := runPy(pyHome, false, modelFiles)
	pySnap := filepath.Join(pyHome, "hub", "models--test-only--tiny", "snapshots", repo.Commit)
	check("python online", pySnap, res)
	if d := diffListings(expectedCache(repo, "models--test-only--tiny", modelFiles), cacheListing(t, filepath.Join(pyHome, "hub"))); d != "" {
		t.Errorf("the cache Python wrote differs from what this package writes:\n%s", d)
	}
	t.Setenv("HF_HOME", pyHome)
	t.Setenv("HF_HUB_OFFLINE", "1")
	c, _ := New()
	if snap, err := c.DownloadModel(context.Background(), repoID, ""); err != nil || snap != pySnap {
		t.Errorf("Go reading Python's cache offline: %s, %v", snap, err)
	}

	// Go writes, Python reads offline.
	goHome := t.TempDir()
	t.Setenv("HF_HOME", goHome)
	t.Setenv("HF_HUB_OFFLINE", "")
	t.Setenv("HF_ENDPOINT", srv.URL)
	c, _ = New()
	goSnap, err := c.DownloadModel(context.Background(), repoID, "")
	if err != nil {
		t.Fatal(err)
	}
	before := len(srv.Requests())
	check("python offline on Go's cache", goSnap, runPy(goHome, true, modelFiles))
	if n := len(srv.Requests()) - before; n != 0 {
		t.Errorf("Python made %d requests offline", n)
	}
	t.Logf("python and Go share caches both ways (%s)", strings.Join(modelFiles, ", "))
}
