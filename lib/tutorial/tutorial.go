// Package tutorial holds what the notebooks share: their parameters (the tutorial's sizes, or tiny
// ones in quick mode, each overridable by an environment variable), the folder where every
// artifact lives, and quick mode's local stand-ins for lib.ru and the Hugging Face hub.
package tutorial

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/gonb-gpt/tutorial/lib/internal/envflag"
)

// Params are the notebooks' parameters.
type Params struct {
	// Quick runs everything small on local data (GPT_QUICK=1): minutes on a CPU.
	Quick bool
	// WorkDir holds the artifacts: dataset.txt, tokenizer.json, checkpoints, the hub cache
	// (GPT_WORKDIR; default work/ at the root of the repository the notebook is in, or work/ beside
	// the notebook when it was copied out of one — a DataSphere project folder, say — so the
	// artifacts stay with the notebooks that made them).
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
	// Fine-tuning (GPT_MODEL_ID, GPT_FT_BLOCK_SIZE, GPT_FT_MAX_STEPS, GPT_FT_EPOCHS, GPT_FT_BATCH_SIZE,
	// GPT_FT_LR).
	ModelID        string
	FTBlockSize    int
	FTMaxSteps     int
	FTEpochs       float64
	FTBatchSize    int
	FTLearningRate float64
	// GenTokens is max_new_tokens of the generations after training (GPT_GEN_TOKENS).
	GenTokens int
	// Precision of training (GPT_PRECISION): "auto" (the default: fp16 on GPUs without bf16 such as
	// the V100, bf16 from Ampere on, fp32 on the CPU; see UsePrecision), "fp32", "fp16" or "bf16".
	Precision string
}

// Precisions are GPT_PRECISION's values.
var Precisions = []string{"auto", "fp32", "fp16", "bf16"}

// QuickModelID is the clearly-not-real repo id quick mode's fake hub serves.
const QuickModelID = "test-only/tiny-random-rugpt3small-format"

// RuGPT3 is the model the tutorial fine-tunes.
const RuGPT3 = "ai-forever/rugpt3small_based_on_gpt2"

// Load reads the parameters as Parse does from the process's environment, creates the work folder
// and, in quick mode, points HF_HOME into it (unless set). A variable that is not valid stops it with
// an error naming the variable and what it accepts; the notebooks' first Go cell calls it.
func Load() (*Params, error) {
	p, err := Parse(os.Getenv)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(p.WorkDir, 0o755); err != nil {
		return nil, fmt.Errorf("GPT_WORKDIR: the work folder: %w", err)
	}
	if p.Quick && os.Getenv("HF_HOME") == "" {
		// Quick mode keeps its hub cache apart from the user's real one.
		if err := os.Setenv("HF_HOME", filepath.Join(p.WorkDir, "hf-quick")); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// Parse gives the parameters getenv sets, with nothing created: the tutorial's values, or quick
// mode's (GPT_QUICK=1), then each override (see Vars). Every invalid variable is reported, each with
// its name, its value and what it accepts.
func Parse(getenv func(string) string) (*Params, error) {
	var errs []error
	p := &Params{}
	q := strings.TrimSpace(getenv("GPT_QUICK"))
	switch quick, ok := envflag.Parse(q, false); {
	case quick:
		*p = Params{Quick: true, VocabSize: 30000, NLayer: 2, NEmbd: 64, NHead: 4, NPositions: 128, BlockSize: 64,
			MaxSteps: 150, Warmup: 10, SaveSteps: 100, LoggingSteps: 25, BatchSize: 16, LearningRate: 5e-3,
			ModelID: QuickModelID, FTBlockSize: 64, FTMaxSteps: 40, FTBatchSize: 8, FTLearningRate: 1e-3, GenTokens: 40}
	case ok:
		*p = Params{VocabSize: 30000, NLayer: 12, NEmbd: 768, NHead: 12, NPositions: 1024, BlockSize: 1024,
			Epochs: 30, MaxSteps: -1, Warmup: 200, SaveSteps: 1500, LoggingSteps: 500, BatchSize: 8, LearningRate: 5e-5,
			ModelID: RuGPT3, FTBlockSize: 1024, FTMaxSteps: -1, FTEpochs: 30, FTBatchSize: 8, FTLearningRate: 5e-5, GenTokens: 150}
	default:
		errs = append(errs, fmt.Errorf("GPT_QUICK=%q: want 1, true, yes or on (quick mode) or 0, false, no, off or nothing (the tutorial's sizes)", q))
	}
	p.WorkDir = strings.TrimSpace(getenv("GPT_WORKDIR"))
	if p.WorkDir == "" {
		p.WorkDir = filepath.Join(repoRoot(), "work")
	}
	if v := strings.TrimSpace(getenv("GPT_MODEL_ID")); v != "" {
		p.ModelID = v
	}
	p.Precision = "auto"
	if v := strings.TrimSpace(getenv("GPT_PRECISION")); v != "" {
		p.Precision = v
		if !slices.Contains(Precisions, v) {
			errs = append(errs, fmt.Errorf("GPT_PRECISION=%q: want %s", v, strings.Join(Precisions, ", ")))
		}
	}
	for _, v := range p.Vars() {
		if err := v.set(strings.TrimSpace(getenv(v.Name))); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		// Combinations, once every value is valid on its own.
		errs = p.check()
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("tutorial parameters: %w", errors.Join(errs...))
	}
	return p, nil
}

// check reports the combinations of parameters that cannot work.
func (p *Params) check() []error {
	var errs []error
	if p.NEmbd%p.NHead != 0 {
		errs = append(errs, fmt.Errorf("GPT_N_EMBD=%d is not a multiple of GPT_N_HEAD=%d (each head gets n_embd/n_head dimensions)", p.NEmbd, p.NHead))
	}
	if p.BlockSize > p.NPositions {
		errs = append(errs, fmt.Errorf("GPT_BLOCK_SIZE=%d is more than GPT_N_POSITIONS=%d: the model has no position embedding past n_positions", p.BlockSize, p.NPositions))
	}
	if p.MaxSteps == -1 && p.Epochs == 0 {
		errs = append(errs, fmt.Errorf("GPT_MAX_STEPS=-1 with GPT_EPOCHS=0: nothing to train; set GPT_MAX_STEPS ≥ 1 or GPT_EPOCHS > 0"))
	}
	if p.FTMaxSteps == -1 && p.FTEpochs == 0 {
		errs = append(errs, fmt.Errorf("GPT_FT_MAX_STEPS=-1 with GPT_FT_EPOCHS=0: nothing to train; set GPT_FT_MAX_STEPS ≥ 1 or GPT_FT_EPOCHS > 0"))
	}
	return errs
}

// Var is a numeric parameter's environment variable.
type Var struct {
	// Name is the variable, e.g. GPT_EPOCHS.
	Name string
	// Int or Float is the parameter it sets.
	Int   *int
	Float *float64
	rule
}

// rule is what a Var accepts: ok checks a value, accepts says it in words.
type rule struct {
	accepts string
	ok      func(float64) bool
}

var (
	atLeast1    = rule{"a whole number ≥ 1", func(x float64) bool { return x >= 1 }}
	atLeast0    = rule{"a whole number ≥ 0", func(x float64) bool { return x >= 0 }}
	stepsOrAll  = rule{"-1 (train by epochs) or a whole number ≥ 1", func(x float64) bool { return x == -1 || x >= 1 }}
	positive    = rule{"a number > 0", func(x float64) bool { return x > 0 }}
	nonNegative = rule{"a number ≥ 0", func(x float64) bool { return x >= 0 }}
)

// Vars lists the numeric parameters' environment variables, in the order of Params.
func (p *Params) Vars() []Var {
	i := func(name string, dst *int, r rule) Var { return Var{Name: name, Int: dst, rule: r} }
	f := func(name string, dst *float64, r rule) Var { return Var{Name: name, Float: dst, rule: r} }
	return []Var{
		i("GPT_VOCAB_SIZE", &p.VocabSize, atLeast1),
		i("GPT_N_LAYER", &p.NLayer, atLeast1),
		i("GPT_N_EMBD", &p.NEmbd, atLeast1),
		i("GPT_N_HEAD", &p.NHead, atLeast1),
		i("GPT_N_POSITIONS", &p.NPositions, atLeast1),
		i("GPT_BLOCK_SIZE", &p.BlockSize, atLeast1),
		f("GPT_EPOCHS", &p.Epochs, nonNegative),
		i("GPT_MAX_STEPS", &p.MaxSteps, stepsOrAll),
		i("GPT_WARMUP", &p.Warmup, atLeast0),
		i("GPT_SAVE_STEPS", &p.SaveSteps, atLeast1),
		i("GPT_LOGGING_STEPS", &p.LoggingSteps, atLeast1),
		i("GPT_BATCH_SIZE", &p.BatchSize, atLeast1),
		f("GPT_LR", &p.LearningRate, positive),
		i("GPT_FT_BLOCK_SIZE", &p.FTBlockSize, atLeast1),
		i("GPT_FT_MAX_STEPS", &p.FTMaxSteps, stepsOrAll),
		f("GPT_FT_EPOCHS", &p.FTEpochs, nonNegative),
		i("GPT_FT_BATCH_SIZE", &p.FTBatchSize, atLeast1),
		f("GPT_FT_LR", &p.FTLearningRate, positive),
		i("GPT_GEN_TOKENS", &p.GenTokens, atLeast1),
	}
}

// set parses the variable's value (none: the parameter keeps its default).
func (v Var) set(s string) error {
	if s == "" {
		return nil
	}
	x, err := strconv.ParseFloat(s, 64)
	if v.Int != nil {
		var n int
		n, err = strconv.Atoi(s)
		x = float64(n)
	}
	if err != nil || math.IsInf(x, 0) || math.IsNaN(x) || !v.ok(x) {
		return fmt.Errorf("%s=%q: want %s", v.Name, s, v.accepts)
	}
	if v.Int != nil {
		*v.Int = int(x)
	} else {
		*v.Float = x
	}
	return nil
}

// Value is the variable's current value as text.
func (v Var) Value() string {
	if v.Int != nil {
		return strconv.Itoa(*v.Int)
	}
	return strconv.FormatFloat(*v.Float, 'g', -1, 64)
}

// Env is the parameters as the environment variables that give them (Parse(Env) gives p back).
func (p *Params) Env() []string {
	quick := "0"
	if p.Quick {
		quick = "1"
	}
	env := []string{"GPT_QUICK=" + quick, "GPT_WORKDIR=" + p.WorkDir, "GPT_MODEL_ID=" + p.ModelID, "GPT_PRECISION=" + p.Precision}
	for _, v := range p.Vars() {
		env = append(env, v.Name+"="+v.Value())
	}
	return env
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

// Module is this repository's Go module path: the line that marks its go.mod.
const Module = "github.com/gonb-gpt/tutorial"

// notebookDir is where the notebook (or the command) runs from: GoNB runs each cell in a temporary
// folder but sets GONB_DIR to the notebook's.
func notebookDir() string {
	if d := os.Getenv("GONB_DIR"); d != "" {
		return d
	}
	d, _ := os.Getwd()
	return d
}

// findRepo returns the tutorial's repository that holds dir (the nearest folder at or above it
// whose go.mod declares [Module]), or "" when dir is not inside one. kernel/gpt-workspace, which
// runs before any Go code can, applies the same rule to pick the module the cells build against.
func findRepo(dir string) string {
	for d := dir; ; d = filepath.Dir(d) {
		if data, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && declaresModule(data) {
			return d
		}
		if filepath.Dir(d) == d {
			return ""
		}
	}
}

func declaresModule(gomod []byte) bool {
	for l := range strings.SplitSeq(string(gomod), "\n") {
		if f := strings.Fields(l); len(f) == 2 && f[0] == "module" && strings.Trim(f[1], `"`) == Module {
			return true
		}
	}
	return false
}

// repoRoot is the repository the notebook runs in, else the notebook's own folder.
func repoRoot() string {
	dir := notebookDir()
	if r := findRepo(dir); r != "" {
		return r
	}
	return dir
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
