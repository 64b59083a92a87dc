package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gonb-gpt/tutorial/lib/gpt2"
	"github.com/gonb-gpt/tutorial/lib/train"
)

// gpt train --dry-run prints the model's size, the memory estimate and the batches that fit, from
// --config and the vendored ruGPT-3 tokenizer's vocabulary, without starting a backend (a
// GOMLX_BACKEND that cannot start would fail) or reading a corpus.
func TestTrainDryRun(t *testing.T) {
	t.Setenv("GOMLX_BACKEND", "nosuch")
	config := `{"n_embd": 32, "n_layer": 1, "n_head": 2, "n_positions": 64}`
	var stdout, stderr bytes.Buffer
	code := run([]string{"train", "--dry-run", "--corpus", "missing.txt", "--tokenizer", filepath.Join("..", "..", "tutorial", "rugpt3tok"),
		"--config", config, "--output-dir", "o", "--block-size", "32", "--per-device-train-batch-size", "4", "--gpu-memory", "4GiB,16GB"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	out := stdout.String()
	// vocab 50258: ruGPT-3's 50257 tokens and <pad>; parameters: 50258·32 + 64·32 + (12·32² + 13·32) + 2·32.
	cfg, err := parseConfig(config, 50258)
	if err != nil {
		t.Fatal(err)
	}
	e, err := train.EstimateMemory(cfg, 4, 32, "fp32", false)
	if err != nil {
		t.Fatal(err)
	}
	var maxBatch []string
	for _, card := range []int64{4 << 30, 16e9} {
		n, err := train.MaxBatchSize(cfg, 32, "fp32", false, train.UsableMemory(card, train.XLAMemoryFraction))
		if err != nil {
			t.Fatal(err)
		}
		maxBatch = append(maxBatch, fmt.Sprint(n))
	}
	for _, want := range []string{
		"model: GPT-2, 1 layers, n_embd 32, 2 heads, vocab 50258, n_positions 64: 1623072 parameters",
		"training step: per-device batch 4, block 32, fp32; attention: eager (fp32: the fused kernel takes fp16/bf16)",
		fmt.Sprintf("  total %33.2f\n", train.GiB(e.Total)),
		"largest per-device batch at block 32, fp32 (XLA takes at most 0.75 of a GPU, plus the CUDA context):",
		"     4.0 GiB    3.5 GiB " + fmt.Sprintf("%6s", maxBatch[0]) + "\n",
		"    14.9 GiB   11.7 GiB " + fmt.Sprintf("%6s", maxBatch[1]) + "\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if maxBatch[0] == "0" || maxBatch[0] == maxBatch[1] {
		t.Errorf("max batches %v: want a positive one growing with the memory", maxBatch)
	}
	if strings.Contains(out, "flash") {
		t.Errorf("fp32 has no flash column:\n%s", out)
	}
}

// With --model only config.json is read (the folder has no weights); --bf16 and attn_pdrop 0 add
// the flash attention column.
func TestTrainDryRunModel(t *testing.T) {
	t.Setenv("GOMLX_BACKEND", "nosuch")
	dir := t.TempDir()
	cfg := gpt2.DefaultConfig()
	cfg.VocabSize, cfg.NPositions, cfg.NEmbd, cfg.NLayer, cfg.NHead, cfg.AttnPdrop = 1000, 256, 64, 2, 4, 0
	if err := cfg.Save(filepath.Join(dir, "config.json")); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := run([]string{"train", "--dry-run", "--model", dir, "--output-dir", "o", "--block-size", "256", "--bf16",
		"--gradient-accumulation-steps", "2"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{
		fmt.Sprintf("vocab 1000, n_positions 256: %d parameters", cfg.NumParameters()),
		"block 256, bf16; attention: cuDNN flash attention on compute capability ≥ 8.0 (A100, H100), eager on V100 and T4",
		"eager    flash\n",
		"         GPU     usable  eager  flash\n",
		"    16.0 GiB   12.5 GiB", "    32.0 GiB   24.5 GiB", "    80.0 GiB   60.5 GiB",
		"gradient accumulators (gradient_accumulation_steps 2), counted below",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// The 16 GiB row's batches leave room for the accumulators (4 bytes per parameter).
	usable := train.UsableMemory(16<<30, train.XLAMemoryFraction) - 4*int64(cfg.NumParameters())
	eager, _ := train.MaxBatchSize(cfg, 256, "bf16", false, usable)
	flash, _ := train.MaxBatchSize(cfg, 256, "bf16", true, usable)
	if want := fmt.Sprintf("    16.0 GiB   12.5 GiB %6d %6d\n", eager, flash); !strings.Contains(out, want) || eager >= flash {
		t.Errorf("output lacks %q (flash must fit more than eager):\n%s", want, out)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("the dry run wrote into the model folder: %v", entries)
	}
}

func TestTrainDryRunErrors(t *testing.T) {
	t.Setenv("GOMLX_BACKEND", "nosuch")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--config", `{"vocab_size": 100}`, "--gpu-memory", "lots"}, `"lots": want a size such as 32GiB`},
		{[]string{"--config", `{"vocab_size": 100}`, "--gpu-memory", "-3GiB"}, `"-3GiB"`},
		{[]string{"--config", `{"vocab_size": 100}`, "--memory-fraction", "0"}, "--memory-fraction 0"},
		{[]string{"--config", `{"n_layer": 1}`}, "--config without vocab_size needs --tokenizer"},
		{[]string{"--config", `{"vocab_size": 100, "n_positions": 64}`, "--block-size", "128"}, "--block-size 128: the model has n_positions 64"},
	} {
		var stdout, stderr bytes.Buffer
		args := append([]string{"train", "--dry-run", "--output-dir", "o"}, c.args...)
		if code := run(args, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("gpt %q: exit %d, stderr %q, want 2 and %q", args, code, stderr.String(), c.want)
		}
	}
}

func TestParseMemory(t *testing.T) {
	for in, want := range map[string]int64{"32GiB": 32 << 30, "80GB": 80e9, " 512MiB": 512 << 20, "1.5GiB": 3 << 29, "100MB": 100e6} {
		if got, err := parseMemory(in); err != nil || got != want {
			t.Errorf("parseMemory(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "32", "GiB", "0GiB", "NaNGB", "32 TB"} {
		if _, err := parseMemory(in); err == nil {
			t.Errorf("parseMemory(%q): no error", in)
		}
	}
}
