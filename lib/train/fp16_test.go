package train

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/gomlx/compute/dtypes"
	"github.com/gonb-gpt/tutorial/lib/optim"
)

// fp16 (autocast + loss scaling) tracks float32: on the tiny fixture the first three losses within
// 5e-3 of transformers' float32 ones, and over 40 steps of the small model the loss curve within 2%
// of the float32 run (float16 keeps 11 bits of mantissa: ~5e-4 per rounding).
func TestFP16TracksFP32(t *testing.T) {
	ref, tr, _ := refTrainer(t)
	tr.Args.FP16 = true
	if _, err := tr.Train(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i, e := range trainLogs(tr.History) {
		if want := ref.trainerLoss(i); math.Abs(*e.Loss-want)/want > 5e-3 || tr.SkippedSteps != 0 {
			t.Errorf("step %d: fp16 loss %v, HF float32 %v; %d steps skipped", i+1, *e.Loss, want, tr.SkippedSteps)
		}
	}

	curve := func(fp16 bool) []float64 {
		m, tok, blocks := smallSetup(t)
		args := DefaultArguments(t.TempDir())
		args.LearningRate, args.MaxSteps, args.LoggingSteps, args.SaveSteps, args.FP16 = 3e-3, 40, 5, 0, fp16
		args.SaveStrategy = "no"
		tr := &Trainer{Model: m, Tokenizer: tok, Args: args, TrainData: blocks, Log: &bytes.Buffer{}, NoProgress: true}
		if _, err := tr.Train(context.Background()); err != nil {
			t.Fatal(err)
		}
		if tr.SkippedSteps != 0 {
			t.Errorf("fp16=%v: %d steps skipped", fp16, tr.SkippedSteps)
		}
		return lossesOf(tr.History)
	}
	full, half := curve(false), curve(true)
	t.Logf("float32 %v\nfp16    %v", full, half)
	if len(full) != 8 || len(half) != 8 {
		t.Fatalf("%d and %d logged losses, want 8", len(full), len(half))
	}
	if full[7] > 0.9*full[0] {
		t.Errorf("float32 loss did not fall: %v", full)
	}
	for i := range full {
		if rel := math.Abs(half[i]-full[i]) / full[i]; rel > 0.02 {
			t.Errorf("step %d: fp16 loss %v, float32 %v (rel. %.2g > 2%%)", 5*(i+1), half[i], full[i], rel)
		}
	}
}

// overflowScaler's first scale (2⁴⁰) overflows float16 gradients for sure; its backoff brings the
// scale to 2¹⁰, where they fit.
func overflowScaler() *optim.GradScaler {
	return &optim.GradScaler{InitScale: 1 << 40, GrowthFactor: 2, BackoffFactor: 1.0 / (1 << 30), GrowthInterval: 2000}
}

// An overflowing fp16 step is skipped as HF skips it: weights unchanged, the scale backed off,
// global_step counted, the learning-rate schedule not advanced (trainer.py steps the scheduler only
// when the optimizer ran), grad_norm left out of the log — with and without gradient accumulation.
func TestFP16OverflowSkipsStep(t *testing.T) {
	for _, accum := range []int{1, 2} {
		run := func(steps int) (*Trainer, map[string][]float32, map[string][]float32) {
			m, tok, blocks := smallSetup(t)
			before := weightsOf(t, m)
			args := DefaultArguments(t.TempDir())
			args.LearningRate, args.MaxSteps, args.LoggingSteps, args.SaveSteps, args.FP16 = 1e-3, steps, 1, 0, true
			args.SaveStrategy = "no"
			args.GradientAccumulationSteps = accum
			var log bytes.Buffer
			tr := &Trainer{Model: m, Tokenizer: tok, Args: args, TrainData: blocks, Log: &log, NoProgress: true, Scaler: overflowScaler()}
			if _, err := tr.Train(context.Background()); err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(log.Bytes(), []byte("the loss scaler skipped 1 of")) {
				t.Errorf("accumulation %d: log does not report the skipped step:\n%s", accum, log.String())
			}
			return tr, before, weightsOf(t, m)
		}
		tr, before, after := run(1)
		if d := maxWeightDiff(before, after); d != 0 || tr.SkippedSteps != 1 {
			t.Errorf("accumulation %d: skipped step: weights moved by %g, %d steps skipped", accum, d, tr.SkippedSteps)
		}
		if st, err := tr.scaler.State(tr.Model.Store); err != nil || st.Scale != 1<<10 {
			t.Errorf("accumulation %d: scale after the overflow: %+v %v, want 1024", accum, st, err)
		}
		if n, err := optim.AppliedUpdates(tr.Model.Store); err != nil || n != 0 {
			t.Errorf("accumulation %d: optimizer steps %d %v, want 0", accum, n, err)
		}
		if e := tr.History[0]; e.Step != 1 || e.GradNorm != nil {
			t.Errorf("accumulation %d: log entry %+v: want step 1 and no grad_norm", accum, e)
		}

		tr, before, after = run(3)
		if d := maxWeightDiff(before, after); d == 0 || tr.SkippedSteps != 1 {
			t.Errorf("accumulation %d: weights moved by %g, %d steps skipped: want training after the skip", accum, d, tr.SkippedSteps)
		}
		// Linear decay over 3 steps, each entry the rate its step used (HF ≥ 4.51 logs
		// get_last_lr() before lr_scheduler.step()): the skipped step 1 does not advance the
		// schedule, so step 2 uses the first rate again.
		want := []float64{1e-3, 1e-3, 1e-3 * 2 / 3}
		for i, e := range trainLogs(tr.History) {
			if e.LearningRate == nil || math.Abs(*e.LearningRate-want[i]) > 1e-12 || e.Step != i+1 {
				t.Errorf("accumulation %d: log entry %d: step %d learning_rate %v, want %v", accum, i, e.Step, e.LearningRate, want[i])
			}
		}
	}
}

// A second run on the same model (its optimizer state kept in the store) starts the learning-rate
// schedule from the beginning, as a new HF Trainer does.
func TestSecondRunStartsTheSchedule(t *testing.T) {
	m, tok, blocks := smallSetup(t)
	var lrs [2][]float64
	for run := range lrs {
		args := DefaultArguments(t.TempDir())
		args.LearningRate, args.MaxSteps, args.LoggingSteps, args.SaveSteps = 1e-3, 2, 1, 0
		args.SaveStrategy = "no"
		tr := &Trainer{Model: m, Tokenizer: tok, Args: args, TrainData: blocks, Log: &bytes.Buffer{}, NoProgress: true}
		if _, err := tr.Train(context.Background()); err != nil {
			t.Fatal(err)
		}
		for _, e := range trainLogs(tr.History) {
			lrs[run] = append(lrs[run], *e.LearningRate)
		}
	}
	if len(lrs[0]) != 2 || lrs[0][0] != lrs[1][0] || lrs[0][1] != lrs[1][1] {
		t.Errorf("logged learning rates: first run %v, second run %v", lrs[0], lrs[1])
	}
}

// The device picks the learning rate by the updates it applied: a step launched before the previous
// one's outcome is known gets LR(k) when that one was skipped, LR(k+1) when it was applied.
func TestLearningRateWindow(t *testing.T) {
	m, _, blocks := smallSetup(t)
	m.Autocast = dtypes.Float16
	step, err := newStep(m, optim.NewAdamW(), overflowScaler(), nil, false, true)
	if err != nil {
		t.Fatal(err)
	}
	ids := batchTensor(blocks, []int{0, 1})
	w := lrWindow{k: 0, lr: [2]float64{0.5, 0.25}}
	var got []StepResult
	for range 3 { // all launched with k = 0, as if no outcome were known yet
		p, err := step.launch(ids, nil, ids, w)
		if err != nil {
			t.Fatal(err)
		}
		r, err := p.Result()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
	}
	// Step 1 overflows (skipped, LR(0)); step 2 follows a skip (LR(0)); step 3 follows an update (LR(1)).
	if !got[0].Skipped || got[1].Skipped || got[2].Skipped || got[0].LR != 0.5 || got[1].LR != 0.5 || got[2].LR != 0.25 {
		t.Errorf("results %+v", got)
	}
}

// Resuming an fp16 run restores the loss scaler (scaler.json, torch's GradScaler.state_dict()): the
// resumed run's losses and final scale equal the uninterrupted run's.
func TestFP16Resume(t *testing.T) {
	run := func(out string, stopAt int, resume string) ([]float64, optim.ScalerState) {
		m, tok, blocks := smallSetup(t)
		args := DefaultArguments(out)
		args.LearningRate, args.MaxSteps, args.LoggingSteps, args.SaveSteps, args.FP16 = 3e-3, 6, 1, 3, true
		args.ResumeFromCheckpoint = resume
		// The scale doubles after every step, so a resume that forgot it would start over at 2¹⁰.
		scaler := &optim.GradScaler{InitScale: 1 << 10, GrowthFactor: 2, BackoffFactor: 0.5, GrowthInterval: 1}
		tr := &Trainer{Model: m, Tokenizer: tok, Args: args, TrainData: blocks, Log: &bytes.Buffer{}, NoProgress: true, Scaler: scaler}
		trainUntil(t, tr, stopAt)
		st, err := scaler.State(m.Store)
		if err != nil {
			t.Fatal(err)
		}
		return lossesOf(tr.History), st
	}
	full, fullState := run(t.TempDir(), 0, "")
	out := t.TempDir()
	run(out, 3, "")
	var saved optim.ScalerState
	raw, err := os.ReadFile(filepath.Join(out, "checkpoint-3", "scaler.json"))
	if err == nil {
		err = json.Unmarshal(raw, &saved)
	}
	if err != nil || saved.Scale != 1<<13 || saved.GrowthInterval != 1 {
		t.Fatalf("checkpoint-3/scaler.json: %+v %v, want scale 8192", saved, err)
	}
	resumed, resumedState := run(out, 0, filepath.Join(out, "checkpoint-3"))
	if resumedState != fullState || fullState.Scale != 1<<16 {
		t.Errorf("scaler state: resumed %+v, uninterrupted %+v", resumedState, fullState)
	}
	if len(resumed) != len(full) {
		t.Fatalf("resumed %d losses, uninterrupted %d", len(resumed), len(full))
	}
	for i := range full {
		if resumed[i] != full[i] {
			t.Errorf("step %d: resumed loss %v, uninterrupted %v", i+1, resumed[i], full[i])
		}
	}
}

// fp16 and bf16 together are refused, as transformers refuses them.
func TestFP16AndBF16(t *testing.T) {
	args := DefaultArguments(t.TempDir())
	args.FP16, args.BF16 = true, true
	var ae *ArgError
	if err := args.Validate(); !errors.As(err, &ae) || ae.Field != "fp16" {
		t.Errorf("Validate: %v", err)
	}
	if p := (&TrainingArguments{FP16: true}).Precision(); p != "fp16" {
		t.Errorf("Precision %q", p)
	}
}
