package train

import (
	"fmt"
	"strings"
	"testing"

	"github.com/gonb-gpt/tutorial/lib/gpt2"
)

// tutorialConfig is the tutorial's from-scratch GPT-2: GPT2Config's defaults with its BPE's 30000
// tokens.
func tutorialConfig() *gpt2.Config {
	cfg := gpt2.DefaultConfig()
	cfg.VocabSize = 30000
	return cfg
}

func TestMemoryParameterTerms(t *testing.T) {
	cfg := gpt2.DefaultConfig()
	// HF: sum(p.numel() for p in GPT2LMHeadModel(GPT2Config()).parameters()), lm_head tied to wte.
	n := int64(cfg.NumParameters())
	if n != 124439808 {
		t.Errorf("NumParameters(GPT2Config()) = %d, want HF's 124439808", n)
	}
	for _, precision := range []string{"fp32", "fp16", "bf16"} {
		e, err := EstimateMemory(cfg, 4, 512, precision, false)
		if err != nil {
			t.Fatal(err)
		}
		if got := e.Weights + e.Gradients + e.Optimizer; got != 16*n || e.Params != n {
			t.Errorf("%s: weights+gradients+AdamW = %d bytes for %d parameters, want 16 × %d = %d", precision, got, e.Params, n, 16*n)
		}
		wantHalf := int64(0)
		if precision != "fp32" {
			wantHalf = 2 * n
		}
		if e.HalfWeights != wantHalf {
			t.Errorf("%s: half-precision weight copies %d, want %d", precision, e.HalfWeights, wantHalf)
		}
		if sum := e.Weights + e.HalfWeights + e.Gradients + e.Optimizer + e.Activations + e.Logits + e.Workspace; e.Total != sum {
			t.Errorf("%s: total %d is not the sum of the terms %d", precision, e.Total, sum)
		}
	}
	// An untied lm_head adds vocab × n_embd parameters.
	untied := gpt2.DefaultConfig()
	untied.TieWordEmbeddings = false
	if d := untied.NumParameters() - cfg.NumParameters(); d != 50257*768 {
		t.Errorf("untied lm_head adds %d parameters, want %d", d, 50257*768)
	}
}

// The logits term is B·T·V float32 logits and their gradient (+ a half copy in mixed precision).
func TestMemoryLogits(t *testing.T) {
	cfg := tutorialConfig()
	for precision, perElement := range map[string]int64{"fp32": 8, "fp16": 10, "bf16": 10} {
		e, err := EstimateMemory(cfg, 8, 1024, precision, false)
		if err != nil {
			t.Fatal(err)
		}
		if want := 8 * 1024 * 30000 * perElement; e.Logits != want {
			t.Errorf("%s: logits %d bytes, want %d", precision, e.Logits, want)
		}
	}
}

func TestMemoryMonotonic(t *testing.T) {
	for _, c := range []struct {
		precision string
		flash     bool
	}{{"fp32", false}, {"fp16", false}, {"bf16", true}} {
		cfg := tutorialConfig()
		if c.flash {
			cfg.AttnPdrop = 0
		}
		prev := int64(0)
		for b := 1; b <= 64; b++ {
			e, err := EstimateMemory(cfg, b, 1024, c.precision, c.flash)
			if err != nil {
				t.Fatal(err)
			}
			if e.Total <= prev {
				t.Fatalf("%+v: batch %d total %d ≤ batch %d's %d", c, b, e.Total, b-1, prev)
			}
			prev = e.Total
		}
		short, _ := EstimateMemory(cfg, 8, 512, c.precision, c.flash)
		long, _ := EstimateMemory(cfg, 8, 1024, c.precision, c.flash)
		if short.Activations >= long.Activations {
			t.Errorf("%+v: block 512 activations %d ≥ block 1024's %d", c, short.Activations, long.Activations)
		}
	}
}

func TestMemoryFlashAndHalfPrecisionSave(t *testing.T) {
	cfg := tutorialConfig()
	cfg.AttnPdrop = 0
	for _, precision := range []string{"fp16", "bf16"} {
		eager, err := EstimateMemory(cfg, 8, 1024, precision, false)
		if err != nil {
			t.Fatal(err)
		}
		flash, err := EstimateMemory(cfg, 8, 1024, precision, true)
		if err != nil {
			t.Fatal(err)
		}
		// The eager graph keeps [B, H, T, T] float32 softmax and its half copy: 6 bytes per score.
		if d, want := eager.Activations-flash.Activations, int64(12*8*12*1024*(1024*6-4)); d != want {
			t.Errorf("%s: eager − flash activations = %d, want %d", precision, d, want)
		}
	}
	// With attention dropout (GPT2Config's 0.1) the eager graph keeps 7 bytes per score in fp16
	// (float32 softmax, mask, half dropout output) against fp32's 9, and half of every product.
	dropout := tutorialConfig()
	fp32, _ := EstimateMemory(dropout, 8, 1024, "fp32", false)
	fp16, _ := EstimateMemory(dropout, 8, 1024, "fp16", false)
	if fp16.Activations >= fp32.Activations {
		t.Errorf("fp16 activations %d ≥ fp32's %d", fp16.Activations, fp32.Activations)
	}
	// Without it fp16 keeps the float32 softmax and its half copy (6 bytes) against fp32's 4: at
	// a·s/h = 16 that outweighs the halved products.
	fp32, _ = EstimateMemory(cfg, 8, 1024, "fp32", false)
	fp16, _ = EstimateMemory(cfg, 8, 1024, "fp16", false)
	if fp16.Activations <= fp32.Activations {
		t.Errorf("attn_pdrop 0, eager: fp16 activations %d ≤ fp32's %d", fp16.Activations, fp32.Activations)
	}
}

// The estimate against what an H100 measured (docs/benchmarks.md: tutorial size, batch 8, block
// 1024, float32, dropout 0.1): more than PyTorch's own peak (12.7 GiB, max_memory_allocated: its
// attention does not materialize the [B, H, T, T] scores, ours does), less than nvidia-smi showed for
// the Go step (37.5 GB: the process's whole use, allocator regions included).
func TestMemoryAgainstH100Float32(t *testing.T) {
	e, err := EstimateMemory(tutorialConfig(), 8, 1024, "fp32", false)
	if err != nil {
		t.Fatal(err)
	}
	if got := GiB(e.Total); got <= 12.7 || float64(e.Total) >= 37.5e9 {
		t.Errorf("fp32 estimate %.2f GiB: want between PyTorch's 12.7 GiB and the 37.5 GB nvidia-smi showed", got)
	}
}

func TestMemoryMaxBatchSize(t *testing.T) {
	cfg := tutorialConfig()
	for _, precision := range []string{"fp32", "fp16"} {
		for _, budget := range []int64{3 << 30, 12 << 30, 24<<30 + 1<<29, 60 << 30, 100 << 30} {
			n, err := MaxBatchSize(cfg, 1024, precision, false, budget)
			if err != nil {
				t.Fatal(err)
			}
			if n > 0 {
				e, _ := EstimateMemory(cfg, n, 1024, precision, false)
				if e.Total > budget {
					t.Errorf("%s, %d bytes: batch %d needs %d", precision, budget, n, e.Total)
				}
			}
			next, _ := EstimateMemory(cfg, n+1, 1024, precision, false)
			if next.Total <= budget {
				t.Errorf("%s, %d bytes: batch %d fits too (%d), MaxBatchSize said %d", precision, budget, n+1, next.Total, n)
			}
		}
	}
	if n, _ := MaxBatchSize(cfg, 1024, "fp16", false, 3<<30); n != 0 {
		t.Errorf("3 GiB (less than the weights, state and workspace): batch %d, want 0", n)
	}
	if n, _ := MaxBatchSize(cfg, 1024, "fp16", false, 24<<30+1<<29); n < 8 {
		t.Errorf("a V100's usable 24.5 GiB in fp16: batch %d, want the tutorial's 8 or more", n)
	}
}

func TestMemoryErrors(t *testing.T) {
	cfg := tutorialConfig() // attn_pdrop 0.1
	for _, c := range []struct {
		batch, block int
		precision    string
		flash        bool
		want         string
	}{
		{8, 1024, "fp8", false, `precision "fp8"`},
		{0, 1024, "fp32", false, "batch 0"},
		{8, 2048, "fp32", false, "block 2048"},
		{8, 1024, "fp32", true, "not fp32"},
		{8, 1024, "bf16", true, "attn_pdrop 0"},
	} {
		_, err := EstimateMemory(cfg, c.batch, c.block, c.precision, c.flash)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: err %v, want one saying %q", c, err, c.want)
		}
	}
	if _, err := MaxBatchSize(cfg, 1024, "bf16", true, 80<<30); err == nil {
		t.Error("MaxBatchSize with flash attention and attn_pdrop 0.1: no error")
	}
}

func TestMemoryTable(t *testing.T) {
	e, err := EstimateMemory(tutorialConfig(), 8, 1024, "fp16", false)
	if err != nil {
		t.Fatal(err)
	}
	s := e.String()
	for _, want := range []string{"weights (float32)", "activations", "total"} {
		if !strings.Contains(s, want) {
			t.Errorf("table lacks %q:\n%s", want, s)
		}
	}
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if last, want := strings.Fields(lines[len(lines)-1]), fmt.Sprintf("%.2f", GiB(e.Total)); len(last) != 2 || last[0] != "total" || last[1] != want {
		t.Errorf("last line %q, want total %s", lines[len(lines)-1], want)
	}
}
