// Package progress shows the progress of long work where a person looks at it:
//
//   - in a GoNB notebook (a cell's program writing to os.Stdout or os.Stderr), as one HTML block
//     updated in place (gonbui.UpdateHTML); Jupyter keeps its last state in the saved notebook;
//   - in a terminal, as one line redrawn in place;
//   - elsewhere (pipes, CI logs, files), as one line per interval, without carriage returns.
//
// Updates are throttled (see Live.Due), so that showing progress costs the work nothing measurable.
// A nil writer turns it off: the constructors return nil, and every method is a no-op on nil.
package progress

import (
	"fmt"
	"html"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/janpfeifer/gonb/gonbui"
)

// Mode is how a Live output is shown.
type Mode int

const (
	// HTML: one block in a notebook, updated in place.
	HTML Mode = iota + 1
	// Terminal: one line redrawn with a carriage return.
	Terminal
	// Lines: one line per update, for pipes and logs.
	Lines
)

// HTMLDisplay shows HTML blocks that are updated in place, as GoNB's gonbui.UpdateHTML does: the
// first call with an id creates the block, later ones replace its content. A writer given to
// NewLive that also implements it gets HTML (tests use this; notebooks get GoNB's).
type HTMLDisplay interface {
	UpdateHTML(id, html string)
}

// Intervals between two updates, by mode: a notebook redraws twice a second, a terminal five
// times, and a log gets a line every ten seconds.
var intervals = map[Mode]time.Duration{HTML: 500 * time.Millisecond, Terminal: 200 * time.Millisecond, Lines: 10 * time.Second}

// Syncer is an HTMLDisplay that can wait until what it was sent is shown. GoNB's kernel stops
// reading a cell's display pipe when the cell's program exits, so an update still in the pipe then
// is lost (gonbui.Sync's documentation says so; GoNB v0.11.5 internal/jpyexec closes the reader on
// the program's end): Live.Final syncs, so the final state of a block is the one the notebook keeps.
type Syncer interface {
	Sync()
}

// syncTimeout bounds the wait in Live.Final for a kernel that never acknowledges.
var syncTimeout = 10 * time.Second

// gonbDisplay sends HTML to the notebook through GoNB's pipe.
type gonbDisplay struct{}

func (gonbDisplay) UpdateHTML(id, html string) { gonbui.UpdateHTML(id, html) }
func (gonbDisplay) Sync()                      { gonbui.Sync() }

// Live is one output updated in place: an HTML block, a terminal line or log lines. It is not safe
// for concurrent use (Bar locks around it).
type Live struct {
	mode  Mode
	w     io.Writer
	html  HTMLDisplay
	id    string
	every time.Duration
	last  time.Time
	width int // the length of the terminal line drawn last
}

// NewLive returns the live output for w (nil for a nil w): HTML in a GoNB notebook when w is the
// cell's os.Stdout or os.Stderr (or w is an HTMLDisplay), a redrawn line when w is a terminal, and
// lines otherwise.
func NewLive(w io.Writer) *Live {
	if w == nil {
		return nil
	}
	l := &Live{w: w, mode: modeOf(w)}
	if l.mode == HTML {
		l.id = "gpt_progress_" + gonbui.UniqueID()
		if d, ok := w.(HTMLDisplay); ok {
			l.html = d
		} else {
			l.html = gonbDisplay{}
		}
	}
	l.every = intervals[l.mode]
	return l
}

// modeOf tells how NewLive shows progress written to w (not nil).
func modeOf(w io.Writer) Mode {
	if _, ok := w.(HTMLDisplay); ok || gonbui.IsNotebook && (w == os.Stdout || w == os.Stderr) {
		return HTML
	}
	if isTerminal(w) {
		return Terminal
	}
	return Lines
}

// InNotebook reports whether NewLive(w) shows HTML in a notebook.
func InNotebook(w io.Writer) bool { return w != nil && modeOf(w) == HTML }

// Every sets the interval between updates (Due); it returns l.
func (l *Live) Every(d time.Duration) *Live {
	if l != nil {
		l.every = d
	}
	return l
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// Mode reports how the output is shown (0 on nil).
func (l *Live) Mode() Mode {
	if l == nil {
		return 0
	}
	return l.mode
}

// Due reports whether an update is due: true at the first call, then once per interval. Callers
// build their HTML or text only when it is, so that rendering costs nothing in between.
func (l *Live) Due() bool {
	if l == nil {
		return false
	}
	now := time.Now()
	if !l.last.IsZero() && now.Sub(l.last) < l.every {
		return false
	}
	l.last = now
	return true
}

// Show draws an update: the HTML in a notebook, the text elsewhere (one line; a terminal redraws
// it in place).
func (l *Live) Show(htmlBlock, text string) {
	if l == nil {
		return
	}
	l.last = time.Now()
	switch l.mode {
	case HTML:
		l.html.UpdateHTML(l.id, htmlBlock)
	case Terminal:
		pad := max(0, l.width-len([]rune(text)))
		l.width = len([]rune(text))
		fmt.Fprintf(l.w, "\r%s%s", text, strings.Repeat(" ", pad))
	case Lines:
		fmt.Fprintln(l.w, text)
	}
}

// Final draws the final state, which stays: the notebook block's last content (waiting, up to
// syncTimeout, until the notebook has it: see Syncer), the terminal line ended, or a last log line.
func (l *Live) Final(htmlBlock, text string) {
	if l == nil {
		return
	}
	l.Show(htmlBlock, text)
	switch l.mode {
	case Terminal:
		fmt.Fprintln(l.w)
	case HTML:
		if s, ok := l.html.(Syncer); ok {
			done := make(chan struct{})
			go func() { s.Sync(); close(done) }()
			select {
			case <-done:
			case <-time.After(syncTimeout):
			}
		}
	}
}

// Bar counts work done towards a total, shown as a progress bar with the rate and the time left.
// Its methods are safe for concurrent use and no-ops on a nil *Bar.
type Bar struct {
	mu       sync.Mutex
	live     *Live
	desc     string
	note     string
	bytes    bool
	n, total int64
	start    time.Time
	done     bool
}

// Count starts a bar counting items up to total (≤ 0 when unknown), described by desc; nil when w is
// nil.
func Count(w io.Writer, total int64, desc string) *Bar {
	return newBar(w, total, desc, false)
}

// Bytes starts a bar counting bytes up to total (≤ 0 when unknown), described by desc.
func Bytes(w io.Writer, total int64, desc string) *Bar {
	return newBar(w, total, desc, true)
}

func newBar(w io.Writer, total int64, desc string, bytes bool) *Bar {
	live := NewLive(w)
	if live == nil {
		return nil
	}
	b := &Bar{live: live, desc: desc, total: total, bytes: bytes, start: time.Now()}
	b.live.Show(b.html(), b.text())
	return b
}

// Add advances the bar by n.
func (b *Bar) Add(n int64) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.n += n
	if !b.done && b.live.Due() {
		b.live.Show(b.html(), b.text())
	}
}

// Describe sets a note shown after the counts (the current item, say).
func (b *Bar) Describe(note string) {
	if b == nil {
		return
	}
	b.mu.Lock()
	b.note = note
	b.mu.Unlock()
}

// Finish draws the final state once; later calls do nothing.
func (b *Bar) Finish() {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		return
	}
	b.done = true
	b.live.Final(b.html(), b.text())
}

// Done finishes a bar whose total was an upper bound (the work can end sooner): it ends full, at
// the count reached.
func (b *Bar) Done() {
	if b == nil {
		return
	}
	b.mu.Lock()
	b.total = b.n
	b.mu.Unlock()
	b.Finish()
}

func (b *Bar) amount(v int64) string {
	if b.bytes {
		return Size(v)
	}
	return fmt.Sprint(v)
}

// counts is "37/150" (or "37" without a total), the rate, and the elapsed and remaining time.
func (b *Bar) counts() (counts, timing string) {
	elapsed := time.Since(b.start)
	counts = b.amount(b.n)
	if b.total > 0 {
		counts += "/" + b.amount(b.total)
	}
	rate := 0.0
	if elapsed > 0 {
		rate = float64(b.n) / elapsed.Seconds()
	}
	unit := fmt.Sprintf("%.3g it/s", rate)
	if b.bytes {
		unit = Size(int64(rate)) + "/s"
	}
	left := int64(0)
	if b.total > 0 && !b.done {
		left = b.total - b.n
	}
	return counts, Times(elapsed, b.n, left) + ", " + unit
}

// Times is "00:07" after done units of work, "00:07 < 00:41" while left units remain: the elapsed
// time, and the remaining time at the rate so far.
func Times(elapsed time.Duration, done, left int64) string {
	s := Clock(elapsed)
	if done > 0 && left > 0 {
		s += " < " + Clock(time.Duration(float64(elapsed)/float64(done)*float64(left)))
	}
	return s
}

func (b *Bar) text() string {
	counts, timing := b.counts()
	s := b.desc + " "
	if b.total > 0 {
		s += fmt.Sprintf("%3.0f%% ", 100*Fraction(b.n, b.total))
	}
	s += counts + " [" + timing + "]"
	if b.note != "" {
		s += " " + b.note
	}
	return s
}

func (b *Bar) html() string {
	counts, timing := b.counts()
	var sb strings.Builder
	sb.WriteString(`<div class="gpt-progress" style="font-family:monospace">`)
	sb.WriteString(BarHTML(b.n, b.total))
	fmt.Fprintf(&sb, ` <b>%s</b> %s [%s]`, html.EscapeString(b.desc), counts, timing)
	if b.note != "" {
		fmt.Fprintf(&sb, ` <span>%s</span>`, html.EscapeString(b.note))
	}
	sb.WriteString(`</div>`)
	return sb.String()
}

// BarHTML is an HTML progress bar at n of total (an indeterminate one when total ≤ 0).
func BarHTML(n, total int64) string {
	if total <= 0 {
		return `<progress style="width:300px;vertical-align:middle"></progress>`
	}
	return fmt.Sprintf(`<progress value="%d" max="%d" style="width:300px;vertical-align:middle"></progress>`, min(n, total), total)
}

// Fraction is n/total clamped to [0, 1].
func Fraction(n, total int64) float64 {
	if total <= 0 {
		return 0
	}
	return min(1, max(0, float64(n)/float64(total)))
}

// Clock formats a duration as tqdm does: 00:07, 01:02:03.
func Clock(d time.Duration) string {
	s := int64(d.Round(time.Second) / time.Second)
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%02d:%02d", s/60, s%60)
}

// Size formats a byte count: 512 B, 1.5 kB, 12.3 MB, 1.2 GB (powers of 1000, as the hub shows sizes).
func Size(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n)/unit, 0
	for v >= unit && i < 3 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.1f %s", v, []string{"kB", "MB", "GB", "TB"}[i])
}
