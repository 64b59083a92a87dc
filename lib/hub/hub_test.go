package hub

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gonb-gpt/tutorial/lib/hub/hubtest"
	"github.com/gonb-gpt/tutorial/lib/internal/sharedtest"
)

const repoID = "test-only/tiny-gpt2"

func startHub(t *testing.T, faults hubtest.Faults) (*hubtest.Server, *hubtest.Repo) {
	t.Helper()
	repo, err := hubtest.LoadRepo(sharedtest.Path(t, "fixtures", "tiny-gpt2"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := hubtest.Start(map[string]*hubtest.Repo{repoID: repo}, faults)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv, repo
}

// client makes a client for a fresh HF_HOME pointing at the fake hub.
func client(t *testing.T, srv *hubtest.Server) (*Client, string) {
	t.Helper()
	home := t.TempDir()
	t.Setenv("HF_HOME", home)
	t.Setenv("HF_HUB_CACHE", "")
	t.Setenv("HUGGINGFACE_HUB_CACHE", "")
	t.Setenv("HF_ENDPOINT", srv.URL)
	t.Setenv("HF_HUB_OFFLINE", "")
	t.Setenv("HF_TOKEN", "")
	c := New()
	c.Backoff = time.Millisecond
	return c, home
}

func countGETs(reqs []hubtest.Request) int {
	n := 0
	for _, r := range reqs {
		if r.Method == "GET" {
			n++
		}
	}
	return n
}

func TestDownloadLayoutAndCache(t *testing.T) {
	srv, repo := startHub(t, hubtest.Faults{})
	c, home := client(t, srv)
	snap, err := c.DownloadModel(context.Background(), repoID, "")
	if err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(home, "hub", "models--test-only--tiny-gpt2")
	if snap != filepath.Join(base, "snapshots", repo.Commit) {
		t.Errorf("snapshot %s", snap)
	}
	if ref, _ := os.ReadFile(filepath.Join(base, "refs", "main")); string(ref) != repo.Commit {
		t.Errorf("refs/main = %q", ref)
	}
	for _, f := range []string{"config.json", "model.safetensors", "generation_config.json"} {
		p := filepath.Join(snap, f)
		target, err := os.Readlink(p)
		if err != nil || !strings.HasPrefix(target, "../../blobs/") {
			t.Errorf("%s: link %q (%v), want ../../blobs/…", f, target, err)
		}
		data, err := os.ReadFile(p)
		if err != nil || string(data) != string(repo.Files[f].Data) {
			t.Errorf("%s: content differs", f)
		}
	}
	if _, err := os.Stat(filepath.Join(snap, "pytorch_model.bin")); err == nil {
		t.Error("pytorch_model.bin downloaded although model.safetensors is there")
	}
	entries, _ := os.ReadDir(filepath.Join(base, "blobs"))
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".incomplete") {
			t.Errorf("left %s", e.Name())
		}
	}
	// A second run makes no GET.
	before := countGETs(srv.Requests())
	again, err := c.DownloadModel(context.Background(), repoID, "")
	if err != nil || again != snap {
		t.Fatalf("second run: %s, %v", again, err)
	}
	if n := countGETs(srv.Requests()) - before; n != 0 {
		t.Errorf("the second run made %d GET requests", n)
	}
	// Offline, with the server stopped: from the cache.
	srv.Close()
	t.Setenv("HF_HUB_OFFLINE", "1")
	off := New()
	if got, err := off.DownloadModel(context.Background(), repoID, "main"); err != nil || got != snap {
		t.Errorf("offline: %s, %v", got, err)
	}
	if _, err := off.DownloadModel(context.Background(), "test-only/other", "main"); !errors.Is(err, ErrOffline) {
		t.Errorf("offline, not cached: %v", err)
	}
}

func TestResumeAfterCut(t *testing.T) {
	srv, repo := startHub(t, hubtest.Faults{CutAfter: map[string]int{"model.safetensors": 100000}})
	c, _ := client(t, srv)
	snap, err := c.DownloadModel(context.Background(), repoID, "")
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(filepath.Join(snap, "model.safetensors"))
	if string(data) != string(repo.Files["model.safetensors"].Data) {
		t.Error("resumed file differs")
	}
	resumed := false
	for _, r := range srv.Requests() {
		if strings.HasPrefix(r.Path, "/lfs/") && r.Range == "bytes=100000-" {
			resumed = true
		}
	}
	if !resumed {
		t.Errorf("no request resumed from byte 100000: %v", srv.Requests())
	}
}

func TestChecksumMismatchLeavesNothing(t *testing.T) {
	srv, _ := startHub(t, hubtest.Faults{Corrupt: map[string]bool{"model.safetensors": true}})
	c, home := client(t, srv)
	_, err := c.DownloadModel(context.Background(), repoID, "")
	if !errors.Is(err, ErrChecksum) || !strings.Contains(err.Error(), "discarded") {
		t.Fatalf("err = %v", err)
	}
	matches, _ := filepath.Glob(filepath.Join(home, "hub", "models--test-only--tiny-gpt2", "snapshots", "*", "model.safetensors"))
	blobs, _ := filepath.Glob(filepath.Join(home, "hub", "models--test-only--tiny-gpt2", "blobs", "*.incomplete"))
	if len(matches) != 0 || len(blobs) != 0 {
		t.Errorf("left behind: %v %v", matches, blobs)
	}
}

func TestRetries500(t *testing.T) {
	srv, _ := startHub(t, hubtest.Faults{Fail500: map[string]int{"api": 1, "config.json": 1}})
	c, _ := client(t, srv)
	if _, err := c.DownloadModel(context.Background(), repoID, ""); err != nil {
		t.Fatal(err)
	}
}

func TestErrors(t *testing.T) {
	const token = "hf_SECRETtoken123"
	srv, _ := startHub(t, hubtest.Faults{RequireToken: "another"})
	c, _ := client(t, srv)
	c.SetToken(token)
	_, err := c.DownloadModel(context.Background(), repoID, "")
	if !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), "HF_TOKEN") {
		t.Errorf("401: %v", err)
	}
	if strings.Contains(err.Error(), token) {
		t.Error("the token appears in the error")
	}
	srv.SetFaults(hubtest.Faults{})
	_, err = c.DownloadModel(context.Background(), "test-only/missing", "")
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "test-only/missing") {
		t.Errorf("404 repo: %v", err)
	}
	_, err = c.Download(context.Background(), repoID, "", []string{"nosuch.json"})
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "nosuch.json") {
		t.Errorf("404 file: %v", err)
	}
	// The token went out as a bearer header, nowhere else.
	for _, r := range srv.Requests() {
		if strings.Contains(r.Path, token) {
			t.Error("the token appears in a URL")
		}
	}
}

func TestModelFiles(t *testing.T) {
	got := ModelFiles([]string{"README.md", "config.json", "pytorch_model.bin", "vocab.json", "merges.txt", "model-00002-of-00002.safetensors",
		"model.safetensors.index.json", "model-00001-of-00002.safetensors", "flax_model.msgpack"})
	want := "config.json vocab.json merges.txt model.safetensors.index.json model-00001-of-00002.safetensors model-00002-of-00002.safetensors"
	if strings.Join(got, " ") != want {
		t.Errorf("ModelFiles = %v", got)
	}
}
