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
// AdamW (optim), the learning-rate schedule of TrainingArguments, gradient clipping and accumulation
// (a shorter last group in each epoch), shuffling each epoch, the "Step | Training Loss" table by
// logging_strategy, checkpoints by save_strategy and at the end (atomically, at most
// save_total_limit), evaluation by eval_strategy, token_type_ids when the data has them, and
// resuming.
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
	// History is the log (HF's log_history), the summary entry last.
	History []LogEntry
	// State is the trainer state after Train (HF's trainer.state), as trainer_state.json holds it.
	State *TrainerState
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
	if t.Args.EvalStrategy != "no" && t.EvalData == nil {
		// As HF's Trainer refuses eval_strategy without an eval_dataset.
		return fmt.Errorf("trainer: eval_strategy %q needs evaluation data (EvalData)", t.Args.EvalStrategy)
	}
	if t.EvalData != nil && t.EvalData.TokenTypeIDs != t.TrainData.TokenTypeIDs {
		return errors.New("trainer: the training and evaluation data differ in token_type_ids")
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

// typesTensor is the token_type_ids of a batch of blocks when the dataset has them (all zeros, see
// data.Blocks.TokenTypeIDs), else nil.
func typesTensor(b *data.Blocks, rows int) *tensors.Tensor {
	if !b.TokenTypeIDs {
		return nil
	}
	return tensors.FromFlatDataAndDimensions(make([]int32, rows*b.BlockSize), rows, b.BlockSize)
}

// schedule is how the Trainer walks the data, as HF's _inner_training_loop does: each epoch a
// fresh shuffle cut into batches (the last one shorter, or dropped with dataloader_drop_last),
// grouped gradient_accumulation_steps at a time into optimizer steps (the last group of an epoch
// shorter: ceil(batches / accumulation) steps per epoch, so that every batch is used and an epoch
// ends at exactly 1.0).
type schedule struct {
	batch, accum, devices int
	seed                  uint64
	batchesPerEpoch       int
	stepsPerEpoch         int
	epoch                 int   // the epoch whose shuffle order holds (-1: none yet)
	order                 []int // that epoch's shuffle
}

func newSchedule(rows, batch, accum, devices int, seed uint64, dropLast bool) (*schedule, error) {
	s := &schedule{batch: batch, accum: accum, devices: devices, seed: seed, epoch: -1}
	s.batchesPerEpoch = (rows + batch - 1) / batch
	if last := rows % batch; dropLast && last > 0 || devices > 1 && last > 0 && last < devices {
		// Dropped: with dataloader_drop_last, or when too few rows are left for every device.
		s.batchesPerEpoch--
	}
	if s.batchesPerEpoch == 0 {
		return nil, fmt.Errorf("trainer: %d training blocks make no full batch of %d (dataloader_drop_last)", rows, batch)
	}
	s.stepsPerEpoch = (s.batchesPerEpoch + accum - 1) / accum
	return s, nil
}

// group returns the batches (row positions in idx's order) of optimizer step k (0-based) and the
// epoch reached after it.
func (s *schedule) group(k int, idx []int) (batches [][]int, epoch float64) {
	e, g := k/s.stepsPerEpoch, k%s.stepsPerEpoch
	if e != s.epoch {
		s.epoch, s.order = e, rand.New(rand.NewPCG(s.seed, uint64(e))).Perm(len(idx))
	}
	order := s.order
	first, end := g*s.accum, min(s.batchesPerEpoch, (g+1)*s.accum)
	for b := first; b < end; b++ {
		rows := order[b*s.batch : min(len(order), (b+1)*s.batch)]
		sel := make([]int, len(rows))
		for i, r := range rows {
			sel[i] = idx[r]
		}
		batches = append(batches, evenRows(sel, s.devices))
	}
	return batches, float64(e) + float64(end)/float64(s.batchesPerEpoch)
}

// epochEnd reports whether optimizer step k (0-based) ends an epoch.
func (s *schedule) epochEnd(k int) bool { return k%s.stepsPerEpoch == s.stepsPerEpoch-1 }

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
	types := t.TrainData.TokenTypeIDs
	if a.GradientAccumulationSteps == 1 {
		dp, err := newDataParallel(t.Model.Backend.NumDevices())
		if err != nil {
			return nil, err
		}
		if t.step, err = newStep(t.Model, opt, scaler, dp, types, true); err != nil {
			return nil, err
		}
	} else if t.accum, err = newAccumStep(t.Model, opt, scaler, types); err != nil {
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
	sched, err := newSchedule(len(idx), bs, a.GradientAccumulationSteps, devices, uint64(a.Seed), a.DataloaderDropLast)
	if err != nil {
		return nil, err
	}
	total := a.MaxSteps
	if total <= 0 {
		total = int(math.Ceil(a.NumTrainEpochs * float64(sched.stepsPerEpoch)))
	}
	numEpochs := (total + sched.stepsPerEpoch - 1) / sched.stepsPerEpoch
	// TrainerState.compute_steps: fractions of the total; eval_steps defaults to logging_steps.
	logEvery, saveEvery, evalEvery := Steps(a.LoggingSteps, total), Steps(a.SaveSteps, total), Steps(a.EvalSteps, total)
	if evalEvery == 0 {
		evalEvery = logEvery
	}
	state := &TrainerState{MaxSteps: total, LoggingSteps: logEvery, SaveSteps: saveEvery, EvalSteps: evalEvery,
		TrainBatchSize: bs, NumTrainEpochs: numEpochs, IsLocalProcessZero: true, IsWorldProcessZero: true,
		StatefulCallbacks: trainerControl()}
	var gs goState
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
		resumed, rgs, err := t.loadCheckpoint(dir, scaler)
		if err != nil {
			return nil, err
		}
		state.GlobalStep, state.Epoch, state.LogHistory, state.TotalFlos = resumed.GlobalStep, resumed.Epoch, resumed.LogHistory, resumed.TotalFlos
		gs = rgs
		t.History = state.LogHistory
		fmt.Fprintf(log, "Resuming from %s at step %d\n", dir, state.GlobalStep)
	}
	fmt.Fprintf(log, "***** Running training *****\n  Num examples = %d\n  Num Epochs = %d\n  Instantaneous batch size per device = %d\n  Total train batch size = %d\n  Gradient Accumulation steps = %d\n  Total optimization steps = %d\n  Number of trainable parameters = %d\n",
		len(idx), numEpochs, a.PerDeviceTrainBatchSize, bs*a.GradientAccumulationSteps, a.GradientAccumulationSteps, total, t.Model.NumParameters())

	var progressW io.Writer = os.Stderr
	if t.Progress != nil {
		progressW = t.Progress
	}
	if t.NoProgress {
		progressW = nil
	}
	disp := newDisplay(progressW, total, float64(numEpochs), state.GlobalStep)
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
	// trLoss is HF's tr_loss: the summed step losses since the last log; lastLogged its
	// _globalstep_last_logged.
	trLoss, lastLogged := 0.0, state.GlobalStep
	stepLoss := 0.0
	flosPerRow := 6 * float64(nonEmbeddingParams(t.Model)) * float64(t.TrainData.BlockSize)
	rowsDone := 0
	// finish does a launched micro-batch's bookkeeping: the loss (NaN filter or stop, sums), and,
	// when it completed an optimizer step, the step count, progress, logging, evaluation and
	// checkpoint, in the order of HF's _maybe_log_save_evaluate.
	finish := func(l *launched) error {
		r, err := l.pending.Result()
		if err != nil {
			return err
		}
		loss := r.Loss
		if (math.IsNaN(loss) || math.IsInf(loss, 0)) && a.StopOnNaN {
			last := "none"
			if cks, _ := Checkpoints(a.OutputDir); len(cks) > 0 {
				last = cks[len(cks)-1]
			}
			return fmt.Errorf("%w at step %d: training stopped (lower the learning rate?); the last good checkpoint is %s", ErrNaNLoss, state.GlobalStep+1, last)
		}
		stepLoss += microLoss(loss, l.weight, trLoss+stepLoss, state.GlobalStep-lastLogged, a.LoggingNanInfFilter)
		state.TotalFlos += flosPerRow * float64(l.rows)
		rowsDone += l.rows
		if !l.last {
			return nil
		}
		// The rate this step used (HF ≥ 4.51 logs get_last_lr() before lr_scheduler.step()), exact
		// on the host (the device's copy is float32).
		usedLR := a.LRAt(applied, total)
		if r.Skipped {
			t.SkippedSteps++
		} else {
			applied++
		}
		state.GlobalStep++
		state.Epoch = l.epoch
		k := state.GlobalStep
		tokPerS := float64(rowsDone*t.TrainData.BlockSize) / time.Since(start).Seconds()
		logged := len(state.LogHistory)
		shown := stepLoss // the step's loss (over all its micro-batches)
		defer func() {
			disp.update(k, state.Epoch, shown, usedLR, tokPerS, state.LogHistory, len(state.LogHistory) > logged)
		}()
		trLoss += stepLoss
		gs.TrainLossSum += stepLoss
		gs.TrainLossSteps++
		stepLoss = 0
		epochEnd := sched.epochEnd(k - 1)
		if at(a.LoggingStrategy, logEvery, k, epochEnd) || a.LoggingFirstStep && k == 1 {
			mean := trLoss / float64(k-lastLogged)
			e := LogEntry{Step: k, Epoch: round(state.Epoch, 4), Loss: finite(round(mean, 4)), GradNorm: finite(r.GradNorm), LearningRate: ptr(usedLR)}
			t.addLog(state, e)
			fmt.Fprintf(table, "%-8d %.6f\n", k, mean)
			trLoss, lastLogged = 0, k
		}
		if at(a.EvalStrategy, evalEvery, k, epochEnd) {
			m, err := t.EvaluateMetrics()
			if err != nil {
				return err
			}
			e := m.entry()
			e.Step, e.Epoch = k, round(state.Epoch, 4)
			t.addLog(state, e)
			fmt.Fprintf(table, "%-8d eval_loss %.6f perplexity %.3f\n", k, m.Loss, m.Perplexity)
		}
		if t.saveAt(k, total, saveEvery, epochEnd) {
			if _, err := t.saveCheckpoint(state, gs); err != nil {
				return err
			}
		}
		return nil
	}
	// The batch launched last, whose bookkeeping waits until the next one is launched: the host
	// prepares and launches batch n+1 while the device computes batch n (see Step.Launch). A step
	// after which the weights are evaluated or saved, and the last one, are finished at once.
	var inflight *launched
	for k := state.GlobalStep; k < total; k++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		batches, epoch := sched.group(k, idx)
		groupRows := 0
		for _, b := range batches {
			groupRows += len(b)
		}
		lrs := lrWindow{k: base + applied, lr: [2]float64{a.LRAt(applied, total), a.LRAt(applied+1, total)}}
		for j, sel := range batches {
			cur := &launched{rows: len(sel), weight: float64(len(sel)) / float64(groupRows), last: j == len(batches)-1, epoch: epoch}
			ids, tt := batchTensor(t.TrainData, sel), typesTensor(t.TrainData, len(sel))
			if t.step != nil {
				cur.pending, err = t.step.launch(ids, tt, ids, lrs)
			} else {
				var r StepResult
				r, err = t.accum.run(ids, tt, cur.weight, cur.last, lrs)
				cur.pending = &Pending{res: r, resolved: true}
			}
			if err != nil {
				return nil, err
			}
			if inflight != nil {
				if err := finish(inflight); err != nil {
					return nil, err
				}
			}
			inflight = cur
		}
		if n := k + 1; n == total || at(a.EvalStrategy, evalEvery, n, sched.epochEnd(k)) || t.saveAt(n, total, saveEvery, sched.epochEnd(k)) {
			if err := finish(inflight); err != nil {
				return nil, err
			}
			inflight = nil
		}
	}
	if inflight != nil {
		if err := finish(inflight); err != nil {
			return nil, err
		}
	}
	runtime := time.Since(start).Seconds()
	steps := state.GlobalStep - startStep
	trainLoss := gs.TrainLossSum / float64(max(1, gs.TrainLossSteps))
	out := &TrainOutput{GlobalStep: state.GlobalStep, TrainingLoss: trainLoss,
		Metrics: map[string]float64{"train_runtime": round(runtime, 4), "train_samples_per_second": round(float64(rowsDone)/runtime, 3),
			"train_steps_per_second": round(float64(steps)/runtime, 3), "total_flos": state.TotalFlos, "train_loss": trainLoss,
			"epoch": state.Epoch, "train_tokens_per_second": float64(rowsDone*t.TrainData.BlockSize) / runtime}}
	// The summary entry HF's train() logs at the end (speed_metrics, total_flos, train_loss).
	t.addLog(state, LogEntry{Step: state.GlobalStep, Epoch: round(state.Epoch, 4), TrainRuntime: ptr(out.Metrics["train_runtime"]),
		TrainSamplesPerSecond: ptr(out.Metrics["train_samples_per_second"]), TrainStepsPerSecond: ptr(out.Metrics["train_steps_per_second"]),
		TotalFlos: ptr(state.TotalFlos), TrainLoss: finite(trainLoss)})
	t.State = state
	disp.finish(t.History)
	if t.SkippedSteps > 0 {
		fmt.Fprintf(log, "fp16: the loss scaler skipped %d of %d optimizer steps (inf/NaN gradients)%s\n", t.SkippedSteps, steps, scaleNote(scaler, t.Model))
	}
	fmt.Fprintln(log, out)
	return out, nil
}

// microLoss is what a micro-batch adds to the interval's loss sum (HF's tr_loss), as training
// does: its loss times its share of the step; with logging_nan_inf_filter, a NaN or infinite loss
// adds instead the mean so far, trLoss / (1 + steps since the last log) (trainer.py,
// _inner_training_loop: tr_loss = tr_loss + tr_loss / (1 + global_step - _globalstep_last_logged)).
func microLoss(loss, weight, trLoss float64, sinceLog int, filter bool) float64 {
	if filter && (math.IsNaN(loss) || math.IsInf(loss, 0)) {
		return trLoss / float64(1+sinceLog)
	}
	return loss * weight
}

// at reports whether an interval strategy ("no", "steps", "epoch") fires after optimizer step k.
func at(strategy string, every, k int, epochEnd bool) bool {
	switch strategy {
	case "steps":
		return every > 0 && k%every == 0
	case "epoch":
		return epochEnd
	}
	return false
}

// saveAt reports whether a checkpoint is saved after step k: by save_strategy, and at the end of
// training whatever the interval (DefaultFlowCallback.on_step_end: "Save the model at the end if
// we have a save strategy").
func (t *Trainer) saveAt(k, total, every int, epochEnd bool) bool {
	return at(t.Args.SaveStrategy, every, k, epochEnd) || k == total && t.Args.SaveStrategy != "no"
}

// trainerControl is the stateful_callbacks entry HF writes (TrainerControl's state at a save).
func trainerControl() map[string]any {
	return map[string]any{"TrainerControl": map[string]any{
		"args":       map[string]any{"should_epoch_stop": false, "should_evaluate": false, "should_log": false, "should_save": true, "should_training_stop": false},
		"attributes": map[string]any{},
	}}
}

// nonEmbeddingParams counts the parameters HF's floating_point_ops counts:
// num_parameters(exclude_embeddings=True), which leaves out the nn.Embedding weights (wte, wpe).
func nonEmbeddingParams(m *gpt2.Model) int {
	c := m.Config
	return c.NumParameters() - c.VocabSize*c.NEmbd - c.NPositions*c.NEmbd
}

// finite returns a pointer to v, or nil when v is NaN or infinite (JSON cannot hold those; HF's
// json.dumps writes NaN and Infinity, which most JSON readers refuse).
func finite(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
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

// launched is a micro-batch whose step has been launched (see the training loop).
type launched struct {
	pending *Pending
	rows    int
	weight  float64 // its share of the step's rows (tokens)
	last    bool    // it completes an optimizer step (the last micro-batch of its group)
	epoch   float64 // the epoch reached after the step
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

// EvalMetrics are what HF's evaluate() returns for a causal LM, and run_clm's perplexity.
type EvalMetrics struct {
	Loss, Runtime, SamplesPerSecond, StepsPerSecond, Perplexity float64
}

// entry is the log entry of an evaluation (eval_loss, eval_runtime, eval_samples_per_second,
// eval_steps_per_second as speed_metrics rounds them; perplexity).
func (m EvalMetrics) entry() LogEntry {
	return LogEntry{EvalLoss: finite(m.Loss), EvalRuntime: ptr(round(m.Runtime, 4)), EvalSamplesPerSecond: ptr(round(m.SamplesPerSecond, 3)),
		EvalStepsPerSecond: ptr(round(m.StepsPerSecond, 3)), Perplexity: finite(m.Perplexity)}
}

// Evaluate returns the mean LM loss over the evaluation blocks (eval mode, under the training's
// precision as HF's evaluation loop runs under the same autocast).
func (t *Trainer) Evaluate() (float64, error) {
	m, err := t.EvaluateMetrics()
	return m.Loss, err
}

// EvaluateMetrics evaluates as HF's evaluate() does: the mean loss over the evaluation blocks, in
// batches of per_device_eval_batch_size, each batch's mean loss weighted by its size.
func (t *Trainer) EvaluateMetrics() (EvalMetrics, error) {
	if t.EvalData == nil {
		return EvalMetrics{}, errors.New("trainer: no evaluation data (eval_strategy needs EvalData)")
	}
	idx := t.EvalIndices
	if idx == nil {
		idx = make([]int, t.EvalData.Len())
		for i := range idx {
			idx[i] = i
		}
	}
	if len(idx) == 0 {
		return EvalMetrics{}, errors.New("trainer: the evaluation dataset is empty")
	}
	start := time.Now()
	bs := t.Args.PerDeviceEvalBatchSize
	sum, n, batches := 0.0, 0, 0
	for s := 0; s < len(idx); s += bs {
		batch := idx[s:min(len(idx), s+bs)]
		rows := make([][]int, len(batch))
		var types [][]int
		if t.EvalData.TokenTypeIDs {
			types = make([][]int, len(batch))
		}
		for i, k := range batch {
			blk := t.EvalData.Block(k)
			rows[i] = make([]int, len(blk))
			for j, v := range blk {
				rows[i][j] = int(v)
			}
			if types != nil {
				types[i] = make([]int, len(blk))
			}
		}
		l, err := t.Model.BatchLoss(gpt2.Batch{InputIDs: rows, TokenTypeIDs: types})
		if err != nil {
			return EvalMetrics{}, err
		}
		sum += l * float64(len(batch))
		n += len(batch)
		batches++
	}
	secs := time.Since(start).Seconds()
	loss := sum / float64(n)
	return EvalMetrics{Loss: loss, Runtime: secs, SamplesPerSecond: float64(n) / secs, StepsPerSecond: float64(batches) / secs, Perplexity: math.Exp(loss)}, nil
}

// evenRows trims a batch so that it splits evenly over the devices (the epoch's last, short batch
// loses its remainder; HF's distributed sampler pads instead).
func evenRows(sel []int, devices int) []int {
	if devices <= 1 {
		return sel
	}
	return sel[:len(sel)/devices*devices]
}
