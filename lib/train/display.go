package train

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/gonb-gpt/tutorial/lib/progress"
)

// display shows a training run as it goes. In a notebook it is one HTML block updated in place, as
// transformers' NotebookProgressCallback shows one: a progress bar with the elapsed and remaining
// time and the epoch, the "Step | Training Loss | Validation Loss" table growing as entries are
// logged, and beyond HF the loss curve beside it and the last step's loss, learning rate and tokens/s.
// In a terminal it is one line redrawn; in logs, one line per interval (the table then goes to the
// Trainer's Log, as HF's PrinterCallback prints the logs).
type display struct {
	live      *progress.Live
	total     int     // max_steps
	epochs    float64 // the number of epochs the run spans
	start     time.Time
	startStep int
	done      bool

	// The last finished step.
	step                 int
	epoch, loss, lr, tps float64
	history              []LogEntry
}

// newDisplay returns the display on w (nil when w is nil).
func newDisplay(w io.Writer, total int, epochs float64, startStep int) *display {
	live := progress.NewLive(w)
	if live == nil {
		return nil
	}
	return &display{live: live, total: total, epochs: epochs, start: time.Now(), startStep: startStep, step: startStep}
}

// html reports whether the display is a notebook block (which holds the loss table).
func (d *display) html() bool { return d != nil && d.live.Mode() == progress.HTML }

// update records a finished step and redraws when an update is due (or when forced: a new log
// entry). Nothing is rendered in between, so the display costs training nothing measurable.
func (d *display) update(step int, epoch, loss, lr, tokensPerSecond float64, history []LogEntry, force bool) {
	if d == nil || d.done {
		return
	}
	d.step, d.epoch, d.loss, d.lr, d.tps, d.history = step, epoch, loss, lr, tokensPerSecond, history
	if d.live.Due() || (force && d.html()) {
		d.draw(false)
	}
}

// finish draws the final state once (also when training stopped early: the block says where).
func (d *display) finish(history []LogEntry) {
	if d == nil || d.done {
		return
	}
	d.done, d.history = true, history
	d.draw(true)
}

func (d *display) draw(final bool) {
	var h, t string
	if d.html() {
		h = d.renderHTML()
	} else {
		t = d.renderText()
	}
	if final {
		d.live.Final(h, t)
	} else {
		d.live.Show(h, t)
	}
}

// timing is "00:07 < 00:41, 5.30 it/s" (the remaining time only while steps remain).
func (d *display) timing() string {
	elapsed := time.Since(d.start)
	steps := d.step - d.startStep
	s := progress.Times(elapsed, int64(steps), int64(d.total-d.step))
	if sec := elapsed.Seconds(); sec > 0 {
		s += fmt.Sprintf(", %.2f it/s", float64(steps)/sec)
	}
	return s
}

func (d *display) renderText() string {
	s := fmt.Sprintf("training %3.0f%% %d/%d [%s]", 100*progress.Fraction(int64(d.step), int64(d.total)), d.step, d.total, d.timing())
	if d.step > d.startStep {
		s += fmt.Sprintf(" epoch %.2f loss %.4f lr %.2e %.0f tok/s", d.epoch, d.loss, d.lr, d.tps)
	}
	return s
}

func (d *display) renderHTML() string {
	var b strings.Builder
	fmt.Fprintf(&b, `<div class="gpt-train" data-step="%d" data-max-steps="%d" style="font-family:sans-serif">`, d.step, d.total)
	fmt.Fprintf(&b, `<div style="font-family:monospace">%s <b>%d/%d</b> [%s, Epoch %.2f/%g]</div>`,
		progress.BarHTML(int64(d.step), int64(d.total)), d.step, d.total, d.timing(), d.epoch, d.epochs)
	if d.step > d.startStep {
		fmt.Fprintf(&b, `<div style="font-family:monospace;margin:4px 0">loss %.4f · learning rate %.3g · %.0f tokens/s</div>`, d.loss, d.lr, d.tps)
	}
	b.WriteString(`<div style="display:flex;flex-wrap:wrap;gap:24px;align-items:flex-start">`)
	b.WriteString(`<div style="max-height:320px;overflow-y:auto">`)
	b.WriteString(lossTableHTML(d.history))
	b.WriteString(`</div>`)
	b.WriteString(LossCurveSVG(d.history, 480, 260))
	b.WriteString(`</div></div>`)
	return b.String()
}

// lossTableHTML is HF's "Step | Training Loss | Validation Loss" table (the last column only when
// the run evaluates), one row per logged step.
func lossTableHTML(history []LogEntry) string {
	type row struct {
		step       int
		train, val string
	}
	var rows []row
	hasEval := false
	for _, e := range history {
		if e.Loss == nil && e.EvalLoss == nil {
			continue
		}
		if len(rows) == 0 || rows[len(rows)-1].step != e.Step {
			rows = append(rows, row{step: e.Step})
		}
		r := &rows[len(rows)-1]
		if e.Loss != nil {
			r.train = fmt.Sprintf("%.6f", *e.Loss)
		}
		if e.EvalLoss != nil {
			r.val, hasEval = fmt.Sprintf("%.6f", *e.EvalLoss), true
		}
	}
	var b strings.Builder
	b.WriteString(`<table style="border-collapse:collapse"><thead><tr><th style="text-align:left;padding:2px 12px 2px 0">Step</th><th style="text-align:left;padding:2px 12px 2px 0">Training Loss</th>`)
	if hasEval {
		b.WriteString(`<th style="text-align:left;padding:2px 12px 2px 0">Validation Loss</th>`)
	}
	b.WriteString(`</tr></thead><tbody>`)
	for _, r := range rows {
		fmt.Fprintf(&b, `<tr><td style="padding:2px 12px 2px 0">%d</td><td style="padding:2px 12px 2px 0">%s</td>`, r.step, r.train)
		if hasEval {
			fmt.Fprintf(&b, `<td style="padding:2px 12px 2px 0">%s</td>`, r.val)
		}
		b.WriteString(`</tr>`)
	}
	b.WriteString(`</tbody></table>`)
	return b.String()
}
