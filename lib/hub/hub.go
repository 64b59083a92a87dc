// Package hub downloads model repositories from the Hugging Face hub into the same cache that
// Python's huggingface_hub uses, so that Python and Go share one copy of a model:
//
//	$HF_HUB_CACHE (default $HF_HOME/hub, default ~/.cache/huggingface/hub)
//	  models--{org}--{name}/
//	    blobs/{etag}                      the files' content, named by ETag (sha256 for LFS files)
//	    snapshots/{commit}/{filename}     relative symbolic links to the blobs (copies where the
//	                                      file system has no symbolic links)
//	    refs/{revision}                   the commit a branch or tag pointed to
//	  .locks/models--{org}--{name}/{etag}.lock   one lock per blob, shared with huggingface_hub
//
// It talks to the hub as huggingface_hub does (file_download.py, utils/_http.py): metadata from a
// HEAD that follows redirects only while they stay on the hub (the 307 of small files to
// /api/resolve-cache, renamed repositories) and reads an LFS file's X-Linked-Etag/X-Linked-Size
// from the redirect to storage; the bytes with a GET that drops the token as soon as a redirect
// leaves the hub. A redirect's Content-Length is never taken for the file's size. Downloads resume
// from blobs/{etag}.incomplete with a Range request under the blob's lock (two processes never
// write one file), are checked against their ETag (sha256, or the git blob SHA-1), retried with
// backoff (the budget resets whenever bytes arrive), wait out 429s as the RateLimit header says, and
// time out when a connection or a read stalls. A file appears in snapshots/ only once complete and
// verified. When the hub cannot be reached, or answers any error but RevisionNotFound or
// EntryNotFound, what the cache holds is used.
//
// The environment is read as huggingface_hub reads it: HF_ENDPOINT, HF_HOME, HF_HUB_CACHE (~ and
// $VARS expanded), HF_TOKEN (whitespace and newlines stripped; else HF_TOKEN_PATH, default
// $HF_HOME/token), HF_HUB_DISABLE_IMPLICIT_TOKEN, HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE,
// HF_HUB_ETAG_TIMEOUT and HF_HUB_DOWNLOAD_TIMEOUT (seconds, default 10), HF_HUB_DISABLE_SYMLINKS.
//
// go-huggingface's hub package writes the same layout but ignores HF_HOME and HF_TOKEN, has no
// offline mode, keeps info/<rev> instead of refs/<rev>, does not verify checksums and has no locks;
// this package implements the protocol itself instead of wrapping it.
package hub

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gonb-gpt/tutorial/lib/internal/envflag"
)

// DefaultEndpoint is the hub's address.
const DefaultEndpoint = "https://huggingface.co"

// Client talks to a hub and keeps its cache. The zero value is not usable: use New.
type Client struct {
	// Endpoint is the hub's base URL (HF_ENDPOINT).
	Endpoint string
	// CacheDir is the hub cache (HF_HUB_CACHE).
	CacheDir string
	// Offline forbids network access (HF_HUB_OFFLINE, TRANSFORMERS_OFFLINE).
	Offline bool
	// token is sent as "Authorization: Bearer" to hub hosts only; never printed.
	token string
	// Retries and Backoff configure retries of failed requests (defaults 4 and 1 s, doubling).
	Retries int
	Backoff time.Duration
	// RateLimitWaits is how many 429 answers in a row are waited out (default 5); MaxRateLimitWait
	// caps one wait (default: the hub's 300 s window and one second).
	RateLimitWaits   int
	MaxRateLimitWait time.Duration
	// EtagTimeout bounds connecting and waiting for an answer to metadata requests
	// (HF_HUB_ETAG_TIMEOUT); DownloadTimeout bounds connecting and each stall of a download
	// (HF_HUB_DOWNLOAD_TIMEOUT).
	EtagTimeout, DownloadTimeout time.Duration
	// NoSymlinks stores files in snapshots/ as copies (HF_HUB_DISABLE_SYMLINKS, or a cache folder
	// on a file system without symbolic links).
	NoSymlinks bool
	// Concurrency is the number of files downloaded at once (default 4).
	Concurrency int
	// Progress receives progress bars and notes (nil: none).
	Progress interface{ Write([]byte) (int, error) }
	// UserAgent is sent with requests.
	UserAgent string

	mu      sync.Mutex
	clients map[clientKey]*http.Client // see httpClient
}

// New returns a client configured from the environment, as huggingface_hub is. A variable that
// cannot be read (a timeout that is not a number) is an error naming it.
func New() (*Client, error) {
	c := &Client{Endpoint: DefaultEndpoint, Retries: 4, Backoff: time.Second, Concurrency: 4,
		RateLimitWaits: 5, MaxRateLimitWait: 301 * time.Second,
		EtagTimeout: 10 * time.Second, DownloadTimeout: 10 * time.Second,
		UserAgent: "gonb-gpt-tutorial/1.0; hf_hub-compatible"}
	if e := strings.TrimRight(os.Getenv("HF_ENDPOINT"), "/"); e != "" {
		c.Endpoint = e
	}
	home := os.Getenv("HF_HOME")
	if home == "" {
		xdg := os.Getenv("XDG_CACHE_HOME")
		if xdg == "" {
			xdg = filepath.Join("~", ".cache")
		}
		home = filepath.Join(xdg, "huggingface")
	}
	home = expandPath(home)
	c.CacheDir = os.Getenv("HF_HUB_CACHE")
	if c.CacheDir == "" {
		c.CacheDir = os.Getenv("HUGGINGFACE_HUB_CACHE")
	}
	if c.CacheDir == "" {
		c.CacheDir = filepath.Join(home, "hub")
	}
	c.CacheDir = expandPath(c.CacheDir)
	// huggingface_hub: HF_HUB_OFFLINE or, when unset, TRANSFORMERS_OFFLINE.
	offline := os.Getenv("HF_HUB_OFFLINE")
	if offline == "" {
		offline = os.Getenv("TRANSFORMERS_OFFLINE")
	}
	c.Offline = envflag.True(offline)
	c.NoSymlinks = envflag.True(os.Getenv("HF_HUB_DISABLE_SYMLINKS"))
	for _, v := range []struct {
		name string
		dst  *time.Duration
	}{{"HF_HUB_ETAG_TIMEOUT", &c.EtagTimeout}, {"HF_HUB_DOWNLOAD_TIMEOUT", &c.DownloadTimeout}} {
		if s := strings.TrimSpace(os.Getenv(v.name)); s != "" {
			secs, err := strconv.ParseFloat(s, 64)
			if err != nil || secs <= 0 || secs > 24*3600 {
				return nil, fmt.Errorf("%s=%q: want a number of seconds (default 10)", v.name, s)
			}
			*v.dst = time.Duration(secs * float64(time.Second))
		}
	}
	// The token found in the environment or the token file is "implicit": huggingface_hub does not
	// send it when HF_HUB_DISABLE_IMPLICIT_TOKEN is set (SetToken still does).
	if !envflag.True(os.Getenv("HF_HUB_DISABLE_IMPLICIT_TOKEN")) {
		c.token = cleanToken(os.Getenv("HF_TOKEN"))
		if c.token == "" {
			c.token = cleanToken(os.Getenv("HUGGING_FACE_HUB_TOKEN"))
		}
		if c.token == "" {
			path := os.Getenv("HF_TOKEN_PATH")
			if path == "" {
				path = filepath.Join(home, "token")
			}
			if data, err := os.ReadFile(expandPath(path)); err == nil {
				c.token = cleanToken(string(data))
			}
		}
	}
	return c, nil
}

// cleanToken strips what a copy-paste or `echo >` adds, as huggingface_hub's _clean_token does.
func cleanToken(s string) string {
	return strings.TrimSpace(strings.NewReplacer("\r", "", "\n", "").Replace(s))
}

// expandPath expands a leading ~ and then $VAR / ${VAR} (left as they are when unset), as
// Python's os.path.expandvars(os.path.expanduser(...)) does.
func expandPath(p string) string {
	if p == "~" || strings.HasPrefix(p, "~/") || strings.HasPrefix(p, "~"+string(filepath.Separator)) {
		if h, err := os.UserHomeDir(); err == nil {
			p = h + p[1:]
		}
	}
	return os.Expand(p, func(name string) string {
		if v, ok := os.LookupEnv(name); ok {
			return v
		}
		return "${" + name + "}"
	})
}

// SetToken sets the access token (instead of HF_TOKEN).
func (c *Client) SetToken(token string) { c.token = cleanToken(token) }

var reRepoID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$`)

// IsRepoID reports whether s looks like a hub repository id ("org/name" or "name").
func IsRepoID(s string) bool { return reRepoID.MatchString(s) && !strings.Contains(s, "..") }

// repoFolder is models--{org}--{name}, the repository's folder name in the cache.
func repoFolder(repoID string) string { return "models--" + strings.ReplaceAll(repoID, "/", "--") }

// repoDir is the repository's folder in the cache.
func (c *Client) repoDir(repoID string) string { return filepath.Join(c.CacheDir, repoFolder(repoID)) }

var reCommit = regexp.MustCompile(`^[0-9a-f]{40}$`)

// Error kinds a caller can test with errors.Is. ErrRepoNotFound, ErrRevisionNotFound and
// ErrEntryNotFound are also ErrNotFound.
var (
	ErrNotFound         = errors.New("not found on the hub")
	ErrRepoNotFound     = errors.New("repository not found: check the id (a private repository needs HF_TOKEN)")
	ErrRevisionNotFound = errors.New("revision not found")
	ErrEntryNotFound    = errors.New("file not found in the repository")
	ErrGated            = errors.New("gated repository: ask for access on its page, then set HF_TOKEN to a token of the account that has it")
	ErrInvalidToken     = errors.New("the hub refused the token: check HF_TOKEN")
	ErrRateLimited      = errors.New("rate limited by the hub")
	ErrOffline          = errors.New("offline (HF_HUB_OFFLINE=1) and not in the cache")
	ErrChecksum         = errors.New("checksum mismatch")
)
