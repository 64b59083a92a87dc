package corpus

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
)

// libru is a local replica of az.lib.ru as crawlers meet it (issue #17 gathers what public crawler
// scripts and reports of 2025–26 show):
//   - pages are windows-1251 and say so in the header, "text/html; charset=windows-1251", with no
//     <meta charset>; they are .shtml (server-side includes) sent without Content-Length, so a body
//     cut short ends like a whole one (here: chunked, flushed part by part);
//   - /robots.txt asks for a Crawl-delay (lib.ru's asks for 3 s; tests ask for less);
//   - it sometimes answers what is not the work: a challenge or error page with status 200, a 403
//     with an explanation in the body, an older page template without the section markers.
//
// The pages are the vendored mirror's (Казаки, Декабристы), so these tests need no ../shared. A
// test changes the answers through robots and override; the replica logs every request with its
// start and end, and the most requests it ever served at once.
type libru struct {
	*httptest.Server
	t      *testing.T
	robots string // the body of /robots.txt; "" answers 404
	// robotsStatus, when set, is the status /robots.txt answers with instead.
	robotsStatus int

	mu          sync.Mutex
	override    func(w http.ResponseWriter, r *http.Request, page []byte) bool // true: answered
	hits        []hit
	inFlight    int
	maxInFlight int
}

type hit struct {
	path       string
	start, end time.Time
}

func newLibru(t *testing.T, robots string) *libru {
	t.Helper()
	l := &libru{t: t, robots: robots}
	l.Server = httptest.NewServer(http.HandlerFunc(l.serve))
	t.Cleanup(l.Close)
	return l
}

// vendoredPage is a page of the vendored mirror ("text_0039.shtml").
func vendoredPage(t testing.TB, name string) []byte {
	t.Helper()
	b, err := fs.ReadFile(vendored, "mirror/"+name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (l *libru) setOverride(f func(w http.ResponseWriter, r *http.Request, page []byte) bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.override = f
}

func (l *libru) serve(w http.ResponseWriter, r *http.Request) {
	l.mu.Lock()
	l.inFlight++
	l.maxInFlight = max(l.maxInFlight, l.inFlight)
	override := l.override
	h := hit{path: r.URL.Path, start: time.Now()}
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		l.inFlight--
		h.end = time.Now()
		l.hits = append(l.hits, h)
		l.mu.Unlock()
	}()
	if r.URL.Path == "/robots.txt" {
		if l.robotsStatus != 0 {
			http.Error(w, http.StatusText(l.robotsStatus), l.robotsStatus)
			return
		}
		if l.robots == "" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte(l.robots))
		return
	}
	name, ok := strings.CutPrefix(r.URL.Path, MirrorPrefix)
	page, err := fs.ReadFile(vendored, "mirror/"+name)
	if !ok || err != nil {
		w.Header().Set("Content-Type", "text/html; charset=windows-1251")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write(cp1251Bytes(l.t, "<html><body><h1>Not Found</h1>The requested URL was not found on this server.</body></html>"))
		return
	}
	if override != nil && override(w, r, page) {
		return
	}
	writeSSI(w, page, len(page))
}

// writeSSI sends the first n bytes of a page as lib.ru's server does: no Content-Length, the body
// in flushed parts.
func writeSSI(w http.ResponseWriter, page []byte, n int) {
	w.Header().Set("Content-Type", "text/html; charset=windows-1251")
	w.WriteHeader(http.StatusOK)
	for i := 0; i < n; i += 64 << 10 {
		_, _ = w.Write(page[i:min(n, i+64<<10)])
		w.(http.Flusher).Flush()
	}
}

// pageHits are the logged requests for pages (robots.txt left out).
func (l *libru) pageHits() []hit {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []hit
	for _, h := range l.hits {
		if h.path != "/robots.txt" {
			out = append(out, h)
		}
	}
	return out
}

func (l *libru) allHits() []hit {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]hit(nil), l.hits...)
}

func cp1251Bytes(t testing.TB, s string) []byte {
	t.Helper()
	b, err := charmap.Windows1251.NewEncoder().Bytes([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// scrapeQuick scrapes the two vendored pages from the replica.
func scrapeQuick(t *testing.T, f *Fetcher, opts Options) (*Result, string, error) {
	t.Helper()
	opts.URLs, opts.Fetcher = QuickURLs, f
	if opts.Out == "" {
		opts.Out = filepath.Join(t.TempDir(), "dataset.txt")
	}
	var log strings.Builder
	opts.Log = &log
	res, err := Scrape(context.Background(), opts)
	return res, log.String(), err
}

// cachedPages lists the page files in a cache folder (robots.txt copies and metadata left out).
func cachedPages(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".shtml") {
			out = append(out, e.Name())
		}
	}
	return out
}

// A challenge page answered with 200 is not cached and fails with what it says; the next run
// downloads the page again. A bad page cached by an older version is not used.
func TestScrapeChallengePage(t *testing.T) {
	l := newLibru(t, "")
	challenge := cp1251Bytes(t, `<html><head><title>Проверка браузера</title><script>document.cookie="x=1";location.reload()</script></head>`+
		`<body><h1>Checking your browser before accessing az.lib.ru</h1><p>Подождите несколько секунд…</p></body></html>`)
	l.setOverride(func(w http.ResponseWriter, r *http.Request, page []byte) bool {
		w.Header().Set("Content-Type", "text/html; charset=windows-1251")
		_, _ = w.Write(challenge)
		return true
	})
	cache := t.TempDir()
	out := filepath.Join(t.TempDir(), "dataset.txt")
	_, _, err := scrapeQuick(t, fastFetcher(l.URL, cache), Options{Out: out})
	if !errors.Is(err, ErrNotWork) || !strings.Contains(err.Error(), "Проверка браузера Checking your browser before accessing az.lib.ru") ||
		strings.Contains(err.Error(), "location.reload") || !strings.Contains(err.Error(), "text_0039.shtml") {
		t.Fatalf("err = %v", err)
	}
	if got := len(l.pageHits()); got != 2 {
		t.Errorf("%d page requests, want 2 (a challenge page is not retried)", got)
	}
	if c := cachedPages(t, cache); len(c) != 0 {
		t.Errorf("the challenge page was cached: %v", c)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Error("the dataset was written")
	}

	// The next run, with the site answering again, downloads and caches the pages.
	l.setOverride(nil)
	if _, _, err := scrapeQuick(t, fastFetcher(l.URL, cache), Options{Out: out}); err != nil {
		t.Fatal(err)
	}
	if got := len(l.pageHits()); got != 4 {
		t.Errorf("%d page requests after the second run, want 4", got)
	}
	if c := cachedPages(t, cache); len(c) != 2 {
		t.Errorf("cached pages: %v", c)
	}

	// A challenge page in the cache (as an older version cached it, unchecked) is downloaded again.
	stale := t.TempDir()
	l.setOverride(func(w http.ResponseWriter, r *http.Request, page []byte) bool {
		_, _ = w.Write(challenge)
		return true
	})
	if _, err := fastFetcher(l.URL, stale).Fetch(context.Background(), QuickURLs[0]); err != nil {
		t.Fatal(err)
	}
	l.setOverride(nil)
	before := len(l.pageHits())
	res, _, err := scrapeQuick(t, fastFetcher(l.URL, stale), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Pages[0].FromCache || len(l.pageHits()) != before+2 {
		t.Errorf("the cached challenge page was used (from cache %v, %d requests)", res.Pages[0].FromCache, len(l.pageHits())-before)
	}
}

// lib.ru's older template has no section markers, only the "Собственно произведение" comment: the
// work is taken after it, with a warning, and the page is cached.
func TestScrapeOldTemplate(t *testing.T) {
	l := newLibru(t, "")
	l.setOverride(func(w http.ResponseWriter, r *http.Request, page []byte) bool {
		old := strings.NewReplacer("<!--Section Begins-->", "", "<!--Section Ends-->", "").Replace(string(page))
		writeSSI(w, []byte(old), len(old))
		return true
	})
	cache := t.TempDir()
	res, log, err := scrapeQuick(t, fastFetcher(l.URL, cache), Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range res.Pages {
		if p.Method != "work-comment" || len(p.Warnings) != 1 || p.Lines < 300 {
			t.Errorf("%s: method %s, warnings %q, %d lines", p.URL, p.Method, p.Warnings, p.Lines)
		}
	}
	if !strings.Contains(log, "older template") || len(cachedPages(t, cache)) != 2 {
		t.Errorf("no warning in the log, or not cached: %q", log)
	}
}

// A body without Content-Length that ends before <!--Section Ends--> is a download cut short:
// retried, then a clear error, and nothing cached. Cut once, the retry gets the whole page.
func TestScrapeTruncatedWithoutContentLength(t *testing.T) {
	for _, c := range []struct {
		name string
		cut  func(page []byte) int // where the body ends
		want string
	}{
		{"after the start marker", func(p []byte) int { return strings.Index(string(p), "<!--Section Begins-->") + 40<<10 }, "<!--Section Begins--> without <!--Section Ends-->"},
		{"before any marker", func(p []byte) int { return 300 }, "no work markers and no </html>"},
	} {
		t.Run(c.name, func(t *testing.T) {
			l := newLibru(t, "")
			l.setOverride(func(w http.ResponseWriter, r *http.Request, page []byte) bool {
				if r.Header.Get("Range") != "" {
					t.Error("a Range request")
				}
				writeSSI(w, page, c.cut(page))
				return true
			})
			cache := t.TempDir()
			_, _, err := scrapeQuick(t, fastFetcher(l.URL, cache), Options{})
			if !errors.Is(err, ErrTruncated) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "gave up after 3 tries") {
				t.Fatalf("err = %v", err)
			}
			if got := len(l.pageHits()); got != 6 {
				t.Errorf("%d page requests, want 3 tries of 2 pages", got)
			}
			if p := cachedPages(t, cache); len(p) != 0 {
				t.Errorf("a cut page was cached: %v", p)
			}
		})
	}
	t.Run("once", func(t *testing.T) {
		l := newLibru(t, "")
		var mu sync.Mutex
		cut := map[string]bool{}
		l.setOverride(func(w http.ResponseWriter, r *http.Request, page []byte) bool {
			mu.Lock()
			defer mu.Unlock()
			if cut[r.URL.Path] {
				return false
			}
			cut[r.URL.Path] = true
			writeSSI(w, page, len(page)/2)
			return true
		})
		res, _, err := scrapeQuick(t, fastFetcher(l.URL, ""), Options{})
		if err != nil {
			t.Fatal(err)
		}
		if got := len(l.pageHits()); got != 4 || res.Pages[1].Lines < 300 {
			t.Errorf("%d page requests (want 4), %d lines", got, res.Pages[1].Lines)
		}
	})
}

// gaps returns, for consecutive requests, the time from the end of one to the start of the next.
func gaps(hits []hit) []time.Duration {
	var out []time.Duration
	for i := 1; i < len(hits); i++ {
		out = append(out, hits[i].start.Sub(hits[i-1].end))
	}
	return out
}

// robots.txt's Crawl-delay is the least pause between two requests to the host (robots.txt
// included); a longer Delay wins; one request at a time, even with Scrape's concurrency.
func TestPolitenessCrawlDelay(t *testing.T) {
	const robots = "# lib.ru asks for 3 s; this replica for less\nUser-agent: *\nCrawl-delay: 0.1\nDisallow: /cgi-bin/\n\n" +
		"User-agent: gonb-gpt-tutorial\nCrawl-delay: 0.3\nDisallow: /cgi-bin/\n"
	for _, c := range []struct {
		name  string
		delay time.Duration
		want  time.Duration
	}{
		{"crawl-delay over no delay", -1, 300 * time.Millisecond},
		{"crawl-delay over a shorter delay", 100 * time.Millisecond, 300 * time.Millisecond},
		{"a longer delay", 500 * time.Millisecond, 500 * time.Millisecond},
	} {
		t.Run(c.name, func(t *testing.T) {
			l := newLibru(t, robots)
			f := fastFetcher(l.URL, "")
			f.Delay, f.Concurrency = c.delay, 4
			urls := append(append([]string{}, QuickURLs...), QuickURLs...)
			if _, err := Scrape(context.Background(), Options{URLs: urls, Fetcher: f, Out: filepath.Join(t.TempDir(), "d.txt")}); err != nil {
				t.Fatal(err)
			}
			hits := l.allHits()
			if len(hits) != 5 || hits[0].path != "/robots.txt" {
				var paths []string
				for _, h := range hits {
					paths = append(paths, h.path)
				}
				t.Fatalf("requests: %q, want robots.txt and 4 pages", paths)
			}
			for i, g := range gaps(hits) {
				if g < c.want-5*time.Millisecond {
					t.Errorf("request %d started %v after the previous one ended, want at least %v", i+1, g, c.want)
				}
			}
			l.mu.Lock()
			most := l.maxInFlight
			l.mu.Unlock()
			if most != 1 {
				t.Errorf("%d requests at once, want 1", most)
			}
		})
	}
	// The defaults: 3 s, or a longer Crawl-delay; a negative Delay never goes below it.
	for _, c := range []struct {
		delay, crawl, want time.Duration
	}{{0, 0, 3 * time.Second}, {0, 5 * time.Second, 5 * time.Second}, {-1, 0, 0}, {-1, 2 * time.Second, 2 * time.Second}, {10 * time.Second, 2 * time.Second, 10 * time.Second}} {
		if got := (&Fetcher{Delay: c.delay}).delay(&robotsRules{crawlDelay: c.crawl}); got != c.want {
			t.Errorf("Delay %v, Crawl-delay %v: %v, want %v", c.delay, c.crawl, got, c.want)
		}
	}
}

// Disallow rules for the user agent are obeyed: no request for the page.
func TestRobotsDisallow(t *testing.T) {
	l := newLibru(t, "User-agent: *\nDisallow: /t/\n")
	_, _, err := scrapeQuick(t, fastFetcher(l.URL, ""), Options{})
	if !errors.Is(err, ErrDisallowed) || !strings.Contains(err.Error(), "gonb-gpt-tutorial") {
		t.Fatalf("err = %v", err)
	}
	if got := len(l.pageHits()); got != 0 {
		t.Errorf("%d page requests", got)
	}
	// Another agent's rule does not apply.
	l = newLibru(t, "User-agent: BadBot\nDisallow: /\n")
	if _, _, err := scrapeQuick(t, fastFetcher(l.URL, ""), Options{}); err != nil {
		t.Fatal(err)
	}
}

// robots.txt is read once a day per host: a second run reads the cached copy; a copy older than a
// day is read again; when robots.txt cannot be read (5xx), the stale copy is used, with a warning,
// and without any copy the pages are not fetched (RFC 9309 §2.3.1.4: assume a complete disallow).
func TestRobotsCache(t *testing.T) {
	l := newLibru(t, "User-agent: *\nCrawl-delay: 0\n")
	cache := t.TempDir()
	robotsRequests := func() int { return len(l.allHits()) - len(l.pageHits()) }
	run := func() {
		t.Helper()
		f := fastFetcher(l.URL, cache)
		f.Refresh = true // pages downloaded again: robots.txt is needed
		if _, _, err := scrapeQuick(t, f, Options{}); err != nil {
			t.Fatal(err)
		}
	}
	run()
	run()
	if got := robotsRequests(); got != 1 {
		t.Errorf("robots.txt read %d times in two runs, want 1", got)
	}
	// A day later: read again.
	files, _ := filepath.Glob(filepath.Join(cache, "robots", "*.json"))
	if len(files) != 1 {
		t.Fatalf("robots cache: %v", files)
	}
	old := time.Now().Add(-25 * time.Hour)
	ageRobots(t, files[0], old)
	run()
	if got := robotsRequests(); got != 2 {
		t.Errorf("a day-old robots.txt: read %d times, want 2", got)
	}

	// robots.txt answers 503: the stale copy is used, with a warning.
	ageRobots(t, files[0], old)
	failing := newLibru(t, "")
	failing.robotsStatus = http.StatusServiceUnavailable
	// The stale copy belongs to l's host; copy it under failing's.
	data, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	f := fastFetcher(failing.URL, cache)
	if err := os.WriteFile(f.robotsCachePath(failing.URL+"/robots.txt"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	res, log, err := scrapeQuick(t, f, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log, "503 Service Unavailable") || !strings.Contains(log, "used the copy read") || len(res.Pages[0].Warnings)+len(res.Pages[1].Warnings) != 1 {
		t.Errorf("no warning about the stale robots.txt: %q", log)
	}
	// Without a copy: no page is requested.
	before := len(failing.pageHits())
	_, _, err = scrapeQuick(t, fastFetcher(failing.URL, t.TempDir()), Options{})
	if err == nil || !strings.Contains(err.Error(), "robots.txt: 503") || len(failing.pageHits()) != before {
		t.Errorf("robots.txt unreadable: err = %v, %d page requests", err, len(failing.pageHits())-before)
	}
}

// ageRobots makes a cached robots.txt look read at t.
func ageRobots(t *testing.T, path string, at time.Time) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var c robotsCache
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatal(err)
	}
	c.Fetched = at
	if data, err = json.Marshal(c); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// A 403 keeps what the server said, so a block reads differently from a missing page; it is not
// retried.
func TestScrape403WithBody(t *testing.T) {
	l := newLibru(t, "")
	l.setOverride(func(w http.ResponseWriter, r *http.Request, page []byte) bool {
		w.Header().Set("Content-Type", "text/html; charset=windows-1251")
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write(cp1251Bytes(t, "<html><head><title>403 Forbidden</title></head><body><h1>Доступ запрещён</h1>"+
			"<p>Ваш IP-адрес заблокирован за слишком частые запросы.</p></body></html>"))
		return true
	})
	_, _, err := scrapeQuick(t, fastFetcher(l.URL, ""), Options{})
	var he *HTTPError
	if !errors.As(err, &he) || he.Status != http.StatusForbidden || !strings.Contains(err.Error(), "403 Forbidden") ||
		!strings.Contains(err.Error(), "Доступ запрещён Ваш IP-адрес заблокирован за слишком частые запросы.") {
		t.Fatalf("err = %v", err)
	}
	if got := len(l.pageHits()); got != 2 {
		t.Errorf("%d page requests, want 2 (a 403 is not retried)", got)
	}
	// A missing page says so.
	_, err = fastFetcher(l.URL, "").Fetch(context.Background(), "http://az.lib.ru/t/tolstoj_lew_nikolaewich/text_9999.shtml")
	if err == nil || !strings.Contains(err.Error(), `404 Not Found; the response reads "Not Found The requested URL was not found on this server."`) {
		t.Errorf("404: err = %v", err)
	}
}

// An http→https redirect to another host (port) is followed; the report says where the page came
// from; the cache is keyed by the URL asked for, so a second run asks neither server.
func TestScrapeRedirectToHTTPS(t *testing.T) {
	secure := newLibru(t, "")
	secure.Close()
	secure.Server = httptest.NewTLSServer(http.HandlerFunc(secure.serve))
	t.Cleanup(secure.Close)
	var plainHits atomic.Int64
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		plainHits.Add(1)
		if r.URL.Path == "/robots.txt" {
			http.NotFound(w, r)
			return
		}
		http.Redirect(w, r, secure.URL+r.URL.Path, http.StatusMovedPermanently)
	}))
	t.Cleanup(plain.Close)

	cache := t.TempDir()
	f := fastFetcher(plain.URL, cache)
	f.Client = secure.Client() // trusts the test certificate
	res, log, err := scrapeQuick(t, f, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range res.Pages {
		if !p.Redirected || !strings.HasPrefix(p.FinalURL, "https://127.0.0.1:") || !strings.HasSuffix(p.FinalURL, p.URL[len("http://az.lib.ru"):]) {
			t.Errorf("%s: final URL %q, redirected %v", p.URL, p.FinalURL, p.Redirected)
		}
	}
	if !strings.Contains(log, "(from "+secure.URL+MirrorPrefix+"text_0039.shtml)") {
		t.Errorf("the log does not show where the page came from: %q", log)
	}
	if len(secure.pageHits()) != 2 || plainHits.Load() != 3 {
		t.Errorf("requests: %d to https, %d to http", len(secure.pageHits()), plainHits.Load())
	}
	// Cached under the URL asked for: nothing is requested again, and the report still tells.
	f = fastFetcher(plain.URL, cache)
	f.Client = secure.Client()
	res, _, err = scrapeQuick(t, f, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(secure.allHits()) != 3 || plainHits.Load() != 3 || !res.Pages[0].FromCache || !res.Pages[0].Redirected {
		t.Errorf("second run: %d https requests, %d http, from cache %v", len(secure.allHits()), plainHits.Load(), res.Pages[0].FromCache)
	}
}

// A redirect loop ends with an error.
func TestRedirectLoop(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/robots.txt" {
			http.NotFound(w, r)
			return
		}
		n.Add(1)
		http.Redirect(w, r, r.URL.Path, http.StatusFound)
	}))
	defer srv.Close()
	f := fastFetcher(srv.URL, "")
	f.Retries = -1
	_, err := f.Fetch(context.Background(), QuickURLs[0])
	if err == nil || !strings.Contains(err.Error(), "stopped after 10 redirects") || n.Load() != 11 {
		t.Errorf("err = %v after %d requests", err, n.Load())
	}
}

// A page with the variants apparatus after the work and footnote texts in both forms gives the same
// clean text as the page without them (the note calls in the text are dropped too); the report
// counts what was left out, and KeepNotes keeps it.
func TestScrapeApparatusAndFootnotes(t *testing.T) {
	const (
		calls = `<sup>13</sup>`
		notes = "<dd>&nbsp;&nbsp;&nbsp;<sup>13</sup> Сноска в форме без подчёркивания.\n" +
			"<dd>&nbsp;&nbsp;&nbsp;<sup><u>14</u></sup> Сноска в третьей форме.\n"
		apparatus = "<h4><div align=\"center\"><p><b>РАЗНОЧТЕНИЯ</b></p></div></h4>\n" +
			"<dd>&nbsp;&nbsp;&nbsp;Стр. 5, строка 12. <i>В первом издании:</i> вернувшийся\n" +
			"<dd>&nbsp;&nbsp;&nbsp;Стр. 7, строки 3—4. <i>Вместо:</i> старик <i>в рукописи:</i> старый князь\n" +
			"<dd>&nbsp;&nbsp;&nbsp;Стр. 9, строка 1 снизу. <i>Исправлено по рукописи.</i>\n"
	)
	l := newLibru(t, "")
	plainOut := filepath.Join(t.TempDir(), "plain.txt")
	if _, _, err := scrapeQuick(t, fastFetcher(l.URL, ""), Options{Out: plainOut}); err != nil {
		t.Fatal(err)
	}
	l.setOverride(func(w http.ResponseWriter, r *http.Request, page []byte) bool {
		p := string(page)
		// A call after the first word of the work's first paragraph.
		para := strings.Index(p, "<!--Section Begins-->")
		para += strings.Index(p[para:], "<dd>&nbsp;&nbsp;&nbsp;") + len("<dd>&nbsp;&nbsp;&nbsp;")
		word := para + strings.Index(p[para:], " ")
		p = p[:word] + calls + p[word:]
		p = strings.Replace(p, "<!--Section Ends-->", string(cp1251Bytes(t, notes+apparatus))+"<!--Section Ends-->", 1)
		writeSSI(w, []byte(p), len(p))
		return true
	})
	out := filepath.Join(t.TempDir(), "d.txt")
	res, log, err := scrapeQuick(t, fastFetcher(l.URL, ""), Options{Out: out})
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := os.ReadFile(plainOut)
	got, _ := os.ReadFile(out)
	if string(got) != string(plain) {
		t.Errorf("the clean dataset differs from the page's without apparatus and notes (%d vs %d bytes)", len(got), len(plain))
	}
	d := res.Pages[1].Dropped
	if d.Apparatus != 4 || d.Notes != 12+2 || !strings.Contains(log, "left out 14 notes and 4 apparatus lines") {
		t.Errorf("dropped %+v; log %q", d, log)
	}
	res, _, err = scrapeQuick(t, fastFetcher(l.URL, ""), Options{KeepNotes: true})
	if err != nil {
		t.Fatal(err)
	}
	if k := res.Pages[1].Kept; k.Apparatus != 4 || k.Notes != 14 {
		t.Errorf("KeepNotes kept %+v", k)
	}
}

// KOI8-R bytes labelled windows-1251 are detected as KOI8-R, with a warning.
func TestScrapeMislabelledKOI8(t *testing.T) {
	l := newLibru(t, "")
	plain, _, err := scrapeQuick(t, fastFetcher(l.URL, ""), Options{})
	if err != nil {
		t.Fatal(err)
	}
	l.setOverride(func(w http.ResponseWriter, r *http.Request, page []byte) bool {
		text, err := charmap.Windows1251.NewDecoder().Bytes(page)
		if err != nil {
			t.Error(err)
		}
		// KOI8-R lacks a few of the page's characters (dashes, quotes): "?" instead.
		koi8, err := encoding.ReplaceUnsupported(charmap.KOI8R.NewEncoder()).Bytes(text)
		if err != nil {
			t.Error(err)
		}
		writeSSI(w, koi8, len(koi8)) // labelled windows-1251
		return true
	})
	res, log, err := scrapeQuick(t, fastFetcher(l.URL, ""), Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range res.Pages {
		if p.Charset != "koi8-r" || p.CharsetHow != "detected" || p.Lines != plain.Pages[i].Lines {
			t.Errorf("%s: %s (%s), %d lines (want %d)", p.URL, p.Charset, p.CharsetHow, p.Lines, plain.Pages[i].Lines)
		}
	}
	if !strings.Contains(log, "labelled windows-1251 (content-type) but its bytes read as koi8-r") {
		t.Errorf("no warning: %q", log)
	}
}
