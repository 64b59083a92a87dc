package train

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"slices"
)

// TrainingArguments are transformers' TrainingArguments that the tutorial and this Trainer use:
// the same names (in config files and as --kebab-case flags) and the same defaults.
type TrainingArguments struct {
	OutputDir                 string  `json:"output_dir"`
	NumTrainEpochs            float64 `json:"num_train_epochs"`
	MaxSteps                  int     `json:"max_steps"`
	PerDeviceTrainBatchSize   int     `json:"per_device_train_batch_size"`
	PerDeviceEvalBatchSize    int     `json:"per_device_eval_batch_size"`
	GradientAccumulationSteps int     `json:"gradient_accumulation_steps"`
	LearningRate              float64 `json:"learning_rate"`
	LRSchedulerType           string  `json:"lr_scheduler_type"`
	// WarmupSteps is a number of steps, or below 1 a fraction of the total steps (transformers ≥
	// 5.2: get_warmup_steps rounds it up); WarmupRatio is the older spelling of the fraction.
	WarmupSteps float64 `json:"warmup_steps"`
	WarmupRatio float64 `json:"warmup_ratio"`
	WeightDecay float64 `json:"weight_decay"`
	AdamBeta1   float64 `json:"adam_beta1"`
	AdamBeta2   float64 `json:"adam_beta2"`
	AdamEpsilon float64 `json:"adam_epsilon"`
	MaxGradNorm float64 `json:"max_grad_norm"`
	// LoggingStrategy, SaveStrategy and EvalStrategy are "no", "steps" or "epoch". The *Steps
	// intervals are a number of optimizer steps or, below 1, a fraction of the total steps (rounded
	// up, as TrainerState.compute_steps does). EvalSteps 0 means logging_steps, as in HF.
	LoggingStrategy  string  `json:"logging_strategy"`
	LoggingSteps     float64 `json:"logging_steps"`
	LoggingFirstStep bool    `json:"logging_first_step"`
	// LoggingNanInfFilter (HF's default) logs, in place of a NaN or infinite step loss, the mean of
	// the interval's other steps; training goes on, as in HF.
	LoggingNanInfFilter bool    `json:"logging_nan_inf_filter"`
	SaveStrategy        string  `json:"save_strategy"`
	SaveSteps           float64 `json:"save_steps"`
	SaveTotalLimit      int     `json:"save_total_limit"`
	EvalStrategy        string  `json:"eval_strategy"`
	EvalSteps           float64 `json:"eval_steps"`
	// DataloaderDropLast drops each epoch's last, incomplete batch.
	DataloaderDropLast bool `json:"dataloader_drop_last"`
	Seed               int  `json:"seed"`
	// StopOnNaN (not in HF) stops training with ErrNaNLoss at the first NaN or infinite loss,
	// naming the last checkpoint; HF trains on.
	StopOnNaN bool `json:"stop_on_nan"`
	// BF16 and FP16 are mixed precision as torch.autocast runs it (gpt2.Model.Autocast): matrix
	// products in bfloat16 or float16, weights, optimizer state, layer norms, softmax and the loss
	// in float32; FP16 adds the dynamic loss scaler (optim.GradScaler). BF16 needs a GPU with
	// compute capability ≥ 8.0 (or the CPU).
	BF16 bool `json:"bf16"`
	FP16 bool `json:"fp16"`
	// ResumeFromCheckpoint is a checkpoint folder, or "last" for the newest in OutputDir.
	ResumeFromCheckpoint string `json:"resume_from_checkpoint"`
}

// DefaultArguments returns TrainingArguments(output_dir)'s defaults.
func DefaultArguments(outputDir string) *TrainingArguments {
	return &TrainingArguments{
		OutputDir: outputDir, NumTrainEpochs: 3, MaxSteps: -1, PerDeviceTrainBatchSize: 8, PerDeviceEvalBatchSize: 8,
		GradientAccumulationSteps: 1, LearningRate: 5e-5, LRSchedulerType: "linear", AdamBeta1: 0.9, AdamBeta2: 0.999,
		AdamEpsilon: 1e-8, MaxGradNorm: 1, LoggingStrategy: "steps", LoggingSteps: 500, LoggingNanInfFilter: true,
		SaveStrategy: "steps", SaveSteps: 500, EvalStrategy: "no", Seed: 42,
	}
}

// ArgError is an invalid TrainingArguments field.
type ArgError struct {
	// Field is the field's name in transformers (and JSON), e.g. "per_device_train_batch_size".
	Field string
	Value any
	// Want says what the field accepts.
	Want string
}

func (e *ArgError) Error() string {
	return fmt.Sprintf("training arguments: %s = %v: want %s", e.Field, e.Value, e.Want)
}

// strategies are the values of logging_strategy, save_strategy and eval_strategy (IntervalStrategy).
var strategies = []string{"no", "steps", "epoch"}

// interval reports whether v is a valid *_steps value: 0, a whole number, or a fraction below 1.
func interval(v float64) bool {
	return !math.IsNaN(v) && !math.IsInf(v, 0) && v >= 0 && (v < 1 || v == math.Trunc(v))
}

// Steps resolves a *_steps value against the total number of optimizer steps: a fraction below 1
// of the total is rounded up, as TrainerState.compute_steps does (math.ceil(max_steps * value)).
func Steps(v float64, total int) int {
	if v > 0 && v < 1 {
		return int(math.Ceil(float64(total) * v))
	}
	return int(v)
}

// Validate checks each argument's range (returning an *ArgError for the first invalid one), and that
// there is something to train.
func (a *TrainingArguments) Validate() error {
	finite := func(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
	for _, c := range []struct {
		field string
		value any
		ok    bool
		want  string
	}{
		{"output_dir", a.OutputDir, a.OutputDir != "", "a folder"},
		{"num_train_epochs", a.NumTrainEpochs, finite(a.NumTrainEpochs) && a.NumTrainEpochs >= 0, "a number ≥ 0"},
		{"max_steps", a.MaxSteps, a.MaxSteps >= -1, "-1 (train num_train_epochs) or a number of optimizer steps ≥ 1"},
		{"per_device_train_batch_size", a.PerDeviceTrainBatchSize, a.PerDeviceTrainBatchSize >= 1, "a whole number ≥ 1"},
		{"per_device_eval_batch_size", a.PerDeviceEvalBatchSize, a.PerDeviceEvalBatchSize >= 1, "a whole number ≥ 1"},
		{"gradient_accumulation_steps", a.GradientAccumulationSteps, a.GradientAccumulationSteps >= 1, "a whole number ≥ 1"},
		{"learning_rate", a.LearningRate, finite(a.LearningRate) && a.LearningRate >= 0, "a number ≥ 0"},
		{"lr_scheduler_type", a.LRSchedulerType, slices.Contains([]string{"linear", "cosine", "constant", "constant_with_warmup"}, a.LRSchedulerType),
			"linear, cosine, constant or constant_with_warmup"},
		{"warmup_steps", a.WarmupSteps, interval(a.WarmupSteps), "a whole number of steps ≥ 0, or a fraction of the total steps below 1"},
		{"warmup_ratio", a.WarmupRatio, a.WarmupRatio >= 0 && a.WarmupRatio <= 1, "a number in [0, 1]"},
		{"weight_decay", a.WeightDecay, finite(a.WeightDecay) && a.WeightDecay >= 0, "a number ≥ 0"},
		{"adam_beta1", a.AdamBeta1, a.AdamBeta1 >= 0 && a.AdamBeta1 < 1, "a number in [0, 1)"},
		{"adam_beta2", a.AdamBeta2, a.AdamBeta2 >= 0 && a.AdamBeta2 < 1, "a number in [0, 1)"},
		{"adam_epsilon", a.AdamEpsilon, finite(a.AdamEpsilon) && a.AdamEpsilon >= 0, "a number ≥ 0"},
		{"max_grad_norm", a.MaxGradNorm, finite(a.MaxGradNorm) && a.MaxGradNorm >= 0, "a number ≥ 0 (0: no clipping)"},
		{"logging_strategy", a.LoggingStrategy, slices.Contains(strategies, a.LoggingStrategy), "no, steps or epoch"},
		{"logging_steps", a.LoggingSteps, interval(a.LoggingSteps) && (a.LoggingSteps > 0 || a.LoggingStrategy != "steps"),
			"a whole number of steps ≥ 1, or a fraction of the total steps below 1 (logging_strategy steps needs one)"},
		{"save_strategy", a.SaveStrategy, slices.Contains(strategies, a.SaveStrategy), "no, steps or epoch"},
		{"save_steps", a.SaveSteps, interval(a.SaveSteps), "a whole number of steps ≥ 0 (0: only the final checkpoint), or a fraction of the total steps below 1"},
		{"save_total_limit", a.SaveTotalLimit, a.SaveTotalLimit >= 0, "a whole number ≥ 0 (0: keep all)"},
		{"eval_strategy", a.EvalStrategy, slices.Contains(strategies, a.EvalStrategy), "no, steps or epoch"},
		{"eval_steps", a.EvalSteps, interval(a.EvalSteps) && (a.EvalSteps > 0 || a.EvalStrategy != "steps" || a.LoggingSteps > 0),
			"a whole number of steps ≥ 1, or a fraction of the total steps below 1 (0: logging_steps)"},
	} {
		if !c.ok {
			return &ArgError{c.field, c.value, c.want}
		}
	}
	if a.BF16 && a.FP16 {
		// training_args.py: "At most one of fp16 and bf16 can be True, but not both".
		return &ArgError{"fp16", a.FP16, "false when bf16 is true: at most one of fp16 and bf16"}
	}
	if a.MaxSteps <= 0 && a.NumTrainEpochs == 0 {
		return &ArgError{"num_train_epochs", a.NumTrainEpochs, "a number > 0 when max_steps is not set (-1): there is nothing to train"}
	}
	return nil
}

// Precision names the mixed precision the arguments ask for: "bf16", "fp16" or "fp32".
func (a *TrainingArguments) Precision() string {
	switch {
	case a.BF16:
		return "bf16"
	case a.FP16:
		return "fp16"
	}
	return "fp32"
}

// LRAt is the learning rate of optimizer step s (0-based) out of total, as transformers'
// schedulers give it: the first step of a warm-up uses rate 0.
func (a *TrainingArguments) LRAt(s, total int) float64 {
	warmup := a.Warmup(total)
	if a.LRSchedulerType == "constant" {
		return a.LearningRate
	}
	if s < warmup {
		return a.LearningRate * float64(s) / float64(max(1, warmup))
	}
	switch a.LRSchedulerType {
	case "constant_with_warmup":
		return a.LearningRate
	case "cosine":
		progress := float64(s-warmup) / float64(max(1, total-warmup))
		return a.LearningRate * math.Max(0, 0.5*(1+math.Cos(math.Pi*progress)))
	}
	return a.LearningRate * math.Max(0, float64(total-s)/float64(max(1, total-warmup)))
}

// Warmup is the number of warm-up steps out of total, as TrainingArguments.get_warmup_steps gives
// it: warmup_steps when ≥ 1, else ceil(fraction · total) of warmup_steps or warmup_ratio.
func (a *TrainingArguments) Warmup(total int) int {
	if a.WarmupSteps > 0 {
		return Steps(a.WarmupSteps, total)
	}
	return int(math.Ceil(a.WarmupRatio * float64(total)))
}

// Save writes training_args.json.
func (a *TrainingArguments) Save(path string) error {
	data, err := json.MarshalIndent(a, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}
