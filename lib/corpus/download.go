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

// DefaultUserAgent identifies the downloader to the site. Its product token, "gonb-gpt-tutorial",
// is the name robots.txt groups are matched against.
const DefaultUserAgent = "gonb-gpt-tutorial/1.0 (+lib.ru corpus for a GPT-2 tutorial; polite, cached)"

// DefaultDelay is the pause between two requests to one host: lib.ru asks for at least 3 s.
const DefaultDelay = 3 * time.Second

// maxRedirects is how many redirects one request follows (as Go's http.Client does by default).
const maxRedirects = 10

// Fetcher downloads pages as lib.ru asks to be crawled. Before the first request to a host it reads
// the host's robots.txt (cached for a day) and obeys it: Disallow rules for its user agent, and
// Crawl-delay. It makes one request at a time per host and waits Delay (or the Crawl-delay, when
// longer) between the end of one request and the start of the next, redirect hops and retries
// included. It retries with exponential backoff on time-outs, broken transfers, 5xx and 429,
// honouring Retry-After for every request to that host. It follows redirects one hop at a time
// under the same rules and records where a page came from. Pages are cached on disk under the URL
// asked for, so a page is downloaded once. The zero value works with the defaults.
type Fetcher struct {
	// Client is the HTTP client (default http.DefaultClient, whose transport asks for gzip and
	// decodes it). Its redirect policy is used for robots.txt only; pages follow redirects here.
	Client *http.Client
	// UserAgent is sent with every request (default DefaultUserAgent).
	UserAgent string
	// BaseURL, when set, replaces the scheme and host of every URL (a mirror, e.g. a local server
	// of ../shared/libru-mirror): "http://127.0.0.1:8080/t/x.shtml" for "http://az.lib.ru/t/x.shtml".
	// A path in BaseURL is prepended to the URL's path.
	BaseURL string
	// CacheDir keeps downloaded pages and robots.txt files ("" disables the cache).
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
	// Concurrency is the number of pages processed at once by Scrape (default 2); requests to one
	// host are made one at a time all the same.
	Concurrency int
	// Delay is the pause between two requests to one host, from the end of one to the start of the
	// next (default DefaultDelay; negative: none). A longer Crawl-delay in robots.txt wins.
	Delay time.Duration

	mu    sync.Mutex
	hosts map[string]*hostState
}

// Page is a downloaded page.
type Page struct {
	// URL is the URL asked for; Fetched the one requested for it (after BaseURL); Final the one
	// the body came from, after redirects.
	URL, Fetched, Final string
	Body                []byte
	ContentType         string
	// FromCache is true when the page came from the cache.
	FromCache bool
	// Warnings are things worth telling about the page's host (an unreadable robots.txt).
	Warnings []string
}

// HTTPError is a response with a status other than 200 and not a redirect.
type HTTPError struct {
	URL    string
	Status int
	// Body is the start of the response (up to 4 KiB) and ContentType its type: a block or a
	// challenge page tells itself apart from a missing page there.
	Body        []byte
	ContentType string
	// RetryAfter is the wait the server asked for (0 when it did not).
	RetryAfter time.Duration
}

func (e *HTTPError) Error() string {
	s := fmt.Sprintf("GET %s: %d %s", e.URL, e.Status, http.StatusText(e.Status))
	if t := excerpt(e.Body, e.ContentType, 200); t != "" {
		s += fmt.Sprintf("; the response reads %q", t)
	}
	return s
}

// ErrDisallowed is returned for a URL that the host's robots.txt disallows for this user agent.
var ErrDisallowed = errors.New("disallowed by robots.txt")

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

func (f *Fetcher) userAgent() string {
	if f.UserAgent == "" {
		return DefaultUserAgent
	}
	return f.UserAgent
}

func (f *Fetcher) client() *http.Client {
	if f.Client == nil {
		return http.DefaultClient
	}
	return f.Client
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
	Final       string    `json:"final_url,omitempty"`
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
	return f.FetchChecked(ctx, u, nil)
}

// FetchChecked is Fetch with a check of the page's content, made before a downloaded page is
// cached and on a cached page before it is used. A cached page that fails the check is downloaded
// again. A downloaded page that fails it is not cached; when the check's error wraps
// io.ErrUnexpectedEOF (a body cut short) the download is retried like a broken transfer.
func (f *Fetcher) FetchChecked(ctx context.Context, u string, check func(body []byte, contentType string) error) (*Page, error) {
	fetched, err := f.Resolve(u)
	if err != nil {
		return nil, err
	}
	page := &Page{URL: u, Fetched: fetched, Final: fetched}
	var bodyPath, metaPath string
	if f.CacheDir != "" {
		bodyPath, metaPath = f.cachePaths(fetched)
		if !f.Refresh {
			if body, err := os.ReadFile(bodyPath); err == nil {
				var meta cacheMeta
				if data, err := os.ReadFile(metaPath); err == nil && json.Unmarshal(data, &meta) == nil &&
					(check == nil || check(body, meta.ContentType) == nil) {
					page.Body, page.ContentType, page.FromCache = body, meta.ContentType, true
					if meta.Final != "" {
						page.Final = meta.Final
					}
					return page, nil
				}
			}
		}
	}
	if err := f.download(ctx, page, check); err != nil {
		return nil, err
	}
	if f.CacheDir != "" {
		if err := os.MkdirAll(f.CacheDir, 0o755); err != nil {
			return nil, fmt.Errorf("cache for %s: %w", u, err)
		}
		meta, _ := json.Marshal(cacheMeta{URL: fetched, Final: page.Final, ContentType: page.ContentType, Fetched: time.Now().UTC()})
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

// retryable reports whether a failed try is worth another one.
func retryable(err error) bool {
	var he *HTTPError
	if errors.As(err, &he) {
		return he.Status == http.StatusTooManyRequests || he.Status >= 500
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, ErrDisallowed) {
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

// download gets page.Fetched with retries, filling the page.
func (f *Fetcher) download(ctx context.Context, page *Page, check func([]byte, string) error) error {
	timeout, backoff, maxRetryAfter, retries := f.defaults()
	wait := backoff
	for attempt := 0; ; attempt++ {
		err := f.try(ctx, page, timeout, maxRetryAfter)
		if err == nil && check != nil {
			if cerr := check(page.Body, page.ContentType); cerr != nil {
				err = fmt.Errorf("GET %s: %w", page.Final, cerr)
			}
		}
		if err == nil {
			return nil
		}
		if attempt >= retries || !retryable(err) || ctx.Err() != nil {
			if attempt > 0 {
				return fmt.Errorf("%w (gave up after %d tries)", err, attempt+1)
			}
			return err
		}
		pause := wait
		if retryAfter(err) > 0 {
			pause = 0 // the host's next request already waits for it
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("GET %s: %w", page.Fetched, ctx.Err())
		case <-time.After(pause):
		}
		wait *= 2
	}
}

// hostState orders the requests to one host: one at a time, spaced by the delay.
type hostState struct {
	turn chan struct{} // holds a token while a request to the host is being made
	// Guarded by turn:
	next   time.Time    // the earliest start of the next request
	robots *robotsRules // nil until robots.txt was read
}

func (f *Fetcher) host(hostport string) *hostState {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.hosts == nil {
		f.hosts = map[string]*hostState{}
	}
	h := f.hosts[hostport]
	if h == nil {
		h = &hostState{turn: make(chan struct{}, 1)}
		f.hosts[hostport] = h
	}
	return h
}

// acquire waits for the host's turn.
func (h *hostState) acquire(ctx context.Context) error {
	select {
	case h.turn <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *hostState) release() { <-h.turn }

// waitNext sleeps until the host may be asked again; the caller holds the turn.
func (h *hostState) waitNext(ctx context.Context) error {
	d := time.Until(h.next)
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// delay is the pause after a request to a host whose robots.txt gave rules.
func (f *Fetcher) delay(rules *robotsRules) time.Duration {
	d := f.Delay
	if d == 0 {
		d = DefaultDelay
	}
	d = max(d, 0)
	if rules != nil {
		d = max(d, rules.crawlDelay)
	}
	return d
}

// try makes one request for the page, following redirects hop by hop.
func (f *Fetcher) try(ctx context.Context, page *Page, timeout, maxRetryAfter time.Duration) error {
	cur := page.Fetched
	for hop := 0; ; hop++ {
		target, err := url.Parse(cur)
		if err != nil {
			return fmt.Errorf("GET %s: %w", cur, err)
		}
		resp, err := f.hop(ctx, page, target, timeout, maxRetryAfter)
		if err != nil {
			return err
		}
		if resp.location == "" {
			page.Body, page.ContentType, page.Final = resp.body, resp.contentType, cur
			return nil
		}
		if hop >= maxRedirects {
			return fmt.Errorf("GET %s: stopped after %d redirects", page.Fetched, maxRedirects)
		}
		next, err := target.Parse(resp.location)
		if err != nil {
			return fmt.Errorf("GET %s: redirect to an invalid Location %q", cur, resp.location)
		}
		cur = next.String()
	}
}

// hopResponse is a page's body, or where it moved.
type hopResponse struct {
	body        []byte
	contentType string
	location    string
}

// hop makes one request in the host's turn: robots.txt first if not yet read, then the wait, then
// the request.
func (f *Fetcher) hop(ctx context.Context, page *Page, target *url.URL, timeout, maxRetryAfter time.Duration) (*hopResponse, error) {
	u := target.String()
	h := f.host(target.Host)
	if err := h.acquire(ctx); err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	defer h.release()
	if h.robots == nil {
		rules, err := f.readRobots(ctx, h, target, timeout)
		if err != nil {
			return nil, err
		}
		h.robots = rules
		if rules.warning != "" {
			page.Warnings = append(page.Warnings, rules.warning)
		}
	}
	if !h.robots.allows(target) {
		return nil, fmt.Errorf("GET %s: %w (User-agent: %s)", u, ErrDisallowed, agentToken(f.userAgent()))
	}
	if err := h.waitNext(ctx); err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	resp, err := f.request(ctx, u, timeout)
	h.next = time.Now().Add(max(f.delay(h.robots), min(retryAfter(err), maxRetryAfter)))
	return resp, err
}

// retryAfter is the wait a failed request's server asked for (0 when none).
func retryAfter(err error) time.Duration {
	var he *HTTPError
	if errors.As(err, &he) {
		return he.RetryAfter
	}
	return 0
}

// get makes one GET with the fetcher's User-Agent; a transport error names the URL once.
func (f *Fetcher) get(ctx context.Context, client *http.Client, u string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	req.Header.Set("User-Agent", f.userAgent())
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its text repeats the URL
		}
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	return resp, nil
}

// newHTTPError keeps the start of an unwanted response (the first 4 KiB of start).
func newHTTPError(u string, resp *http.Response, start []byte) *HTTPError {
	if len(start) > 4<<10 {
		start = start[:4<<10]
	}
	return &HTTPError{URL: u, Status: resp.StatusCode, Body: start, ContentType: resp.Header.Get("Content-Type"),
		RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"))}
}

// request makes one GET without following redirects and reads a 200's body.
func (f *Fetcher) request(ctx context.Context, u string, timeout time.Duration) (*hopResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := *f.client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := f.get(ctx, &client, u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		if loc := resp.Header.Get("Location"); loc != "" {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
			return &hopResponse{location: loc}, nil
		}
		fallthrough
	default:
		start, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		return nil, newHTTPError(u, resp, start)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("GET %s: reading the body after %d bytes: %w", u, len(body), err)
	}
	if resp.ContentLength >= 0 && int64(len(body)) != resp.ContentLength && !resp.Uncompressed {
		return nil, fmt.Errorf("GET %s: got %d bytes of %d: %w", u, len(body), resp.ContentLength, io.ErrUnexpectedEOF)
	}
	return &hopResponse{body: body, contentType: resp.Header.Get("Content-Type")}, nil
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
