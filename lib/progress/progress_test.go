package progress

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

type recorder struct {
	bytes.Buffer
	shown []string
	ids   map[string]bool
}

func (r *recorder) UpdateHTML(id, html string) {
	if r.ids == nil {
		r.ids = map[string]bool{}
	}
	r.ids[id] = true
	r.shown = append(r.shown, html)
}

func TestNilIsOff(t *testing.T) {
	if NewLive(nil) != nil || Count(nil, 3, "x") != nil || Bytes(nil, 3, "x") != nil {
		t.Fatal("a nil writer must turn progress off")
	}
	var b *Bar
	b.Add(1)
	b.Describe("x")
	b.Finish()
	var l *Live
	if l.Due() || l.Mode() != 0 {
		t.Error("a nil Live is never due")
	}
	l.Show("", "")
	l.Final("", "")
}

// Pipes and logs get whole lines, one per interval, never a carriage return.
func TestBarLines(t *testing.T) {
	var buf bytes.Buffer
	b := Count(&buf, 1000, "tokenize")
	if b.live.Mode() != Lines {
		t.Fatalf("mode %v for a buffer, want Lines", b.live.Mode())
	}
	for range 1000 {
		b.Add(1)
	}
	b.Finish()
	b.Finish()
	out := buf.String()
	if strings.Contains(out, "\r") {
		t.Errorf("carriage return in %q", out)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	// The first line at the start, the last at the end; the interval (10 s) leaves none between.
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "tokenize   0% 0/1000 [00:00") || !strings.HasPrefix(lines[1], "tokenize 100% 1000/1000 [00:00, ") {
		t.Errorf("lines %q", lines)
	}
}

// A notebook gets one HTML block, updated in place at most every interval, ending full.
func TestBarHTML(t *testing.T) {
	rec := &recorder{}
	b := Bytes(rec, 3_000_000, "model.safetensors")
	for range 3 {
		b.Add(1_000_000)
	}
	b.Describe("ok")
	b.Finish()
	if len(rec.ids) != 1 || rec.Len() != 0 {
		t.Fatalf("blocks %v, text %q: want one block and no text", rec.ids, rec.String())
	}
	if len(rec.shown) != 2 {
		t.Errorf("%d updates in a few microseconds, want 2 (start and end): the interval is not kept", len(rec.shown))
	}
	last := rec.shown[len(rec.shown)-1]
	for _, want := range []string{`class="gpt-progress"`, `<progress value="3000000" max="3000000"`, "<b>model.safetensors</b> 3.0 MB/3.0 MB [00:00, ", "<span>ok</span>"} {
		if !strings.Contains(last, want) {
			t.Errorf("final block lacks %q: %s", want, last)
		}
	}
	if strings.Contains(last, " &lt; ") || strings.Contains(last, " < ") {
		t.Errorf("a finished bar shows a remaining time: %s", last)
	}
}

// A bar whose total was an upper bound ends full at the count reached.
func TestBarDone(t *testing.T) {
	var buf bytes.Buffer
	b := Count(&buf, 29862, "merges")
	b.Add(22094)
	b.Done()
	if lines := strings.Split(strings.TrimSpace(buf.String()), "\n"); !strings.HasPrefix(lines[len(lines)-1], "merges 100% 22094/22094 [") {
		t.Errorf("lines %q", lines)
	}
}

// A terminal line is redrawn in place, padded over a longer previous one, and ended at the end.
func TestLiveTerminal(t *testing.T) {
	var buf bytes.Buffer
	l := &Live{mode: Terminal, w: &buf, every: time.Hour}
	l.Show("", "step 10/100 loss 7.1234")
	l.Show("", "step 11/100")
	l.Final("", "done")
	want := "\rstep 10/100 loss 7.1234\rstep 11/100            \rdone       \n"
	if buf.String() != want {
		t.Errorf("got %q, want %q", buf.String(), want)
	}
	if l.Due() {
		t.Error("Due right after a Show: the interval starts at each update")
	}
	l = &Live{mode: Terminal, w: &buf, every: time.Hour}
	if !l.Due() || l.Due() {
		t.Error("Due: true once, then not before the interval")
	}
}

func TestFormats(t *testing.T) {
	for d, want := range map[time.Duration]string{0: "00:00", 7 * time.Second: "00:07", 62*time.Second + 400*time.Millisecond: "01:02", 3723 * time.Second: "1:02:03"} {
		if got := Clock(d); got != want {
			t.Errorf("Clock(%v) = %q, want %q", d, got, want)
		}
	}
	for n, want := range map[int64]string{0: "0 B", 999: "999 B", 1500: "1.5 kB", 12_345_678: "12.3 MB", 551_000_000: "551.0 MB", 1_200_000_000: "1.2 GB"} {
		if got := Size(n); got != want {
			t.Errorf("Size(%d) = %q, want %q", n, got, want)
		}
	}
	if Fraction(5, 0) != 0 || Fraction(7, 5) != 1 || Fraction(1, 4) != 0.25 {
		t.Error("Fraction")
	}
}

// syncRecorder records the order of updates and syncs; block makes Sync never return.
type syncRecorder struct {
	recorder
	events []string
	block  bool
}

func (r *syncRecorder) UpdateHTML(id, html string) {
	r.recorder.UpdateHTML(id, html)
	r.events = append(r.events, "update")
}

func (r *syncRecorder) Sync() {
	if r.block {
		select {}
	}
	r.events = append(r.events, "sync")
}

// GoNB drops what is still in a cell's display pipe when the program exits (gonbui.Sync's doc):
// the final update must be followed by a sync, and only the final one (Show never waits).
func TestFinalSyncs(t *testing.T) {
	r := &syncRecorder{}
	l := NewLive(r)
	l.Show("<b>1</b>", "")
	l.Final("<b>2</b>", "")
	if got := strings.Join(r.events, ","); got != "update,update,sync" {
		t.Errorf("events %q, want update,update,sync", got)
	}
}

// A kernel that never acknowledges costs Final syncTimeout, not the program.
func TestFinalSyncTimeout(t *testing.T) {
	defer func(d time.Duration) { syncTimeout = d }(syncTimeout)
	syncTimeout = 50 * time.Millisecond
	r := &syncRecorder{block: true}
	start := time.Now()
	NewLive(r).Final("<b>done</b>", "")
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Final waited %v for a display that never syncs", d)
	}
	if len(r.shown) != 1 || r.shown[0] != "<b>done</b>" {
		t.Errorf("shown %q", r.shown)
	}
}
