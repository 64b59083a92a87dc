package hub

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gonb-gpt/tutorial/lib/fileutil"
	"github.com/gonb-gpt/tutorial/lib/progress"
)

// RepoInfo is what the hub's API says of a model at a revision.
type RepoInfo struct {
	ID       string `json:"id"`
	SHA      string `json:"sha"`
	Siblings []struct {
		RFilename string `json:"rfilename"`
	} `json:"siblings"`
}

// Files lists the repository's file names.
func (r *RepoInfo) Files() []string {
	out := make([]string, 0, len(r.Siblings))
	for _, s := range r.Siblings {
		out = append(out, s.RFilename)
	}
	return out
}

// httpStatusError is an unwanted response.
type httpStatusError struct {
	status    int
	errorCode string
	what      string
}

func (e *httpStatusError) Error() string {
	msg := fmt.Sprintf("%s: %d %s", e.what, e.status, http.StatusText(e.status))
	if kind := e.Unwrap(); kind != nil {
		msg += " (" + kind.Error() + ")"
	}
	return msg
}

func (e *httpStatusError) Unwrap() error {
	switch {
	case e.status == http.StatusUnauthorized || e.status == http.StatusForbidden || e.errorCode == "GatedRepo":
		return ErrUnauthorized
	case e.status == http.StatusNotFound:
		return ErrNotFound
	}
	return nil
}

func (c *Client) newRequest(ctx context.Context, method, u string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", c.UserAgent)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	return req, nil
}

// retryable: network trouble, 5xx, 429.
func retryable(err error) bool {
	var he *httpStatusError
	if errors.As(err, &he) {
		return he.status >= 500 || he.status == http.StatusTooManyRequests
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, ErrChecksum) {
		return false
	}
	var ne net.Error
	var oe *net.OpError
	return errors.As(err, &ne) || errors.As(err, &oe) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)
}

// retry runs fn with exponential backoff on retryable errors.
func (c *Client) retry(ctx context.Context, fn func() error) error {
	wait := c.Backoff
	if wait == 0 {
		wait = time.Second
	}
	for attempt := 0; ; attempt++ {
		err := fn()
		if err == nil || !retryable(err) || attempt >= c.Retries {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait *= 2
	}
}

func cleanURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// Info fetches a revision's commit and file list from the API.
func (c *Client) Info(ctx context.Context, repoID, revision string) (*RepoInfo, error) {
	if c.Offline {
		return nil, fmt.Errorf("repo %s: %w", repoID, ErrOffline)
	}
	if !IsRepoID(repoID) {
		return nil, fmt.Errorf("%q is not a hub repository id", repoID)
	}
	u := fmt.Sprintf("%s/api/models/%s/revision/%s", c.Endpoint, repoID, url.PathEscape(revision))
	var info RepoInfo
	err := c.retry(ctx, func() error {
		req, err := c.newRequest(ctx, http.MethodGet, u)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("GET %s: %w", u, cleanURLError(err))
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			what := fmt.Sprintf("repo %s at revision %s", repoID, revision)
			if resp.Header.Get("X-Error-Code") == "RevisionNotFound" {
				what = fmt.Sprintf("revision %s of repo %s", revision, repoID)
			}
			return &httpStatusError{resp.StatusCode, resp.Header.Get("X-Error-Code"), what}
		}
		return json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&info)
	})
	if err != nil {
		return nil, err
	}
	if !reCommit.MatchString(info.SHA) {
		return nil, fmt.Errorf("repo %s: the hub answered no commit for revision %s", repoID, revision)
	}
	return &info, nil
}

// fileMeta is what a HEAD on a file's resolve URL says.
type fileMeta struct {
	commit, etag string
	size         int64
}

func normalizeETag(s string) string {
	s = strings.TrimPrefix(strings.TrimSpace(s), "W/")
	return strings.Trim(s, `"`)
}

// head gets a file's commit, ETag and size, not following redirects (an LFS file answers with a
// redirect to its storage carrying X-Linked-Etag and X-Linked-Size).
func (c *Client) head(ctx context.Context, repoID, revision, filename string) (*fileMeta, error) {
	u := fmt.Sprintf("%s/%s/resolve/%s/%s", c.Endpoint, repoID, url.PathEscape(revision), escapePath(filename))
	client := &http.Client{CheckRedirect: func(req *http.Request, via []*http.Request) error { return http.ErrUseLastResponse }}
	var meta fileMeta
	err := c.retry(ctx, func() error {
		req, err := c.newRequest(ctx, http.MethodHead, u)
		if err != nil {
			return err
		}
		req.Header.Set("Accept-Encoding", "identity")
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("HEAD %s: %w", u, cleanURLError(err))
		}
		resp.Body.Close()
		if resp.StatusCode >= 400 {
			what := fmt.Sprintf("file %s in repo %s at revision %s", filename, repoID, revision)
			switch resp.Header.Get("X-Error-Code") {
			case "RepoNotFound":
				what = fmt.Sprintf("repo %s", repoID)
			case "RevisionNotFound":
				what = fmt.Sprintf("revision %s of repo %s", revision, repoID)
			}
			return &httpStatusError{resp.StatusCode, resp.Header.Get("X-Error-Code"), what}
		}
		meta.commit = resp.Header.Get("X-Repo-Commit")
		meta.etag = normalizeETag(resp.Header.Get("X-Linked-Etag"))
		if meta.etag == "" {
			meta.etag = normalizeETag(resp.Header.Get("ETag"))
		}
		size := resp.Header.Get("X-Linked-Size")
		if size == "" {
			size = resp.Header.Get("Content-Length")
		}
		meta.size, _ = strconv.ParseInt(size, 10, 64)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if meta.etag == "" || strings.ContainsAny(meta.etag, `/\`) || meta.etag == "." || meta.etag == ".." {
		return nil, fmt.Errorf("file %s in repo %s: the hub sent no usable ETag", filename, repoID)
	}
	if !reCommit.MatchString(meta.commit) {
		return nil, fmt.Errorf("file %s in repo %s: the hub sent no commit", filename, repoID)
	}
	return &meta, nil
}

func escapePath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		parts[i] = url.PathEscape(s)
	}
	return strings.Join(parts, "/")
}

// hasherFor returns the hash that an ETag names: sha256 (64 hex digits, LFS files), the git blob
// sha1 (40 digits, regular files), or nil when it is neither (nothing to check).
func hasherFor(etag string, size int64) hash.Hash {
	if _, err := hex.DecodeString(etag); err != nil {
		return nil
	}
	switch len(etag) {
	case 64:
		return sha256.New()
	case 40:
		h := sha1.New()
		fmt.Fprintf(h, "blob %d\x00", size)
		return h
	}
	return nil
}

// fetchBlob downloads a file into blobs/{etag}, resuming blobs/{etag}.incomplete.
func (c *Client) fetchBlob(ctx context.Context, repoID, commit, filename string, meta *fileMeta) (string, error) {
	blobs := filepath.Join(c.repoDir(repoID), "blobs")
	blob := filepath.Join(blobs, meta.etag)
	if _, err := os.Stat(blob); err == nil {
		return blob, nil
	}
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		return "", fmt.Errorf("hub cache: %w", err)
	}
	partial := blob + ".incomplete"
	u := fmt.Sprintf("%s/%s/resolve/%s/%s", c.Endpoint, repoID, commit, escapePath(filename))
	bar := progress.Bytes(c.Progress, meta.size, filename)
	defer bar.Finish()
	err := c.retry(ctx, func() error {
		f, err := os.OpenFile(partial, os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return fmt.Errorf("hub cache: %w", err)
		}
		defer f.Close()
		have, err := f.Seek(0, io.SeekEnd)
		if err != nil {
			return err
		}
		if meta.size > 0 && have >= meta.size {
			return nil // complete: verified below
		}
		req, err := c.newRequest(ctx, http.MethodGet, u)
		if err != nil {
			return err
		}
		if have > 0 {
			req.Header.Set("Range", fmt.Sprintf("bytes=%d-", have))
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("GET %s: %w", u, cleanURLError(err))
		}
		defer resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusPartialContent && have > 0:
		case resp.StatusCode == http.StatusOK:
			// The server ignored the range: start over.
			if err := f.Truncate(0); err != nil {
				return err
			}
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				return err
			}
			have = 0
		default:
			return &httpStatusError{resp.StatusCode, resp.Header.Get("X-Error-Code"), fmt.Sprintf("file %s in repo %s", filename, repoID)}
		}
		bar.Add(have)
		n, err := io.Copy(f, io.TeeReader(resp.Body, barWriter{bar}))
		if err != nil {
			return fmt.Errorf("GET %s: interrupted after %d bytes: %w", u, have+n, err)
		}
		if meta.size > 0 && have+n < meta.size {
			return fmt.Errorf("GET %s: got %d of %d bytes: %w", u, have+n, meta.size, io.ErrUnexpectedEOF)
		}
		return f.Sync()
	})
	if err != nil {
		return "", err
	}
	if err := verify(partial, meta); err != nil {
		_ = os.Remove(partial)
		return "", fmt.Errorf("file %s in repo %s: %w (the download was discarded)", filename, repoID, err)
	}
	if err := os.Rename(partial, blob); err != nil {
		return "", fmt.Errorf("hub cache: %w", err)
	}
	return blob, nil
}

type barWriter struct{ bar *progress.Bar }

func (b barWriter) Write(p []byte) (int, error) { b.bar.Add(int64(len(p))); return len(p), nil }

func verify(path string, meta *fileMeta) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if meta.size > 0 && st.Size() != meta.size {
		return fmt.Errorf("%w: %d bytes, the hub says %d", ErrChecksum, st.Size(), meta.size)
	}
	h := hasherFor(meta.etag, st.Size())
	if h == nil {
		return nil
	}
	if _, err := io.Copy(h, f); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != meta.etag {
		return fmt.Errorf("%w: content hashes to %s, the hub's ETag is %s", ErrChecksum, got, meta.etag)
	}
	return nil
}

// link puts snapshots/{commit}/{filename} → ../../blobs/{etag} (relative, as huggingface_hub does).
func (c *Client) link(repoID, commit, filename, blob string) (string, error) {
	snap := filepath.Join(c.repoDir(repoID), "snapshots", commit, filepath.FromSlash(filename))
	if err := os.MkdirAll(filepath.Dir(snap), 0o755); err != nil {
		return "", fmt.Errorf("hub cache: %w", err)
	}
	rel, err := filepath.Rel(filepath.Dir(snap), blob)
	if err != nil {
		return "", err
	}
	tmp := snap + ".tmp-link"
	_ = os.Remove(tmp)
	if err := os.Symlink(rel, tmp); err != nil {
		return "", fmt.Errorf("hub cache: %w", err)
	}
	if err := os.Rename(tmp, snap); err != nil {
		return "", fmt.Errorf("hub cache: %w", err)
	}
	return snap, nil
}

func (c *Client) writeRef(repoID, revision, commit string) error {
	if revision == commit {
		return nil
	}
	ref := filepath.Join(c.repoDir(repoID), "refs", filepath.FromSlash(revision))
	if err := os.MkdirAll(filepath.Dir(ref), 0o755); err != nil {
		return fmt.Errorf("hub cache: %w", err)
	}
	return fileutil.WriteFileAtomic(ref, []byte(commit), 0o644)
}

// cachedCommit resolves a revision through refs/ (or as a commit itself).
func (c *Client) cachedCommit(repoID, revision string) (string, bool) {
	if reCommit.MatchString(revision) {
		if _, err := os.Stat(filepath.Join(c.repoDir(repoID), "snapshots", revision)); err == nil {
			return revision, true
		}
		return "", false
	}
	data, err := os.ReadFile(filepath.Join(c.repoDir(repoID), "refs", filepath.FromSlash(revision)))
	if err != nil {
		return "", false
	}
	commit := strings.TrimSpace(string(data))
	return commit, reCommit.MatchString(commit)
}

// Download gets the named files of a repository at a revision ("" = "main") into the cache and
// returns the snapshot folder. Files already in the cache are not downloaded again. Offline, the
// files must be in the cache.
func (c *Client) Download(ctx context.Context, repoID, revision string, files []string) (string, error) {
	if revision == "" {
		revision = "main"
	}
	if !IsRepoID(repoID) {
		return "", fmt.Errorf("%q is not a hub repository id", repoID)
	}
	if c.Offline {
		return c.fromCache(repoID, revision, files)
	}
	// Resolve the revision once (so all files come from one commit).
	meta0, err := c.head(ctx, repoID, revision, files[0])
	if err != nil {
		return "", err
	}
	commit := meta0.commit
	sem := make(chan struct{}, max(1, c.Concurrency))
	var wg sync.WaitGroup
	errs := make([]error, len(files))
	for i, f := range files {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			meta := meta0
			if i > 0 {
				var err error
				if meta, err = c.head(ctx, repoID, commit, f); err != nil {
					errs[i] = err
					return
				}
			}
			blob, err := c.fetchBlob(ctx, repoID, commit, f, meta)
			if err != nil {
				errs[i] = err
				return
			}
			_, errs[i] = c.link(repoID, commit, f, blob)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return "", err
	}
	if err := c.writeRef(repoID, revision, commit); err != nil {
		return "", err
	}
	return filepath.Join(c.repoDir(repoID), "snapshots", commit), nil
}

func (c *Client) fromCache(repoID, revision string, files []string) (string, error) {
	commit, ok := c.cachedCommit(repoID, revision)
	if !ok {
		return "", fmt.Errorf("repo %s at revision %s: %w", repoID, revision, ErrOffline)
	}
	snap := filepath.Join(c.repoDir(repoID), "snapshots", commit)
	var missing []string
	for _, f := range files {
		if _, err := os.Stat(filepath.Join(snap, filepath.FromSlash(f))); err != nil {
			missing = append(missing, f)
		}
	}
	if len(missing) > 0 {
		return "", fmt.Errorf("repo %s at revision %s: %s: %w", repoID, revision, strings.Join(missing, ", "), ErrOffline)
	}
	return snap, nil
}

// ModelFiles picks what the model and tokenizer loaders need from a repository's files: the config,
// the weights (model.safetensors or its sharded index and shards; else pytorch_model.bin or its
// index and shards), the tokenizer files and generation_config.json.
func ModelFiles(all []string) []string {
	has := map[string]bool{}
	for _, f := range all {
		has[f] = true
	}
	var out []string
	for _, f := range []string{"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
		"special_tokens_map.json", "vocab.json", "merges.txt", "added_tokens.json"} {
		if has[f] {
			out = append(out, f)
		}
	}
	shards := func(prefix, suffix string) []string {
		var s []string
		for _, f := range all {
			if strings.HasPrefix(f, prefix) && strings.HasSuffix(f, suffix) && !strings.Contains(f, "/") {
				s = append(s, f)
			}
		}
		sort.Strings(s)
		return s
	}
	switch {
	case has["model.safetensors"]:
		out = append(out, "model.safetensors")
	case has["model.safetensors.index.json"]:
		out = append(append(out, "model.safetensors.index.json"), shards("model-", ".safetensors")...)
	case has["pytorch_model.bin"]:
		out = append(out, "pytorch_model.bin")
	case has["pytorch_model.bin.index.json"]:
		out = append(append(out, "pytorch_model.bin.index.json"), shards("pytorch_model-", ".bin")...)
	}
	return out
}

// DownloadModel gets a model's files (ModelFiles) at a revision and returns the snapshot folder,
// ready for gpt2.Load and tokenizer.LoadDir. When the cache already holds that revision's snapshot
// with a config and weights, it checks the revision with one HEAD request and downloads nothing;
// offline it uses the cache alone.
func (c *Client) DownloadModel(ctx context.Context, repoID, revision string) (string, error) {
	if revision == "" {
		revision = "main"
	}
	if commit, ok := c.cachedCommit(repoID, revision); ok {
		snap := filepath.Join(c.repoDir(repoID), "snapshots", commit)
		if files := listFiles(snap); len(ModelFiles(files)) > 0 && hasWeights(files) {
			if c.Offline {
				return snap, nil
			}
			meta, err := c.head(ctx, repoID, revision, "config.json")
			if err == nil && meta.commit == commit {
				return snap, nil
			}
			var he *httpStatusError
			if err != nil && !errors.As(err, &he) && ctx.Err() == nil {
				// The hub cannot be reached: use the cached snapshot, as huggingface_hub does.
				return snap, nil
			}
		}
	}
	if c.Offline {
		return "", fmt.Errorf("model %s at revision %s: %w", repoID, revision, ErrOffline)
	}
	info, err := c.Info(ctx, repoID, revision)
	if err != nil {
		return "", err
	}
	files := ModelFiles(info.Files())
	if !hasWeights(files) || len(files) == 0 || files[0] != "config.json" {
		return "", fmt.Errorf("repo %s holds no config.json with model.safetensors or pytorch_model.bin", repoID)
	}
	snap, err := c.Download(ctx, repoID, info.SHA, files)
	if err != nil {
		return "", err
	}
	if err := c.writeRef(repoID, revision, info.SHA); err != nil {
		return "", err
	}
	return snap, nil
}

func hasWeights(files []string) bool {
	for _, f := range files {
		if f == "model.safetensors" || f == "model.safetensors.index.json" || f == "pytorch_model.bin" || f == "pytorch_model.bin.index.json" {
			return true
		}
	}
	return false
}

func listFiles(dir string) []string {
	var out []string
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		out = append(out, filepath.ToSlash(rel))
		return nil
	})
	return out
}
