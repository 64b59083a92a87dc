package train

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gonb-gpt/tutorial/lib/gpt2"
	"github.com/gonb-gpt/tutorial/lib/optim"
	"github.com/gonb-gpt/tutorial/lib/tensorfile"
)

// TrainerState is trainer_state.json as transformers' TrainerState writes it: its keys only (HF's
// TrainerState.load_from_json passes them to the dataclass, which rejects unknown ones), in
// alphabetical order as json.dumps(..., sort_keys=True) writes them. What this Trainer adds to
// resume exactly is in goState (trainer_state_go.json).
type TrainerState struct {
	BestGlobalStep      *int           `json:"best_global_step"`
	BestMetric          *float64       `json:"best_metric"`
	BestModelCheckpoint *string        `json:"best_model_checkpoint"`
	Epoch               float64        `json:"epoch"`
	EvalSteps           int            `json:"eval_steps"`
	GlobalStep          int            `json:"global_step"`
	IsHyperParamSearch  bool           `json:"is_hyper_param_search"`
	IsLocalProcessZero  bool           `json:"is_local_process_zero"`
	IsWorldProcessZero  bool           `json:"is_world_process_zero"`
	LogHistory          []LogEntry     `json:"log_history"`
	LoggingSteps        int            `json:"logging_steps"`
	MaxSteps            int            `json:"max_steps"`
	NumInputTokensSeen  int            `json:"num_input_tokens_seen"`
	NumTrainEpochs      int            `json:"num_train_epochs"`
	SaveSteps           int            `json:"save_steps"`
	StatefulCallbacks   map[string]any `json:"stateful_callbacks"`
	TotalFlos           float64        `json:"total_flos"`
	TrainBatchSize      int            `json:"train_batch_size"`
	TrialName           *string        `json:"trial_name"`
	TrialParams         map[string]any `json:"trial_params"`
}

// goState is what a checkpoint holds beyond HF's files to resume a Go run exactly (as HF keeps
// its random-number states in rng_state.pth): the model store's random-number state (dropout) and
// the running sums of the training loss (HF restarts them at a resume).
type goState struct {
	RNGState       []uint64 `json:"rng_state,omitempty"`
	TrainLossSum   float64  `json:"-"`
	TrainLossSteps int      `json:"train_loss_steps"`
	// LossSum is TrainLossSum in the file: null when it is not finite (no step filtered a NaN).
	LossSum *float64 `json:"train_loss_sum"`
}

const goStateFile = "trainer_state_go.json"

// LogEntry is one entry of the log (HF's log_history): a training log (loss, grad_norm,
// learning_rate), an evaluation (eval_*; perplexity = exp(eval_loss) is not HF's but run_clm's
// extra), or the summary at the end (train_*, total_flos). Values that are not finite are left out
// (JSON cannot hold them). Keys are in alphabetical order, as HF writes them.
type LogEntry struct {
	Epoch                 float64  `json:"epoch"`
	EvalLoss              *float64 `json:"eval_loss,omitempty"`
	EvalRuntime           *float64 `json:"eval_runtime,omitempty"`
	EvalSamplesPerSecond  *float64 `json:"eval_samples_per_second,omitempty"`
	EvalStepsPerSecond    *float64 `json:"eval_steps_per_second,omitempty"`
	GradNorm              *float64 `json:"grad_norm,omitempty"`
	LearningRate          *float64 `json:"learning_rate,omitempty"`
	Loss                  *float64 `json:"loss,omitempty"`
	Perplexity            *float64 `json:"perplexity,omitempty"`
	Step                  int      `json:"step"`
	TotalFlos             *float64 `json:"total_flos,omitempty"`
	TrainLoss             *float64 `json:"train_loss,omitempty"`
	TrainRuntime          *float64 `json:"train_runtime,omitempty"`
	TrainSamplesPerSecond *float64 `json:"train_samples_per_second,omitempty"`
	TrainStepsPerSecond   *float64 `json:"train_steps_per_second,omitempty"`
}

const checkpointPrefix = "checkpoint-"

// Checkpoints lists the complete checkpoints of an output folder, oldest first.
func Checkpoints(outputDir string) ([]string, error) {
	entries, err := os.ReadDir(outputDir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	type ck struct {
		step int
		path string
	}
	var cks []ck
	for _, e := range entries {
		n, ok := strings.CutPrefix(e.Name(), checkpointPrefix)
		if !ok || !e.IsDir() {
			continue
		}
		step, err := strconv.Atoi(n)
		if err != nil {
			continue
		}
		p := filepath.Join(outputDir, e.Name())
		if _, err := os.Stat(filepath.Join(p, "trainer_state.json")); err != nil {
			continue // incomplete
		}
		cks = append(cks, ck{step, p})
	}
	sort.Slice(cks, func(i, j int) bool { return cks[i].step < cks[j].step })
	out := make([]string, len(cks))
	for i, c := range cks {
		out[i] = c.path
	}
	return out, nil
}

// saveCheckpoint writes output_dir/checkpoint-{step} atomically: everything goes to a temporary
// folder, renamed into place when complete. beforeCommit (tests) runs just before the rename.
func (t *Trainer) saveCheckpoint(state *TrainerState, gs goState) (string, error) {
	final := filepath.Join(t.Args.OutputDir, fmt.Sprintf("%s%d", checkpointPrefix, state.GlobalStep))
	tmp, err := os.MkdirTemp(t.Args.OutputDir, ".tmp-"+filepath.Base(final)+"-")
	if err != nil {
		return "", fmt.Errorf("checkpoint: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := t.Model.Save(tmp); err != nil {
		return "", fmt.Errorf("checkpoint: %w", err)
	}
	opt, err := optimizerTensors(t.Model)
	if err != nil {
		return "", err
	}
	if err := tensorfile.WriteSafetensors(filepath.Join(tmp, "optimizer.safetensors"), opt); err != nil {
		return "", fmt.Errorf("checkpoint: %w", err)
	}
	if t.scaler != nil {
		st, err := t.scaler.State(t.Model.Store)
		if err != nil {
			return "", fmt.Errorf("checkpoint: %w", err)
		}
		data, err := json.MarshalIndent(st, "", "  ")
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(tmp, scalerFile), data, 0o644); err != nil {
			return "", fmt.Errorf("checkpoint: %w", err)
		}
	}
	if t.Tokenizer != nil {
		if err := t.Tokenizer.SavePretrained(tmp); err != nil {
			return "", fmt.Errorf("checkpoint: %w", err)
		}
	}
	if err := t.Args.Save(filepath.Join(tmp, "training_args.json")); err != nil {
		return "", fmt.Errorf("checkpoint: %w", err)
	}
	data, err := json.MarshalIndent(goState{RNGState: rngState(t.Model), LossSum: finite(gs.TrainLossSum), TrainLossSteps: gs.TrainLossSteps}, "", "  ")
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(tmp, goStateFile), data, 0o644); err != nil {
		return "", fmt.Errorf("checkpoint: %w", err)
	}
	// trainer_state.json last: Checkpoints takes a folder holding it as complete.
	if data, err = json.MarshalIndent(state, "", "  "); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(tmp, "trainer_state.json"), data, 0o644); err != nil {
		return "", fmt.Errorf("checkpoint: %w", err)
	}
	if t.beforeCommit != nil {
		t.beforeCommit(tmp)
	}
	_ = os.RemoveAll(final)
	if err := os.Rename(tmp, final); err != nil {
		return "", fmt.Errorf("checkpoint: %w", err)
	}
	return final, t.rotate()
}

// rotate keeps the newest save_total_limit checkpoints.
func (t *Trainer) rotate() error {
	if t.Args.SaveTotalLimit <= 0 {
		return nil
	}
	cks, err := Checkpoints(t.Args.OutputDir)
	if err != nil {
		return err
	}
	for len(cks) > t.Args.SaveTotalLimit {
		if err := os.RemoveAll(cks[0]); err != nil {
			return fmt.Errorf("checkpoint rotation: %w", err)
		}
		cks = cks[1:]
	}
	return nil
}

// optimizerTensors collects the optimizer's state variables (moments and step) by HF name.
func optimizerTensors(m *gpt2.Model) (map[string]*tensorfile.Tensor, error) {
	out := map[string]*tensorfile.Tensor{}
	for v := range m.Store.IterVariables() {
		p := v.Path()
		if !strings.HasPrefix(p, optim.StatePrefix+"/") {
			continue
		}
		val, err := v.Value()
		if err != nil {
			return nil, fmt.Errorf("checkpoint: optimizer state %s: %w", p, err)
		}
		data, err := tensors.CopyFlatData[float32](val)
		if err != nil {
			return nil, fmt.Errorf("checkpoint: optimizer state %s: %w", p, err)
		}
		out[strings.TrimPrefix(p, "/")] = &tensorfile.Tensor{Shape: val.Shape().Dimensions, Data: data, DType: "F32"}
	}
	return out, nil
}

// rngState reads the store's random-number state.
func rngState(m *gpt2.Model) []uint64 {
	for v := range m.Store.IterVariables() {
		if v.Path() == model.JoinPath("/", model.RNGStateVariableName) {
			if val, err := v.Value(); err == nil {
				if data, err := tensors.CopyFlatData[uint64](val); err == nil {
					return data
				}
			}
		}
	}
	return nil
}

// scalerFile is the fp16 loss scaler's state in a checkpoint: torch's GradScaler.state_dict() as
// JSON (HF's Trainer saves it as scaler.pt).
const scalerFile = "scaler.json"

// loadCheckpoint restores weights, optimizer state, random-number state, the loss scaler's state
// (when training in fp16 and the checkpoint has one) and trainer state.
func (t *Trainer) loadCheckpoint(dir string, scaler *optim.GradScaler) (*TrainerState, goState, error) {
	var gs goState
	data, err := os.ReadFile(filepath.Join(dir, "trainer_state.json"))
	if err != nil {
		return nil, gs, fmt.Errorf("resume: %w", err)
	}
	var state TrainerState
	if err := json.Unmarshal(data, &state); err != nil {
		return nil, gs, fmt.Errorf("resume: %s: %w", filepath.Join(dir, "trainer_state.json"), err)
	}
	switch data, err := os.ReadFile(filepath.Join(dir, goStateFile)); {
	case errors.Is(err, os.ErrNotExist):
		// Not a Go checkpoint: the dropout stream and the loss sums start afresh, as HF's do.
	case err != nil:
		return nil, gs, fmt.Errorf("resume: %w", err)
	default:
		if err := json.Unmarshal(data, &gs); err != nil {
			return nil, gs, fmt.Errorf("resume: %s: %w", filepath.Join(dir, goStateFile), err)
		}
		gs.TrainLossSum = math.NaN()
		if gs.LossSum != nil {
			gs.TrainLossSum = *gs.LossSum
		}
	}
	if err := t.restore(dir, scaler, gs); err != nil {
		return nil, gs, err
	}
	return &state, gs, nil
}

// restore loads a checkpoint's weights, optimizer state, loss scaler and random-number state.
func (t *Trainer) restore(dir string, scaler *optim.GradScaler, gs goState) error {
	// A transformers checkpoint has optimizer.pt instead (see hfresume.go).
	hf := false
	if _, err := os.Stat(filepath.Join(dir, "optimizer.safetensors")); errors.Is(err, os.ErrNotExist) {
		_, err := os.Stat(filepath.Join(dir, "optimizer.pt"))
		hf = err == nil
	}
	wpath, err := gpt2.WeightsFile(dir)
	if err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	weights, err := tensorfile.Read(wpath)
	if err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	if err := t.Model.SetWeights(weights); err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	if hf {
		if err := t.loadHFOptimizer(dir); err != nil {
			return err
		}
	} else if err := t.loadOptimizer(dir); err != nil {
		return err
	}
	if scaler != nil {
		st, ok, err := scalerState(dir, hf)
		if err != nil {
			return err
		}
		if ok {
			if err := scaler.SetState(t.Model.Store, st); err != nil {
				return fmt.Errorf("resume: %s: %w", dir, err)
			}
		}
	}
	if len(gs.RNGState) > 0 {
		if err := setRNGState(t.Model, gs.RNGState); err != nil {
			return fmt.Errorf("resume: %w", err)
		}
	}
	return nil
}

// loadOptimizer restores the optimizer state of a Go checkpoint (optimizer.safetensors).
func (t *Trainer) loadOptimizer(dir string) error {
	opt, err := tensorfile.ReadSafetensors(filepath.Join(dir, "optimizer.safetensors"))
	if err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	for name, tt := range opt {
		if err := t.setOptimizerVar("/"+name, tensors.FromFlatDataAndDimensions(tt.Data, tt.Shape...)); err != nil {
			return fmt.Errorf("resume: %s: %w", name, err)
		}
	}
	return nil
}

// scalerState reads the fp16 loss scaler's state of a checkpoint: scaler.json (Go) or scaler.pt
// (HF); false when it has none (a float32 or bf16 run's: the scaler starts afresh).
func scalerState(dir string, hf bool) (optim.ScalerState, bool, error) {
	if hf {
		return loadHFScaler(dir)
	}
	var st optim.ScalerState
	path := filepath.Join(dir, scalerFile)
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return st, false, nil
	case err != nil:
		return st, false, fmt.Errorf("resume: %w", err)
	}
	if err := json.Unmarshal(data, &st); err != nil {
		return st, false, fmt.Errorf("resume: %s: %w", path, err)
	}
	return st, true, nil
}

// setRNGState restores the store's random-number state.
func setRNGState(m *gpt2.Model, state []uint64) error {
	path := model.JoinPath("/", model.RNGStateVariableName)
	val := tensors.FromFlatDataAndDimensions(append([]uint64(nil), state...), len(state))
	if v := m.Store.GetVariable(path); v != nil {
		if !v.Shape().Equal(val.Shape()) {
			return fmt.Errorf("random-number state of shape %s, the checkpoint has %d values", v.Shape(), len(state))
		}
		return v.SetValue(val)
	}
	if err := m.Store.SetRNGStateFromSeed(0); err != nil {
		return err
	}
	v := m.Store.GetVariable(path)
	if v == nil {
		return fmt.Errorf("no random-number state variable %s", path)
	}
	return v.SetValue(val)
}
