// Package hub downloads model repositories from the Hugging Face hub into the same cache that
// Python's huggingface_hub uses, so that Python and Go share one copy of a model:
//
//	$HF_HUB_CACHE (default $HF_HOME/hub, default ~/.cache/huggingface/hub)
//	  models--{org}--{name}/
//	    blobs/{etag}                      the files' content, named by ETag (sha256 for LFS files)
//	    snapshots/{commit}/{filename}     relative symbolic links to the blobs
//	    refs/{revision}                   the commit a branch or tag pointed to
//
// It honours HF_ENDPOINT (mirrors), HF_TOKEN (or $HF_HOME/token; sent as a bearer token and never
// printed) and HF_HUB_OFFLINE=1 (everything from the cache, no network). Downloads resume from a
// blobs/{etag}.incomplete file with an HTTP Range request, are checked against their ETag (sha256
// for LFS files, the git blob hash otherwise), retried with backoff, run several files at once, and
// show a progress bar; a file appears in snapshots/ only once complete and verified.
//
// go-huggingface's hub package writes the same layout but ignores HF_HOME and HF_TOKEN, has no
// offline mode, keeps info/<rev> instead of refs/<rev> and does not verify checksums; this package
// implements the protocol itself instead of wrapping it.
package hub

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
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
	// Offline forbids network access (HF_HUB_OFFLINE).
	Offline bool
	// token is sent as "Authorization: Bearer"; never printed.
	token string
	// Retries and Backoff configure retries of failed requests (defaults 4 and 1 s).
	Retries int
	Backoff time.Duration
	// Concurrency is the number of files downloaded at once (default 4).
	Concurrency int
	// Progress receives progress bars (nil: none).
	Progress interface{ Write([]byte) (int, error) }
	// UserAgent is sent with requests.
	UserAgent string
}

// New returns a client configured from the environment, as huggingface_hub is.
func New() *Client {
	c := &Client{Endpoint: DefaultEndpoint, Retries: 4, Backoff: time.Second, Concurrency: 4,
		UserAgent: "gonb-gpt-tutorial/1.0; hf_hub-compatible"}
	if e := strings.TrimRight(os.Getenv("HF_ENDPOINT"), "/"); e != "" {
		c.Endpoint = e
	}
	home := os.Getenv("HF_HOME")
	if home == "" {
		xdg := os.Getenv("XDG_CACHE_HOME")
		if xdg == "" {
			if h, err := os.UserHomeDir(); err == nil {
				xdg = filepath.Join(h, ".cache")
			}
		}
		home = filepath.Join(xdg, "huggingface")
	}
	c.CacheDir = os.Getenv("HF_HUB_CACHE")
	if c.CacheDir == "" {
		c.CacheDir = os.Getenv("HUGGINGFACE_HUB_CACHE")
	}
	if c.CacheDir == "" {
		c.CacheDir = filepath.Join(home, "hub")
	}
	c.Offline = envflag.True(os.Getenv("HF_HUB_OFFLINE"))
	c.token = os.Getenv("HF_TOKEN")
	if c.token == "" {
		c.token = os.Getenv("HUGGING_FACE_HUB_TOKEN")
	}
	if c.token == "" {
		if data, err := os.ReadFile(filepath.Join(home, "token")); err == nil {
			c.token = strings.TrimSpace(string(data))
		}
	}
	return c
}

// SetToken sets the access token (instead of HF_TOKEN).
func (c *Client) SetToken(token string) { c.token = token }

var reRepoID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$`)

// IsRepoID reports whether s looks like a hub repository id ("org/name" or "name").
func IsRepoID(s string) bool { return reRepoID.MatchString(s) && !strings.Contains(s, "..") }

// repoDir is models--{org}--{name} in the cache.
func (c *Client) repoDir(repoID string) string {
	return filepath.Join(c.CacheDir, "models--"+strings.ReplaceAll(repoID, "/", "--"))
}

var reCommit = regexp.MustCompile(`^[0-9a-f]{40}$`)

// Error kinds a caller can test with errors.Is.
var (
	ErrNotFound       = errors.New("not found on the hub")
	ErrUnauthorized   = errors.New("access denied: the repository is gated or private — set HF_TOKEN to a token that has access")
	ErrOffline        = errors.New("offline (HF_HUB_OFFLINE=1) and not in the cache")
	ErrChecksum       = errors.New("checksum mismatch")
	ErrNotImplemented = errors.New("not supported")
)
