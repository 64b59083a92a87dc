package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gonb-gpt/tutorial/lib/progress"
)

// HTTPError is an unwanted answer of the hub, with what it said (X-Error-Code, X-Error-Message or
// the body's "error"). errors.Is tells its kind: ErrRepoNotFound, ErrGated, ErrRateLimited...
type HTTPError struct {
	Status  int
	Code    string
	Message string
	// What names the object asked for: "repo X", "file F in repo X at revision R".
	What string
	// RetryAfter is how long the hub asked to wait (429).
	RetryAfter time.Duration
	// Limit describes a rate limit ("resolvers": 0 of 3000 requests left in a 300 s window).
	Limit string
}

func (e *HTTPError) Error() string {
	msg := fmt.Sprintf("%s: %d %s", e.What, e.Status, http.StatusText(e.Status))
	if e.Message != "" {
		msg += fmt.Sprintf(" (the hub says: %q)", e.Message)
	}
	if e.Limit != "" {
		msg += " — " + e.Limit
	}
	if kinds := e.Unwrap(); len(kinds) > 0 {
		msg += ": " + kinds[0].Error()
	}
	return msg
}

// Unwrap gives the error's kinds, as huggingface_hub's hf_raise_for_status classifies answers.
func (e *HTTPError) Unwrap() []error {
	switch {
	case e.Code == "RevisionNotFound":
		return []error{ErrRevisionNotFound, ErrNotFound}
	case e.Code == "EntryNotFound":
		return []error{ErrEntryNotFound, ErrNotFound}
	case e.Code == "GatedRepo":
		return []error{ErrGated}
	case e.Code == "RepoNotFound":
		return []error{ErrRepoNotFound, ErrNotFound}
	case e.Status == http.StatusUnauthorized && e.Message == "Invalid credentials in Authorization header":
		return []error{ErrInvalidToken}
	case e.Status == http.StatusUnauthorized:
		// The hub answers 401 for a repository that does not exist (or is private) when asked
		// anonymously, sometimes without an error code.
		return []error{ErrRepoNotFound, ErrNotFound}
	case e.Status == http.StatusTooManyRequests:
		return []error{ErrRateLimited}
	case e.Status == http.StatusNotFound:
		return []error{ErrNotFound}
	}
	return nil
}

// httpError reads an error answer (the body is read, at most 4 KiB, and closed by the caller).
func httpError(resp *http.Response, what string) *HTTPError {
	e := &HTTPError{Status: resp.StatusCode, Code: resp.Header.Get("X-Error-Code"),
		Message: resp.Header.Get("X-Error-Message"), What: what}
	if e.Message == "" && resp.Request != nil && resp.Request.Method != http.MethodHead {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		var j struct {
			Error any `json:"error"`
		}
		if json.Unmarshal(body, &j) == nil && j.Error != nil {
			e.Message = fmt.Sprint(j.Error)
		}
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		e.RetryAfter, e.Limit = rateLimitWait(resp.Header)
	}
	return e
}

var (
	reRateLimit       = regexp.MustCompile(`^\s*"?([^";]*)"?\s*;.*\br\s*=\s*(\d+)\s*;\s*t\s*=\s*(\d+)`)
	reRateLimitPolicy = regexp.MustCompile(`q\s*=\s*(\d+).*?w\s*=\s*(\d+)`)
)

// rateLimitWait reads how long a 429 asks to wait: RateLimit's t= (seconds until the window ends,
// as huggingface_hub's parse_ratelimit_headers reads it, plus one second), else Retry-After.
func rateLimitWait(h http.Header) (time.Duration, string) {
	if m := reRateLimit.FindStringSubmatch(h.Get("RateLimit")); m != nil {
		t, _ := strconv.Atoi(m[3])
		limit := fmt.Sprintf("rate limit %q: %s requests left, the window resets in %d s", m[1], m[2], t)
		if p := reRateLimitPolicy.FindStringSubmatch(h.Get("RateLimit-Policy")); p != nil {
			limit = fmt.Sprintf("rate limit %q: %s of %s requests left in a %s s window, which resets in %d s", m[1], m[2], p[1], p[2], t)
		}
		return time.Duration(t+1) * time.Second, limit
	}
	if s, err := strconv.Atoi(strings.TrimSpace(h.Get("Retry-After"))); err == nil && s >= 0 {
		return time.Duration(s) * time.Second, fmt.Sprintf("retry after %d s", s)
	}
	return 0, ""
}

// hubHost reports whether a redirect to u stays on the hub: the host of the request that was
// redirected, the endpoint's, or a known hub host. huggingface_hub PR 4739 follows exactly those,
// and sends the token only there.
func (c *Client) hubHost(from, u *url.URL) bool {
	h := strings.ToLower(u.Host)
	if h == strings.ToLower(from.Host) {
		return true
	}
	if e, err := url.Parse(c.Endpoint); err == nil && h == strings.ToLower(e.Host) {
		return true
	}
	return h == "huggingface.co" || h == "hf.co"
}

func (c *Client) authorize(req *http.Request) {
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
}

func (c *Client) newRequest(ctx context.Context, method, u string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", c.UserAgent)
	// Bytes as stored: the checksums are of the file, not of a compressed transfer.
	req.Header.Set("Accept-Encoding", "identity")
	c.authorize(req)
	return req, nil
}

// httpClient returns a client whose connections and answers time out after timeout. With
// stayOnHub, redirects are followed only while they stay on the hub (metadata: the answer that
// leaves it carries the file's metadata); otherwise every redirect is followed and the token is
// dropped as soon as one leaves the hub (downloads from storage). Clients are made once per
// timeout and kind, so requests of one Client share connections.
func (c *Client) httpClient(timeout time.Duration, stayOnHub bool) *http.Client {
	key := clientKey{timeout, stayOnHub}
	c.mu.Lock()
	defer c.mu.Unlock()
	if hc, ok := c.clients[key]; ok {
		return hc
	}
	if c.clients == nil {
		c.clients = map[clientKey]*http.Client{}
	}
	c.clients[key] = c.newHTTPClient(timeout, stayOnHub)
	return c.clients[key]
}

type clientKey struct {
	timeout   time.Duration
	stayOnHub bool
}

func (c *Client) newHTTPClient(timeout time.Duration, stayOnHub bool) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext
	tr.TLSHandshakeTimeout = timeout
	tr.ResponseHeaderTimeout = timeout
	return &http.Client{Transport: tr, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) >= 10 {
			return fmt.Errorf("%d redirects from %s", len(via), via[0].URL.Redacted())
		}
		switch {
		case c.hubHost(via[0].URL, req.URL):
			c.authorize(req) // Go drops it between different hub domains (hf.co → huggingface.co)
		case stayOnHub:
			return http.ErrUseLastResponse
		default:
			// Go keeps Authorization for subdomains (hf.co → cas-bridge.xethub.hf.co): never.
			req.Header.Del("Authorization")
		}
		return nil
	}}
}

// errStalled ends a request that received nothing for a while.
var errStalled = errors.New("stalled")

// stallGuard cancels its context when no Read progressed for d. Stop it when done.
type stallGuard struct {
	r     io.Reader
	d     time.Duration
	timer *time.Timer
}

func withStallGuard(ctx context.Context, d time.Duration) (context.Context, func(io.Reader) *stallGuard, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	timer := time.AfterFunc(d, func() { cancel(errStalled) })
	wrap := func(r io.Reader) *stallGuard { return &stallGuard{r, d, timer} }
	return ctx, wrap, func() { timer.Stop(); cancel(nil) }
}

func (g *stallGuard) Read(p []byte) (int, error) {
	n, err := g.r.Read(p)
	if n > 0 {
		g.timer.Reset(g.d)
	}
	return n, err
}

// stallError turns the cancellation of a stalled request into a retryable error.
func stallError(ctx, reqCtx context.Context, err error, d time.Duration) error {
	if ctx.Err() == nil && errors.Is(context.Cause(reqCtx), errStalled) {
		return &net.OpError{Op: "read", Err: fmt.Errorf("no data for %s (HF_HUB_DOWNLOAD_TIMEOUT / HF_HUB_ETAG_TIMEOUT): %w", d, errStalled)}
	}
	return err
}

func cleanURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// retryable: network trouble and 5xx (429 is waited out separately).
func retryable(err error) bool {
	var he *HTTPError
	if errors.As(err, &he) {
		return he.Status >= 500 || he.Status == http.StatusRequestTimeout
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, ErrChecksum) {
		return false
	}
	var ne net.Error
	var oe *net.OpError
	return errors.As(err, &ne) || errors.As(err, &oe) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)
}

// retry runs fn until it succeeds. Network errors and 5xx are retried c.Retries times with
// exponential backoff — the count starts over whenever an attempt made progress (bytes arrived) —
// and 429s are waited out as the hub says, c.RateLimitWaits times in a row, with a countdown.
// retries < 0 means c.Retries.
func (c *Client) retry(ctx context.Context, retries int, fn func() (progressed bool, err error)) error {
	if retries < 0 {
		retries = c.Retries
	}
	wait := c.Backoff
	if wait <= 0 {
		wait = time.Second
	}
	attempt, limited := 0, 0
	for {
		progressed, err := fn()
		if err == nil {
			return nil
		}
		if progressed {
			attempt, wait = 0, max(c.Backoff, time.Millisecond)
		}
		var he *HTTPError
		if errors.As(err, &he) && he.Status == http.StatusTooManyRequests {
			if limited >= c.RateLimitWaits {
				return err
			}
			limited++
			d := he.RetryAfter
			if d <= 0 {
				d = wait
			}
			if d > c.MaxRateLimitWait {
				return fmt.Errorf("%w (the hub asks to wait %s, more than %s)", err, d, c.MaxRateLimitWait)
			}
			if err := c.waitRateLimit(ctx, d, he); err != nil {
				return err
			}
			continue
		}
		if !retryable(err) || attempt >= retries {
			return err
		}
		attempt++
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 30*time.Second)
	}
}

// waitRateLimit waits d, counting the seconds down on c.Progress.
func (c *Client) waitRateLimit(ctx context.Context, d time.Duration, he *HTTPError) error {
	limit := he.Limit
	if limit == "" {
		limit = "no RateLimit header"
	}
	if c.Progress != nil {
		fmt.Fprintf(c.Progress, "hub: 429 Too Many Requests for %s (%s): waiting %s, as the hub asks\n", he.What, limit, d.Round(time.Second))
	}
	secs := int64(d / time.Second)
	bar := progress.Count(c.Progress, max(secs, 1), "waiting for the rate limit (s)")
	defer bar.Finish()
	done := time.NewTimer(d)
	defer done.Stop()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-done.C:
			return nil
		case <-tick.C:
			bar.Add(1)
		}
	}
}
