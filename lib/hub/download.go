package hub

import (
	"context"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gofrs/flock"

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

func (c *Client) notef(format string, args ...any) {
	if c.Progress != nil {
		fmt.Fprintf(c.Progress, "hub: "+format+"\n", args...)
	}
}

// Info fetches a revision's commit and file list from the API (following the redirect of a
// renamed repository).
func (c *Client) Info(ctx context.Context, repoID, revision string) (*RepoInfo, error) {
	if c.Offline {
		return nil, fmt.Errorf("repo %s: %w", repoID, ErrOffline)
	}
	if !IsRepoID(repoID) {
		return nil, fmt.Errorf("%q is not a hub repository id", repoID)
	}
	u := fmt.Sprintf("%s/api/models/%s/revision/%s", c.Endpoint, repoID, url.PathEscape(revision))
	client := c.httpClient(c.EtagTimeout, true)
	var info RepoInfo
	err := c.retry(ctx, -1, func() (bool, error) {
		reqCtx, guard, stop := withStallGuard(ctx, c.EtagTimeout)
		defer stop()
		req, err := c.newRequest(reqCtx, http.MethodGet, u)
		if err != nil {
			return false, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return false, fmt.Errorf("GET %s: %w", u, stallError(ctx, reqCtx, cleanURLError(err), c.EtagTimeout))
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			what := fmt.Sprintf("repo %s at revision %s", repoID, revision)
			return false, httpError(resp, what)
		}
		info = RepoInfo{}
		if err := json.NewDecoder(io.LimitReader(guard(resp.Body), 64<<20)).Decode(&info); err != nil {
			return false, fmt.Errorf("GET %s: %w", u, stallError(ctx, reqCtx, err, c.EtagTimeout))
		}
		return false, nil
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
	// size is -1 when unknown.
	size int64
}

func normalizeETag(s string) string {
	s = strings.TrimPrefix(strings.TrimSpace(s), "W/")
	return strings.Trim(s, `"`)
}

func (c *Client) resolveURL(repoID, revision, filename string) string {
	return fmt.Sprintf("%s/%s/resolve/%s/%s", c.Endpoint, repoID, url.PathEscape(revision), escapePath(filename))
}

// head gets a file's commit, ETag and size as huggingface_hub's get_hf_file_metadata does: a HEAD
// that follows redirects while they stay on the hub (the relative 307 of small files, renamed
// repositories) and reads the metadata of an LFS file from the redirect to storage. The size comes
// from X-Linked-Size, or from Content-Length of an answer that is not a redirect (a redirect's
// Content-Length is its own body's). retries < 0 means c.Retries.
func (c *Client) head(ctx context.Context, repoID, revision, filename string, retries int) (*fileMeta, error) {
	u := c.resolveURL(repoID, revision, filename)
	client := c.httpClient(c.EtagTimeout, true)
	var meta fileMeta
	what := fmt.Sprintf("file %s in repo %s at revision %s", filename, repoID, revision)
	err := c.retry(ctx, retries, func() (bool, error) {
		req, err := c.newRequest(ctx, http.MethodHead, u)
		if err != nil {
			return false, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return false, fmt.Errorf("HEAD %s: %w", u, cleanURLError(err))
		}
		resp.Body.Close()
		if resp.StatusCode >= 400 {
			w := what
			switch resp.Header.Get("X-Error-Code") {
			case "RepoNotFound", "GatedRepo":
				w = "repo " + repoID
			case "RevisionNotFound":
				w = fmt.Sprintf("revision %s of repo %s", revision, repoID)
			}
			return false, httpError(resp, w)
		}
		redirected := resp.StatusCode >= 300
		meta.commit = resp.Header.Get("X-Repo-Commit")
		meta.etag = normalizeETag(resp.Header.Get("X-Linked-Etag"))
		if meta.etag == "" {
			meta.etag = normalizeETag(resp.Header.Get("ETag"))
		}
		size := resp.Header.Get("X-Linked-Size")
		if size == "" && !redirected {
			size = resp.Header.Get("Content-Length")
		}
		meta.size = -1
		if n, err := strconv.ParseInt(size, 10, 64); err == nil && n >= 0 {
			meta.size = n
		}
		if meta.commit == "" {
			return false, fmt.Errorf("%s: the answer of %s (%s) has no X-Repo-Commit header: is HF_ENDPOINT=%s a Hugging Face hub?", what, resp.Request.URL.Redacted(), resp.Status, c.Endpoint)
		}
		return false, nil
	})
	if err != nil {
		return nil, err
	}
	if meta.etag == "" || strings.ContainsAny(meta.etag, `/\`) || meta.etag == "." || meta.etag == ".." {
		return nil, fmt.Errorf("%s: the hub sent no usable ETag", what)
	}
	if !reCommit.MatchString(meta.commit) {
		return nil, fmt.Errorf("%s: the hub sent %q for a commit", what, meta.commit)
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

// cacheDirTag marks a folder as a cache for backup tools (https://bford.info/cachedir/). The text
// is huggingface_hub's (PR 4030, 1.x), so a cache looks the same whichever client wrote it.
const cacheDirTag = "Signature: 8a477f597d28d172789f06886806bc55\n" +
	"# This file is a cache directory tag created by huggingface_hub.\n" +
	"# For information about cache directory tags, see:\n" +
	"#\thttps://bford.info/cachedir/\n"

// writeCacheDirTag writes dir/CACHEDIR.TAG unless it exists, as huggingface_hub does when it
// downloads into its cache; failures are ignored (the tag only helps backup tools).
func writeCacheDirTag(dir string) {
	f, err := os.OpenFile(filepath.Join(dir, "CACHEDIR.TAG"), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
	if err != nil {
		return
	}
	_, _ = f.WriteString(cacheDirTag)
	_ = f.Close()
}

// fetchBlob downloads a file into blob (blobs/{etag}), resuming blobs/{etag}.incomplete. The
// caller holds the blob's lock, so no other process writes the same .incomplete file.
func (c *Client) fetchBlob(ctx context.Context, repoID, commit, filename, blob string, meta *fileMeta) error {
	if err := os.MkdirAll(filepath.Dir(blob), 0o777); err != nil {
		return fmt.Errorf("hub cache: %w", err)
	}
	writeCacheDirTag(c.CacheDir)
	partial := blob + ".incomplete"
	u := c.resolveURL(repoID, commit, filename)
	client := c.httpClient(c.DownloadTimeout, false)
	var bar *progress.Bar // bytes, for the files big enough to take a while (Download counts the files)
	if meta.size >= bigFile {
		bar = progress.Bytes(c.Progress, meta.size, filename)
		defer bar.Finish()
	}
	err := c.retry(ctx, -1, func() (bool, error) {
		f, err := os.OpenFile(partial, os.O_CREATE|os.O_WRONLY, 0o666)
		if err != nil {
			return false, fmt.Errorf("hub cache: %w", err)
		}
		defer f.Close()
		have, err := f.Seek(0, io.SeekEnd)
		if err != nil {
			return false, err
		}
		if meta.size < 0 && have > 0 { // unknown size: no resuming
			if err := f.Truncate(0); err != nil {
				return false, err
			}
			have, _ = f.Seek(0, io.SeekStart)
		}
		if meta.size >= 0 && have >= meta.size {
			return false, nil // complete: verified below
		}
		reqCtx, guard, stop := withStallGuard(ctx, c.DownloadTimeout)
		defer stop()
		req, err := c.newRequest(reqCtx, http.MethodGet, u)
		if err != nil {
			return false, err
		}
		if have > 0 {
			req.Header.Set("Range", fmt.Sprintf("bytes=%d-", have))
		}
		resp, err := client.Do(req)
		if err != nil {
			return false, fmt.Errorf("GET %s: %w", u, stallError(ctx, reqCtx, cleanURLError(err), c.DownloadTimeout))
		}
		defer resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusPartialContent && have > 0:
		case resp.StatusCode == http.StatusOK:
			// The server ignored the range: start over.
			if err := f.Truncate(0); err != nil {
				return false, err
			}
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				return false, err
			}
			have = 0
		default:
			return false, httpError(resp, fmt.Sprintf("file %s in repo %s (from %s)", filename, repoID, resp.Request.URL.Host))
		}
		bar.Add(have)
		n, err := io.Copy(f, io.TeeReader(guard(resp.Body), barWriter{bar}))
		if err != nil {
			err = stallError(ctx, reqCtx, err, c.DownloadTimeout)
			return n > 0, fmt.Errorf("GET %s: interrupted after %d bytes: %w", u, have+n, err)
		}
		if meta.size >= 0 && have+n < meta.size {
			return n > 0, fmt.Errorf("GET %s: got %d of %d bytes: %w", u, have+n, meta.size, io.ErrUnexpectedEOF)
		}
		return n > 0, f.Sync()
	})
	if err != nil {
		return err
	}
	if err := verify(partial, meta); err != nil {
		_ = os.Remove(partial)
		return fmt.Errorf("file %s in repo %s: %w (the download was discarded)", filename, repoID, err)
	}
	if err := os.Rename(partial, blob); err != nil {
		return fmt.Errorf("hub cache: %w", err)
	}
	return nil
}

// bigFile is the size from which a download shows its own bar in bytes.
var bigFile int64 = 10_000_000

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
	if meta.size >= 0 && st.Size() != meta.size {
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

// lockBlob takes the blob's lock, .locks/models--{org}--{name}/{etag}.lock as huggingface_hub's,
// saying every 10 s that it waits for another process.
func (c *Client) lockBlob(ctx context.Context, repoID, etag, filename string) (func(), error) {
	dir := filepath.Join(c.CacheDir, ".locks", repoFolder(repoID))
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return nil, fmt.Errorf("hub cache: %w", err)
	}
	fl := flock.New(filepath.Join(dir, etag+".lock"), flock.SetPermissions(0o666))
	for {
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		ok, err := fl.TryLockContext(wctx, 50*time.Millisecond)
		cancel()
		if ok {
			return func() { _ = fl.Unlock() }, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("hub cache: locking %s: %w", fl.Path(), err)
		}
		c.notef("%s: waiting for another process that downloads it (lock %s)", filename, fl.Path())
	}
}

var symlinkSupport sync.Map // cache folder → bool

// symlinks reports whether snapshots hold symbolic links: not with HF_HUB_DISABLE_SYMLINKS, nor
// where the cache folder's file system has none (exFAT, SMB, Windows without developer mode),
// which is found once per folder by trying, as huggingface_hub's are_symlinks_supported does.
func (c *Client) symlinks() bool {
	if c.NoSymlinks {
		return false
	}
	if v, ok := symlinkSupport.Load(c.CacheDir); ok {
		return v.(bool)
	}
	ok := false
	if err := os.MkdirAll(c.CacheDir, 0o777); err == nil {
		if dir, err := os.MkdirTemp(c.CacheDir, ".symlink-test-"); err == nil {
			ok = os.Symlink("src", filepath.Join(dir, "dst")) == nil
			_ = os.RemoveAll(dir)
		}
	}
	if !ok {
		c.notef("the file system of %s has no symbolic links: snapshots hold copies of the files (more disk space)", c.CacheDir)
	}
	symlinkSupport.Store(c.CacheDir, ok)
	return ok
}

func (c *Client) snapshotPath(repoID, commit, filename string) string {
	return filepath.Join(c.repoDir(repoID), "snapshots", commit, filepath.FromSlash(filename))
}

// placed reports whether snap already holds the file: the right relative link to an existing blob,
// or (without symbolic links) a file of the right size.
func (c *Client) placed(snap, blob string, meta *fileMeta) bool {
	st, err := os.Stat(snap) // follows the link: the blob must be there too
	if err != nil || !st.Mode().IsRegular() || (meta.size >= 0 && st.Size() != meta.size) {
		return false
	}
	if !c.symlinks() {
		return true
	}
	want, err := filepath.Rel(filepath.Dir(snap), blob)
	got, err2 := os.Readlink(snap)
	return err == nil && err2 == nil && got == want
}

// place puts the blob into the snapshot: snapshots/{commit}/{filename} → ../../blobs/{etag}
// (relative, as huggingface_hub's _create_symlink), replacing a wrong entry atomically. Without
// symbolic links a new blob is moved there and an old one copied, as huggingface_hub does.
func (c *Client) place(snap, blob string, newBlob bool) error {
	if err := os.MkdirAll(filepath.Dir(snap), 0o777); err != nil {
		return fmt.Errorf("hub cache: %w", err)
	}
	tmp := snap + ".tmp-" + randomSuffix()
	if c.symlinks() {
		rel, err := filepath.Rel(filepath.Dir(snap), blob)
		if err != nil {
			return err
		}
		if err := os.Symlink(rel, tmp); err != nil {
			return fmt.Errorf("hub cache: %w", err)
		}
	} else if newBlob {
		if err := os.Rename(blob, tmp); err != nil {
			return fmt.Errorf("hub cache: %w", err)
		}
	} else if err := copyFile(blob, tmp); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("hub cache: %w", err)
	}
	if err := os.Rename(tmp, snap); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("hub cache: %w", err)
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o666)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func randomSuffix() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// fetchFile makes snapshots/{commit}/{filename} hold the file: nothing to do when it does, a link
// when the blob is there, else a download under the blob's lock.
func (c *Client) fetchFile(ctx context.Context, repoID, commit, filename string, meta *fileMeta) error {
	snap := c.snapshotPath(repoID, commit, filename)
	blob := filepath.Join(c.repoDir(repoID), "blobs", meta.etag)
	if c.placed(snap, blob, meta) {
		return nil
	}
	if _, err := os.Stat(blob); err == nil {
		return c.place(snap, blob, false)
	}
	unlock, err := c.lockBlob(ctx, repoID, meta.etag, filename)
	if err != nil {
		return err
	}
	defer unlock()
	if c.placed(snap, blob, meta) { // another process did it while we waited
		return nil
	}
	newBlob := false
	if _, err := os.Stat(blob); err != nil {
		if err := c.fetchBlob(ctx, repoID, commit, filename, blob, meta); err != nil {
			return err
		}
		newBlob = true
	}
	return c.place(snap, blob, newBlob)
}

// writeRef records refs/{revision} → commit, unless it already says so (a read-only or shared
// cache is not rewritten). The file is created with the umask's permissions, as Python's are.
func (c *Client) writeRef(repoID, revision, commit string) error {
	if revision == commit {
		return nil
	}
	ref := filepath.Join(c.repoDir(repoID), "refs", filepath.FromSlash(revision))
	if data, err := os.ReadFile(ref); err == nil && strings.TrimSpace(string(data)) == commit {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(ref), 0o777); err != nil {
		return fmt.Errorf("hub cache: %w", err)
	}
	tmp := ref + ".tmp-" + randomSuffix()
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o666)
	if err != nil {
		return fmt.Errorf("hub cache: %w", err)
	}
	_, err = f.WriteString(commit)
	if err == nil {
		err = f.Sync()
	}
	if e := f.Close(); err == nil {
		err = e
	}
	if err == nil {
		err = os.Rename(tmp, ref)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("hub cache: writing %s: %w", ref, err)
	}
	return nil
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

// fallbackOK reports whether the cache may answer instead of the hub after err: any failure but
// the hub saying that the revision or the file does not exist (huggingface_hub does the same).
func fallbackOK(ctx context.Context, err error) bool {
	return ctx.Err() == nil && !errors.Is(err, ErrRevisionNotFound) && !errors.Is(err, ErrEntryNotFound)
}

// Download gets the named files of a repository at a revision ("" = "main") into the cache and
// returns the snapshot folder. Files already in the cache are not downloaded again; a revision
// that is a commit whose files are all cached needs no request. Offline, or when the hub fails
// (any error but RevisionNotFound/EntryNotFound), the files must be in the cache.
func (c *Client) Download(ctx context.Context, repoID, revision string, files []string) (string, error) {
	if revision == "" {
		revision = "main"
	}
	if !IsRepoID(repoID) {
		return "", fmt.Errorf("%q is not a hub repository id", repoID)
	}
	if len(files) == 0 {
		return "", fmt.Errorf("repo %s: no file to download", repoID)
	}
	cached, cacheErr := c.fromCache(repoID, revision, files)
	if c.Offline || (cacheErr == nil && reCommit.MatchString(revision)) {
		return cached, cacheErr
	}
	retries := -1
	if cacheErr == nil {
		retries = 0 // answer from the cache at once when the hub is down
	}
	meta0, err := c.head(ctx, repoID, revision, files[0], retries)
	if err != nil {
		if cacheErr == nil && fallbackOK(ctx, err) {
			c.notef("%v — using the cached snapshot", err)
			return cached, nil
		}
		return "", err
	}
	commit := meta0.commit
	var bar *progress.Bar // the files, as huggingface_hub's snapshot_download counts them
	if len(files) > 1 {
		bar = progress.Count(c.Progress, int64(len(files)), fmt.Sprintf("Fetching %d files", len(files)))
	}
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
				if meta, err = c.head(ctx, repoID, commit, f, -1); err != nil {
					errs[i] = err
					return
				}
			}
			errs[i] = c.fetchFile(ctx, repoID, commit, f, meta)
			bar.Add(1)
		}()
	}
	wg.Wait()
	bar.Finish()
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

// DownloadMatching downloads the repository's files that match any of the patterns (fnmatch
// semantics, as `hf download --include`: see Match) and returns the snapshot folder. Offline, or
// when the hub cannot be reached, it answers from the cached snapshot if it holds matching files.
func (c *Client) DownloadMatching(ctx context.Context, repoID, revision string, patterns []string) (string, error) {
	if revision == "" {
		revision = "main"
	}
	fromCache := func() (string, error) {
		commit, ok := c.cachedCommit(repoID, revision)
		if !ok {
			return "", fmt.Errorf("repo %s at revision %s: %w", repoID, revision, ErrOffline)
		}
		snap := filepath.Join(c.repoDir(repoID), "snapshots", commit)
		if len(Filter(listFiles(snap), patterns)) == 0 {
			return "", fmt.Errorf("repo %s at revision %s: no cached file matches %q: %w", repoID, revision, patterns, ErrOffline)
		}
		return snap, nil
	}
	if c.Offline {
		return fromCache()
	}
	info, err := c.Info(ctx, repoID, revision)
	if err != nil {
		if fallbackOK(ctx, err) {
			if snap, cerr := fromCache(); cerr == nil {
				c.notef("%v — using the cached snapshot", err)
				return snap, nil
			}
		}
		return "", err
	}
	files := Filter(info.Files(), patterns)
	if len(files) == 0 {
		return "", fmt.Errorf("none of the %d files of %s matches %q", len(info.Siblings), repoID, patterns)
	}
	return c.downloadCommit(ctx, repoID, revision, info.SHA, files)
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
// with a config and weights, it checks the revision with one HEAD request (no retries) and
// downloads nothing; when the hub cannot be reached or fails, and offline, it uses the cache alone.
func (c *Client) DownloadModel(ctx context.Context, repoID, revision string) (string, error) {
	if revision == "" {
		revision = "main"
	}
	if !IsRepoID(repoID) {
		return "", fmt.Errorf("%q is not a hub repository id", repoID)
	}
	if commit, ok := c.cachedCommit(repoID, revision); ok {
		snap := filepath.Join(c.repoDir(repoID), "snapshots", commit)
		if files := listFiles(snap); len(ModelFiles(files)) > 0 && hasWeights(files) {
			if c.Offline || reCommit.MatchString(revision) {
				return snap, nil
			}
			meta, err := c.head(ctx, repoID, revision, "config.json", 0)
			if err == nil && meta.commit == commit {
				return snap, nil
			}
			if err != nil && fallbackOK(ctx, err) {
				c.notef("%v — using the cached snapshot", err)
				return snap, nil
			}
			if err != nil {
				return "", err
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
	return c.downloadCommit(ctx, repoID, revision, info.SHA, files)
}

// downloadCommit downloads files at the commit a revision resolved to, then records the revision.
func (c *Client) downloadCommit(ctx context.Context, repoID, revision, commit string, files []string) (string, error) {
	snap, err := c.Download(ctx, repoID, commit, files)
	if err != nil {
		return "", err
	}
	if err := c.writeRef(repoID, revision, commit); err != nil {
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

// listFiles lists the files of a snapshot (following its links), as slash paths.
func listFiles(dir string) []string {
	var out []string
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if st, err := os.Stat(p); err != nil || !st.Mode().IsRegular() {
			return nil // a dangling link
		}
		rel, _ := filepath.Rel(dir, p)
		out = append(out, filepath.ToSlash(rel))
		return nil
	})
	return out
}
