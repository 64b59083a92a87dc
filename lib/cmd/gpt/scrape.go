package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/gonb-gpt/tutorial/lib/corpus"
)

func init() {
	register(command{name: "scrape", summary: "download Tolstoy's novels from lib.ru and write dataset.txt", run: runScrape})
}

// defaultCacheDir is where downloaded pages are kept between runs.
func defaultCacheDir(sub string) string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "gonb-gpt", sub)
}

func runScrape(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("scrape", "[flags] [URL ...]", `
Downloads the pages (default: the tutorial's eight az.lib.ru pages), takes each work's text out of
its page, and writes dataset.txt: UTF-8, one line per paragraph or heading, works separated by a blank
line. Pages are cached, so running it again downloads nothing (--refresh forces it).

Politely, as lib.ru asks: robots.txt is obeyed (Disallow and Crawl-delay), one request at a time per
host, --delay between them. A page that is not a work (an error or challenge page) or that was cut
short is not cached and fails with what it says; the next run asks again.`)
	baseURL := fs.String("base-url", "", "fetch every URL from this mirror instead (scheme and host replaced), e.g. http://127.0.0.1:8080")
	mirror := fs.String("mirror", "", "serve this folder of lib.ru pages (e.g. ../shared/libru-mirror) locally and fetch from it; \"builtin\" for the two vendored pages")
	out := fs.String("out", "dataset.txt", "the dataset file to write")
	keepNotes := fs.Bool("keep-notes", false, "keep the footnotes' texts and the textual-variants apparatus (dropped by default)")
	compat := fs.Bool("tutorial-compat", false, "clean the pages exactly as the tutorial's Python does (footer and script text included)")
	refresh := fs.Bool("refresh", false, "download again even when cached")
	delay := fs.Duration("delay", corpus.DefaultDelay, "pause between two requests to one host (never less than robots.txt's Crawl-delay)")
	cacheDir := fs.String("cache-dir", defaultCacheDir("libru"), "where downloaded pages are kept (\"\" for no cache)")
	quiet := fs.Bool("quiet", false, "no progress bar")
	if err := parse(fs, args); err != nil {
		return err
	}
	urls := fs.Args()
	if *delay < 0 {
		return fmt.Errorf("%w: --delay %v is negative", errUsage, *delay)
	}
	fetcher := &corpus.Fetcher{BaseURL: *baseURL, CacheDir: *cacheDir, Refresh: *refresh, Delay: *delay}
	if *delay == 0 {
		fetcher.Delay = -1 // none, unless robots.txt asks
	}
	if *mirror != "" {
		if *baseURL != "" {
			return fmt.Errorf("%w: --mirror and --base-url exclude each other", errUsage)
		}
		dir := *mirror
		if dir == "builtin" {
			dir = ""
			if len(urls) == 0 {
				urls = corpus.QuickURLs
			}
		}
		m, err := corpus.StartMirror(dir)
		if err != nil {
			return err
		}
		defer m.Close()
		fetcher.BaseURL = m.URL
		fetcher.Delay = -1
		fetcher.CacheDir = "" // a local server on a new port each time: nothing to cache
	}
	opts := corpus.Options{URLs: urls, Fetcher: fetcher, Out: *out, KeepNotes: *keepNotes, TutorialCompat: *compat, Log: stdout}
	if !*quiet {
		opts.Progress = os.Stderr
	}
	_, err := corpus.Scrape(ctx, opts)
	return err
}
