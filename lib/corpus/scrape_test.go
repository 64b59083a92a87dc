package corpus

import (
	"compress/gzip"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gonb-gpt/tutorial/lib/internal/sharedtest"
)

// fastFetcher retries quickly, for tests.
func fastFetcher(base, cache string) *Fetcher {
	return &Fetcher{BaseURL: base, CacheDir: cache, Backoff: time.Millisecond, Retries: 2, Delay: -1, Timeout: 5 * time.Second}
}

func mirrorServer(t *testing.T, contentType string, wrap func(http.Handler) http.Handler) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	h, err := MirrorHandler(sharedtest.Path(t, "libru-mirror"), contentType)
	if err != nil {
		t.Fatal(err)
	}
	var requests atomic.Int64 // page requests (robots.txt not counted)
	counted := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, MirrorPrefix) {
			requests.Add(1)
		}
		h.ServeHTTP(w, r)
	})
	var handler http.Handler = counted
	if wrap != nil {
		handler = wrap(counted)
	}
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	return srv, &requests
}

func TestScrapeMirror(t *testing.T) {
	srv, requests := mirrorServer(t, "text/html", nil) // no charset named: decoding must detect it
	dir := t.TempDir()
	out := filepath.Join(dir, "dataset.txt")
	opts := Options{Fetcher: fastFetcher(srv.URL, filepath.Join(dir, "cache")), Out: out}
	res, err := Scrape(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	for _, bad := range []string{"<", "&", "Связаться с программистом", "acic"} {
		if strings.Contains(text, bad) {
			t.Errorf("dataset holds %q", bad)
		}
	}
	works := strings.Split(strings.TrimSuffix(text, "\n\n"), "\n\n")
	if len(works) != len(DefaultURLs) {
		t.Fatalf("%d works separated by blank lines, want %d", len(works), len(DefaultURLs))
	}
	for i, p := range res.Pages {
		h, para, _ := countFromHTML(cp1251(t, mirrorPage(t, path.Base(p.URL))))
		if p.Lines != h+para || strings.Count(works[i], "\n")+1 != h+para {
			t.Errorf("%s: %d lines (%d in the file), want %d headings + %d paragraphs", p.URL, p.Lines, strings.Count(works[i], "\n")+1, h, para)
		}
		if p.Charset != "windows-1251" || p.FromCache || len(p.Warnings) > 0 || p.Redirected {
			t.Errorf("%s: charset %s, from cache %v, warnings %q, redirected %v", p.URL, p.Charset, p.FromCache, p.Warnings, p.Redirected)
		}
	}
	if got := requests.Load(); got != int64(len(DefaultURLs)) {
		t.Errorf("%d requests, want %d", got, len(DefaultURLs))
	}

	// Again: everything comes from the cache, no request is made, the same file is written.
	res, err = Scrape(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := requests.Load(); got != int64(len(DefaultURLs)) {
		t.Errorf("the second run made %d requests", got-int64(len(DefaultURLs)))
	}
	again, _ := os.ReadFile(out)
	if string(again) != text || !res.Pages[0].FromCache {
		t.Error("the cached run differs")
	}
	// --refresh downloads again.
	opts.Fetcher.Refresh = true
	if _, err := Scrape(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	if got := requests.Load(); got != 2*int64(len(DefaultURLs)) {
		t.Errorf("refresh made %d requests, want %d", got-int64(len(DefaultURLs)), len(DefaultURLs))
	}
}

func TestScrapeTutorialCompat(t *testing.T) {
	srv, _ := mirrorServer(t, "text/html; charset=windows-1251", nil)
	out := filepath.Join(t.TempDir(), "dataset.txt")
	if _, err := Scrape(context.Background(), Options{Fetcher: fastFetcher(srv.URL, ""), Out: out, TutorialCompat: true}); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(out)
	want, _ := os.ReadFile(sharedtest.Path(t, "fixtures", "tutorial-dataset.txt"))
	if string(got) != string(want) {
		t.Errorf("tutorial-compatible dataset differs from the fixture (%d vs %d bytes)", len(got), len(want))
	}
}

func TestScrape404(t *testing.T) {
	srv, _ := mirrorServer(t, "text/html", nil)
	dir := t.TempDir()
	out := filepath.Join(dir, "dataset.txt")
	if err := os.WriteFile(out, []byte("previous"), 0o644); err != nil {
		t.Fatal(err)
	}
	urls := append([]string{"http://az.lib.ru/t/tolstoj_lew_nikolaewich/text_9999.shtml"}, DefaultURLs[7], DefaultURLs[0])
	res, err := Scrape(context.Background(), Options{URLs: urls, Fetcher: fastFetcher(srv.URL, filepath.Join(dir, "cache")), Out: out})
	if err == nil || !strings.Contains(err.Error(), "text_9999.shtml: 404 Not Found") || !strings.Contains(err.Error(), "1 of 3 pages failed") {
		t.Fatalf("err = %v", err)
	}
	if res.Pages[1].Err != nil || res.Pages[2].Err != nil || res.Pages[1].Lines == 0 {
		t.Errorf("the other pages were not done: %+v", res.Pages[1:])
	}
	if b, _ := os.ReadFile(out); string(b) != "previous" {
		t.Error("the previous dataset was changed")
	}
}

func TestScrapeRetries503(t *testing.T) {
	var n atomic.Int64
	srv, _ := mirrorServer(t, "text/html", func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/robots.txt" {
				h.ServeHTTP(w, r)
				return
			}
			if n.Add(1) == 1 {
				http.Error(w, "busy", http.StatusServiceUnavailable)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	out := filepath.Join(t.TempDir(), "d.txt")
	if _, err := Scrape(context.Background(), Options{URLs: DefaultURLs[7:], Fetcher: fastFetcher(srv.URL, ""), Out: out}); err != nil {
		t.Fatal(err)
	}
	if n.Load() != 2 {
		t.Errorf("%d requests, want 2 (503, then 200)", n.Load())
	}
}

func TestScrapeHonoursRetryAfter(t *testing.T) {
	var n atomic.Int64
	srv, _ := mirrorServer(t, "text/html", func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/robots.txt" {
				h.ServeHTTP(w, r)
				return
			}
			if n.Add(1) == 1 {
				w.Header().Set("Retry-After", "1")
				http.Error(w, "slow down", http.StatusTooManyRequests)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	start := time.Now()
	if _, err := Scrape(context.Background(), Options{URLs: DefaultURLs[7:], Fetcher: fastFetcher(srv.URL, ""), Out: filepath.Join(t.TempDir(), "d.txt")}); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited < 900*time.Millisecond {
		t.Errorf("retried after %v; the server asked for 1 s", waited)
	}
}

// brokenBody answers with a page cut short: a reset connection, or fewer bytes than announced.
func brokenBody(t *testing.T, reset bool, tries *atomic.Int64) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/robots.txt" {
			http.NotFound(w, r)
			return
		}
		tries.Add(1)
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("Content-Length", "100000")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(strings.Repeat("<dd>текст ", 100)))
		w.(http.Flusher).Flush()
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		if tcp, ok := conn.(interface{ SetLinger(int) error }); ok && reset {
			_ = tcp.SetLinger(0) // close with RST
		}
		_ = conn.Close()
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestScrapeBrokenTransfers(t *testing.T) {
	for _, reset := range []bool{true, false} {
		var tries atomic.Int64
		srv := brokenBody(t, reset, &tries)
		f := fastFetcher(srv.URL, "")
		_, err := Scrape(context.Background(), Options{URLs: DefaultURLs[:1], Fetcher: f, Out: filepath.Join(t.TempDir(), "d.txt")})
		if err == nil || !strings.Contains(err.Error(), "text_0039.shtml") || !strings.Contains(err.Error(), "gave up after 3 tries") {
			t.Errorf("reset=%v: err = %v", reset, err)
		}
		if tries.Load() != 3 {
			t.Errorf("reset=%v: %d tries, want 3", reset, tries.Load())
		}
	}
}

func TestScrapeGzipAndUserAgent(t *testing.T) {
	var gzipped atomic.Bool
	var ua sync.Map
	srv, _ := mirrorServer(t, "text/html", func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ua.Store("ua", r.Header.Get("User-Agent"))
			if !strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
				h.ServeHTTP(w, r)
				return
			}
			gzipped.Store(true)
			w.Header().Set("Content-Encoding", "gzip")
			gz := gzip.NewWriter(w)
			defer gz.Close()
			h.ServeHTTP(gzipResponseWriter{w, gz}, r)
		})
	})
	out := filepath.Join(t.TempDir(), "d.txt")
	if _, err := Scrape(context.Background(), Options{URLs: DefaultURLs[7:], Fetcher: fastFetcher(srv.URL, ""), Out: out}); err != nil {
		t.Fatal(err)
	}
	if !gzipped.Load() {
		t.Error("the client did not ask for gzip")
	}
	if got, _ := ua.Load("ua"); got != DefaultUserAgent {
		t.Errorf("User-Agent %q", got)
	}
	if b, _ := os.ReadFile(out); !strings.HasPrefix(string(b), "Лев Николаевич Толстой\n") {
		t.Error("gzipped page not decoded")
	}
}

type gzipResponseWriter struct {
	http.ResponseWriter
	gz *gzip.Writer
}

func (g gzipResponseWriter) Write(b []byte) (int, error) { return g.gz.Write(b) }

// makeReadOnly makes a folder unwritable, for root too (chattr +i) where the file system allows.
func makeReadOnly(t *testing.T, dir string) bool {
	t.Helper()
	if os.Geteuid() != 0 {
		if err := os.Chmod(dir, 0o555); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.Chmod(dir, 0o755) })
		return true
	}
	if err := exec.Command("chattr", "+i", dir).Run(); err != nil {
		t.Logf("chattr +i failed (%v): only the path-under-a-file case is checked", err)
		return false
	}
	t.Cleanup(func() { _ = exec.Command("chattr", "-i", dir).Run() })
	return true
}

func TestScrapeUnwritableOutput(t *testing.T) {
	srv, _ := mirrorServer(t, "text/html", nil)
	dir := t.TempDir()
	out := filepath.Join(dir, "dataset.txt")
	if err := os.WriteFile(out, []byte("previous"), 0o644); err != nil {
		t.Fatal(err)
	}
	scrape := func(target string) error {
		_, err := Scrape(context.Background(), Options{URLs: DefaultURLs[7:], Fetcher: fastFetcher(srv.URL, ""), Out: target})
		return err
	}
	// A path whose parent is a file.
	if err := scrape(filepath.Join(out, "sub.txt")); err == nil {
		t.Error("writing under a file succeeded")
	}
	// The dataset's own folder read-only: an error, and the previous dataset as it was.
	if makeReadOnly(t, dir) {
		if err := scrape(out); err == nil || !strings.Contains(err.Error(), "dataset.txt") {
			t.Errorf("writing into a read-only folder: err = %v", err)
		}
	}
	if b, _ := os.ReadFile(out); string(b) != "previous" {
		t.Errorf("the previous dataset was changed: %q", b)
	}
}

func TestScrapeNoTextIsAnError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/robots.txt" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte("<html><body><!--Section Begins--><dd>&nbsp;<!--Section Ends--><script>var _acic=1</script></body></html>"))
	}))
	defer srv.Close()
	_, err := Scrape(context.Background(), Options{URLs: DefaultURLs[:1], Fetcher: fastFetcher(srv.URL, ""), Out: filepath.Join(t.TempDir(), "d.txt")})
	if !errors.Is(err, ErrNoText) || !strings.Contains(err.Error(), "text_0039.shtml") {
		t.Errorf("err = %v", err)
	}
}

func TestResolveBaseURL(t *testing.T) {
	f := &Fetcher{BaseURL: "http://127.0.0.1:9/mirror"}
	got, err := f.Resolve("http://az.lib.ru/t/tolstoj_lew_nikolaewich/text_0040.shtml?x=1")
	if err != nil || got != "http://127.0.0.1:9/mirror/t/tolstoj_lew_nikolaewich/text_0040.shtml?x=1" {
		t.Errorf("Resolve = %q, %v", got, err)
	}
	if _, err := f.Resolve("not a url"); err == nil {
		t.Error("no error for an invalid URL")
	}
}

func TestParseRetryAfter(t *testing.T) {
	if d := parseRetryAfter("3"); d != 3*time.Second {
		t.Errorf("3 → %v", d)
	}
	if d := parseRetryAfter(time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)); d < 59*time.Minute {
		t.Errorf("date → %v", d)
	}
	if d := parseRetryAfter("soon"); d != 0 {
		t.Errorf("soon → %v", d)
	}
}

func TestVendoredMirror(t *testing.T) {
	m, err := StartMirror("")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	out := filepath.Join(t.TempDir(), "d.txt")
	res, err := Scrape(context.Background(), Options{URLs: QuickURLs, Fetcher: fastFetcher(m.URL, ""), Out: out})
	if err != nil {
		t.Fatal(err)
	}
	if res.Pages[0].CharsetHow != "content-type" || res.Pages[0].Lines < 1000 {
		t.Errorf("%+v", res.Pages[0])
	}
}
