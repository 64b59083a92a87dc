package train

import (
	"bytes"
	"context"
	"encoding/gob"
	"fmt"
	"io"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"

	"github.com/gonb-gpt/tutorial/lib/data"
	"github.com/gonb-gpt/tutorial/lib/gpt2"
	"github.com/janpfeifer/gonb/gonbui/protocol"
)

// htmlRecorder stands for a notebook: it records the HTML blocks shown (progress.HTMLDisplay).
type htmlRecorder struct {
	bytes.Buffer // text written to it (there should be none)
	ids          map[string]int
	last         string
}

func (r *htmlRecorder) UpdateHTML(id, html string) {
	if r.ids == nil {
		r.ids = map[string]int{}
	}
	r.ids[id]++
	r.last = html
}

// displayTrainer is a 1-layer model on random blocks: 12 steps, a log entry every 4 and an
// evaluation every 6.
func displayTrainer(t *testing.T, progress, log *bytes.Buffer) *Trainer {
	t.Helper()
	cfg := gpt2.DefaultConfig()
	cfg.VocabSize, cfg.NPositions, cfg.NEmbd, cfg.NLayer, cfg.NHead = 50, 16, 16, 1, 2
	cfg.BOSTokenID, cfg.EOSTokenID = nil, nil
	m, err := gpt2.New(goBackend(t), cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	blocks := &data.Blocks{BlockSize: 16}
	for range 24 * 16 {
		blocks.Tokens = append(blocks.Tokens, int32(rng.IntN(50)))
	}
	args := DefaultArguments(t.TempDir())
	args.MaxSteps, args.LoggingSteps, args.EvalSteps, args.SaveSteps, args.PerDeviceTrainBatchSize = 12, 4, 6, 0, 2
	args.SaveStrategy, args.EvalStrategy = "no", "steps"
	tr := &Trainer{Model: m, Args: args, TrainData: blocks, TrainIndices: seq(0, 20), EvalData: blocks, EvalIndices: seq(20, 24), Log: log}
	if progress != nil {
		tr.Progress = progress
	}
	return tr
}

func seq(from, to int) []int {
	var s []int
	for i := from; i < to; i++ {
		s = append(s, i)
	}
	return s
}

// In a notebook the run is one HTML block updated in place (HF's NotebookProgressCallback): its
// final state holds the progress bar at the end, the Step | Training Loss | Validation Loss table
// and the loss curve; the table is not printed as text besides.
func TestTrainDisplayNotebook(t *testing.T) {
	var log bytes.Buffer
	rec := &htmlRecorder{}
	tr := displayTrainer(t, nil, &log)
	tr.Progress = rec
	if _, err := tr.Train(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(rec.ids) != 1 {
		t.Fatalf("the run showed %d blocks (%v), want one updated in place", len(rec.ids), rec.ids)
	}
	for _, want := range []string{`class="gpt-train" data-step="12" data-max-steps="12"`, `<progress value="12" max="12"`, "<b>12/12</b>",
		"<th style=\"text-align:left;padding:2px 12px 2px 0\">Validation Loss</th>", "<svg", "training loss", "eval loss", "learning rate", "tokens/s"} {
		if !strings.Contains(rec.last, want) {
			t.Errorf("the final block lacks %q:\n%s", want, rec.last)
		}
	}
	// One row per logged step: 4, 8 and 12 with a training loss, 6 and 12 with a validation loss.
	rows := regexp.MustCompile(`<tr><td[^>]*>(\d+)</td>`).FindAllStringSubmatch(rec.last, -1)
	var steps []string
	for _, r := range rows {
		steps = append(steps, r[1])
	}
	if got := strings.Join(steps, " "); got != "4 6 8 12" {
		t.Errorf("table rows for steps %q, want \"4 6 8 12\"", got)
	}
	if strings.Contains(log.String(), "Training Loss") || strings.Contains(log.String(), "eval_loss") {
		t.Errorf("the table went to the log too:\n%s", log.String())
	}
	if !strings.Contains(log.String(), "***** Running training *****") || !strings.Contains(log.String(), "TrainOutput(global_step=12") {
		t.Errorf("the log lacks the header or the summary:\n%s", log.String())
	}
	if rec.Len() != 0 {
		t.Errorf("text written to the notebook besides the block: %q", rec.String())
	}
}

// Outside notebooks and terminals (pipes, CI logs) the display is plain lines, without carriage
// returns, and the table goes to the log.
func TestTrainDisplayLines(t *testing.T) {
	var log, progress bytes.Buffer
	tr := displayTrainer(t, &progress, &log)
	if _, err := tr.Train(context.Background()); err != nil {
		t.Fatal(err)
	}
	out := progress.String()
	if strings.Contains(out, "\r") {
		t.Errorf("carriage returns in the progress lines: %q", out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	last := lines[len(lines)-1]
	if !regexp.MustCompile(`^training 100% 12/12 \[\d\d:\d\d, [\d.]+ it/s\] epoch [\d.]+ loss [\d.]+ lr [\d.e+-]+ \d+ tok/s$`).MatchString(last) {
		t.Errorf("last progress line %q", last)
	}
	for _, want := range []string{"Step     Training Loss", "\n4        ", "\n12       ", "6        eval_loss"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("the log lacks %q:\n%s", want, log.String())
		}
	}
}

func TestNiceTicks(t *testing.T) {
	for _, c := range []struct {
		lo, hi float64
		want   string
	}{
		{25, 150, "[40 60 80 100 120 140]"},
		{6.68, 8.55, "[7 7.5 8 8.5]"},
		{9.57, 10.77, "[9.6 9.8 10 10.2 10.4 10.6]"},
		{0.1, 0.3, "[0.1 0.15 0.2 0.25 0.3]"},
		{5, 5, "[5]"},
	} {
		if got := fmt.Sprint(niceTicks(c.lo, c.hi)); got != c.want {
			t.Errorf("niceTicks(%g, %g) = %s, want %s", c.lo, c.hi, got, c.want)
		}
	}
}

// gobDisplay encodes each update as gonbui does on its way to GoNB's kernel (gob, protocol.DisplayData
// with the HTML), to a discarding writer.
type gobDisplay struct{ enc *gob.Encoder }

func (g gobDisplay) UpdateHTML(id, html string) {
	_ = g.enc.Encode(&protocol.DisplayData{Data: map[protocol.MIMEType]any{protocol.MIMETextHTML: html}, DisplayID: id})
}

func (gobDisplay) Write(p []byte) (int, error) { return len(p), nil }

// BenchmarkDisplayUpdate is the cost of one update of the notebook block (render the bar, the table
// and the curve, encode for GoNB's pipe) with the given number of logged entries: the display makes
// at most two a second, plus one per log entry (`gpt bench display` counts them in real runs).
func BenchmarkDisplayUpdate(b *testing.B) {
	for _, n := range []int{6, 100} {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			var history []LogEntry
			for i := range n {
				history = append(history, LogEntry{Step: 25 * (i + 1), Loss: ptr(8 - float64(i)/float64(n)), LearningRate: ptr(1e-3)})
			}
			d := newDisplay(gobDisplay{gob.NewEncoder(io.Discard)}, 25*n, 2, 0)
			for i := 0; b.Loop(); i++ {
				d.step, d.history = i%(25*n), history
				d.draw(false)
			}
		})
	}
}
