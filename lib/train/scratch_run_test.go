package train

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/gonb-gpt/tutorial/lib/gpt2"
)

// EnvParityDir names a folder where TestScratchRunTokenTypes writes its run for
// .ci/hf_train_parity.py, which replays it in transformers' Trainer (device-check step
// hf-train-parity).
const EnvParityDir = "GPT_HF_PARITY_DIR"

// parityRun is run.json: what transformers needs to replay the Go run step for step.
type parityRun struct {
	// Args are the TrainingArguments of both runs.
	Args *TrainingArguments `json:"args"`
	// Blocks are the training blocks (token ids), in the dataset's order.
	Blocks [][]int32 `json:"blocks"`
	// Epochs are the order in which each epoch visits Blocks (what the Go run's shuffle drew).
	Epochs [][]int `json:"epochs"`
	// LogHistory is the Go run's log.
	LogHistory []LogEntry `json:"log_history"`
}

// A 30-step from-scratch run as notebook 03 trains (the tutorial's tokenizer, which returns
// token_type_ids, so the model adds wte[0] to every input; the tutorial's warm-up and linear decay,
// clipping at 1), at a small size with dropout off, on the test backend: 50 blocks in batches of 4 (13
// batches an epoch, the last of 2 blocks), so the run crosses two epoch ends. It must learn (loss
// down, every entry finite, the logged rates the schedule's). With GPT_HF_PARITY_DIR set it also
// writes the initial weights (HF folder) and run.json, for hf_train_parity.py to replay in
// transformers with the same weights, data order and arguments.
func TestScratchRunTokenTypes(t *testing.T) {
	m, tok, all := smallSetupBlock(t, 64) // the tutorial's tokenizer, dropout off
	if !all.TokenTypeIDs {
		t.Fatal("the tutorial's tokenizer (PreTrainedTokenizerFast) returns token_type_ids: the blocks must carry them")
	}
	blocks := subset(all, 50)
	m.AttnImplementation = gpt2.AttnEager
	out := os.Getenv(EnvParityDir)
	if out != "" {
		if err := m.Save(filepath.Join(out, "init")); err != nil {
			t.Fatal(err)
		}
	}
	args := DefaultArguments(t.TempDir())
	args.MaxSteps, args.PerDeviceTrainBatchSize, args.LearningRate, args.WarmupSteps = 30, 4, 3e-3, 5
	args.LoggingSteps, args.SaveStrategy = 1, "no"
	tr := &Trainer{Model: m, Tokenizer: tok, Args: args, TrainData: blocks, Log: &bytes.Buffer{}, NoProgress: true}
	res, err := tr.Train(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	logs := trainLogs(tr.History)
	if res.GlobalStep != 30 || len(logs) != 30 {
		t.Fatalf("%d steps, %d log entries, want 30", res.GlobalStep, len(logs))
	}
	for i, e := range logs {
		if want := args.LRAt(i, 30); e.LearningRate == nil || *e.LearningRate != want || e.GradNorm == nil {
			t.Errorf("step %d: learning_rate %v (want %v), grad_norm %v", e.Step, e.LearningRate, want, e.GradNorm)
		}
	}
	first, last := *logs[0].Loss, *logs[29].Loss
	if !(last < first-1) || math.Abs(first-math.Log(float64(m.Config.VocabSize))) > 0.5 {
		t.Errorf("loss %.4f → %.4f: want about ln(vocab) = %.4f at first, then at least 1 lower", first, last, math.Log(float64(m.Config.VocabSize)))
	}
	if e := logs[12]; e.Step != 13 || e.Epoch != 1 {
		t.Errorf("step 13 (13 batches an epoch) at epoch %v, want 1", e.Epoch)
	}
	t.Logf("losses %v", lossesOf(tr.History))
	if out == "" {
		return
	}
	run := parityRun{Args: args, LogHistory: tr.History}
	for i := range blocks.Len() {
		run.Blocks = append(run.Blocks, blocks.Block(i))
	}
	sched, err := newSchedule(blocks.Len(), args.PerDeviceTrainBatchSize, 1, 1, uint64(args.Seed), false)
	if err != nil {
		t.Fatal(err)
	}
	idx := seq(0, blocks.Len())
	for e := 0; e*sched.stepsPerEpoch < 30; e++ {
		var order []int
		for k := e * sched.stepsPerEpoch; k < (e+1)*sched.stepsPerEpoch; k++ {
			batches, _ := sched.group(k, idx)
			for _, b := range batches {
				order = append(order, b...)
			}
		}
		run.Epochs = append(run.Epochs, order)
	}
	raw, err := json.MarshalIndent(run, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, "run.json"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := tok.SavePretrained(filepath.Join(out, "init")); err != nil {
		t.Fatal(err)
	}
}
