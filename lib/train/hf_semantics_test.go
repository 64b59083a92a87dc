package train

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gonb-gpt/tutorial/lib/data"
	"github.com/gonb-gpt/tutorial/lib/gpt2"
	"github.com/gonb-gpt/tutorial/lib/optim"
)

// Tests that each state the transformers 5.17 behaviour they match (trainer.py, training_args.py,
// trainer_callback.py), cited by function.

// quickArgs are arguments for a short run in a temporary folder: no checkpoints, a log entry
// every step.
func quickArgs(t *testing.T, steps int) *TrainingArguments {
	args := DefaultArguments(t.TempDir())
	args.MaxSteps, args.LoggingSteps, args.SaveStrategy, args.LearningRate = steps, 1, "no", 1e-3
	return args
}

func subset(b *data.Blocks, n int) *data.Blocks {
	return &data.Blocks{BlockSize: b.BlockSize, Tokens: b.Tokens[:n*b.BlockSize], TokenTypeIDs: b.TokenTypeIDs}
}

// _inner_training_loop runs ceil(batches / gradient_accumulation_steps) optimizer steps per epoch,
// the last group shorter, so that every batch is used and each epoch ends at 1.0 (10 blocks, batch
// 1, accumulation 3: steps after 3, 6, 9 and 10 batches).
func TestAccumulationEpochEnds(t *testing.T) {
	m, _, blocks := smallSetup(t)
	args := quickArgs(t, -1)
	args.NumTrainEpochs, args.PerDeviceTrainBatchSize, args.GradientAccumulationSteps = 1, 1, 3
	tr := &Trainer{Model: m, Args: args, TrainData: subset(blocks, 10), Log: &bytes.Buffer{}, NoProgress: true}
	out, err := tr.Train(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var epochs []float64
	for _, e := range trainLogs(tr.History) {
		epochs = append(epochs, e.Epoch)
	}
	if out.GlobalStep != 4 || !slices.Equal(epochs, []float64{0.3, 0.6, 0.9, 1}) || out.Metrics["epoch"] != 1 {
		t.Errorf("global step %d, logged epochs %v, final epoch %v: want 4 steps at epochs 0.3 0.6 0.9 1", out.GlobalStep, epochs, out.Metrics["epoch"])
	}
}

// The gradient of an accumulated step is the mean over all the tokens of its group (HF divides the
// summed token losses by the group's num_items_in_batch), also for a shorter last group and for
// micro-batches of different sizes: each step's logged loss and grad_norm equal those of one big
// batch of the same rows, and so do the weights. The old 1/k weighting logs a third of the true
// grad_norm for the short group of the first case and one 3% off in the second. The weights are
// compared loosely: AdamW's first update is about lr·sign(g), so rounding in a gradient near zero
// moves a weight by up to 2·lr (2.7e-5 on XLA CUDA, float32 without TF32).
func TestAccumulationShortGroups(t *testing.T) {
	run := func(rows, batch, accum int) (map[string][]float32, []LogEntry) {
		m, _, blocks := smallSetup(t)
		args := quickArgs(t, -1)
		args.NumTrainEpochs, args.PerDeviceTrainBatchSize, args.GradientAccumulationSteps = 1, batch, accum
		tr := &Trainer{Model: m, Args: args, TrainData: subset(blocks, rows), Log: &bytes.Buffer{}, NoProgress: true}
		if _, err := tr.Train(context.Background()); err != nil {
			t.Fatal(err)
		}
		return weightsOf(t, m), trainLogs(tr.History)
	}
	rel := func(a, b *float64) float64 {
		if a == nil || b == nil {
			return math.Inf(1)
		}
		return math.Abs(*a-*b) / math.Abs(*b)
	}
	for _, c := range []struct{ rows, batch, accum, bigBatch int }{
		{4, 1, 3, 3}, // groups of 3 batches and of 1: big batches of 3 rows and of 1
		{5, 2, 3, 6}, // one group of micro-batches of 2, 2 and 1 rows: one batch of 5
	} {
		wa, la := run(c.rows, c.batch, c.accum)
		wb, lb := run(c.rows, c.bigBatch, 1)
		name := fmt.Sprintf("%d rows, batch %d, accumulation %d vs batch %d", c.rows, c.batch, c.accum, c.bigBatch)
		if len(la) != len(lb) {
			t.Fatalf("%s: %d steps against %d", name, len(la), len(lb))
		}
		for i := range la {
			if dl, dg := rel(la[i].Loss, lb[i].Loss), rel(la[i].GradNorm, lb[i].GradNorm); dl > 1e-5 || dg > 1e-4 {
				t.Errorf("%s, step %d: loss differs by %.2g, grad_norm by %.2g (relative)", name, la[i].Step, dl, dg)
			}
		}
		if d := maxDiff(wa, wb); d > 1e-4 {
			t.Errorf("%s: weights differ by %g", name, d)
		}
	}
}

func maxDiff(a, b map[string][]float32) float64 {
	d := 0.0
	for name, x := range a {
		for i := range x {
			d = max(d, math.Abs(float64(x[i]-b[name][i])))
		}
	}
	return d
}

// DefaultFlowCallback.on_step_end saves at the end of training when there is a save strategy, so
// that resuming a finished run starts from its end; save_strategy "no" saves nothing.
func TestFinalCheckpoint(t *testing.T) {
	m, _, blocks := smallSetup(t)
	args := quickArgs(t, 5)
	args.SaveStrategy, args.SaveSteps = "steps", 2
	tr := &Trainer{Model: m, Args: args, TrainData: blocks, Log: &bytes.Buffer{}, NoProgress: true}
	if _, err := tr.Train(context.Background()); err != nil {
		t.Fatal(err)
	}
	cks, _ := Checkpoints(args.OutputDir)
	var names []string
	for _, c := range cks {
		names = append(names, filepath.Base(c))
	}
	if strings.Join(names, " ") != "checkpoint-2 checkpoint-4 checkpoint-5" {
		t.Errorf("checkpoints %v, want 2, 4 and the final 5", names)
	}
	args.ResumeFromCheckpoint = "last"
	out, err := (&Trainer{Model: m, Args: args, TrainData: blocks, Log: &bytes.Buffer{}, NoProgress: true}).Train(context.Background())
	if err != nil || out.GlobalStep != 5 {
		t.Errorf("resuming the finished run: %v %v, want global step 5 and nothing to do", out, err)
	}

	args = quickArgs(t, 3)
	if _, err := (&Trainer{Model: m, Args: args, TrainData: blocks, Log: &bytes.Buffer{}, NoProgress: true}).Train(context.Background()); err != nil {
		t.Fatal(err)
	}
	if cks, _ := Checkpoints(args.OutputDir); len(cks) != 0 {
		t.Errorf("save_strategy no: checkpoints %v", cks)
	}
}

// The logged learning_rate is the rate the step used (transformers ≥ 4.51: _get_learning_rate()
// before lr_scheduler.step()): with 2 warm-up steps of 4, linear, 0 · lr first.
func TestLoggedLearningRate(t *testing.T) {
	m, _, blocks := smallSetup(t)
	args := quickArgs(t, 4)
	args.WarmupSteps = 2
	tr := &Trainer{Model: m, Args: args, TrainData: blocks, Log: &bytes.Buffer{}, NoProgress: true}
	if _, err := tr.Train(context.Background()); err != nil {
		t.Fatal(err)
	}
	var got []float64
	for _, e := range trainLogs(tr.History) {
		got = append(got, *e.LearningRate/args.LearningRate)
	}
	if !slices.Equal(got, []float64{0, 0.5, 1, 0.5}) {
		t.Errorf("logged learning rates / lr = %v, want 0 0.5 1 0.5", got)
	}
}

// hfTrainerStateKeys are TrainerState's fields in transformers 5.17 (trainer_callback.py);
// TrainerState.load_from_json passes the file's keys to the dataclass, which rejects any other.
var hfTrainerStateKeys = []string{"best_global_step", "best_metric", "best_model_checkpoint", "epoch", "eval_steps", "global_step",
	"is_hyper_param_search", "is_local_process_zero", "is_world_process_zero", "log_history", "logging_steps", "max_steps",
	"num_input_tokens_seen", "num_train_epochs", "save_steps", "stateful_callbacks", "total_flos", "train_batch_size",
	"trial_name", "trial_params"}

// trainer_state.json holds HF's keys only; the Go run's random-number state and loss sums are in
// trainer_state_go.json. Log entries use HF's keys: loss/grad_norm/learning_rate, eval_loss/
// eval_runtime/eval_samples_per_second/eval_steps_per_second (perplexity is run_clm's extra), and
// the summary entry (train_runtime, train_samples_per_second, train_steps_per_second, total_flos,
// train_loss) last in log_history.
func TestCheckpointFilesHFKeys(t *testing.T) {
	m, _, blocks := smallSetup(t)
	args := quickArgs(t, 4)
	args.SaveStrategy, args.SaveSteps, args.EvalStrategy, args.EvalSteps, args.LoggingSteps = "steps", 4, "steps", 2, 2
	tr := &Trainer{Model: m, Args: args, TrainData: blocks, TrainIndices: seq(0, 20), EvalData: blocks, EvalIndices: seq(20, 24),
		Log: &bytes.Buffer{}, NoProgress: true}
	out, err := tr.Train(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(args.OutputDir, "checkpoint-4")
	raw, err := os.ReadFile(filepath.Join(dir, "trainer_state.json"))
	if err != nil {
		t.Fatal(err)
	}
	var state map[string]json.RawMessage
	if err := json.Unmarshal(raw, &state); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range state {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if !slices.Equal(keys, hfTrainerStateKeys) {
		t.Errorf("trainer_state.json keys %v, want HF's %v", keys, hfTrainerStateKeys)
	}
	var gs goState
	if raw, err := os.ReadFile(filepath.Join(dir, goStateFile)); err != nil || json.Unmarshal(raw, &gs) != nil || len(gs.RNGState) == 0 || gs.TrainLossSteps != 4 {
		t.Errorf("%s: %+v %v", goStateFile, gs, err)
	}

	var history []map[string]any
	if err := json.Unmarshal(state["log_history"], &history); err != nil {
		t.Fatal(err)
	}
	kinds := map[string][]string{
		"train": {"epoch", "grad_norm", "learning_rate", "loss", "step"},
		"eval":  {"epoch", "eval_loss", "eval_runtime", "eval_samples_per_second", "eval_steps_per_second", "perplexity", "step"},
	}
	for _, e := range history {
		kind := "train"
		if _, ok := e["eval_loss"]; ok {
			kind = "eval"
		}
		var got []string
		for k := range e {
			got = append(got, k)
		}
		sort.Strings(got)
		if !slices.Equal(got, kinds[kind]) {
			t.Errorf("%s entry keys %v, want %v", kind, got, kinds[kind])
		}
	}
	last := tr.History[len(tr.History)-1]
	// 20 blocks in batches of 8: 8, 8 and 4 rows in the first epoch, 8 in the second's first step.
	flos := 6 * float64(nonEmbeddingParams(m)) * float64(28*blocks.BlockSize)
	if last.Step != 4 || last.TrainLoss == nil || *last.TrainLoss != out.TrainingLoss || last.TotalFlos == nil || *last.TotalFlos != flos ||
		last.TrainRuntime == nil || last.TrainSamplesPerSecond == nil || last.TrainStepsPerSecond == nil {
		t.Errorf("summary entry %+v: want step 4, train_loss %v, total_flos %v (6 · non-embedding parameters · tokens) and the speed metrics",
			last, out.TrainingLoss, flos)
	}
	if tr.State == nil || tr.State.TotalFlos != flos || tr.State.GlobalStep != 4 {
		t.Errorf("trainer state %+v", tr.State)
	}
}

// hfCheckpoint makes a checkpoint as transformers' Trainer saves one after 3 of 10 steps: a tiny
// model's weights, trainer_state.json, and testdata/hf-checkpoint's optimizer.pt, scheduler.pt and
// scaler.pt (made by torch: make.py there).
func hfCheckpoint(t *testing.T) (*gpt2.Model, string) {
	cfg := gpt2.DefaultConfig()
	cfg.VocabSize, cfg.NPositions, cfg.NEmbd, cfg.NLayer, cfg.NHead = 16, 8, 8, 1, 2
	cfg.ResidPdrop, cfg.EmbdPdrop, cfg.AttnPdrop = 0, 0, 0
	cfg.BOSTokenID, cfg.EOSTokenID = nil, nil
	m, err := gpt2.New(goBackend(t), cfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "checkpoint-3")
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"optimizer.pt", "scheduler.pt", "scaler.pt"} {
		data, err := os.ReadFile(filepath.Join("testdata", "hf-checkpoint", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// trainer_state.json as TrainerState.save_to_json writes it (sort_keys, indent 2).
	state := `{
  "best_global_step": null,
  "best_metric": null,
  "best_model_checkpoint": null,
  "epoch": 0.75,
  "eval_steps": 500,
  "global_step": 3,
  "is_hyper_param_search": false,
  "is_local_process_zero": true,
  "is_world_process_zero": true,
  "log_history": [
    {"epoch": 0.25, "grad_norm": 1.5, "learning_rate": 0.0, "loss": 2.8, "step": 1},
    {"epoch": 0.5, "grad_norm": 1.4, "learning_rate": 0.0005, "loss": 2.79, "step": 2},
    {"epoch": 0.75, "grad_norm": 1.3, "learning_rate": 0.001, "loss": 2.77, "step": 3}
  ],
  "logging_steps": 1,
  "max_steps": 10,
  "num_input_tokens_seen": 0,
  "num_train_epochs": 3,
  "save_steps": 3,
  "stateful_callbacks": {"TrainerControl": {"args": {"should_epoch_stop": false, "should_evaluate": false, "should_log": false, "should_save": true, "should_training_stop": false}, "attributes": {}}},
  "total_flos": 120.0,
  "train_batch_size": 2,
  "trial_name": null,
  "trial_params": null
}
`
	if err := os.WriteFile(filepath.Join(dir, "trainer_state.json"), []byte(state), 0o644); err != nil {
		t.Fatal(err)
	}
	return m, dir
}

// A checkpoint of transformers' Trainer resumes: torch.optim.AdamW's moments come from
// optimizer.pt by name (Trainer.create_optimizer's groups: decayed parameters first), its step
// count is checked against scheduler.pt's last_epoch and sets the schedule's position, the loss
// scaler comes from scaler.pt; the run goes on from global_step 3 at the 4th step's rate.
func TestResumeFromHFCheckpoint(t *testing.T) {
	m, dir := hfCheckpoint(t)
	var want struct {
		Step     float64              `json:"step"`
		ExpAvg   map[string][]float64 `json:"exp_avg"`
		ExpAvgSq map[string][]float64 `json:"exp_avg_sq"`
	}
	raw, err := os.ReadFile(filepath.Join("testdata", "hf-checkpoint", "expected.json"))
	if err != nil || json.Unmarshal(raw, &want) != nil || len(want.ExpAvg) != len(m.ParamNames()) {
		t.Fatalf("expected.json: %v", err)
	}
	args := quickArgs(t, 10)
	args.WarmupSteps, args.ResumeFromCheckpoint = 2, dir
	tr := &Trainer{Model: m, Args: args}
	if _, _, err := tr.loadCheckpoint(dir, nil); err != nil {
		t.Fatal(err)
	}
	if n, err := optim.AppliedUpdates(m.Store); err != nil || float64(n) != want.Step {
		t.Errorf("optimizer steps %d %v, want %v", n, err, want.Step)
	}
	for name, values := range map[string]map[string][]float64{"/m": want.ExpAvg, "/v": want.ExpAvgSq} {
		for param, w := range values {
			v := m.Store.GetVariable(optim.StatePrefix + name + gpt2.VarPath(param))
			if v == nil {
				t.Fatalf("no optimizer state %s for %s", name, param)
			}
			val, _ := v.Value()
			got := tensors.MustCopyFlatData[float32](val)
			for i := range w {
				if math.Abs(float64(got[i])-w[i]) > 1e-9+1e-6*math.Abs(w[i]) {
					t.Fatalf("%s of %s [%d]: %v, torch %v", name, param, i, got[i], w[i])
				}
			}
		}
	}
	st, ok, err := loadHFScaler(dir)
	if err != nil || !ok || st.Scale != 1024 || st.GrowthTracker != 7 || st.GrowthInterval != 2000 {
		t.Errorf("scaler.pt: %+v %v %v", st, ok, err)
	}

	m2, dir2 := hfCheckpoint(t)
	args.ResumeFromCheckpoint = dir2
	rows := make([][]int, 8)
	for i := range rows {
		rows[i] = []int{i, 1, 2, 3, 4, 5, 6, 15 - i}
	}
	tr = &Trainer{Model: m2, Args: args, TrainData: blocksOf(rows), Log: &bytes.Buffer{}, NoProgress: true}
	out, err := tr.Train(context.Background())
	if err != nil || out.GlobalStep != 10 {
		t.Fatalf("resumed run: %v %v", out, err)
	}
	logs := trainLogs(tr.History)
	if len(logs) != 10 || logs[3].Step != 4 || *logs[3].LearningRate != args.LRAt(3, 10) {
		t.Errorf("log after the resume: %+v, want HF's 3 entries then step 4 at rate %v", logs, args.LRAt(3, 10))
	}

	// A scheduler out of step with the optimizer is refused.
	m3, dir3 := hfCheckpoint(t)
	if err := os.Remove(filepath.Join(dir3, "scheduler.pt")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := (&Trainer{Model: m3, Args: args}).loadCheckpoint(dir3, nil); err == nil || !strings.Contains(err.Error(), "scheduler.pt") {
		t.Errorf("without scheduler.pt: %v", err)
	}
}

// warmup_steps below 1 is a fraction of the total (get_warmup_steps: ceil); logging_steps and
// save_steps below 1 too (TrainerState.compute_steps: ceil(max_steps · value)).
func TestRatioArguments(t *testing.T) {
	a := DefaultArguments("x")
	a.WarmupSteps = 0.25
	if w := a.Warmup(10); w != 3 {
		t.Errorf("warmup_steps 0.25 of 10: %d, want 3", w)
	}
	a.WarmupSteps = 4
	if w := a.Warmup(10); w != 4 {
		t.Errorf("warmup_steps 4: %d", w)
	}
	a.WarmupSteps = 1.5
	if err := a.Validate(); err == nil {
		t.Error("warmup_steps 1.5 accepted")
	}

	m, _, blocks := smallSetup(t)
	args := quickArgs(t, 8)
	args.LoggingSteps, args.SaveStrategy, args.SaveSteps = 0.25, "steps", 0.5
	tr := &Trainer{Model: m, Args: args, TrainData: blocks, Log: &bytes.Buffer{}, NoProgress: true}
	if _, err := tr.Train(context.Background()); err != nil {
		t.Fatal(err)
	}
	var steps []int
	for _, e := range trainLogs(tr.History) {
		steps = append(steps, e.Step)
	}
	cks, _ := Checkpoints(args.OutputDir)
	if !slices.Equal(steps, []int{2, 4, 6, 8}) || len(cks) != 2 || filepath.Base(cks[0]) != "checkpoint-4" {
		t.Errorf("logging_steps 0.25, save_steps 0.5 of 8: logged at %v, checkpoints %v", steps, cks)
	}
	if tr.State.LoggingSteps != 2 || tr.State.SaveSteps != 4 || tr.State.EvalSteps != 2 {
		t.Errorf("trainer state steps: logging %d save %d eval %d, want 2 4 2 (eval_steps defaults to logging_steps)",
			tr.State.LoggingSteps, tr.State.SaveSteps, tr.State.EvalSteps)
	}
}

// eval_strategy decides evaluation (IntervalStrategy): "no" never (eval_steps alone does not
// evaluate), "steps" every eval_steps (default logging_steps), "epoch" at each epoch's end
// (DefaultFlowCallback.on_step_end / on_epoch_end); without evaluation data it is refused.
func TestEvalStrategy(t *testing.T) {
	m, _, blocks := smallSetup(t)
	evalSteps := func(strategy string, every float64) []int {
		args := quickArgs(t, -1)
		args.NumTrainEpochs, args.PerDeviceTrainBatchSize, args.EvalStrategy, args.EvalSteps, args.LoggingSteps = 2, 4, strategy, every, 3
		tr := &Trainer{Model: m, Args: args, TrainData: blocks, TrainIndices: seq(0, 10), EvalData: blocks, EvalIndices: seq(10, 12),
			Log: &bytes.Buffer{}, NoProgress: true}
		if _, err := tr.Train(context.Background()); err != nil {
			t.Fatalf("%s: %v", strategy, err)
		}
		var steps []int
		for _, e := range tr.History {
			if e.EvalLoss != nil {
				steps = append(steps, e.Step)
			}
		}
		return steps
	}
	// 10 blocks in batches of 4: 3 steps an epoch, 6 in all.
	for _, c := range []struct {
		strategy string
		every    float64
		want     []int
	}{{"no", 2, nil}, {"steps", 2, []int{2, 4, 6}}, {"steps", 0, []int{3, 6}}, {"epoch", 0, []int{3, 6}}} {
		if got := evalSteps(c.strategy, c.every); !slices.Equal(got, c.want) {
			t.Errorf("eval_strategy %s, eval_steps %v: evaluated after %v, want %v", c.strategy, c.every, got, c.want)
		}
	}
	args := quickArgs(t, 2)
	args.EvalStrategy = "steps"
	if _, err := (&Trainer{Model: m, Args: args, TrainData: blocks, NoProgress: true}).Train(context.Background()); err == nil || !strings.Contains(err.Error(), "EvalData") {
		t.Errorf("eval_strategy steps without evaluation data: %v", err)
	}
}

// dataloader_drop_last drops each epoch's short last batch (5 blocks in batches of 2: 2 steps an
// epoch instead of 3).
func TestDataloaderDropLast(t *testing.T) {
	m, _, blocks := smallSetup(t)
	for _, c := range []struct {
		drop  bool
		steps int
	}{{false, 3}, {true, 2}} {
		args := quickArgs(t, -1)
		args.NumTrainEpochs, args.PerDeviceTrainBatchSize, args.DataloaderDropLast = 1, 2, c.drop
		out, err := (&Trainer{Model: m, Args: args, TrainData: subset(blocks, 5), Log: &bytes.Buffer{}, NoProgress: true}).Train(context.Background())
		if err != nil || out.GlobalStep != c.steps || out.Metrics["epoch"] != 1 {
			t.Errorf("dataloader_drop_last %v: %v %v, want %d steps ending at epoch 1", c.drop, out, err, c.steps)
		}
	}
}

// Evaluation runs under the training's precision, as HF's evaluation loop runs under the same
// autocast: after a bf16 run, Evaluate is the bf16 loss, not the float32 one.
func TestEvaluateUnderTrainingPrecision(t *testing.T) {
	m, _, blocks := smallSetup(t)
	args := quickArgs(t, 1)
	args.BF16, args.LearningRate = true, 0
	tr := &Trainer{Model: m, Args: args, TrainData: blocks, EvalData: blocks, EvalIndices: []int{0, 1}, Log: &bytes.Buffer{}, NoProgress: true}
	if _, err := tr.Train(context.Background()); err != nil {
		t.Fatal(err)
	}
	got, err := tr.Evaluate()
	if err != nil {
		t.Fatal(err)
	}
	batch := gpt2.Batch{InputIDs: rowsOf(blocks, 0, 1), TokenTypeIDs: zerosLike(rowsOf(blocks, 0, 1))}
	bf16, _ := m.BatchLoss(batch)
	m.Autocast = 0
	fp32, _ := m.BatchLoss(batch)
	if got != bf16 || got == fp32 {
		t.Errorf("evaluation loss %v: bf16 %v, float32 %v: want the bf16 one", got, bf16, fp32)
	}
}

func rowsOf(b *data.Blocks, idx ...int) [][]int {
	var out [][]int
	for _, i := range idx {
		row := make([]int, b.BlockSize)
		for j, v := range b.Block(i) {
			row[j] = int(v)
		}
		out = append(out, row)
	}
	return out
}

func zerosLike(rows [][]int) [][]int {
	out := make([][]int, len(rows))
	for i, r := range rows {
		out[i] = make([]int, len(r))
	}
	return out
}

// The tutorial's tokenizer (PreTrainedTokenizerFast) returns token_type_ids of zeros, which
// GPT2Model embeds with wte and adds (GPT2Model.forward: token_type_embeds = self.wte(...)): the
// data carries them, the Trainer passes them, and the loss is that of a model whose position
// embeddings have wte[0] added.
func TestTokenTypeIDs(t *testing.T) {
	m, tok, blocks := smallSetup(t)
	if !tok.ReturnsTokenTypeIDs() || !blocks.TokenTypeIDs {
		t.Fatalf("the tutorial's tokenizer returns token_type_ids: %v; the blocks have them: %v", tok.ReturnsTokenTypeIDs(), blocks.TokenTypeIDs)
	}
	rows := rowsOf(blocks, 0, 1)
	withTypes, err := m.BatchLoss(gpt2.Batch{InputIDs: rows, TokenTypeIDs: zerosLike(rows)})
	if err != nil {
		t.Fatal(err)
	}
	without, _ := m.BatchLoss(gpt2.Batch{InputIDs: rows})
	w, _ := m.Weights()
	D := m.Config.NEmbd
	wpe, wte := w["transformer.wpe.weight"], w["transformer.wte.weight"]
	for p := range m.Config.NPositions {
		for d := range D {
			wpe.Data[p*D+d] += wte.Data[d]
		}
	}
	shifted, _ := gpt2.New(goBackend(t), m.Config, 1)
	if err := shifted.SetWeights(w); err != nil {
		t.Fatal(err)
	}
	want, _ := shifted.BatchLoss(gpt2.Batch{InputIDs: rows})
	if math.Abs(withTypes-want) > 1e-5 || withTypes == without {
		t.Errorf("loss with token_type_ids %v, with wte[0] in wpe %v, without %v", withTypes, want, without)
	}

	args := quickArgs(t, 1)
	args.PerDeviceTrainBatchSize = 2
	tr := &Trainer{Model: m, Args: args, TrainData: subset(blocks, 2), Log: &bytes.Buffer{}, NoProgress: true}
	if _, err := tr.Train(context.Background()); err != nil {
		t.Fatal(err)
	}
	T := float64(blocks.BlockSize) // The Trainer's loss is (T-1)/T of the mean (trainerLoss).
	if got := *trainLogs(tr.History)[0].Loss; math.Abs(got-withTypes*(T-1)/T) > 1e-4 {
		t.Errorf("the Trainer's first loss %v, (T-1)/T of the loss with token_type_ids %v (without %v)", got, withTypes, without)
	}
}
