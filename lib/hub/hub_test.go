package hub

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gonb-gpt/tutorial/lib/hub/hubtest"
)

// The tests run against lib/hub/hubtest, a replica of huggingface.co as it answers today (see its
// package comment for the traces and client fixes each behaviour comes from). They need no
// ../shared: the repository is made here.

const repoID = "test-only/tiny"

// testRepo is a small model repository: git files, LFS weights and a file in a folder.
func testRepo(t testing.TB) *hubtest.Repo {
	t.Helper()
	weights := make([]byte, 300_000)
	if _, err := rand.Read(weights); err != nil {
		t.Fatal(err)
	}
	onnx := make([]byte, 5000)
	_, _ = rand.Read(onnx)
	files := map[string]*hubtest.File{
		"config.json":            {Data: []byte(`{"model_type": "gpt2", "n_layer": 2}` + "\n")},
		"generation_config.json": {Data: []byte(`{"bos_token_id": 0}` + "\n")},
		"vocab.json":             {Data: []byte(`{"a": 0, "b": 1}`)},
		"merges.txt":             {Data: []byte("#version: 0.2\na b\n")},
		"README.md":              {Data: []byte("# tiny\n")},
		"model.safetensors":      {Data: weights, LFS: true},
		"onnx/decoder.onnx":      {Data: onnx, LFS: true},
	}
	return &hubtest.Repo{Files: files, Commit: hubtest.CommitOf(files)}
}

func startHub(t *testing.T, repo *hubtest.Repo, faults hubtest.Faults) *hubtest.Server {
	t.Helper()
	srv, err := hubtest.Start(map[string]*hubtest.Repo{repoID: repo}, faults)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// clearEnv empties every variable the client reads.
func clearEnv(t *testing.T) {
	for _, v := range []string{"HF_HOME", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "XDG_CACHE_HOME", "HF_ENDPOINT",
		"HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH",
		"HF_HUB_DISABLE_IMPLICIT_TOKEN", "HF_HUB_DISABLE_SYMLINKS", "HF_HUB_ETAG_TIMEOUT", "HF_HUB_DOWNLOAD_TIMEOUT"} {
		t.Setenv(v, "")
	}
}

// client makes a client for a fresh HF_HOME pointing at the replica.
func client(t *testing.T, srv *hubtest.Server) (*Client, string) {
	t.Helper()
	clearEnv(t)
	home := t.TempDir()
	t.Setenv("HF_HOME", home)
	t.Setenv("HF_ENDPOINT", srv.URL)
	c, err := New()
	if err != nil {
		t.Fatal(err)
	}
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

var modelFiles = []string{"config.json", "generation_config.json", "merges.txt", "model.safetensors", "vocab.json"}

// expectedCache is what huggingface_hub's hf_hub_download leaves for these files of repo under
// the cache folder: the blobs named by ETag (git blob SHA-1 of small files, sha256 of LFS files),
// relative links snapshots/{commit}/{file} → ../../blobs/{etag}, refs/main holding the commit with
// no newline, and one lock file per blob under .locks/. Each entry: path → "blob:<size>",
// "link:<target>", "ref:<content>" or "lock".
func expectedCache(repo *hubtest.Repo, folder string, files []string) map[string]string {
	want := map[string]string{
		filepath.Join(folder, "refs", "main"): "ref:" + repo.Commit,
		"CACHEDIR.TAG":                        fmt.Sprintf("blob:%d", len(cacheDirTag)),
	}
	for _, f := range files {
		data := repo.Files[f].Data
		etag := hubtest.GitBlobSHA(data)
		if repo.Files[f].LFS {
			etag = hubtest.SHA256(data)
		}
		want[filepath.Join(folder, "blobs", etag)] = fmt.Sprintf("blob:%d", len(data))
		up := strings.Repeat("../", 2+strings.Count(f, "/"))
		want[filepath.Join(folder, "snapshots", repo.Commit, f)] = "link:" + up + "blobs/" + etag
		want[filepath.Join(".locks", folder, etag+".lock")] = "lock"
	}
	return want
}

// cacheListing describes every file under the cache as expectedCache does.
func cacheListing(t *testing.T, cache string) map[string]string {
	t.Helper()
	got := map[string]string{}
	err := filepath.WalkDir(cache, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(cache, p)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			got[rel] = "link:" + target
		case strings.HasPrefix(rel, ".locks"+string(filepath.Separator)):
			got[rel] = "lock"
		case strings.Contains(rel, string(filepath.Separator)+"refs"+string(filepath.Separator)):
			data, _ := os.ReadFile(p)
			got[rel] = "ref:" + string(data)
		default:
			st, _ := d.Info()
			got[rel] = fmt.Sprintf("blob:%d", st.Size())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func diffListings(want, got map[string]string) string {
	var out []string
	for k, v := range want {
		if got[k] != v {
			out = append(out, fmt.Sprintf("  %s: got %q, want %q", k, got[k], v))
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok {
			out = append(out, fmt.Sprintf("  %s: unexpected %q", k, v))
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// A fresh download through the replica: small files through the relative 307 to
// /api/resolve-cache, weights through the 302 to the storage host — which refuses requests that
// carry the token, so the download fails if the token leaks there — and a cache laid out exactly as
// huggingface_hub's.
func TestDownloadAsTheRealHubAnswers(t *testing.T) {
	repo := testRepo(t)
	srv := startHub(t, repo, hubtest.Faults{})
	c, home := client(t, srv)
	c.SetToken("hf_testtoken")
	snap, err := c.DownloadModel(context.Background(), repoID, "")
	if err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(home, "hub")
	if snap != filepath.Join(cache, "models--test-only--tiny", "snapshots", repo.Commit) {
		t.Errorf("snapshot %s", snap)
	}
	if d := diffListings(expectedCache(repo, "models--test-only--tiny", modelFiles), cacheListing(t, cache)); d != "" {
		t.Errorf("cache layout differs from huggingface_hub's:\n%s", d)
	}
	for _, f := range modelFiles {
		if data, err := os.ReadFile(filepath.Join(snap, f)); err != nil || !bytes.Equal(data, repo.Files[f].Data) {
			t.Errorf("%s: content differs (%v)", f, err)
		}
	}
	var resolveCache, storage int
	for _, r := range srv.Requests() {
		switch {
		case r.Host == "storage":
			storage++
			if r.Auth {
				t.Errorf("the token went to the storage host: %+v", r)
			}
		case !r.Auth:
			t.Errorf("a hub request without the token: %+v", r)
		case strings.HasPrefix(r.Path, "/api/resolve-cache/"):
			resolveCache++
		}
	}
	if resolveCache == 0 || storage == 0 {
		t.Errorf("resolve-cache requests %d, storage requests %d: the replica's redirects were not taken", resolveCache, storage)
	}
	// The metadata of a small file: its size is the file's, not the 307's Content-Length.
	meta, err := c.head(context.Background(), repoID, "main", "config.json", 0)
	if err != nil || meta.size != int64(len(repo.Files["config.json"].Data)) || meta.etag != hubtest.GitBlobSHA(repo.Files["config.json"].Data) {
		t.Errorf("config.json metadata %+v, %v", meta, err)
	}
	// A second run makes one HEAD and no GET.
	before := len(srv.Requests())
	again, err := c.DownloadModel(context.Background(), repoID, "")
	if err != nil || again != snap {
		t.Fatalf("second run: %s, %v", again, err)
	}
	if reqs := srv.Requests()[before:]; len(reqs) != 2 || countGETs(reqs) != 0 { // the HEAD and its 307
		t.Errorf("the second run made %v", reqs)
	}
	// Offline: from the cache; a model that is not cached is ErrOffline.
	srv.Close()
	t.Setenv("HF_HUB_OFFLINE", "1")
	off, _ := New()
	if got, err := off.DownloadModel(context.Background(), repoID, "main"); err != nil || got != snap {
		t.Errorf("offline: %s, %v", got, err)
	}
	if _, err := off.DownloadModel(context.Background(), "test-only/other", "main"); !errors.Is(err, ErrOffline) {
		t.Errorf("offline, not cached: %v", err)
	}
}

// A mirror whose resolve URL answers an absolute redirect to another host without X-Linked-Size:
// its Content-Length is the redirect body's and is not the file's size (huggingface_hub PR 4699,
// hf-hub PR 191); the size stays unknown and the download is checked by its ETag alone.
func TestRedirectContentLengthIsNotTheSize(t *testing.T) {
	data := []byte(`{"model_type": "gpt2", "n_embd": 64, "n_layer": 2, "vocab_size": 1000}` + "\n")
	etag := hubtest.GitBlobSHA(data)
	storage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "config.json", time.Time{}, bytes.NewReader(data))
	}))
	defer storage.Close()
	const commit = "0123456789abcdef0123456789abcdef01234567"
	mirror := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := "Found. Redirecting to " + storage.URL + "/blob"
		w.Header().Set("Location", storage.URL+"/blob")
		w.Header().Set("X-Repo-Commit", commit)
		w.Header().Set("X-Linked-Etag", `"`+etag+`"`)
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		w.WriteHeader(http.StatusFound)
		_, _ = w.Write([]byte(body))
	}))
	defer mirror.Close()
	clearEnv(t)
	t.Setenv("HF_HOME", t.TempDir())
	t.Setenv("HF_ENDPOINT", mirror.URL)
	c, _ := New()
	snap, err := c.Download(context.Background(), repoID, "main", []string{"config.json"})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(snap, "config.json")); !bytes.Equal(got, data) {
		t.Errorf("content %q", got)
	}
}

// A renamed repository answers a relative 307 to its new name, for the API and for files; the
// cache keeps the name that was asked for, as huggingface_hub's does.
func TestRenamedRepo(t *testing.T) {
	repo := testRepo(t)
	srv := startHub(t, repo, hubtest.Faults{})
	srv.Rename("old-org/tiny-old", repoID)
	c, home := client(t, srv)
	snap, err := c.DownloadModel(context.Background(), "old-org/tiny-old", "")
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(home, "hub", "models--old-org--tiny-old", "snapshots", repo.Commit); snap != want {
		t.Errorf("snapshot %s, want %s", snap, want)
	}
	if d := diffListings(expectedCache(repo, "models--old-org--tiny-old", modelFiles), cacheListing(t, filepath.Join(home, "hub"))); d != "" {
		t.Errorf("cache layout:\n%s", d)
	}
}

func TestResumeAfterCut(t *testing.T) {
	repo := testRepo(t)
	srv := startHub(t, repo, hubtest.Faults{CutAfter: map[string]int{"model.safetensors": 100000}})
	c, _ := client(t, srv)
	snap, err := c.DownloadModel(context.Background(), repoID, "")
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(filepath.Join(snap, "model.safetensors"))
	if !bytes.Equal(data, repo.Files["model.safetensors"].Data) {
		t.Error("resumed file differs")
	}
	resumed := false
	for _, r := range srv.Requests() {
		if r.Host == "storage" && r.Range == "bytes=100000-" {
			resumed = true
		}
	}
	if !resumed {
		t.Errorf("no request resumed from byte 100000: %v", srv.Requests())
	}
}

// A long download over a flaky link: cut six times, with two retries allowed, it completes
// because every attempt brought bytes (the budget starts over).
func TestRetryBudgetResetsWhenBytesArrive(t *testing.T) {
	repo := testRepo(t)
	srv := startHub(t, repo, hubtest.Faults{CutAfter: map[string]int{"model.safetensors": 40000}, CutRepeat: 6})
	c, _ := client(t, srv)
	c.Retries = 2
	snap, err := c.DownloadModel(context.Background(), repoID, "")
	if err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(filepath.Join(snap, "model.safetensors")); !bytes.Equal(data, repo.Files["model.safetensors"].Data) {
		t.Error("file differs")
	}
	// Without progress the budget holds: six 500s with two retries fail.
	srv2 := startHub(t, repo, hubtest.Faults{Fail500: map[string]int{"config.json": 6}})
	c2, _ := client(t, srv2)
	c2.Retries = 2
	if _, err := c2.DownloadModel(context.Background(), repoID, ""); err == nil || !strings.Contains(err.Error(), "500") {
		t.Errorf("six 500s: %v", err)
	}
}

// A download whose connection stops sending is abandoned after HF_HUB_DOWNLOAD_TIMEOUT and resumed.
func TestStalledReadTimesOut(t *testing.T) {
	repo := testRepo(t)
	srv := startHub(t, repo, hubtest.Faults{Stall: map[string]time.Duration{"model.safetensors": time.Minute}})
	c, _ := client(t, srv)
	t.Setenv("HF_HUB_DOWNLOAD_TIMEOUT", "0.3")
	c2, err := New()
	if err != nil {
		t.Fatal(err)
	}
	if c2.DownloadTimeout != 300*time.Millisecond {
		t.Fatalf("HF_HUB_DOWNLOAD_TIMEOUT=0.3 gave %s", c2.DownloadTimeout)
	}
	c.DownloadTimeout = c2.DownloadTimeout
	start := time.Now()
	snap, err := c.DownloadModel(context.Background(), repoID, "")
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %s", d)
	}
	if data, _ := os.ReadFile(filepath.Join(snap, "model.safetensors")); !bytes.Equal(data, repo.Files["model.safetensors"].Data) {
		t.Error("file differs")
	}
}

func TestChecksumMismatchLeavesNothing(t *testing.T) {
	repo := testRepo(t)
	srv := startHub(t, repo, hubtest.Faults{Corrupt: map[string]bool{"model.safetensors": true}})
	c, home := client(t, srv)
	_, err := c.DownloadModel(context.Background(), repoID, "")
	if !errors.Is(err, ErrChecksum) || !strings.Contains(err.Error(), "discarded") {
		t.Fatalf("err = %v", err)
	}
	matches, _ := filepath.Glob(filepath.Join(home, "hub", "models--test-only--tiny", "snapshots", "*", "model.safetensors"))
	blobs, _ := filepath.Glob(filepath.Join(home, "hub", "models--test-only--tiny", "blobs", "*.incomplete"))
	if len(matches) != 0 || len(blobs) != 0 {
		t.Errorf("left behind: %v %v", matches, blobs)
	}
}

// 429s are waited out as the RateLimit header says, with a note and a countdown; a wait longer
// than the client accepts fails at once, saying how long the hub asked for.
func TestRateLimit(t *testing.T) {
	repo := testRepo(t)
	srv := startHub(t, repo, hubtest.Faults{RateLimit: map[string]int{"api": 1, "config.json": 1}, RateLimitReset: 1})
	c, _ := client(t, srv)
	var out bytes.Buffer
	c.Progress = &out
	start := time.Now()
	if _, err := c.DownloadModel(context.Background(), repoID, ""); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 4*time.Second {
		t.Errorf("two 429s with t=1 waited only %s in all (want 2 s each)", d)
	}
	if s := out.String(); !strings.Contains(s, `"resolvers"`) || !strings.Contains(s, `"api"`) || !strings.Contains(s, "waiting 2s") {
		t.Errorf("progress output %q", s)
	}
	srv.SetFaults(hubtest.Faults{RateLimit: map[string]int{"api": 1}, RateLimitReset: 200})
	c2, _ := client(t, srv)
	c2.MaxRateLimitWait = time.Second
	start = time.Now()
	_, err := c2.DownloadModel(context.Background(), repoID, "")
	if !errors.Is(err, ErrRateLimited) || !strings.Contains(err.Error(), "3m21s") || time.Since(start) > 5*time.Second {
		t.Errorf("long rate limit: %v after %s", err, time.Since(start))
	}
}

func TestErrors(t *testing.T) {
	const token = "hf_SECRETtoken123"
	repo := testRepo(t)
	gated := testRepo(t)
	gated.Gated, gated.Tokens = true, []string{"hf_granted"}
	srv, err := hubtest.Start(map[string]*hubtest.Repo{repoID: repo, "test-only/gated": gated}, hubtest.Faults{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c, _ := client(t, srv)
	ctx := context.Background()

	// A missing repository asked anonymously: 401 RepoNotFound — not "gated".
	_, err = c.DownloadModel(ctx, "test-only/missing", "")
	if !errors.Is(err, ErrRepoNotFound) || !errors.Is(err, ErrNotFound) || errors.Is(err, ErrGated) || !strings.Contains(err.Error(), "test-only/missing") {
		t.Errorf("missing repo, anonymous: %v", err)
	}
	_, err = c.Download(ctx, "test-only/missing", "", []string{"config.json"})
	if !errors.Is(err, ErrRepoNotFound) || !strings.Contains(err.Error(), "401") {
		t.Errorf("missing repo, file: %v", err)
	}
	// A gated repository: 401 anonymously, 403 with a token without access, with the hub's message.
	_, err = c.Download(ctx, "test-only/gated", "", []string{"config.json"})
	if !errors.Is(err, ErrGated) || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "Please log in") {
		t.Errorf("gated, anonymous: %v", err)
	}
	c.SetToken(token)
	_, err = c.DownloadModel(ctx, "test-only/gated", "")
	if !errors.Is(err, ErrGated) || !strings.Contains(err.Error(), "403") || !strings.Contains(err.Error(), "not in the authorized list") {
		t.Errorf("gated, no access: %v", err)
	}
	if strings.Contains(err.Error(), token) {
		t.Error("the token appears in the error")
	}
	c.SetToken(" hf_granted\n")
	if _, err := c.DownloadModel(ctx, "test-only/gated", ""); err != nil {
		t.Errorf("gated, granted: %v", err)
	}
	// A bad revision, a missing file.
	_, err = c.DownloadModel(ctx, repoID, "no-such-branch")
	if !errors.Is(err, ErrRevisionNotFound) || !strings.Contains(err.Error(), "no-such-branch") {
		t.Errorf("bad revision: %v", err)
	}
	_, err = c.Download(ctx, repoID, "", []string{"nosuch.json"})
	if !errors.Is(err, ErrEntryNotFound) || !strings.Contains(err.Error(), "nosuch.json") {
		t.Errorf("missing file: %v", err)
	}
	for _, r := range srv.Requests() {
		if strings.Contains(r.Path, token) {
			t.Error("the token appears in a URL")
		}
	}
	// What other hub versions and mirrors answer: 401 without an error code (a missing or private
	// repository), and 401 for a token the hub does not know.
	for _, tc := range []struct {
		msg  string
		want error
	}{{"Invalid username or password.", ErrRepoNotFound}, {"Invalid credentials in Authorization header", ErrInvalidToken}} {
		bare := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Error-Message", tc.msg)
			http.Error(w, tc.msg, http.StatusUnauthorized)
		}))
		c.Endpoint = bare.URL
		_, err := c.Download(ctx, repoID, "", []string{"config.json"})
		if !errors.Is(err, tc.want) {
			t.Errorf("401 %q: %v", tc.msg, err)
		}
		bare.Close()
	}
}

// With the model cached, an unreachable hub or one that fails answers from the cache at once; only
// RevisionNotFound and EntryNotFound are not covered up.
func TestCacheWhenTheHubFails(t *testing.T) {
	repo := testRepo(t)
	srv := startHub(t, repo, hubtest.Faults{})
	c, _ := client(t, srv)
	ctx := context.Background()
	snap, err := c.DownloadModel(ctx, repoID, "")
	if err != nil {
		t.Fatal(err)
	}
	// The hub fails: 500 for everything, then a 403.
	srv.SetFaults(hubtest.Faults{Fail500: map[string]int{"config.json": 100, "api": 100}})
	if got, err := c.Download(ctx, repoID, "main", []string{"config.json"}); err != nil || got != snap {
		t.Errorf("single file, hub failing: %s, %v", got, err)
	}
	if got, err := c.DownloadModel(ctx, repoID, ""); err != nil || got != snap {
		t.Errorf("model, hub failing: %s, %v", got, err)
	}
	srv.SetFaults(hubtest.Faults{})
	delete(repo.Files, "config.json") // EntryNotFound now
	if _, err := c.Download(ctx, repoID, "main", []string{"config.json"}); !errors.Is(err, ErrEntryNotFound) {
		t.Errorf("EntryNotFound was covered up by the cache: %v", err)
	}
	// Unreachable: the port is closed. Default timeouts; within a second.
	srv.Close()
	for name, call := range map[string]func() (string, error){
		"model":       func() (string, error) { return c.DownloadModel(ctx, repoID, "") },
		"single file": func() (string, error) { return c.Download(ctx, repoID, "", []string{"model.safetensors"}) },
		"--include":   func() (string, error) { return c.DownloadMatching(ctx, repoID, "", []string{"*.json"}) },
	} {
		start := time.Now()
		got, err := call()
		if err != nil || got != snap {
			t.Errorf("%s, hub unreachable: %s, %v", name, got, err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("%s, hub unreachable: answered after %s", name, d)
		}
		t.Logf("%s, hub unreachable: answered from the cache in %s", name, time.Since(start))
	}
}

// Two and six processes download one model into one empty cache at once: all succeed, the cache is
// huggingface_hub's layout and nothing else (no .incomplete, no temporary link or ref).
func TestConcurrentProcesses(t *testing.T) {
	repo := testRepo(t)
	srv := startHub(t, repo, hubtest.Faults{Latency: 5 * time.Millisecond})
	clearEnv(t)
	for _, n := range []int{2, 6} {
		for round := range 3 {
			home := t.TempDir()
			cmds := make([]*exec.Cmd, n)
			outs := make([]*bytes.Buffer, n)
			for i := range cmds {
				cmd := exec.Command(os.Args[0], "-test.run=^$")
				cmd.Env = append(os.Environ(), childEnv+"=1", "HF_HOME="+home, "HF_ENDPOINT="+srv.URL)
				outs[i] = &bytes.Buffer{}
				cmd.Stdout, cmd.Stderr = outs[i], outs[i]
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				cmds[i] = cmd
			}
			failed := 0
			for i, cmd := range cmds {
				if err := cmd.Wait(); err != nil {
					failed++
					t.Errorf("%d processes, round %d, process %d: %v: %s", n, round, i, err, outs[i])
				}
			}
			cache := filepath.Join(home, "hub")
			if d := diffListings(expectedCache(repo, "models--test-only--tiny", modelFiles), cacheListing(t, cache)); d != "" {
				t.Errorf("%d processes, round %d: cache:\n%s", n, round, d)
			}
			t.Logf("%d processes, round %d: %d of %d succeeded", n, round, n-failed, n)
		}
	}
}

const childEnv = "GPT_HUB_TEST_CHILD"

// TestMain runs a download as a child process for TestConcurrentProcesses.
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		c, err := New()
		if err == nil {
			_, err = c.DownloadModel(context.Background(), repoID, "")
		}
		if err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// Goroutines of one process share the locks too.
func TestConcurrentClients(t *testing.T) {
	repo := testRepo(t)
	srv := startHub(t, repo, hubtest.Faults{Latency: 5 * time.Millisecond})
	_, home := client(t, srv)
	errs := make(chan error, 6)
	for range 6 {
		go func() {
			c, err := New()
			if err == nil {
				_, err = c.DownloadModel(context.Background(), repoID, "")
			}
			errs <- err
		}()
	}
	for range 6 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if d := diffListings(expectedCache(repo, "models--test-only--tiny", modelFiles), cacheListing(t, filepath.Join(home, "hub"))); d != "" {
		t.Errorf("cache:\n%s", d)
	}
}

func TestEnvironment(t *testing.T) {
	clearEnv(t)
	home, err := os.UserHomeDir()
	if err != nil {
		t.Skip("no home folder")
	}
	t.Setenv("HF_HOME", "~/hf-home")
	t.Setenv("MY_CACHE", "/data/shared")
	t.Setenv("HF_HUB_CACHE", "$MY_CACHE/hub-${MY_CACHE_SUFFIX}")
	t.Setenv("HF_TOKEN", "  hf_abc\r\n")
	t.Setenv("TRANSFORMERS_OFFLINE", "1")
	c, err := New()
	if err != nil {
		t.Fatal(err)
	}
	if want := "/data/shared/hub-${MY_CACHE_SUFFIX}"; c.CacheDir != want {
		t.Errorf("HF_HUB_CACHE → %q, want %q", c.CacheDir, want)
	}
	if c.token != "hf_abc" || !c.Offline {
		t.Errorf("token %q, offline %v", c.token, c.Offline)
	}
	t.Setenv("HF_HUB_CACHE", "")
	t.Setenv("HF_HUB_OFFLINE", "0") // HF_HUB_OFFLINE, when set, wins over TRANSFORMERS_OFFLINE
	c, _ = New()
	if want := filepath.Join(home, "hf-home", "hub"); c.CacheDir != want || c.Offline {
		t.Errorf("HF_HOME=~/hf-home → %q (want %q), offline %v", c.CacheDir, want, c.Offline)
	}
	// The token file: $HF_HOME/token, or HF_TOKEN_PATH.
	dir := t.TempDir()
	t.Setenv("HF_HOME", dir)
	t.Setenv("HF_TOKEN", "")
	_ = os.WriteFile(filepath.Join(dir, "token"), []byte("hf_fromfile\n"), 0o600)
	_ = os.WriteFile(filepath.Join(dir, "other"), []byte("hf_fromtokenpath"), 0o600)
	if c, _ = New(); c.token != "hf_fromfile" {
		t.Errorf("token file: %q", c.token)
	}
	t.Setenv("HF_TOKEN_PATH", filepath.Join(dir, "other"))
	if c, _ = New(); c.token != "hf_fromtokenpath" {
		t.Errorf("HF_TOKEN_PATH: %q", c.token)
	}
	t.Setenv("HF_TOKEN", "hf_env")
	t.Setenv("HF_HUB_DISABLE_IMPLICIT_TOKEN", "1")
	if c, _ = New(); c.token != "" {
		t.Errorf("HF_HUB_DISABLE_IMPLICIT_TOKEN: token %q is sent", c.token)
	}
	t.Setenv("HF_HUB_DISABLE_SYMLINKS", "true")
	if c, _ = New(); !c.NoSymlinks {
		t.Error("HF_HUB_DISABLE_SYMLINKS ignored")
	}
	for _, v := range []string{"HF_HUB_ETAG_TIMEOUT", "HF_HUB_DOWNLOAD_TIMEOUT"} {
		t.Setenv(v, "ten")
		if _, err := New(); err == nil || !strings.Contains(err.Error(), v) {
			t.Errorf("%s=ten: %v", v, err)
		}
		t.Setenv(v, "2.5")
		if _, err := New(); err != nil {
			t.Errorf("%s=2.5: %v", v, err)
		}
	}
}

// Without symbolic links (HF_HUB_DISABLE_SYMLINKS, or exFAT/SMB/Windows), snapshots hold the files
// themselves: a new blob is moved there, as huggingface_hub does; reruns and offline use them.
func TestNoSymlinks(t *testing.T) {
	repo := testRepo(t)
	srv := startHub(t, repo, hubtest.Faults{})
	c, home := client(t, srv)
	c.NoSymlinks = true
	snap, err := c.DownloadModel(context.Background(), repoID, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range modelFiles {
		st, err := os.Lstat(filepath.Join(snap, f))
		if err != nil || !st.Mode().IsRegular() {
			t.Errorf("%s: %v, %v: want a regular file", f, st, err)
			continue
		}
		if data, _ := os.ReadFile(filepath.Join(snap, f)); !bytes.Equal(data, repo.Files[f].Data) {
			t.Errorf("%s: content differs", f)
		}
	}
	if blobs, _ := os.ReadDir(filepath.Join(home, "hub", "models--test-only--tiny", "blobs")); len(blobs) != 0 {
		t.Errorf("blobs left: %v", blobs)
	}
	before := countGETs(srv.Requests())
	if _, err := c.DownloadModel(context.Background(), repoID, ""); err != nil {
		t.Fatal(err)
	}
	if n := countGETs(srv.Requests()) - before; n != 0 {
		t.Errorf("the second run made %d GETs", n)
	}
	c.Offline = true
	if got, err := c.DownloadModel(context.Background(), repoID, ""); err != nil || got != snap {
		t.Errorf("offline: %s %v", got, err)
	}
}

// A cache that is already right is not rewritten (read-only and group-shared caches): the second
// download changes no link and no ref.
func TestCacheNotRewritten(t *testing.T) {
	repo := testRepo(t)
	srv := startHub(t, repo, hubtest.Faults{})
	c, home := client(t, srv)
	ctx := context.Background()
	if _, err := c.DownloadModel(ctx, repoID, ""); err != nil {
		t.Fatal(err)
	}
	stamp := func() map[string]string {
		out := map[string]string{}
		_ = filepath.WalkDir(filepath.Join(home, "hub"), func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				st, _ := os.Lstat(p)
				out[p] = fmt.Sprintf("%v %v", st.ModTime().UnixNano(), inode(st))
			}
			return nil
		})
		return out
	}
	before := stamp()
	time.Sleep(20 * time.Millisecond)
	if _, err := c.DownloadModel(ctx, repoID, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Download(ctx, repoID, "main", []string{"config.json", "model.safetensors"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DownloadMatching(ctx, repoID, "main", []string{"*.json"}); err != nil {
		t.Fatal(err)
	}
	if after := stamp(); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("the cache was rewritten:\nbefore %v\nafter  %v", before, after)
	}
}

func TestDownloadMatching(t *testing.T) {
	repo := testRepo(t)
	srv := startHub(t, repo, hubtest.Faults{})
	c, _ := client(t, srv)
	ctx := context.Background()
	snap, err := c.DownloadMatching(ctx, repoID, "", []string{"*.onnx", "*.md"})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(listFiles(snap), " "); got != "README.md onnx/decoder.onnx" {
		t.Errorf("--include '*.onnx' '*.md' downloaded %q (fnmatch's * crosses /)", got)
	}
	if _, err := c.DownloadMatching(ctx, repoID, "", []string{"*.gguf"}); err == nil || !strings.Contains(err.Error(), "*.gguf") {
		t.Errorf("no match: %v", err)
	}
	c.Offline = true
	if got, err := c.DownloadMatching(ctx, repoID, "", []string{"onnx/"}); err != nil || got != snap {
		t.Errorf("offline onnx/: %s %v", got, err)
	}
	if _, err := c.DownloadMatching(ctx, repoID, "", []string{"*.safetensors"}); !errors.Is(err, ErrOffline) {
		t.Errorf("offline, not cached: %v", err)
	}
}

// Python's fnmatch, as huggingface_hub's filter_repo_objects applies it.
func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, name string
		want          bool
	}{
		{"*.json", "config.json", true},
		{"*.json", "onnx/config.json", true}, // * crosses /
		{"onnx/", "onnx/decoder.onnx", true}, // a folder: everything under it
		{"onnx/", "onnx", false},
		{"onnx/*", "onnx/sub/x.onnx", true},
		{"*.JSON", "config.json", false}, // case-sensitive, as on POSIX
		{"model-0000?-of-00002.safetensors", "model-00001-of-00002.safetensors", true},
		{"model-0000[12]-*", "model-00003-of-00003.safetensors", false},
		{"model-0000[!12]-*", "model-00003-of-00003.safetensors", true},
		{"model-0000[0-9]-*", "model-00003-of-00003.safetensors", true},
		{"config.json", "config.json.bak", false}, // the whole path
		{"a+b(c).txt", "a+b(c).txt", true},        // regexp characters are literal
		{"[", "[", true},                          // an unclosed bracket is literal
		{"*", "", true},
	} {
		if got := Match(tc.pattern, tc.name); got != tc.want {
			t.Errorf("Match(%q, %q) = %v", tc.pattern, tc.name, got)
		}
	}
	if got := Filter([]string{"a.json", "b.bin", "c/d.json"}, []string{"*.json"}); strings.Join(got, " ") != "a.json c/d.json" {
		t.Errorf("Filter = %v", got)
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

// A model download shows how many files are fetched (as huggingface_hub's snapshot_download does)
// and a bar in bytes for each big file only (the weights): in a notebook, two live blocks, not one
// per small file.
func TestDownloadProgress(t *testing.T) {
	defer func(v int64) { bigFile = v }(bigFile)
	bigFile = 100_000
	srv := startHub(t, testRepo(t), hubtest.Faults{})
	c, _ := client(t, srv)
	var out bytes.Buffer
	c.Progress = &out
	if _, err := c.DownloadModel(context.Background(), repoID, ""); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var last []string
	for _, l := range lines {
		if strings.Contains(l, "100%") {
			last = append(last, l)
		}
	}
	if len(last) != 2 || !strings.HasPrefix(last[0], "model.safetensors 100% 300.0 kB/300.0 kB [") || !strings.HasPrefix(last[1], "Fetching 5 files 100% 5/5 [") {
		t.Errorf("progress lines %q", lines)
	}
}
