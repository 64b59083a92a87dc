// Package tutorial holds what the notebooks share: their parameters (the tutorial's sizes, or tiny
// ones in quick mode, each overridable by an environment variable), the folder where every
// artifact lives, and quick mode's local stand-ins for lib.ru and the Hugging Face hub.
package tutorial

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"github.com/gonb-gpt/tutorial/lib/internal/envflag"
)

// Params are the notebooks' parameters.
type Params struct {
	// Quick runs everything small on local data (GPT_QUICK=1): minutes on a CPU.
	Quick bool
	// WorkDir holds the artifacts: dataset.txt, tokenizer.json, checkpoints, the hub cache
	// (GPT_WORKDIR; default work/ at the repository's root).
	WorkDir string

	// VocabSize of the tutorial's BPE (GPT_VOCAB_SIZE).
	VocabSize int
	// Model from scratch: GPT2Config's sizes (GPT_N_LAYER, GPT_N_EMBD, GPT_N_HEAD, GPT_N_POSITIONS).
	NLayer, NEmbd, NHead, NPositions int
	// BlockSize of group_texts (GPT_BLOCK_SIZE).
	BlockSize int
	// Training (GPT_EPOCHS, GPT_MAX_STEPS, GPT_LR, GPT_WARMUP, GPT_SAVE_STEPS, GPT_LOGGING_STEPS,
	// GPT_BATCH_SIZE).
	Epochs                                    float64
	MaxSteps, Warmup, SaveSteps, LoggingSteps int
	BatchSize                                 int
	LearningRate                              float64
	// Fine-tuning (GPT_MODEL_ID, GPT_FT_BLOCK_SIZE, GPT_FT_MAX_STEPS, GPT_FT_EPOCHS, GPT_FT_BATCH_SIZE).
	ModelID        string
	FTBlockSize    int
	FTMaxSteps     int
	FTEpochs       float64
	FTBatchSize    int
	FTLearningRate float64
	// GenTokens is max_new_tokens of the generations after training (GPT_GEN_TOKENS).
	GenTokens int
}

// QuickModelID is the clearly-not-real repo id quick mode's fake hub serves.
const QuickModelID = "test-only/tiny-random-rugpt3small-format"

// RuGPT3 is the model the tutorial fine-tunes.
const RuGPT3 = "ai-forever/rugpt3small_based_on_gpt2"

// Load reads the parameters: the tutorial's values, or quick mode's (GPT_QUICK=1), then each
// environment override.
func Load() *Params {
	p := &Params{Quick: envflag.True(os.Getenv("GPT_QUICK"))}
	if p.Quick {
		*p = Params{Quick: true, VocabSize: 30000, NLayer: 2, NEmbd: 64, NHead: 4, NPositions: 128, BlockSize: 64,
			MaxSteps: 150, Warmup: 10, SaveSteps: 100, LoggingSteps: 25, BatchSize: 16, LearningRate: 5e-3,
			ModelID: QuickModelID, FTBlockSize: 64, FTMaxSteps: 40, FTBatchSize: 8, FTLearningRate: 1e-3, GenTokens: 40}
	} else {
		*p = Params{VocabSize: 30000, NLayer: 12, NEmbd: 768, NHead: 12, NPositions: 1024, BlockSize: 1024,
			Epochs: 30, MaxSteps: -1, Warmup: 200, SaveSteps: 1500, LoggingSteps: 500, BatchSize: 8, LearningRate: 5e-5,
			ModelID: RuGPT3, FTBlockSize: 1024, FTMaxSteps: -1, FTEpochs: 30, FTBatchSize: 8, FTLearningRate: 5e-5, GenTokens: 150}
	}
	p.WorkDir = os.Getenv("GPT_WORKDIR")
	if p.WorkDir == "" {
		p.WorkDir = filepath.Join(repoRoot(), "work")
	}
	envInt(&p.VocabSize, "GPT_VOCAB_SIZE")
	envInt(&p.NLayer, "GPT_N_LAYER")
	envInt(&p.NEmbd, "GPT_N_EMBD")
	envInt(&p.NHead, "GPT_N_HEAD")
	envInt(&p.NPositions, "GPT_N_POSITIONS")
	envInt(&p.BlockSize, "GPT_BLOCK_SIZE")
	envFloat(&p.Epochs, "GPT_EPOCHS")
	envInt(&p.MaxSteps, "GPT_MAX_STEPS")
	envInt(&p.Warmup, "GPT_WARMUP")
	envInt(&p.SaveSteps, "GPT_SAVE_STEPS")
	envInt(&p.LoggingSteps, "GPT_LOGGING_STEPS")
	envInt(&p.BatchSize, "GPT_BATCH_SIZE")
	envFloat(&p.LearningRate, "GPT_LR")
	if v := os.Getenv("GPT_MODEL_ID"); v != "" {
		p.ModelID = v
	}
	envInt(&p.FTBlockSize, "GPT_FT_BLOCK_SIZE")
	envInt(&p.FTMaxSteps, "GPT_FT_MAX_STEPS")
	envFloat(&p.FTEpochs, "GPT_FT_EPOCHS")
	envInt(&p.FTBatchSize, "GPT_FT_BATCH_SIZE")
	envInt(&p.GenTokens, "GPT_GEN_TOKENS")
	_ = os.MkdirAll(p.WorkDir, 0o755)
	if p.Quick && os.Getenv("HF_HOME") == "" {
		// Quick mode keeps its hub cache apart from the user's real one.
		_ = os.Setenv("HF_HOME", filepath.Join(p.WorkDir, "hf-quick"))
	}
	return p
}

// Path is a file of the work folder.
func (p *Params) Path(name string) string { return filepath.Join(p.WorkDir, name) }

// Show gives a path as a reader of a notebook should see it: relative to the repository when it is
// inside it ("work/dataset.txt"), else under "~/" when it is in the home folder — never this
// machine's absolute path. Files are still opened by their absolute paths (GoNB runs each cell in
// a temporary folder).
func (p *Params) Show(path string) string {
	if rel, err := filepath.Rel(repoRoot(), path); err == nil && filepath.IsLocal(rel) {
		return filepath.ToSlash(rel)
	}
	if home, err := os.UserHomeDir(); err == nil {
		if rel, err := filepath.Rel(home, path); err == nil && filepath.IsLocal(rel) {
			return "~/" + filepath.ToSlash(rel)
		}
	}
	return path
}

// ShowAll is Show for a list of paths.
func (p *Params) ShowAll(paths []string) []string {
	out := make([]string, len(paths))
	for i, path := range paths {
		out[i] = p.Show(path)
	}
	return out
}

// String announces the mode and the main sizes (in Russian, like the notebooks).
func (p *Params) String() string {
	mode := "полный (размеры туториала)"
	if p.Quick {
		mode = "быстрый (GPT_QUICK=1): крошечная модель, локальные копии lib.ru и хаба"
	}
	return fmt.Sprintf("Режим: %s\nРабочий каталог: %s\nGPT-2 с нуля: n_layer=%d n_embd=%d n_head=%d n_positions=%d block_size=%d\nДо-обучение: %s",
		mode, p.Show(p.WorkDir), p.NLayer, p.NEmbd, p.NHead, p.NPositions, p.BlockSize, p.ModelID)
}

func envInt(dst *int, key string) {
	if v, err := strconv.Atoi(os.Getenv(key)); err == nil {
		*dst = v
	}
}

func envFloat(dst *float64, key string) {
	if v, err := strconv.ParseFloat(os.Getenv(key), 64); err == nil {
		*dst = v
	}
}

// repoRoot finds the repository (the folder with go.mod) from the working directory — GoNB runs
// cells in a temporary folder but sets GONB_DIR to the notebook's.
func repoRoot() string {
	start := os.Getenv("GONB_DIR")
	if start == "" {
		start, _ = os.Getwd()
	}
	for d := start; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			return start
		}
	}
}

//go:embed rugpt3tok/vocab.json rugpt3tok/merges.txt rugpt3tok/special_tokens_map.json
var rugpt3Tok embed.FS

// RuGPT3TokenizerFiles returns the vendored ruGPT-3 tokenizer files (name → content).
func RuGPT3TokenizerFiles() (map[string][]byte, error) {
	out := map[string][]byte{}
	err := fs.WalkDir(rugpt3Tok, "rugpt3tok", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := rugpt3Tok.ReadFile(path)
		out[filepath.Base(path)] = data
		return err
	})
	return out, err
}
