package corpus

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/gonb-gpt/tutorial/lib/fileutil"
)

// DefaultURLs are the eight az.lib.ru pages the tutorial downloads.
var DefaultURLs = []string{
	"http://az.lib.ru/t/tolstoj_lew_nikolaewich/text_0039.shtml",
	"http://az.lib.ru/t/tolstoj_lew_nikolaewich/text_0040.shtml",
	"http://az.lib.ru/t/tolstoj_lew_nikolaewich/text_0050.shtml",
	"http://az.lib.ru/t/tolstoj_lew_nikolaewich/text_0060.shtml",
	"http://az.lib.ru/t/tolstoj_lew_nikolaewich/text_0070.shtml",
	"http://az.lib.ru/t/tolstoj_lew_nikolaewich/text_0080.shtml",
	"http://az.lib.ru/t/tolstoj_lew_nikolaewich/text_0090.shtml",
	"http://az.lib.ru/t/tolstoj_lew_nikolaewich/text_1860_dekabristy.shtml",
}

// DefaultUserAgent identifies the downloader to the site.
const DefaultUserAgent = "gonb-gpt-tutorial/1.0 (+lib.ru corpus for a GPT-2 tutorial; polite, cached)"

// Fetcher downloads pages politely: a concurrency limit, a delay between requests, retries with
// exponential backoff on time-outs, broken transfers, 5xx and 429 (honouring Retry-After), and an
// on-disk cache so that a page is downloaded once. The zero value works with the defaults.
type Fetcher struct {
	// Client is the HTTP client (default: a client whose transport asks for gzip and decodes it).
	Client *http.Client
	// UserAgent is sent with every request (default DefaultUserAgent).
	UserAgent string
	// BaseURL, when set, replaces the scheme and host of every URL (a mirror, e.g. a local server
	// of ../shared/libru-mirror): "http://127.0.0.1:8080/t/x.shtml" for "http://az.lib.ru/t/x.shtml".
	// A path in BaseURL is prepended to the URL's path.
	BaseURL string
	// CacheDir keeps downloaded pages ("" disables the cache).
	CacheDir string
	// Refresh downloads again even when a page is cached.
	Refresh bool
	// Timeout bounds each request, body included (default 60 s).
	Timeout time.Duration
	// Retries is the number of retries after the first try (default 4).
	Retries int
	// Backoff is the first retry's wait, doubled at each retry (default 1 s).
	Backoff time.Duration
	// MaxRetryAfter caps the wait a server asks for in Retry-After (default 2 min).
	MaxRetryAfter time.Duration
	// Concurrency is the number of downloads at once (default 2).
	Concurrency int
	// Delay is the pause between the starts of two requests (default 500 ms; negative: none).
	Delay time.Duration

	mu        sync.Mutex
	lastStart time.Time
}

// Page is a downloaded page.
type Page struct {
	// URL is the URL asked for; Fetched the one actually requested (after BaseURL).
	URL, Fetched string
	Body         []byte
	ContentType  string
	// FromCache is true when the page came from the cache.
	FromCache bool
}

func (f *Fetcher) defaults() (timeout, backoff, maxRetryAfter time.Duration, retries int) {
	timeout, backoff, maxRetryAfter, retries = f.Timeout, f.Backoff, f.MaxRetryAfter, f.Retries
	if timeout == 0 {
		timeout = time.Minute
	}
	if backoff == 0 {
		backoff = time.Second
	}
	if maxRetryAfter == 0 {
		maxRetryAfter = 2 * time.Minute
	}
	if retries == 0 {
		retries = 4
	} else if retries < 0 {
		retries = 0
	}
	return
}

// Resolve returns the URL that is requested for u (u itself, or u on BaseURL).
func (f *Fetcher) Resolve(u string) (string, error) {
	parsed, err := url.Parse(u)
	if err != nil || parsed.Scheme == "" || parsed.Host == "" {
		return "", fmt.Errorf("invalid URL %q", u)
	}
	if f.BaseURL == "" {
		return parsed.String(), nil
	}
	base, err := url.Parse(f.BaseURL)
	if err != nil || base.Scheme == "" || base.Host == "" {
		return "", fmt.Errorf("invalid base URL %q", f.BaseURL)
	}
	parsed.Scheme, parsed.Host = base.Scheme, base.Host
	parsed.Path = path.Join("/", base.Path, parsed.Path)
	return parsed.String(), nil
}

// cacheMeta is stored next to a cached page.
type cacheMeta struct {
	URL         string    `json:"url"`
	ContentType string    `json:"content_type"`
	Fetched     time.Time `json:"fetched"`
}

func (f *Fetcher) cachePaths(fetched string) (body, meta string) {
	sum := sha256.Sum256([]byte(fetched))
	name := hex.EncodeToString(sum[:8]) + "-" + path.Base(fetched)
	return filepath.Join(f.CacheDir, name), filepath.Join(f.CacheDir, name+".json")
}

// Fetch downloads one page (or reads it from the cache).
func (f *Fetcher) Fetch(ctx context.Context, u string) (*Page, error) {
	fetched, err := f.Resolve(u)
	if err != nil {
		return nil, err
	}
	page := &Page{URL: u, Fetched: fetched}
	var bodyPath, metaPath string
	if f.CacheDir != "" {
		bodyPath, metaPath = f.cachePaths(fetched)
		if !f.Refresh {
			if body, err := os.ReadFile(bodyPath); err == nil {
				var meta cacheMeta
				if data, err := os.ReadFile(metaPath); err == nil && json.Unmarshal(data, &meta) == nil {
					page.Body, page.ContentType, page.FromCache = body, meta.ContentType, true
					return page, nil
				}
			}
		}
	}
	page.Body, page.ContentType, err = f.download(ctx, fetched)
	if err != nil {
		return nil, err
	}
	if f.CacheDir != "" {
		if err := os.MkdirAll(f.CacheDir, 0o755); err != nil {
			return nil, fmt.Errorf("cache for %s: %w", u, err)
		}
		meta, _ := json.Marshal(cacheMeta{URL: fetched, ContentType: page.ContentType, Fetched: time.Now().UTC()})
		// The body first, then the metadata: a page counts as cached only when both are there.
		if err := fileutil.WriteFileAtomic(bodyPath, page.Body, 0o644); err != nil {
			return nil, fmt.Errorf("cache for %s: %w", u, err)
		}
		if err := fileutil.WriteFileAtomic(metaPath, meta, 0o644); err != nil {
			return nil, fmt.Errorf("cache for %s: %w", u, err)
		}
	}
	return page, nil
}

// httpError is a response with an unwanted status.
type httpError struct {
	url        string
	status     int
	retryAfter time.Duration
}

func (e *httpError) Error() string {
	return fmt.Sprintf("GET %s: %d %s", e.url, e.status, http.StatusText(e.status))
}

// retryable reports whether a failed try is worth another one.
func retryable(err error) bool {
	var he *httpError
	if errors.As(err, &he) {
		return he.status == http.StatusTooManyRequests || he.status >= 500
	}
	if errors.Is(err, context.Canceled) {
		return false
	}
	// Time-outs, refused or reset connections, bodies cut short: transport errors are transient.
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, context.DeadlineExceeded) || isConnError(err)
}

// isConnError is a refused, reset or broken connection.
func isConnError(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.EPIPE)
}

// download gets a URL with retries.
func (f *Fetcher) download(ctx context.Context, u string) (body []byte, contentType string, err error) {
	timeout, backoff, maxRetryAfter, retries := f.defaults()
	wait := backoff
	for attempt := 0; ; attempt++ {
		body, contentType, err = f.try(ctx, u, timeout)
		if err == nil {
			return body, contentType, nil
		}
		if attempt >= retries || !retryable(err) || ctx.Err() != nil {
			if attempt > 0 {
				return nil, "", fmt.Errorf("%w (gave up after %d tries)", err, attempt+1)
			}
			return nil, "", err
		}
		pause := wait
		var he *httpError
		if errors.As(err, &he) && he.retryAfter > 0 {
			pause = min(he.retryAfter, maxRetryAfter)
		}
		select {
		case <-ctx.Done():
			return nil, "", fmt.Errorf("GET %s: %w", u, ctx.Err())
		case <-time.After(pause):
		}
		wait *= 2
	}
}

// politeWait spaces the starts of requests by Delay.
func (f *Fetcher) politeWait(ctx context.Context) error {
	delay := f.Delay
	if delay == 0 {
		delay = 500 * time.Millisecond
	}
	if delay < 0 {
		return nil
	}
	f.mu.Lock()
	next := f.lastStart.Add(delay)
	now := time.Now()
	if next.Before(now) {
		next = now
	}
	f.lastStart = next
	f.mu.Unlock()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(time.Until(next)):
		return nil
	}
}

// try makes one request.
func (f *Fetcher) try(ctx context.Context, u string, timeout time.Duration) ([]byte, string, error) {
	if err := f.politeWait(ctx); err != nil {
		return nil, "", fmt.Errorf("GET %s: %w", u, err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, "", fmt.Errorf("GET %s: %w", u, err)
	}
	ua := f.UserAgent
	if ua == "" {
		ua = DefaultUserAgent
	}
	req.Header.Set("User-Agent", ua)
	client := f.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its text repeats the URL
		}
		return nil, "", fmt.Errorf("GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		return nil, "", &httpError{url: u, status: resp.StatusCode, retryAfter: parseRetryAfter(resp.Header.Get("Retry-After"))}
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, "", fmt.Errorf("GET %s: reading the body after %d bytes: %w", u, len(body), err)
	}
	if resp.ContentLength >= 0 && int64(len(body)) != resp.ContentLength && !resp.Uncompressed {
		return nil, "", fmt.Errorf("GET %s: got %d bytes of %d: %w", u, len(body), resp.ContentLength, io.ErrUnexpectedEOF)
	}
	return body, resp.Header.Get("Content-Type"), nil
}

// parseRetryAfter reads Retry-After as seconds or an HTTP date (0 when absent or invalid).
func parseRetryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d
		}
	}
	return 0
}
