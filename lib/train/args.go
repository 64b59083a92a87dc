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
	WarmupSteps               int     `json:"warmup_steps"`
	WarmupRatio               float64 `json:"warmup_ratio"`
	WeightDecay               float64 `json:"weight_decay"`
	AdamBeta1                 float64 `json:"adam_beta1"`
	AdamBeta2                 float64 `json:"adam_beta2"`
	AdamEpsilon               float64 `json:"adam_epsilon"`
	MaxGradNorm               float64 `json:"max_grad_norm"`
	LoggingSteps              int     `json:"logging_steps"`
	SaveSteps                 int     `json:"save_steps"`
	SaveTotalLimit            int     `json:"save_total_limit"`
	EvalSteps                 int     `json:"eval_steps"`
	Seed                      int     `json:"seed"`
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
		AdamEpsilon: 1e-8, MaxGradNorm: 1, LoggingSteps: 500, SaveSteps: 500, Seed: 42,
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
		{"warmup_steps", a.WarmupSteps, a.WarmupSteps >= 0, "a whole number ≥ 0"},
		{"warmup_ratio", a.WarmupRatio, a.WarmupRatio >= 0 && a.WarmupRatio <= 1, "a number in [0, 1]"},
		{"weight_decay", a.WeightDecay, finite(a.WeightDecay) && a.WeightDecay >= 0, "a number ≥ 0"},
		{"adam_beta1", a.AdamBeta1, a.AdamBeta1 >= 0 && a.AdamBeta1 < 1, "a number in [0, 1)"},
		{"adam_beta2", a.AdamBeta2, a.AdamBeta2 >= 0 && a.AdamBeta2 < 1, "a number in [0, 1)"},
		{"adam_epsilon", a.AdamEpsilon, finite(a.AdamEpsilon) && a.AdamEpsilon >= 0, "a number ≥ 0"},
		{"max_grad_norm", a.MaxGradNorm, finite(a.MaxGradNorm) && a.MaxGradNorm >= 0, "a number ≥ 0 (0: no clipping)"},
		{"logging_steps", a.LoggingSteps, a.LoggingSteps >= 0, "a whole number ≥ 0 (0: no logging)"},
		{"save_steps", a.SaveSteps, a.SaveSteps >= 0, "a whole number ≥ 0 (0: no checkpoints)"},
		{"save_total_limit", a.SaveTotalLimit, a.SaveTotalLimit >= 0, "a whole number ≥ 0 (0: keep all)"},
		{"eval_steps", a.EvalSteps, a.EvalSteps >= 0, "a whole number ≥ 0 (0: no evaluation)"},
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
	warmup := a.WarmupSteps
	if warmup == 0 && a.WarmupRatio > 0 {
		warmup = int(math.Ceil(a.WarmupRatio * float64(total)))
	}
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

// Save writes training_args.json.
func (a *TrainingArguments) Save(path string) error {
	data, err := json.MarshalIndent(a, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}
