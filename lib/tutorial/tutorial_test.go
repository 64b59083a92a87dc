package tutorial

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
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
	full := Load()
	if full.Quick || full.NLayer != 12 || full.BlockSize != 1024 || full.ModelID != RuGPT3 || full.ScratchArgs().NumTrainEpochs != 30 {
		t.Errorf("full mode: %+v", full)
	}
	t.Setenv("GPT_QUICK", "1")
	t.Setenv("GPT_BLOCK_SIZE", "32")
	t.Setenv("HF_HOME", "")
	q := Load()
	if !q.Quick || q.NLayer != 2 || q.BlockSize != 32 || q.ModelID != QuickModelID || q.ScratchArgs().MaxSteps <= 0 {
		t.Errorf("quick mode: %+v", q)
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
	p = Load()
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
	p := Load()
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
	p := Load()
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
	p := Load()
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
