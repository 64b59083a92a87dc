package tutorial

import (
	"context"
	"os"
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
func TestQuickHub(t *testing.T) {
	t.Setenv("GPT_WORKDIR", t.TempDir())
	t.Setenv("GPT_QUICK", "1")
	t.Setenv("HF_HOME", "")
	t.Setenv("HF_HUB_OFFLINE", "")
	p := Load()
	b, err := compute.NewWithConfig("go")
	if err != nil {
		t.Fatal(err)
	}
	dir, err := p.PretrainedDir(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	m, err := gpt2.Load(b, dir)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
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
