package train

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"time"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gonb-gpt/tutorial/lib/backend"
	"github.com/gonb-gpt/tutorial/lib/data"
	"github.com/gonb-gpt/tutorial/lib/gpt2"
	"github.com/gonb-gpt/tutorial/lib/optim"
	"github.com/gonb-gpt/tutorial/lib/tokenizer"
)

// Trainer trains a GPT-2 model on blocks of tokens with the semantics of transformers' Trainer:
// AdamW (optim), the learning-rate schedule of TrainingArguments, gradient clipping and accumulation,
// shuffling each epoch, the "Step | Training Loss" table every logging_steps, checkpoints every
// save_steps (atomically, at most save_total_limit), evaluation every eval_steps, and resuming.
type Trainer struct {
	Model     *gpt2.Model
	Tokenizer *tokenizer.Tokenizer // saved into checkpoints (optional)
	Args      *TrainingArguments
	TrainData *data.Blocks
	// TrainIndices selects the training blocks (nil: all); EvalData/EvalIndices the held-out ones.
	TrainIndices []int
	EvalData     *data.Blocks
	EvalIndices  []int
	// Log receives the run's header, the loss table and the summary (default os.Stdout). Progress
	// receives the live display (default os.Stderr; NoProgress turns it off): in a GoNB notebook one
	// HTML block with the progress bar, the loss table and the loss curve, updated in place (the table
	// then is not written to Log); in a terminal one line redrawn; in logs one line every 10 s.
	Log        io.Writer
	Progress   io.Writer
	NoProgress bool
	// History is the log (HF's log_history).
	History []LogEntry
	// OnLog is called with each new log entry (e.g. to redraw a loss plot).
	OnLog func(LogEntry)
	// Scaler is the dynamic loss scaler of fp16 training (nil: torch's defaults, optim.NewGradScaler);
	// unused in float32 and bf16.
	Scaler *optim.GradScaler
	// SkippedSteps counts the optimizer steps the fp16 loss scaler skipped (inf/NaN gradients). As
	// in HF they still count in global_step, but the learning-rate schedule does not advance.
	SkippedSteps int

	beforeCommit func(dir string) // tests: runs before a checkpoint is renamed into place
	step         *Step
	accum        *accumStep
	scaler       *optim.GradScaler // the loss scaler in use (fp16), nil otherwise
}

// TrainOutput is what Train returns (HF's TrainOutput).
type TrainOutput struct {
	GlobalStep   int
	TrainingLoss float64
	Metrics      map[string]float64
}

func (o *TrainOutput) String() string {
	return fmt.Sprintf("TrainOutput(global_step=%d, training_loss=%.4f, metrics={'train_runtime': %.2f, 'train_samples_per_second': %.3f, 'train_steps_per_second': %.3f, 'epoch': %.2f})",
		o.GlobalStep, o.TrainingLoss, o.Metrics["train_runtime"], o.Metrics["train_samples_per_second"], o.Metrics["train_steps_per_second"], o.Metrics["epoch"])
}

// ErrNaNLoss stops training when the loss is not a number.
var ErrNaNLoss = errors.New("the training loss became NaN or infinite")

func (t *Trainer) check() error {
	if t.Model == nil || t.Args == nil || t.TrainData == nil {
		return errors.New("trainer: Model, Args and TrainData are required")
	}
	if err := t.Args.Validate(); err != nil {
		return err
	}
	if t.Args.BF16 {
		// As transformers refuses bf16=True on a GPU without bfloat16 (compute capability < 8.0).
		if err := backend.CheckBF16(t.Model.Backend); err != nil {
			return err
		}
	}
	if t.TrainData.BlockSize > t.Model.Config.NPositions {
		return fmt.Errorf("trainer: block_size %d is larger than the model's n_positions %d", t.TrainData.BlockSize, t.Model.Config.NPositions)
	}
	if t.Tokenizer != nil && t.Tokenizer.VocabSize() > t.Model.Config.VocabSize {
		return fmt.Errorf("trainer: the tokenizer has %d tokens but the model's vocab_size is %d", t.Tokenizer.VocabSize(), t.Model.Config.VocabSize)
	}
	if len(t.indices()) == 0 {
		return errors.New("trainer: the training dataset is empty")
	}
	maxID := int32(-1)
	for _, v := range t.TrainData.Tokens {
		maxID = max(maxID, v)
	}
	if int(maxID) >= t.Model.Config.VocabSize {
		return fmt.Errorf("trainer: the data holds token id %d, outside the model's vocab_size %d", maxID, t.Model.Config.VocabSize)
	}
	return nil
}

func (t *Trainer) indices() []int {
	if t.TrainIndices != nil {
		return t.TrainIndices
	}
	idx := make([]int, t.TrainData.Len())
	for i := range idx {
		idx[i] = i
	}
	return idx
}

// batchTensor packs blocks as an int32 [B, T] tensor.
func batchTensor(b *data.Blocks, idx []int) *tensors.Tensor {
	flat := make([]int32, 0, len(idx)*b.BlockSize)
	for _, i := range idx {
		flat = append(flat, b.Block(i)...)
	}
	return tensors.FromFlatDataAndDimensions(flat, len(idx), b.BlockSize)
}

// Train runs the training. ctx cancellation stops it between steps.
func (t *Trainer) Train(ctx context.Context) (*TrainOutput, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	a := t.Args
	log := t.Log
	if log == nil {
		log = os.Stdout
	}
	if err := os.MkdirAll(a.OutputDir, 0o755); err != nil {
		return nil, fmt.Errorf("trainer: %w", err)
	}
	opt := &optim.AdamW{Beta1: a.AdamBeta1, Beta2: a.AdamBeta2, Epsilon: a.AdamEpsilon, WeightDecay: a.WeightDecay, MaxGradNorm: a.MaxGradNorm}
	var err error
	t.SkippedSteps = 0
	if t.Model.Autocast, err = gpt2.AutocastDType(a.Precision()); err != nil {
		return nil, err
	}
	scaler := scalerFor(t.Model, t.Scaler)
	t.scaler = scaler
	if a.GradientAccumulationSteps == 1 {
		dp, err := newDataParallel(t.Model.Backend.NumDevices())
		if err != nil {
			return nil, err
		}
		if t.step, err = newStep(t.Model, opt, scaler, dp); err != nil {
			return nil, err
		}
	} else if t.accum, err = newAccumStep(t.Model, opt, scaler, a.GradientAccumulationSteps); err != nil {
		return nil, err
	}
	devices := 1
	if t.step != nil {
		devices = t.step.Devices()
	} else if n := t.Model.Backend.NumDevices(); n > 1 {
		fmt.Fprintf(log, "warning: gradient accumulation runs on one of the %d devices\n", n)
	}
	if devices > 1 {
		fmt.Fprintf(log, "data parallel over %d devices (unverified: see docs/data-parallel.md; GPT_DATA_PARALLEL=0 turns it off)\n", devices)
	}
	idx := t.indices()
	// The global batch is per_device_train_batch_size on each device.
	bs := a.PerDeviceTrainBatchSize * devices
	batchesPerEpoch := (len(idx) + bs - 1) / bs
	stepsPerEpoch := max(1, batchesPerEpoch/a.GradientAccumulationSteps)
	total := a.MaxSteps
	if total <= 0 {
		total = int(math.Ceil(a.NumTrainEpochs * float64(stepsPerEpoch)))
	}
	state := &TrainerState{MaxSteps: total}
	if err := t.Model.Store.SetRNGStateFromSeed(int64(a.Seed)); err != nil {
		return nil, err
	}
	if a.ResumeFromCheckpoint != "" {
		dir := a.ResumeFromCheckpoint
		if dir == "last" {
			cks, err := Checkpoints(a.OutputDir)
			if err != nil || len(cks) == 0 {
				return nil, fmt.Errorf("resume: no checkpoint in %s", a.OutputDir)
			}
			dir = cks[len(cks)-1]
		}
		if state, err = t.loadCheckpoint(dir, scaler); err != nil {
			return nil, err
		}
		state.MaxSteps = total
		t.History = state.LogHistory
		fmt.Fprintf(log, "Resuming from %s at step %d\n", dir, state.GlobalStep)
	}
	numEpochs := math.Ceil(float64(total) / float64(stepsPerEpoch))
	fmt.Fprintf(log, "***** Running training *****\n  Num examples = %d\n  Num Epochs = %d\n  Instantaneous batch size per device = %d\n  Total train batch size = %d\n  Gradient Accumulation steps = %d\n  Total optimization steps = %d\n  Number of trainable parameters = %d\n",
		len(idx), int(numEpochs), a.PerDeviceTrainBatchSize, bs*a.GradientAccumulationSteps, a.GradientAccumulationSteps, total, t.Model.NumParameters())

	var progressW io.Writer = os.Stderr
	if t.Progress != nil {
		progressW = t.Progress
	}
	if t.NoProgress {
		progressW = nil
	}
	disp := newDisplay(progressW, total, numEpochs, state.GlobalStep)
	defer func() { disp.finish(t.History) }()
	table := log // the Step | Training Loss lines: in a notebook, the display's table holds them
	if disp.html() {
		table = io.Discard
	}
	fmt.Fprintf(table, "%-8s %s\n", "Step", "Training Loss")
	// applied counts this run's optimizer updates known to be applied: the scheduler's step count (it
	// lags global_step by the fp16 steps the scaler skipped; resumed, it goes on from the
	// checkpoint's). The device counts every update the model's optimizer state has seen, base more.
	base, err := optim.AppliedUpdates(t.Model.Store)
	if err != nil {
		return nil, err
	}
	applied := 0
	if a.ResumeFromCheckpoint != "" {
		applied, base = base, 0
	}
	start := time.Now()
	startStep := state.GlobalStep
	logLossSum, logSteps, stepLoss := 0.0, 0, 0.0
	lastNorm := 0.0
	micro := state.GlobalStep * a.GradientAccumulationSteps
	tokensPerStep := bs * a.GradientAccumulationSteps * t.TrainData.BlockSize
	// finish does a launched batch's bookkeeping: the loss (NaN check, sums), and, when it completed an
	// optimizer step, the step count, progress, logging, evaluation and checkpoint.
	finish := func(l *launched) error {
		r, err := l.pending.Result()
		if err != nil {
			return err
		}
		loss := r.Loss
		if math.IsNaN(loss) || math.IsInf(loss, 0) {
			last := "none"
			if cks, _ := Checkpoints(a.OutputDir); len(cks) > 0 {
				last = cks[len(cks)-1]
			}
			return fmt.Errorf("%w at step %d: training stopped (lower the learning rate?); the last good checkpoint is %s", ErrNaNLoss, state.GlobalStep+1, last)
		}
		stepLoss += loss / float64(a.GradientAccumulationSteps)
		if !l.done {
			return nil
		}
		lastNorm = r.GradNorm
		if r.Skipped {
			t.SkippedSteps++
		} else {
			applied++
		}
		state.GlobalStep++
		logSteps++
		state.Epoch = float64(l.micro) / float64(batchesPerEpoch)
		tokPerS := float64((state.GlobalStep-startStep)*tokensPerStep) / time.Since(start).Seconds()
		logged := len(state.LogHistory)
		defer func() {
			disp.update(state.GlobalStep, state.Epoch, loss, r.LR, tokPerS, state.LogHistory, len(state.LogHistory) > logged)
		}()
		state.TrainLossSum += stepLoss
		state.TrainLossSteps++
		logLossSum += stepLoss
		stepLoss = 0
		if a.LoggingSteps > 0 && state.GlobalStep%a.LoggingSteps == 0 {
			mean := logLossSum / float64(logSteps)
			nextLR := a.LRAt(applied, total)
			e := LogEntry{Step: state.GlobalStep, Epoch: round(state.Epoch, 4), Loss: ptr(round(mean, 4)), LearningRate: ptr(nextLR)}
			if !math.IsNaN(lastNorm) && !math.IsInf(lastNorm, 0) {
				// A skipped fp16 step's norm is inf or NaN: HF writes Infinity/NaN, which JSON (and
				// Go's encoding/json) cannot hold, so it is left out.
				e.GradNorm = ptr(lastNorm)
			}
			t.addLog(state, e)
			fmt.Fprintf(table, "%-8d %.6f\n", state.GlobalStep, mean)
			logLossSum, logSteps = 0, 0
		}
		if t.evalAt(state.GlobalStep) {
			el, err := t.Evaluate()
			if err != nil {
				return err
			}
			t.addLog(state, LogEntry{Step: state.GlobalStep, Epoch: round(state.Epoch, 4), EvalLoss: ptr(el), Perplexity: ptr(math.Exp(el))})
			fmt.Fprintf(table, "%-8d eval_loss %.6f perplexity %.3f\n", state.GlobalStep, el, math.Exp(el))
		}
		if a.SaveSteps > 0 && state.GlobalStep%a.SaveSteps == 0 {
			if _, err := t.saveCheckpoint(state); err != nil {
				return err
			}
		}
		return nil
	}
	// The batch launched last, whose bookkeeping waits until the next one is launched: the host
	// prepares and launches batch n+1 while the device computes batch n (see Step.Launch). A step
	// after which the weights are evaluated or saved, and the last one, are finished at once.
	var inflight *launched
	launchedSteps := state.GlobalStep
	for launchedSteps < total {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		epoch := micro / batchesPerEpoch
		order := rand.New(rand.NewPCG(uint64(a.Seed), uint64(epoch))).Perm(len(idx))
		b := micro % batchesPerEpoch
		sel := make([]int, 0, bs)
		for _, k := range order[b*bs : min(len(order), (b+1)*bs)] {
			sel = append(sel, idx[k])
		}
		if sel = evenRows(sel, devices); len(sel) == 0 {
			micro++ // too few blocks left in this epoch for every device: on to the next epoch
			continue
		}
		ids := batchTensor(t.TrainData, sel)
		lrs := lrWindow{k: base + applied, lr: [2]float64{a.LRAt(applied, total), a.LRAt(applied+1, total)}}
		cur := &launched{done: true}
		if t.step != nil {
			cur.pending, err = t.step.launch(ids, ids, lrs)
		} else {
			var r StepResult
			r, cur.done, err = t.accum.run(ids, lrs)
			cur.pending = &Pending{res: r, resolved: true}
		}
		if err != nil {
			return nil, err
		}
		micro++
		cur.micro = micro
		if inflight != nil {
			if err := finish(inflight); err != nil {
				return nil, err
			}
		}
		inflight = cur
		if cur.done {
			launchedSteps++
			k := launchedSteps
			if k == total || t.evalAt(k) || (a.SaveSteps > 0 && k%a.SaveSteps == 0) {
				inflight = nil
				if err := finish(cur); err != nil {
					return nil, err
				}
			}
		}
	}
	if inflight != nil {
		if err := finish(inflight); err != nil {
			return nil, err
		}
	}
	runtime := time.Since(start).Seconds()
	steps := state.GlobalStep - startStep
	out := &TrainOutput{GlobalStep: state.GlobalStep, TrainingLoss: state.TrainLossSum / float64(max(1, state.TrainLossSteps)),
		Metrics: map[string]float64{"train_runtime": runtime, "train_samples_per_second": float64(steps*bs*a.GradientAccumulationSteps) / runtime,
			"train_steps_per_second": float64(steps) / runtime, "epoch": state.Epoch, "train_tokens_per_second": float64(steps*tokensPerStep) / runtime}}
	disp.finish(t.History)
	if t.SkippedSteps > 0 {
		fmt.Fprintf(log, "fp16: the loss scaler skipped %d of %d optimizer steps (inf/NaN gradients)%s\n", t.SkippedSteps, steps, scaleNote(scaler, t.Model))
	}
	fmt.Fprintln(log, out)
	return out, nil
}

// scaleNote describes the loss scale after training ("" when it cannot be read).
func scaleNote(scaler *optim.GradScaler, m *gpt2.Model) string {
	if scaler == nil {
		return ""
	}
	st, err := scaler.State(m.Store)
	if err != nil {
		return ""
	}
	return fmt.Sprintf("; the loss scale is now %g", st.Scale)
}

// launched is a batch whose step has been launched (see the training loop).
type launched struct {
	pending *Pending
	micro   int  // micro-batches launched, this one included
	done    bool // it completed an optimizer step (the last micro-batch of an accumulation)
}

// evalAt reports whether the Trainer evaluates after optimizer step k.
func (t *Trainer) evalAt(k int) bool {
	return t.EvalData != nil && t.Args.EvalSteps > 0 && k%t.Args.EvalSteps == 0
}

func (t *Trainer) addLog(state *TrainerState, e LogEntry) {
	state.LogHistory = append(state.LogHistory, e)
	t.History = state.LogHistory
	if t.OnLog != nil {
		t.OnLog(e)
	}
}

func ptr(v float64) *float64 { return &v }

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

// Evaluate returns the mean LM loss over the evaluation blocks (in eval mode).
func (t *Trainer) Evaluate() (float64, error) {
	if t.EvalData == nil {
		return 0, errors.New("trainer: no evaluation data")
	}
	idx := t.EvalIndices
	if idx == nil {
		idx = make([]int, t.EvalData.Len())
		for i := range idx {
			idx[i] = i
		}
	}
	if len(idx) == 0 {
		return 0, errors.New("trainer: the evaluation dataset is empty")
	}
	bs := t.Args.PerDeviceEvalBatchSize
	sum, n := 0.0, 0
	for s := 0; s < len(idx); s += bs {
		batch := idx[s:min(len(idx), s+bs)]
		rows := make([][]int, len(batch))
		for i, k := range batch {
			blk := t.EvalData.Block(k)
			rows[i] = make([]int, len(blk))
			for j, v := range blk {
				rows[i][j] = int(v)
			}
		}
		l, err := t.Model.Loss(rows, nil)
		if err != nil {
			return 0, err
		}
		sum += l * float64(len(batch))
		n += len(batch)
	}
	return sum / float64(n), nil
}

// evenRows trims a batch so that it splits evenly over the devices (the epoch's last, short batch
// loses its remainder; HF's distributed sampler pads instead).
func evenRows(sel []int, devices int) []int {
	if devices <= 1 {
		return sel
	}
	return sel[:len(sel)/devices*devices]
}
