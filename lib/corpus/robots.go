package corpus

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/temoto/robotstxt"

	"github.com/gonb-gpt/tutorial/lib/fileutil"
)

// robotsTTL is how long a cached robots.txt is used: RFC 9309 §2.4 asks crawlers not to use a
// cached copy for more than 24 hours, unless robots.txt cannot be reached.
const robotsTTL = 24 * time.Hour

// robotsRules is what a host's robots.txt says to this fetcher's user agent.
type robotsRules struct {
	group      *robotstxt.Group // nil: everything is allowed
	crawlDelay time.Duration
	warning    string
}

func (r *robotsRules) allows(u *url.URL) bool {
	if r.group == nil {
		return true
	}
	p := u.EscapedPath()
	if p == "" {
		p = "/"
	}
	if u.RawQuery != "" {
		p += "?" + u.RawQuery
	}
	return r.group.Test(p)
}

// agentToken is the product token of a User-Agent ("gonb-gpt-tutorial" of
// "gonb-gpt-tutorial/1.0 (...)"), the name robots.txt groups name (RFC 9309 §2.2.1).
func agentToken(ua string) string {
	if i := strings.IndexAny(ua, "/ "); i >= 0 {
		return ua[:i]
	}
	return ua
}

// robotsCache is a robots.txt as stored in the cache.
type robotsCache struct {
	URL     string    `json:"url"`
	Status  int       `json:"status"`
	Body    []byte    `json:"body"`
	Fetched time.Time `json:"fetched"`
}

func (f *Fetcher) robotsCachePath(robotsURL string) string {
	sum := sha256.Sum256([]byte(robotsURL))
	return filepath.Join(f.CacheDir, "robots", hex.EncodeToString(sum[:8])+".json")
}

// rules reads the rules for this fetcher's user agent out of a robots.txt response, as RFC 9309
// §2.3.1 says: a 2xx is parsed, a 4xx means there are no rules.
func (f *Fetcher) rules(host string, status int, body []byte) *robotsRules {
	if status < 200 || status >= 300 {
		return &robotsRules{}
	}
	data, err := robotstxt.FromBytes(body)
	if err != nil {
		// RFC 9309 §2.2 asks parsers to be lenient; this one is not, so the file is not obeyed.
		return &robotsRules{warning: fmt.Sprintf("robots.txt of %s does not parse (%v): not obeyed; the default delay applies", host, err)}
	}
	g := data.FindGroup(agentToken(f.userAgent()))
	return &robotsRules{group: g, crawlDelay: g.CrawlDelay}
}

// readRobots returns the rules of target's host, from the cache when read less than a day ago,
// else from the host (the caller holds the host's turn). A robots.txt that cannot be read (a 5xx,
// 429 or a transport error) is an error, retried like a page: RFC 9309 §2.3.1.4 says to assume
// a complete disallow then. A stale cached copy is used instead when there is one.
func (f *Fetcher) readRobots(ctx context.Context, h *hostState, target *url.URL, timeout time.Duration) (*robotsRules, error) {
	robotsURL := (&url.URL{Scheme: target.Scheme, Host: target.Host, Path: "/robots.txt"}).String()
	var cached *robotsCache
	cachePath := ""
	if f.CacheDir != "" {
		cachePath = f.robotsCachePath(robotsURL)
		if data, err := os.ReadFile(cachePath); err == nil {
			var c robotsCache
			if json.Unmarshal(data, &c) == nil {
				cached = &c
				if time.Since(c.Fetched) < robotsTTL {
					return f.rules(target.Host, c.Status, c.Body), nil
				}
			}
		}
	}
	if err := h.waitNext(ctx); err != nil {
		return nil, fmt.Errorf("GET %s: %w", robotsURL, err)
	}
	status, body, err := f.getRobots(ctx, robotsURL, timeout)
	var rules *robotsRules
	if err == nil {
		rules = f.rules(target.Host, status, body)
	}
	h.next = time.Now().Add(f.delay(rules))
	if err != nil {
		if cached != nil {
			r := f.rules(target.Host, cached.Status, cached.Body)
			r.warning = fmt.Sprintf("%v: used the copy read %s", err, cached.Fetched.Format(time.RFC3339))
			return r, nil
		}
		return nil, err
	}
	if cachePath != "" {
		data, _ := json.Marshal(robotsCache{URL: robotsURL, Status: status, Body: body, Fetched: time.Now().UTC()})
		if err := os.MkdirAll(filepath.Dir(cachePath), 0o755); err != nil {
			return nil, fmt.Errorf("cache for %s: %w", robotsURL, err)
		}
		if err := fileutil.WriteFileAtomic(cachePath, data, 0o644); err != nil {
			return nil, fmt.Errorf("cache for %s: %w", robotsURL, err)
		}
	}
	return rules, nil
}

// getRobots gets a robots.txt (following redirects as the client does: RFC 9309 §2.3.1.2 asks for
// at least five). A 5xx or 429 is an *HTTPError.
func (f *Fetcher) getRobots(ctx context.Context, robotsURL string, timeout time.Duration) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := f.get(ctx, f.client(), robotsURL)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	// RFC 9309 §2.5: at least 500 KiB are parsed; more is ignored.
	body, err := io.ReadAll(io.LimitReader(resp.Body, 512<<10))
	if err != nil {
		return 0, nil, fmt.Errorf("GET %s: %w", robotsURL, err)
	}
	if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
		return 0, nil, newHTTPError(robotsURL, resp, body)
	}
	return resp.StatusCode, body, nil
}
