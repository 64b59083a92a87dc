package corpus

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// Paragraph is one line of the cleaned text: a paragraph or a heading of the work.
type Paragraph struct {
	Text    string
	Heading bool
	// Note marks a footnote's text; Apparatus a line of the textual-variants apparatus after the
	// work (both kept only with ExtractOptions.KeepNotes).
	Note, Apparatus bool
}

// Extracted is the text of a work taken out of a lib.ru page.
type Extracted struct {
	Paragraphs []Paragraph
	// Method says how the work was found: "section-markers" (between <!--Section Begins--> and
	// <!--Section Ends-->) or "work-comment" (after the "Собственно произведение" comment, in
	// lib.ru's older template).
	Method string
	// Warning is set when the older template's comment was used.
	Warning string
	// Dropped counts the lines left out: footnote texts and apparatus lines (without KeepNotes).
	Dropped Counts
}

// Counts counts the lines of a work by kind.
type Counts struct {
	Headings, Paragraphs, Notes, Apparatus int
	// Bytes is the lines' size in UTF-8, line breaks not included.
	Bytes int
}

// Lines returns the paragraphs' texts.
func (e *Extracted) Lines() []string {
	out := make([]string, len(e.Paragraphs))
	for i, p := range e.Paragraphs {
		out[i] = p.Text
	}
	return out
}

// Count counts the paragraphs by kind: headings, paragraphs (notes and apparatus excluded), notes
// and apparatus lines.
func (e *Extracted) Count() Counts {
	var c Counts
	for _, p := range e.Paragraphs {
		c.add(p)
	}
	return c
}

func (c *Counts) add(p Paragraph) {
	switch {
	case p.Apparatus:
		c.Apparatus++
	case p.Heading:
		c.Headings++
	case p.Note:
		c.Notes++
	default:
		c.Paragraphs++
	}
	c.Bytes += len(p.Text)
}

// ExtractOptions configure [Extract].
type ExtractOptions struct {
	// KeepNotes keeps the footnotes' texts (lines that begin with the note's number, as <u>N</u>
	// or <sup>N</sup>) and the textual-variants apparatus after the work, which are dropped by
	// default. Footnote calls in the text are always removed.
	KeepNotes bool
}

// ErrNoText is returned when a page yields no text at all.
var ErrNoText = errors.New("the page holds no text")

const (
	markerBegin = "Section Begins"
	markerEnd   = "Section Ends"
	markerWork  = "Собственно произведение"
)

var reFootnoteNumber = regexp.MustCompile(`^\s*(\d{1,4}|\*{1,3})\s*$`)

// Extract takes the work out of a decoded lib.ru page with an HTML tokenizer: the text between
// <!--Section Begins--> and <!--Section Ends-->, or, in lib.ru's older template, the text after the
// "Собственно произведение" comment (with a warning); a page with neither is ErrNotWork. It returns
// one paragraph per paragraph or heading, whitespace normalized, footnote calls (<sup>N</sup>)
// removed, and footnote texts (paragraphs starting with <u>N</u> or <sup>N</sup>) and the
// textual-variants apparatus after the work (see apparatusStart) dropped unless opts.KeepNotes.
func Extract(page string, opts ExtractOptions) (*Extracted, error) {
	e := &Extracted{}
	switch {
	case strings.Contains(page, markerBegin):
		e.Method = "section-markers"
	case strings.Contains(page, markerWork):
		e.Method = "work-comment"
		e.Warning = "no <!--Section Begins--> marker (lib.ru's older template): took the text after the \"Собственно произведение\" comment"
	default:
		return e, fmt.Errorf("%w: no <!--%s--> marker and no %q comment", ErrNotWork, markerBegin, markerWork)
	}
	x := extractor{method: e.Method}
	x.run(page)
	all := x.out
	for i := apparatusStart(all); i < len(all); i++ {
		all[i].Apparatus = true
	}
	for _, p := range all {
		if (p.Note || p.Apparatus) && !opts.KeepNotes {
			e.Dropped.add(p)
			continue
		}
		e.Paragraphs = append(e.Paragraphs, p)
	}
	if len(e.Paragraphs) == 0 {
		return e, ErrNoText
	}
	return e, nil
}

var (
	// reApparatusTitle starts the textual-variants apparatus that ends some volumes of the
	// 90-volume edition: "РАЗНОЧТЕНИЯ", "Варианты …".
	reApparatusTitle = regexp.MustCompile(`(?i)^(разночтения|варианты)([^\p{L}]|$)`)
	// reApparatusLine is one of its entries: "Стр. 12, строка 5 …", "Стр. 12, строки 5—6 …".
	reApparatusLine = regexp.MustCompile(`^Стр\.\s*\d+\s*,\s*строк[аиеу]\s*\d+`)
)

// apparatusStart returns the index of the first line of the textual-variants apparatus, or
// len(lines) when there is none. The apparatus is mostly entries: it begins at a short
// "Разночтения"/"Варианты" line when more than half of the 20 lines after it are entries, or,
// without such a title, at an entry when more than half of the 10 lines from it are entries, two at
// least; it runs to the end of the work.
func apparatusStart(lines []Paragraph) int {
	entries := func(from, n int) (count, total int) {
		for j := from; j < len(lines) && j < from+n; j++ {
			total++
			if reApparatusLine.MatchString(lines[j].Text) {
				count++
			}
		}
		return
	}
	for i, p := range lines {
		switch {
		case utf8.RuneCountInString(p.Text) <= 80 && reApparatusTitle.MatchString(p.Text):
			if n, total := entries(i+1, 20); n > 0 && 2*n > total {
				return i
			}
		case reApparatusLine.MatchString(p.Text):
			if n, total := entries(i, 10); n >= 2 && 2*n > total {
				return i
			}
		}
	}
	return len(lines)
}

// extractor is the state of one pass of the tokenizer over a page.
type extractor struct {
	method string
	out    []Paragraph

	inWork  bool // inside the part of the page that holds the work
	skip    int  // depth inside elements whose text is never kept (script, style, ...)
	heading int  // depth inside h1–h6
	sup     int  // depth inside <sup>
	supText strings.Builder
	cur     strings.Builder // text of the paragraph being read
	// noteStart is true while the paragraph has no text yet, so a <u>N</u> there starts a note.
	noteStart bool
	inU       bool
	uText     strings.Builder
	note      bool // the current paragraph is a footnote's text
}

// blockTags end the paragraph being read when they open or close.
var blockTags = map[atom.Atom]bool{
	atom.Dd: true, atom.Dt: true, atom.Dl: true, atom.P: true, atom.Br: true, atom.Div: true,
	atom.H1: true, atom.H2: true, atom.H3: true, atom.H4: true, atom.H5: true, atom.H6: true,
	atom.Li: true, atom.Ul: true, atom.Ol: true, atom.Tr: true, atom.Td: true, atom.Table: true,
	atom.Pre: true, atom.Blockquote: true, atom.Hr: true, atom.Center: true, atom.Body: true,
}

// skipTags hold no text of the work.
var skipTags = map[atom.Atom]bool{
	atom.Script: true, atom.Style: true, atom.Noscript: true, atom.Form: true, atom.Select: true,
	atom.Textarea: true, atom.Button: true, atom.Head: true, atom.Title: true, atom.Iframe: true,
	atom.Nav: true, atom.Template: true,
}

func isHeading(a atom.Atom) bool {
	switch a {
	case atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6:
		return true
	}
	return false
}

func (x *extractor) run(page string) {
	z := html.NewTokenizer(strings.NewReader(page))
	x.noteStart = true
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			x.flush()
			return
		case html.CommentToken:
			c := string(z.Text())
			switch {
			case x.method == "section-markers" && strings.Contains(c, markerBegin):
				x.flush()
				x.inWork = true
			case x.method == "section-markers" && strings.Contains(c, markerEnd):
				x.flush()
				x.inWork = false
			case x.method == "work-comment" && strings.Contains(c, markerWork):
				x.flush()
				x.inWork = true
			}
		case html.StartTagToken, html.SelfClosingTagToken, html.EndTagToken:
			name, _ := z.TagName()
			start := tt != html.EndTagToken
			if x.method == "work-comment" && !start && x.inWork && string(name) == "noindex" {
				// lib.ru closes the work's <noindex> right after it; the footer follows.
				x.flush()
				x.inWork = false
				continue
			}
			x.tag(atom.Lookup(name), start, tt == html.SelfClosingTagToken)
		case html.TextToken:
			if x.inWork && x.skip == 0 {
				x.text(string(z.Text()))
			}
		}
	}
}

func (x *extractor) tag(a atom.Atom, start, selfClosing bool) {
	if skipTags[a] {
		if start && !selfClosing {
			x.skip++
		} else if !start && x.skip > 0 {
			x.skip--
		}
		return
	}
	if blockTags[a] {
		x.flush()
		if isHeading(a) {
			if start {
				x.heading++
			} else if x.heading > 0 {
				x.heading--
			}
		}
		return
	}
	switch a {
	case atom.Sup:
		if start {
			x.sup++
			if x.sup == 1 {
				x.supText.Reset()
			}
		} else if x.sup > 0 {
			x.sup--
			if x.sup == 0 {
				// A footnote's number (or asterisks): at the start of a paragraph it begins the
				// note's text (kept, like <u>N</u>); elsewhere it is a call, dropped. Other
				// superscripts are text.
				t := x.supText.String()
				switch {
				case !reFootnoteNumber.MatchString(t):
					x.cur.WriteString(t)
				case x.noteStart:
					x.note = true
					x.cur.WriteString(t)
				}
			}
		}
	case atom.U:
		if start && x.sup == 0 && x.noteStart {
			x.inU = true
			x.uText.Reset()
		} else if !start && x.inU {
			x.inU = false
			t := x.uText.String()
			if reFootnoteNumber.MatchString(t) {
				x.note = true
			}
			x.cur.WriteString(t)
		}
	}
}

func (x *extractor) text(t string) {
	switch {
	case x.sup > 0:
		x.supText.WriteString(t)
	case x.inU:
		x.uText.WriteString(t)
	default:
		x.cur.WriteString(t)
		if x.noteStart && strings.TrimFunc(t, isSpace) != "" {
			x.noteStart = false
		}
	}
}

// flush ends the current paragraph.
func (x *extractor) flush() {
	if x.inU {
		x.cur.WriteString(x.uText.String())
		x.inU = false
	}
	text := normalizeSpace(x.cur.String())
	note := x.note
	x.cur.Reset()
	x.note = false
	x.noteStart = true
	if text == "" || !x.inWork {
		return
	}
	x.out = append(x.out, Paragraph{Text: text, Heading: x.heading > 0, Note: note})
}

// isSpace is Unicode white space (no-break space included).
func isSpace(r rune) bool { return unicode.IsSpace(r) }

// normalizeSpace collapses every run of white space to one space and trims the ends.
func normalizeSpace(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for _, r := range s {
		if isSpace(r) {
			space = true
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(r)
	}
	return b.String()
}
