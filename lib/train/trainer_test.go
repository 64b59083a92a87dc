package train

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gonb-gpt/tutorial/lib/data"
	"github.com/gonb-gpt/tutorial/lib/gpt2"
	"github.com/gonb-gpt/tutorial/lib/internal/sharedtest"
	"github.com/gonb-gpt/tutorial/lib/internal/testbackend"
	"github.com/gonb-gpt/tutorial/lib/tokenizer"
)

// goBackend is the backend the tests run on: the pure-Go one, or another with GPT_TEST_BACKEND
// (the device check runs these tests on XLA CUDA).
func goBackend(t testing.TB) compute.Backend { return testbackend.Get(t) }

func blocksOf(rows [][]int) *data.Blocks {
	b := &data.Blocks{BlockSize: len(rows[0])}
	for _, r := range rows {
		for _, v := range r {
			b.Tokens = append(b.Tokens, int32(v))
		}
	}
	return b
}

type tinyRef struct {
	InputIDs [][]int   `json:"input_ids"`
	LR       float64   `json:"adamw_lr"`
	Clip     float64   `json:"adamw_clip"`
	Losses   []float64 `json:"losses_3_steps"`
}

func loadTinyRef(t *testing.T) (*tinyRef, string) {
	dir := sharedtest.Path(t, "fixtures", "tiny-gpt2")
	var ref tinyRef
	raw, _ := os.ReadFile(filepath.Join(dir, "reference.json"))
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	return &ref, dir
}

// trainerLoss is the loss transformers' Trainer logs where the fixture's manual loop got the model's
// mean loss: (T-1)/T of it on its rows of T tokens (see trainerLoss in step.go). The updates are
// the same: clipping and AdamW do not see a gradient's scale.
func (r *tinyRef) trainerLoss(i int) float64 {
	T := float64(len(r.InputIDs[0]))
	return r.Losses[i] * (T - 1) / T
}

// refTrainer is a Trainer of the tiny fixture set up as its reference steps were made in HF: the
// reference batch, constant lr 1e-3, no warmup, clip 1.0, no weight decay, three steps, each logged.
func refTrainer(t *testing.T) (*tinyRef, *Trainer, *bytes.Buffer) {
	t.Helper()
	ref, dir := loadTinyRef(t)
	m, err := gpt2.Load(goBackend(t), dir)
	if err != nil {
		t.Fatal(err)
	}
	args := DefaultArguments(t.TempDir())
	args.LearningRate, args.LRSchedulerType, args.MaxGradNorm = ref.LR, "constant", ref.Clip
	args.PerDeviceTrainBatchSize, args.MaxSteps, args.LoggingSteps, args.SaveSteps = 2, 3, 1, 0
	args.SaveStrategy = "no"
	var log bytes.Buffer
	return ref, &Trainer{Model: m, Args: args, TrainData: blocksOf(ref.InputIDs), Log: &log, NoProgress: true}, &log
}

// The Trainer reproduces transformers' three AdamW steps (constant lr 1e-3, no warmup, clip 1.0,
// no weight decay) on the reference batch, logging the Trainer's loss (tinyRef.trainerLoss).
func TestTrainerThreeStepsMatchHF(t *testing.T) {
	ref, tr, log := refTrainer(t)
	out, err := tr.Train(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(trainLogs(tr.History)) != 3 || out.GlobalStep != 3 {
		t.Fatalf("history %v, output %v", tr.History, out)
	}
	for i, e := range trainLogs(tr.History) {
		// The log rounds to 4 decimals, as HF's does; compare the unrounded mean instead.
		if want := ref.trainerLoss(i); math.Abs(*e.Loss-want)/want > 1e-4 {
			t.Errorf("step %d: loss %v, HF Trainer %v (model loss %v)", i+1, *e.Loss, want, ref.Losses[i])
		}
	}
	if !strings.Contains(log.String(), "Step     Training Loss") || !strings.Contains(log.String(), "TrainOutput(global_step=3") {
		t.Errorf("log:\n%s", log.String())
	}
}

// unigramEntropy is the entropy (nats) of the token distribution: what a model that ignores
// context at best reaches.
func unigramEntropy(b *data.Blocks) float64 {
	counts := map[int32]int{}
	for _, v := range b.Tokens {
		counts[v]++
	}
	h, n := 0.0, float64(len(b.Tokens))
	for _, c := range counts {
		p := float64(c) / n
		h -= p * math.Log(p)
	}
	return h
}

func smallSetup(t *testing.T) (*gpt2.Model, *tokenizer.Tokenizer, *data.Blocks) {
	return smallSetupBlock(t, 32)
}

func smallSetupBlock(t *testing.T, blockSize int) (*gpt2.Model, *tokenizer.Tokenizer, *data.Blocks) {
	dir := sharedtest.Path(t, "fixtures", "bpe-tutorial-small")
	tok, err := tokenizer.Load(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := data.Load(filepath.Join(dir, "corpus.txt"), tok, data.Options{BlockSize: blockSize})
	if err != nil {
		t.Fatal(err)
	}
	cfg := gpt2.DefaultConfig()
	cfg.VocabSize, cfg.NPositions, cfg.NEmbd, cfg.NLayer, cfg.NHead = tok.VocabSize(), 64, 64, 2, 4
	cfg.ResidPdrop, cfg.EmbdPdrop, cfg.AttnPdrop = 0, 0, 0
	cfg.BOSTokenID, cfg.EOSTokenID = nil, nil
	m, err := gpt2.New(goBackend(t), cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	return m, tok, blocks
}

// 200 steps of a 2-layer model (d 64, batches of 16 blocks of 64 tokens, lr 5e-3 constant) on the
// small corpus bring the loss below the corpus's unigram entropy: the model uses context.
func TestTrainerLearns(t *testing.T) {
	m, tok, blocks := smallSetupBlock(t, 64)
	h := unigramEntropy(blocks)
	args := DefaultArguments(t.TempDir())
	args.LearningRate, args.LRSchedulerType, args.MaxSteps, args.LoggingSteps, args.SaveSteps = 5e-3, "constant", 200, 25, 0
	args.SaveStrategy = "no"
	args.PerDeviceTrainBatchSize = 16
	var log bytes.Buffer
	tr := &Trainer{Model: m, Tokenizer: tok, Args: args, TrainData: blocks, Log: &log, NoProgress: true}
	out, err := tr.Train(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	losses := lossesOf(tr.History)
	last := losses[len(losses)-1]
	t.Logf("unigram entropy %.3f; losses %v; %s", h, lossesOf(tr.History), out)
	if last >= h {
		t.Errorf("final loss %.3f is not below the unigram entropy %.3f", last, h)
	}
	if !strings.Contains(log.String(), "200      ") {
		t.Errorf("no table row for step 200:\n%s", log.String())
	}
}

// trainLogs are the training log entries of a history (those with a loss).
func trainLogs(h []LogEntry) []LogEntry {
	var out []LogEntry
	for _, e := range h {
		if e.Loss != nil {
			out = append(out, e)
		}
	}
	return out
}

func lossesOf(h []LogEntry) []float64 {
	var out []float64
	for _, e := range h {
		if e.Loss != nil {
			out = append(out, *e.Loss)
		}
	}
	return out
}

// trainUntil runs tr, interrupted after step stopAt as a crash would interrupt it, after that
// step's checkpoint (0: not interrupted), and fails the test unless it ends so.
func trainUntil(t *testing.T, tr *Trainer, stopAt int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tr.OnLog = func(e LogEntry) {
		if e.Step == stopAt {
			cancel()
		}
	}
	_, err := tr.Train(ctx)
	if stopAt > 0 && !errors.Is(err, context.Canceled) || stopAt == 0 && err != nil {
		t.Fatalf("run stopping at %d: %v", stopAt, err)
	}
}

// Resuming from checkpoint-K reproduces the uninterrupted run's losses after K; save_total_limit=2
// keeps the two newest; a checkpoint loads as an HF model and generates.
func TestCheckpointsAndResume(t *testing.T) {
	// stopAt > 0 interrupts the run after that step (as a crash would, after its checkpoint).
	run := func(out string, stopAt int, resume string) []float64 {
		m, tok, blocks := smallSetup(t)
		args := DefaultArguments(out)
		args.LearningRate, args.MaxSteps, args.LoggingSteps, args.SaveSteps, args.SaveTotalLimit = 3e-3, 12, 1, 4, 2
		args.ResumeFromCheckpoint = resume
		tr := &Trainer{Model: m, Tokenizer: tok, Args: args, TrainData: blocks, Log: &bytes.Buffer{}, NoProgress: true}
		trainUntil(t, tr, stopAt)
		return lossesOf(tr.History)
	}
	full := run(t.TempDir(), 0, "")
	out := t.TempDir()
	run(out, 8, "")
	cks, _ := Checkpoints(out)
	if len(cks) != 2 || filepath.Base(cks[0]) != "checkpoint-4" || filepath.Base(cks[1]) != "checkpoint-8" {
		t.Fatalf("checkpoints %v, want checkpoint-4 and checkpoint-8 (save_total_limit 2)", cks)
	}
	resumed := run(out, 0, filepath.Join(out, "checkpoint-8"))
	if len(resumed) != 12 {
		t.Fatalf("resumed history has %d entries", len(resumed))
	}
	for i := range 12 {
		if resumed[i] != full[i] {
			t.Errorf("step %d: resumed loss %v, uninterrupted %v", i+1, resumed[i], full[i])
		}
	}
	cks, _ = Checkpoints(out)
	if len(cks) != 2 || filepath.Base(cks[0]) != "checkpoint-8" || filepath.Base(cks[1]) != "checkpoint-12" {
		t.Errorf("after resuming: %v", cks)
	}
	m, err := gpt2.Load(goBackend(t), cks[1])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tokenizer.LoadDir(cks[1]); err != nil {
		t.Errorf("checkpoint tokenizer: %v", err)
	}
	if _, err := m.Generate([][]int{{5, 6, 7}}, gpt2.DefaultGenerateOptions()); err != nil {
		t.Errorf("generate from the checkpoint: %v", err)
	}
}

// A process killed while writing a checkpoint leaves the previous one loadable.
func TestKilledWhileCheckpointing(t *testing.T) {
	if dir := os.Getenv("GPT_TEST_CHILD_OUT"); dir != "" {
		m, tok, blocks := smallSetup(t)
		args := DefaultArguments(dir)
		args.MaxSteps, args.SaveSteps, args.LoggingSteps = 8, 4, 1
		tr := &Trainer{Model: m, Tokenizer: tok, Args: args, TrainData: blocks, Log: &bytes.Buffer{}, NoProgress: true}
		tr.beforeCommit = func(tmp string) {
			if strings.Contains(tmp, "checkpoint-8") {
				_ = os.WriteFile(filepath.Join(dir, "WRITING"), nil, 0o644)
				select {} // wait to be killed mid-write
			}
		}
		_, _ = tr.Train(context.Background())
		return
	}
	// The child needs the shared fixtures: without them the parent skips (outside CI) or fails (in
	// CI) here, as the child would, instead of waiting for a checkpoint that never comes.
	sharedtest.Dir(t)
	out := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run", "^TestKilledWhileCheckpointing$")
	cmd.Env = append(os.Environ(), "GPT_TEST_CHILD_OUT="+out)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for range 600 {
		if _, err := os.Stat(filepath.Join(out, "WRITING")); err == nil {
			break
		}
		sleepMillis(100)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	cks, err := Checkpoints(out)
	if err != nil || len(cks) != 1 || filepath.Base(cks[0]) != "checkpoint-4" {
		t.Fatalf("checkpoints after the kill: %v %v", cks, err)
	}
	if _, err := gpt2.Load(goBackend(t), cks[0]); err != nil {
		t.Errorf("the previous checkpoint does not load: %v", err)
	}
}

func TestTrainerBadInput(t *testing.T) {
	m, tok, blocks := smallSetup(t)
	args := DefaultArguments(t.TempDir())
	args.MaxSteps = 2
	big := &data.Blocks{BlockSize: 128, Tokens: make([]int32, 256)}
	if _, err := (&Trainer{Model: m, Args: args, TrainData: big, NoProgress: true}).Train(context.Background()); err == nil || !strings.Contains(err.Error(), "n_positions") {
		t.Errorf("block_size > n_positions: %v", err)
	}
	empty := &data.Blocks{BlockSize: 32}
	if _, err := (&Trainer{Model: m, Args: args, TrainData: empty, NoProgress: true}).Train(context.Background()); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("empty dataset: %v", err)
	}
	m.Config.VocabSize = 100
	if _, err := (&Trainer{Model: m, Tokenizer: tok, Args: args, TrainData: blocks, NoProgress: true}).Train(context.Background()); err == nil || !strings.Contains(err.Error(), "vocab_size") {
		t.Errorf("vocab mismatch: %v", err)
	}
	m2, _, _ := smallSetup(t)
	w, _ := m2.Weights()
	w["transformer.ln_f.weight"].Data[0] = float32(math.NaN())
	if err := m2.SetWeights(w); err != nil {
		t.Fatal(err)
	}
	args.SaveSteps, args.StopOnNaN = 1, true
	_, err := (&Trainer{Model: m2, Args: args, TrainData: blocks, NoProgress: true, Log: &bytes.Buffer{}}).Train(context.Background())
	if !errors.Is(err, ErrNaNLoss) || !strings.Contains(err.Error(), "last good checkpoint is none") {
		t.Errorf("NaN with stop_on_nan: %v", err)
	}
	if cks, _ := Checkpoints(args.OutputDir); len(cks) != 0 {
		t.Errorf("a NaN state was saved: %v", cks)
	}
}

// Without stop_on_nan a NaN loss does not stop training, as in HF, and no NaN reaches the log
// (JSON cannot hold it). logging_nan_inf_filter (HF's default) replaces a NaN or infinite
// micro-batch loss by the interval's mean so far (trainer.py, _inner_training_loop: tr_loss =
// tr_loss + tr_loss / (1 + global_step - _globalstep_last_logged)).
func TestNaNLossFilter(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	for _, c := range []struct {
		loss, weight, trLoss float64
		since                int
		filter               bool
		want                 float64
	}{
		{2, 0.5, 10, 4, true, 1},   // finite: loss × its share of the step
		{nan, 1, 9, 2, true, 3},    // 9 over 2 steps since the log: + 9 / 3
		{inf, 0.5, 6, 0, true, 6},  // the interval's first step: + 6 / 1
		{nan, 1, 0, 0, true, 0},    // nothing logged before: + 0
		{inf, 1, 5, 1, false, inf}, // no filter: the loss as it is
	} {
		got := microLoss(c.loss, c.weight, c.trLoss, c.since, c.filter)
		if got != c.want && !(math.IsNaN(got) && math.IsNaN(c.want)) {
			t.Errorf("microLoss(%v, %v, %v, %d, %v) = %v, want %v", c.loss, c.weight, c.trLoss, c.since, c.filter, got, c.want)
		}
	}

	for _, filter := range []bool{true, false} {
		m, _, blocks := smallSetup(t)
		w, _ := m.Weights()
		w["transformer.ln_f.weight"].Data[0] = float32(math.NaN())
		if err := m.SetWeights(w); err != nil {
			t.Fatal(err)
		}
		args := DefaultArguments(t.TempDir())
		args.MaxSteps, args.LoggingSteps, args.SaveSteps, args.LoggingNanInfFilter = 3, 1, 3, filter
		tr := &Trainer{Model: m, Args: args, TrainData: blocks, NoProgress: true, Log: &bytes.Buffer{}}
		out, err := tr.Train(context.Background())
		if err != nil || out.GlobalStep != 3 {
			t.Fatalf("filter %v: %v %v", filter, out, err)
		}
		logs := trainLogs(tr.History)
		if filter && (len(logs) != 3 || *logs[2].Loss != 0) {
			t.Errorf("filtered: entries %+v, want 3 with loss 0 (no finite loss in any interval)", logs)
		}
		if !filter && len(logs) != 0 {
			t.Errorf("unfiltered: %d entries with a loss, want none (NaN is left out)", len(logs))
		}
		if cks, _ := Checkpoints(args.OutputDir); len(cks) != 1 {
			t.Errorf("filter %v: checkpoints %v, want the final one (its trainer_state.json holds no NaN)", filter, cks)
		}
	}
}

// Gradient accumulation over two micro-batches equals one step on both together: the equivalence
// data parallelism relies on (N shards of batch B == one batch of N·B).
func TestAccumulationEqualsBigBatch(t *testing.T) {
	weightsAfter := func(accum, bs int) map[string][]float32 {
		m, _, blocks := smallSetup(t)
		args := DefaultArguments(t.TempDir())
		args.LearningRate, args.MaxSteps, args.SaveSteps, args.LoggingSteps = 1e-3, 1, 0, 1
		args.SaveStrategy = "no"
		args.GradientAccumulationSteps, args.PerDeviceTrainBatchSize = accum, bs
		sub := &data.Blocks{BlockSize: blocks.BlockSize, Tokens: blocks.Tokens[:8*blocks.BlockSize]}
		tr := &Trainer{Model: m, Args: args, TrainData: sub, TrainIndices: []int{0, 1, 2, 3, 4, 5, 6, 7}, Log: &bytes.Buffer{}, NoProgress: true}
		if _, err := tr.Train(context.Background()); err != nil {
			t.Fatal(err)
		}
		return weightsOf(t, m)
	}
	// One batch of 8 vs two accumulated batches of 4 (the same 8 blocks: one epoch, one order).
	worst := maxWeightDiff(weightsAfter(1, 8), weightsAfter(2, 4))
	// Adam's first update is about ±lr (1e-3) per weight whatever the gradient's size, so a wrong
	// accumulation moves weights by ~1e-3; summation order alone, a few 1e-6.
	if worst > 1e-5 {
		t.Errorf("max weight difference %g between one batch of 8 and 2×4 accumulated", worst)
	}
	t.Logf("max weight difference %g", worst)
}

// bf16 computes the same function within bfloat16's precision, with either attention (on XLA CUDA,
// sdpa in bf16 is cuDNN's fused flash attention).
func TestBF16Loss(t *testing.T) {
	ref, dir := loadTinyRef(t)
	for _, tc := range []struct {
		bf16 bool
		attn gpt2.AttnImplementation
	}{{false, gpt2.AttnEager}, {false, gpt2.AttnSDPA}, {true, gpt2.AttnEager}, {true, gpt2.AttnSDPA}} {
		bf16 := tc.bf16
		m, err := gpt2.Load(goBackend(t), dir)
		if err != nil {
			t.Fatal(err)
		}
		m.AttnImplementation = tc.attn
		args := DefaultArguments(t.TempDir())
		args.BF16, args.MaxSteps, args.LoggingSteps, args.SaveSteps, args.PerDeviceTrainBatchSize = bf16, 1, 1, 0, 2
		args.SaveStrategy = "no"
		args.LRSchedulerType = "constant"
		tr := &Trainer{Model: m, Args: args, TrainData: blocksOf(ref.InputIDs), Log: &bytes.Buffer{}, NoProgress: true}
		if _, err := tr.Train(context.Background()); err != nil {
			t.Fatalf("bf16=%v: %v", bf16, err)
		}
		got, want := *tr.History[0].Loss, ref.trainerLoss(0)
		if rel := math.Abs(got-want) / want; rel > 1e-2 {
			t.Errorf("bf16=%v %s: loss %v, float32 reference %v", bf16, tc.attn, got, want)
		}
		t.Logf("bf16=%v %s (%s): loss %.6f, float32 reference %.6f", bf16, tc.attn, m.AttentionPath(true), got, want)
	}
}

// weightsOf returns the model's parameters by HF name.
func weightsOf(t *testing.T, m *gpt2.Model) map[string][]float32 {
	t.Helper()
	w, err := m.Weights()
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string][]float32, len(w))
	for k, v := range w {
		out[k] = v.Data
	}
	return out
}

// maxWeightDiff is the largest absolute difference between two models' parameters.
func maxWeightDiff(a, b map[string][]float32) float64 {
	worst := 0.0
	for k := range a {
		for i := range a[k] {
			worst = math.Max(worst, math.Abs(float64(a[k][i]-b[k][i])))
		}
	}
	return worst
}
