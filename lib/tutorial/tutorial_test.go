package tutorial

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/gomlx/compute"
	_ "github.com/gomlx/compute/gobackend"
	"github.com/gonb-gpt/tutorial/lib/gpt2"
	"github.com/gonb-gpt/tutorial/lib/internal/sharedtest"
	"github.com/gonb-gpt/tutorial/lib/tokenizer"
)

func TestLoadModesAndOverrides(t *testing.T) {
	t.Setenv("GPT_WORKDIR", t.TempDir())
	t.Setenv("GPT_QUICK", "")
	full := load(t)
	if full.Quick || full.NLayer != 12 || full.BlockSize != 1024 || full.ModelID != RuGPT3 || full.ScratchArgs().NumTrainEpochs != 30 {
		t.Errorf("full mode: %+v", full)
	}
	t.Setenv("GPT_QUICK", "1")
	t.Setenv("GPT_BLOCK_SIZE", "32")
	t.Setenv("HF_HOME", "")
	q := load(t)
	if !q.Quick || q.NLayer != 2 || q.BlockSize != 32 || q.ModelID != QuickModelID || q.ScratchArgs().MaxSteps <= 0 {
		t.Errorf("quick mode: %+v", q)
	}
}

// load is Load, failing the test on an error.
func load(t *testing.T) *Params {
	t.Helper()
	p, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Every parameter from the environment is checked: a bad value stops Parse with an error naming the
// variable, its value and what it accepts — never the default used silently.
func TestParseRejectsBadValues(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want []string // in the error, all of them
	}{
		{map[string]string{"GPT_EPOCHS": "abc"}, []string{`GPT_EPOCHS="abc": want a number ≥ 0`}},
		{map[string]string{"GPT_EPOCHS": "NaN"}, []string{`GPT_EPOCHS="NaN"`}},
		{map[string]string{"GPT_LR": "1e400"}, []string{`GPT_LR="1e400": want a number > 0`}},
		{map[string]string{"GPT_LR": "0"}, []string{`GPT_LR="0"`}},
		{map[string]string{"GPT_MAX_STEPS": "-2"}, []string{`GPT_MAX_STEPS="-2": want -1 (train by epochs) or a whole number ≥ 1`}},
		{map[string]string{"GPT_MAX_STEPS": "2.5"}, []string{`GPT_MAX_STEPS="2.5"`}},
		{map[string]string{"GPT_QUICK": "1", "GPT_MAX_STEPS": "-1"}, []string{"GPT_MAX_STEPS=-1 with GPT_EPOCHS=0: nothing to train"}},
		{map[string]string{"GPT_EPOCHS": "0"}, []string{"GPT_MAX_STEPS=-1 with GPT_EPOCHS=0"}},
		{map[string]string{"GPT_FT_EPOCHS": "0"}, []string{"GPT_FT_MAX_STEPS=-1 with GPT_FT_EPOCHS=0"}},
		{map[string]string{"GPT_BLOCK_SIZE": "0"}, []string{`GPT_BLOCK_SIZE="0": want a whole number ≥ 1`}},
		{map[string]string{"GPT_BLOCK_SIZE": "2048"}, []string{"GPT_BLOCK_SIZE=2048 is more than GPT_N_POSITIONS=1024"}},
		{map[string]string{"GPT_N_HEAD": "5"}, []string{"GPT_N_EMBD=768 is not a multiple of GPT_N_HEAD=5"}},
		{map[string]string{"GPT_WARMUP": "-1"}, []string{`GPT_WARMUP="-1": want a whole number ≥ 0`}},
		{map[string]string{"GPT_QUICK": "maybe"}, []string{`GPT_QUICK="maybe": want 1, true, yes or on`}},
		{map[string]string{"GPT_PRECISION": "fp64"}, []string{`GPT_PRECISION="fp64": want auto, fp32, fp16, bf16`}},
		// All the problems at once, not one per run.
		{map[string]string{"GPT_BATCH_SIZE": "x", "GPT_FT_LR": "-1", "GPT_GEN_TOKENS": "0"},
			[]string{"GPT_BATCH_SIZE", "GPT_FT_LR", "GPT_GEN_TOKENS"}},
	} {
		p, err := Parse(func(k string) string { return tc.env[k] })
		if err == nil {
			t.Errorf("%v: no error, parameters %+v", tc.env, p)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: error %q does not say %q", tc.env, err, w)
			}
		}
	}
}

// Valid overrides are taken (whitespace around them ignored), and Env gives the parameters back.
func TestParseOverridesAndEnv(t *testing.T) {
	env := map[string]string{"GPT_QUICK": " yes ", "GPT_EPOCHS": "2.5", "GPT_MAX_STEPS": "-1", "GPT_LR": "3e-4",
		"GPT_FT_LR": "1e-5", "GPT_WORKDIR": "/somewhere/work", "GPT_MODEL_ID": "me/model", "GPT_PRECISION": "fp16"}
	p, err := Parse(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if !p.Quick || p.Epochs != 2.5 || p.MaxSteps != -1 || p.LearningRate != 3e-4 || p.FTLearningRate != 1e-5 ||
		p.WorkDir != "/somewhere/work" || p.ModelID != "me/model" || p.NLayer != 2 || p.Precision != "fp16" {
		t.Errorf("parameters %+v", p)
	}
	back := map[string]string{}
	for _, kv := range p.Env() {
		k, v, _ := strings.Cut(kv, "=")
		back[k] = v
	}
	if len(back) != len(p.Vars())+4 {
		t.Errorf("Env() = %v", p.Env())
	}
	q, err := Parse(func(k string) string { return back[k] })
	if err != nil || !reflect.DeepEqual(p, q) {
		t.Errorf("Parse(Env()) = %+v, %v; want %+v", q, err, p)
	}
}

// UsePrecision: GPT_PRECISION=auto is fp32 on the CPU (the card's choice is lib/backend's
// DefaultPrecision, tested there on fake GPUs); an explicit precision is taken as it is.
func TestUsePrecision(t *testing.T) {
	b, err := compute.NewWithConfig("go")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		env, line  string
		fp16, bf16 bool
	}{
		{"", "Точность обучения: fp32 (GPT_PRECISION=auto: ", false, false},
		{"fp16", "Точность обучения: fp16 (GPT_PRECISION=fp16)", true, false},
		{"bf16", "Точность обучения: bf16 (GPT_PRECISION=bf16)", false, true},
	} {
		p, err := Parse(func(k string) string { return map[string]string{"GPT_PRECISION": tc.env}[k] })
		if err != nil {
			t.Fatal(err)
		}
		args := p.ScratchArgs()
		args.FP16, args.BF16 = !tc.fp16, !tc.bf16 // overwritten
		if line := p.UsePrecision(args, b); !strings.HasPrefix(line, tc.line) || args.FP16 != tc.fp16 || args.BF16 != tc.bf16 {
			t.Errorf("GPT_PRECISION=%q: %q, fp16=%v bf16=%v", tc.env, line, args.FP16, args.BF16)
		}
	}
}

// Quick mode's fake hub serves a model that downloads, loads and tokenizes like ruGPT-3.
// quickPretrained downloads quick mode's stand-in for ruGPT-3 from the fake hub into a fresh work
// folder and loads it on the pure-Go backend.
func quickPretrained(t *testing.T) (p *Params, b compute.Backend, dir string, m *gpt2.Model, tok *tokenizer.Tokenizer) {
	t.Helper()
	t.Setenv("GPT_WORKDIR", t.TempDir())
	t.Setenv("GPT_QUICK", "1")
	t.Setenv("HF_HOME", "")
	t.Setenv("HF_HUB_OFFLINE", "")
	p = load(t)
	b, err := compute.NewWithConfig("go")
	if err != nil {
		t.Fatal(err)
	}
	if dir, err = p.PretrainedDir(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if m, err = gpt2.Load(b, dir); err != nil {
		t.Fatal(err)
	}
	if tok, err = tokenizer.LoadDir(dir); err != nil {
		t.Fatal(err)
	}
	return p, b, dir, m, tok
}

func TestQuickHub(t *testing.T) {
	p, b, dir, m, tok := quickPretrained(t)
	if m.Config.VocabSize != 50264 || tok.VocabSize() != 50258 {
		t.Errorf("vocab %d / tokenizer %d", m.Config.VocabSize, tok.VocabSize())
	}
	e, _ := tok.Encode("Мне нравится, что вы ")
	if len(e.IDs) != 6 || e.IDs[0] != 11233 {
		t.Errorf("ruGPT-3 tokenization: %v", e.IDs)
	}
	// The fake hub is gone, the cache answers.
	again, err := p.PretrainedDir(context.Background(), b)
	if err != nil || again != dir {
		t.Errorf("second download: %s %v", again, err)
	}
}

func TestScrapeFromLocalMirror(t *testing.T) {
	mirror := sharedtest.Path(t, "libru-mirror")
	t.Setenv("GPT_WORKDIR", t.TempDir())
	t.Setenv("GPT_QUICK", "")
	t.Setenv("GPT_LIBRU_MIRROR", mirror)
	p := load(t)
	res, err := p.Scrape(context.Background(), false, p.Path("dataset.txt"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Pages) != 8 || res.Bytes < 10_000_000 {
		t.Errorf("%d pages, %d bytes", len(res.Pages), res.Bytes)
	}
}

// The untrained model is made once and then read back, unless the asked config changes.
func TestScratchModelReused(t *testing.T) {
	t.Setenv("GPT_WORKDIR", t.TempDir())
	t.Setenv("GPT_QUICK", "1")
	p := load(t)
	b, err := compute.NewWithConfig("go")
	if err != nil {
		t.Fatal(err)
	}
	vocab := map[string]int{"a": 0, "b": 1, "ab": 2}
	model, err := tokenizer.NewBPE(vocab, [][2]string{{"a", "b"}})
	if err != nil {
		t.Fatal(err)
	}
	tok := tokenizer.New(model)
	if _, err := p.ScratchModel(b, tok); err != nil {
		t.Fatal(err)
	}
	st1, _ := os.Stat(p.Path("gpt2-scratch-init/model.safetensors"))
	if _, err := p.ScratchModel(b, tok); err != nil {
		t.Fatal(err)
	}
	st2, _ := os.Stat(p.Path("gpt2-scratch-init/model.safetensors"))
	if !st1.ModTime().Equal(st2.ModTime()) {
		t.Error("the untrained model was made again for the same config")
	}
	p.NHead = 2
	m, err := p.ScratchModel(b, tok)
	if err != nil || m.Config.NHead != 2 {
		t.Errorf("a changed config reused the old model: %v %v", m.Config.NHead, err)
	}
}

// What the notebooks print names paths relative to the repository (or ~/), never this machine's.
func TestShowPaths(t *testing.T) {
	root := repoRoot()
	if err := os.MkdirAll(filepath.Join(root, "build"), 0o755); err != nil {
		t.Fatal(err)
	}
	work, err := os.MkdirTemp(filepath.Join(root, "build"), "show-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(work) })
	t.Setenv("GPT_WORKDIR", work)
	t.Setenv("GPT_QUICK", "1")
	t.Setenv("GPT_LIBRU_MIRROR", "")
	p := load(t)
	rel := "build/" + filepath.Base(work)
	if got := p.Show(p.Path("dataset.txt")); got != rel+"/dataset.txt" {
		t.Errorf("Show(work/dataset.txt) = %q", got)
	}
	if !strings.Contains(p.String(), "Рабочий каталог: "+rel+"\n") {
		t.Errorf("String() = %q", p.String())
	}
	if home, err := os.UserHomeDir(); err == nil && !strings.HasPrefix(root, home+string(filepath.Separator)) {
		if got := p.Show(filepath.Join(home, ".cache", "huggingface", "hub")); got != "~/.cache/huggingface/hub" {
			t.Errorf("Show(home path) = %q", got)
		}
	}
	if got := p.Show("/elsewhere/x"); got != "/elsewhere/x" {
		t.Errorf("Show(/elsewhere/x) = %q", got)
	}
	var log strings.Builder
	if _, err := p.Scrape(context.Background(), false, p.Path("dataset.txt"), &log); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "wrote "+rel+"/dataset.txt:") || strings.Contains(log.String(), work) {
		t.Errorf("scrape log: %q", log.String())
	}
}

// The committed notebooks' saved outputs hold no path of the machine that ran them (the
// repository's absolute path, or any absolute path but /proc, /dev, /sys): a reader sees paths as
// Show gives them.
func TestCommittedNotebooksShowNoMachinePaths(t *testing.T) {
	root := repoRoot()
	// An absolute path (not a URL's), but for the system's own folders, the same on every machine.
	absPath := regexp.MustCompile(`(?:^|[\s"'\[(=])(/[A-Za-z0-9._-]+/|[A-Z]:\\\\)`)
	system := map[string]bool{"/proc/": true, "/dev/": true, "/sys/": true}
	files, _ := filepath.Glob(filepath.Join(root, "notebooks", "*.ipynb"))
	if len(files) == 0 {
		t.Fatalf("no notebooks under %s", root)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var nb struct {
			Cells []struct {
				Outputs []json.RawMessage `json:"outputs"`
			} `json:"cells"`
		}
		if err := json.Unmarshal(data, &nb); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for i, c := range nb.Cells {
			for _, o := range c.Outputs {
				text := string(o) // JSON: a Windows path's \ is escaped
				if strings.Contains(text, root) {
					t.Errorf("%s, cell %d: an output holds this machine's path %s", filepath.Base(f), i, root)
				}
				for _, m := range absPath.FindAllStringSubmatch(text, -1) {
					if !system[m[1]] {
						t.Errorf("%s, cell %d: an output holds an absolute path (%q…)", filepath.Base(f), i, m[1])
					}
				}
			}
		}
	}
}

// Without GPT_WORKDIR the work folder is work/ at the root of the tutorial's repository that holds
// the notebook — skipping a go.mod of another module in between — or work/ beside a notebook
// copied out of any repository (a DataSphere project folder).
func TestDefaultWorkDir(t *testing.T) {
	tmp := t.TempDir()
	write := func(path, data string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	repo := filepath.Join(tmp, "clone")
	write(filepath.Join(repo, "go.mod"), "// the tutorial\nmodule "+Module+"\n\ngo 1.27\n")
	write(filepath.Join(repo, "notebooks", "mine", "go.mod"), "module example.com/mine\n")
	copied := filepath.Join(tmp, "project", "notebooks")
	write(filepath.Join(tmp, "project", "go.mod"), "module github.com/gonb-gpt/tutorial/extra\n")
	for _, c := range []struct{ gonbDir, want string }{
		{filepath.Join(repo, "notebooks"), filepath.Join(repo, "work")},
		{filepath.Join(repo, "notebooks", "mine"), filepath.Join(repo, "work")},
		{copied, filepath.Join(copied, "work")},
	} {
		t.Setenv("GONB_DIR", c.gonbDir)
		p, err := Parse(func(string) string { return "" })
		if err != nil {
			t.Fatal(err)
		}
		if p.WorkDir != c.want {
			t.Errorf("notebook in %s: work folder %s, want %s", c.gonbDir, p.WorkDir, c.want)
		}
	}
}
