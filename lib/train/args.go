package train

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
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
	BF16                      bool    `json:"bf16"`
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

// Validate checks the arguments.
func (a *TrainingArguments) Validate() error {
	switch {
	case a.OutputDir == "":
		return fmt.Errorf("training arguments: output_dir is required")
	case a.PerDeviceTrainBatchSize <= 0:
		return fmt.Errorf("training arguments: per_device_train_batch_size %d", a.PerDeviceTrainBatchSize)
	case a.GradientAccumulationSteps <= 0:
		return fmt.Errorf("training arguments: gradient_accumulation_steps %d", a.GradientAccumulationSteps)
	case a.MaxSteps <= 0 && a.NumTrainEpochs <= 0:
		return fmt.Errorf("training arguments: neither max_steps nor num_train_epochs is positive")
	case a.LearningRate < 0 || math.IsNaN(a.LearningRate):
		return fmt.Errorf("training arguments: learning_rate %v", a.LearningRate)
	}
	switch a.LRSchedulerType {
	case "linear", "cosine", "constant", "constant_with_warmup":
	default:
		return fmt.Errorf("training arguments: lr_scheduler_type %q (linear, cosine, constant, constant_with_warmup)", a.LRSchedulerType)
	}
	return nil
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
