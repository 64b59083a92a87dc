package corpus

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// ErrNotWork is returned for a page that is not a lib.ru page holding a work: an error or
// challenge page answered with 200, a page of another site.
var ErrNotWork = errors.New("not a lib.ru page with a work")

// ErrTruncated is returned for a page whose body ends before the work does. The error also
// matches io.ErrUnexpectedEOF, so the download is retried.
var ErrTruncated = errors.New("page cut short")

// truncatedError is ErrTruncated with the details.
type truncatedError struct{ details string }

func (e *truncatedError) Error() string   { return ErrTruncated.Error() + " " + e.details }
func (e *truncatedError) Unwrap() []error { return []error{ErrTruncated, io.ErrUnexpectedEOF} }

// CheckPage tells whether a downloaded page is a lib.ru page holding a work, before it is cached.
// It must have the <!--Section Begins--> marker or, in lib.ru's older template, the "Собственно
// произведение" comment (else ErrNotWork, with the start of what came back). A page with the start
// marker but not <!--Section Ends-->, or with neither marker nor </html>, was cut short
// (ErrTruncated): lib.ru's pages are served without Content-Length, so only the content shows it.
func CheckPage(body []byte, contentType string) error {
	// The section markers are ASCII, the same bytes in every encoding lib.ru uses: the page is
	// decoded only when the start marker is missing.
	if bytes.Contains(body, []byte(markerBegin)) {
		if !bytes.Contains(body, []byte(markerEnd)) {
			return &truncatedError{fmt.Sprintf("after %d bytes: <!--%s--> without <!--%s-->", len(body), markerBegin, markerEnd)}
		}
		return nil
	}
	dec, err := Decode(body, contentType)
	if err != nil {
		return err
	}
	switch {
	case strings.Contains(dec.Text, markerWork):
		return nil
	case !strings.Contains(strings.ToLower(dec.Text), "</html>"):
		return &truncatedError{fmt.Sprintf("after %d bytes: no work markers and no </html>; it reads %q", len(body), excerpt(body, contentType, 200))}
	}
	return fmt.Errorf("%w (no <!--%s--> marker, no %q comment; %d bytes of %s); it reads %q",
		ErrNotWork, markerBegin, markerWork, len(body), orUnknown(contentType), excerpt(body, contentType, 200))
}

func orUnknown(contentType string) string {
	if contentType == "" {
		return "no Content-Type"
	}
	return contentType
}

// excerpt is the start of what a page says, for error messages: its title and visible text
// (scripts and styles left out), decoded, white space collapsed, at most n characters.
func excerpt(body []byte, contentType string, n int) string {
	if len(body) == 0 {
		return ""
	}
	if len(body) > 16<<10 {
		body = body[:16<<10]
	}
	text := string(body)
	if dec, err := Decode(body, contentType); err == nil {
		text = dec.Text
	}
	var b strings.Builder
	z := html.NewTokenizer(strings.NewReader(text))
	skip := 0
	for b.Len() < 4*n {
		tt := z.Next()
		if tt == html.ErrorToken {
			break
		}
		switch tt {
		case html.StartTagToken, html.EndTagToken:
			name, _ := z.TagName()
			if a := atom.Lookup(name); a == atom.Script || a == atom.Style {
				if tt == html.StartTagToken {
					skip++
				} else if skip > 0 {
					skip--
				}
			}
			b.WriteByte(' ')
		case html.TextToken:
			if skip == 0 {
				b.Write(z.Text())
			}
		}
	}
	s := normalizeSpace(b.String())
	if utf8.RuneCountInString(s) > n {
		s = string([]rune(s)[:n]) + "…"
	}
	return s
}
