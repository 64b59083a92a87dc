// Package corpus builds the tutorial's corpus: it downloads Tolstoy's novels from lib.ru, takes the
// text of each work out of its page with an HTML parser, and writes dataset.txt (UTF-8, one line per
// paragraph or heading, works separated by a blank line). A tutorial-compatible mode reproduces the
// tutorial's regex cleaning byte for byte instead. [TextDataset] reads the result the way
// datasets.load_dataset("text") does.
package corpus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/gonb-gpt/tutorial/lib/fileutil"
	"github.com/gonb-gpt/tutorial/lib/progress"
)

// Options configure [Scrape].
type Options struct {
	// URLs to download, in order (default DefaultURLs).
	URLs []string
	// Fetcher downloads them (its zero value works: no cache, default timeouts).
	Fetcher *Fetcher
	// Out is the dataset file to write (default "dataset.txt").
	Out string
	// KeepNotes keeps footnote texts and the textual-variants apparatus (dropped by default).
	KeepNotes bool
	// TutorialCompat reproduces the tutorial's own cleaning (regex tag stripping, the site's footer
	// and script text included) byte for byte, instead of the HTML extraction.
	TutorialCompat bool
	// Progress receives a progress bar ("" none); Log receives one line per page and warnings.
	Progress, Log io.Writer
}

// PageReport describes what was made of one page.
type PageReport struct {
	URL string
	// FinalURL is where the page came from: the URL requested for it (on Fetcher.BaseURL), or
	// where redirects led, and then Redirected is true.
	FinalURL   string
	Redirected bool
	// Bytes is the page's size as downloaded; FromCache says it was not downloaded again.
	Bytes     int
	FromCache bool
	// Charset and CharsetHow: the page's encoding and where it came from (see Decoded).
	Charset, CharsetHow string
	// Method is how the work was found (see Extracted.Method; "tutorial" in compat mode).
	Method string
	// Kept counts the lines kept and Dropped those left out (see Extracted); Lines is the number
	// of lines kept.
	Kept, Dropped Counts
	Lines         int
	// Warnings tell what may need a look: the older page template, a mislabelled charset, an
	// unreadable robots.txt.
	Warnings []string
	// Err is set when the page failed.
	Err error
	// text is the page's cleaned text.
	text string
}

// Result is the outcome of [Scrape].
type Result struct {
	Pages []PageReport
	// Out is the dataset written and Bytes its size.
	Out   string
	Bytes int64
}

// Scrape downloads the pages, extracts their text and writes the dataset atomically. When any page
// fails, the other pages are still downloaded (and cached) and reported, the dataset is not written
// (a previous one stays as it was), and the error names every failed URL.
func Scrape(ctx context.Context, opts Options) (*Result, error) {
	urls := opts.URLs
	if len(urls) == 0 {
		urls = DefaultURLs
	}
	fetcher := opts.Fetcher
	if fetcher == nil {
		fetcher = &Fetcher{}
	}
	out := opts.Out
	if out == "" {
		out = "dataset.txt"
	}
	conc := fetcher.Concurrency
	if conc <= 0 {
		conc = 2
	}
	res := &Result{Pages: make([]PageReport, len(urls)), Out: out}
	bar := progress.Count(opts.Progress, int64(len(urls)), "lib.ru pages")
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	for i, u := range urls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			res.Pages[i] = processPage(ctx, fetcher, u, opts)
			bar.Add(1)
		}()
	}
	wg.Wait()
	bar.Finish()

	var failed []error
	for _, p := range res.Pages {
		if opts.Log != nil {
			if p.Err != nil {
				fmt.Fprintf(opts.Log, "FAILED %s: %v\n", p.URL, p.Err)
			} else {
				fmt.Fprintf(opts.Log, "%s%s: %d bytes (%s, %s%s), %s\n",
					p.URL, movedNote(p), p.Bytes, p.Charset, p.CharsetHow, cachedNote(p.FromCache), linesNote(p))
			}
			for _, w := range p.Warnings {
				fmt.Fprintf(opts.Log, "warning: %s: %s\n", p.URL, w)
			}
		}
		if p.Err != nil {
			failed = append(failed, p.Err)
		}
	}
	if len(failed) > 0 {
		return res, fmt.Errorf("%s not written: %d of %d pages failed: %w", out, len(failed), len(urls), errors.Join(failed...))
	}
	err := fileutil.WriteAtomic(out, 0o644, func(w io.Writer) error {
		for _, p := range res.Pages {
			if _, err := io.WriteString(w, p.text); err != nil {
				return err
			}
			if _, err := io.WriteString(w, "\n\n"); err != nil {
				return err
			}
			res.Bytes += int64(len(p.text) + 2)
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	if opts.Log != nil {
		fmt.Fprintf(opts.Log, "wrote %s: %d bytes, %d pages\n", out, res.Bytes, len(urls))
	}
	return res, nil
}

func cachedNote(c bool) string {
	if c {
		return ", cached"
	}
	return ""
}

// movedNote shows where a redirected page came from.
func movedNote(p PageReport) string {
	if !p.Redirected {
		return ""
	}
	return " (from " + p.FinalURL + ")"
}

// linesNote says what was kept and what was left out.
func linesNote(p PageReport) string {
	if p.Method == "tutorial" {
		return fmt.Sprintf("%d lines", p.Lines)
	}
	k, d := p.Kept, p.Dropped
	s := fmt.Sprintf("%d headings + %d paragraphs", k.Headings, k.Paragraphs)
	if k.Notes > 0 {
		s += fmt.Sprintf(" + %d notes", k.Notes)
	}
	if k.Apparatus > 0 {
		s += fmt.Sprintf(" + %d apparatus lines", k.Apparatus)
	}
	s += fmt.Sprintf(" = %d lines", p.Lines)
	var left []string
	if d.Notes > 0 {
		left = append(left, fmt.Sprintf("%d notes", d.Notes))
	}
	if d.Apparatus > 0 {
		left = append(left, fmt.Sprintf("%d apparatus lines", d.Apparatus))
	}
	if len(left) > 0 {
		s += fmt.Sprintf("; left out %s (%d bytes)", strings.Join(left, " and "), d.Bytes)
	}
	return s
}

// processPage downloads, decodes and cleans one page.
func processPage(ctx context.Context, f *Fetcher, u string, opts Options) PageReport {
	r := PageReport{URL: u}
	page, err := f.FetchChecked(ctx, u, CheckPage)
	if err != nil {
		r.Err = err
		return r
	}
	r.FinalURL, r.Redirected = page.Final, page.Final != page.Fetched
	r.Bytes, r.FromCache, r.Warnings = len(page.Body), page.FromCache, page.Warnings
	dec, err := Decode(page.Body, page.ContentType)
	if err != nil {
		r.Err = fmt.Errorf("%s: %w", u, err)
		return r
	}
	r.Charset, r.CharsetHow = dec.Charset, dec.How
	if dec.Warning != "" {
		r.Warnings = append(r.Warnings, dec.Warning)
	}
	if opts.TutorialCompat {
		r.Method = "tutorial"
		r.text = TutorialText(dec.Text)
		if r.text != "" {
			r.Lines = strings.Count(r.text, "\n") + 1
		}
		return r
	}
	ex, err := Extract(dec.Text, ExtractOptions{KeepNotes: opts.KeepNotes})
	if err != nil {
		r.Err = fmt.Errorf("%s: %w", u, err)
		return r
	}
	r.Method, r.Kept, r.Dropped = ex.Method, ex.Count(), ex.Dropped
	if ex.Warning != "" {
		r.Warnings = append(r.Warnings, ex.Warning)
	}
	lines := ex.Lines()
	r.Lines = len(lines)
	r.text = strings.Join(lines, "\n")
	return r
}
