package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/gonb-gpt/tutorial/lib/gpt2"
	"github.com/gonb-gpt/tutorial/lib/hub"
	"github.com/gonb-gpt/tutorial/lib/train"
)

// defaultGPUMemory are the cards --dry-run sizes batches for without --gpu-memory: a T4-class 16 GiB,
// a V100's 32 GiB, an A100's or H100's 80 GiB.
const defaultGPUMemory = "16GiB,32GiB,80GiB"

// dryRun holds train's --dry-run flags.
type dryRun struct {
	on        bool
	gpuMemory string
	fraction  float64
}

func addDryRunFlags(fs *flag.FlagSet) *dryRun {
	d := &dryRun{}
	fs.BoolVar(&d.on, "dry-run", false, "print the model's size, the estimated GPU memory of a training step and the largest per-device batch that fits, then exit: no backend, no weights, no corpus")
	fs.StringVar(&d.gpuMemory, "gpu-memory", defaultGPUMemory, "with --dry-run: the GPU memory sizes to fit batches in, comma-separated (GiB, GB, MiB, MB)")
	fs.Float64Var(&d.fraction, "memory-fraction", train.XLAMemoryFraction, "with --dry-run: the share of a GPU's memory XLA's allocator may take (the PJRT plugin's memory_fraction)")
	return d
}

// dryRunInput is what train parsed that the dry run needs.
type dryRunInput struct {
	config, model, tokenizer string
	blockSize                int
	attn                     gpt2.AttnImplementation
	args                     *train.TrainingArguments
}

// run prints the dry run's report.
func (d *dryRun) run(ctx context.Context, w io.Writer, in dryRunInput) error {
	cards, err := parseMemoryList(d.gpuMemory)
	if err != nil {
		return fmt.Errorf("%w: --gpu-memory: %v", errUsage, err)
	}
	if !(d.fraction > 0 && d.fraction <= 1) {
		return fmt.Errorf("%w: --memory-fraction %v: want a number in (0, 1]", errUsage, d.fraction)
	}
	cfg, err := dryRunConfig(ctx, in)
	if err != nil {
		return err
	}
	if in.blockSize > cfg.NPositions {
		return fmt.Errorf("%w: --block-size %d: the model has n_positions %d", errUsage, in.blockSize, cfg.NPositions)
	}
	precision := in.args.Precision()
	batch := in.args.PerDeviceTrainBatchSize
	flash, why := flashAttention(cfg, precision, in.attn)
	names, paths := []string{"eager"}, []bool{false}
	if flash {
		names, paths = append(names, "flash"), append(paths, true)
	}
	estimates := make([]train.MemoryEstimate, len(paths))
	for i, f := range paths {
		if estimates[i], err = train.EstimateMemory(cfg, batch, in.blockSize, precision, f); err != nil {
			return err
		}
	}
	n := estimates[0].Params
	fmt.Fprintf(w, "dry run: estimates only (no backend, no weights, no corpus)\n")
	fmt.Fprintf(w, "model: GPT-2, %d layers, n_embd %d, %d heads, vocab %d, n_positions %d: %d parameters (%.1fM, %.2f GiB in float32)\n",
		cfg.NLayer, cfg.NEmbd, cfg.NHead, cfg.VocabSize, cfg.NPositions, n, float64(n)/1e6, train.GiB(4*n))
	fmt.Fprintf(w, "training step: per-device batch %d, block %d, %s; attention: %s\n", batch, in.blockSize, precision, why)
	fmt.Fprintf(w, "memory of one training step on one GPU (an estimate: XLA fuses and recomputes, real use differs):\n%s",
		train.MemoryTable(names, estimates...))
	var accumulators int64
	if k := in.args.GradientAccumulationSteps; k > 1 {
		accumulators = 4 * n
		fmt.Fprintf(w, "  + %.2f GiB of float32 gradient accumulators (gradient_accumulation_steps %d), counted below\n", train.GiB(accumulators), k)
	}
	fmt.Fprintf(w, "largest per-device batch at block %d, %s (XLA takes at most %g of a GPU, plus the CUDA context):\n", in.blockSize, precision, d.fraction)
	fmt.Fprintf(w, "  %10s %10s", "GPU", "usable")
	for _, name := range names {
		fmt.Fprintf(w, " %6s", name)
	}
	fmt.Fprintln(w)
	for _, card := range cards {
		usable := train.UsableMemory(card, d.fraction)
		fmt.Fprintf(w, "  %6.1f GiB %6.1f GiB", train.GiB(card), train.GiB(usable))
		for _, f := range paths {
			b, err := train.MaxBatchSize(cfg, in.blockSize, precision, f, usable-accumulators)
			if err != nil {
				return err
			}
			fmt.Fprintf(w, " %6d", b)
		}
		fmt.Fprintln(w)
	}
	return nil
}

// dryRunConfig reads the model's configuration: --model's config.json (only that file, from the hub
// for a repository id), or --config with vocab_size defaulting to --tokenizer's.
func dryRunConfig(ctx context.Context, in dryRunInput) (*gpt2.Config, error) {
	if in.model != "" {
		if st, err := os.Stat(in.model); err == nil && st.IsDir() {
			return gpt2.LoadConfig(filepath.Join(in.model, "config.json"))
		}
		if !hub.IsRepoID(in.model) {
			return nil, fmt.Errorf("model %q is neither a folder nor a hub repository id", in.model)
		}
		c, err := hub.New()
		if err != nil {
			return nil, err
		}
		dir, err := c.Download(ctx, in.model, "", []string{"config.json"})
		if err != nil {
			return nil, err
		}
		return gpt2.LoadConfig(filepath.Join(dir, "config.json"))
	}
	vocab := 0
	if in.tokenizer != "" {
		tok, err := loadTokenizer(ctx, in.tokenizer)
		if err != nil {
			return nil, err
		}
		vocab = tok.VocabSize()
	}
	cfg, err := parseConfig(in.config, vocab)
	if err != nil && vocab == 0 && cfg != nil && cfg.VocabSize == 0 {
		return nil, fmt.Errorf("%w: --config without vocab_size needs --tokenizer", errUsage)
	}
	return cfg, err
}

// flashAttention says whether a training step can run cuDNN's flash attention, as lib/gpt2 routes
// it on a GPU that has the kernel, and why (not).
func flashAttention(cfg *gpt2.Config, precision string, attn gpt2.AttnImplementation) (bool, string) {
	switch {
	case attn == gpt2.AttnEager:
		return false, "eager (--attn-implementation eager)"
	case precision == "fp32":
		return false, "eager (fp32: the fused kernel takes fp16/bf16)"
	case cfg.AttnPdrop > 0:
		return false, fmt.Sprintf("eager (attn_pdrop %v: the fused kernel has no dropout)", cfg.AttnPdrop)
	case cfg.HeadDim()%8 != 0:
		return false, fmt.Sprintf("eager (head size %d is not a multiple of 8)", cfg.HeadDim())
	}
	return true, "cuDNN flash attention on compute capability ≥ 8.0 (A100, H100), eager on V100 and T4"
}

// parseMemoryList reads comma-separated memory sizes ("32GiB", "80GB", "512MiB").
func parseMemoryList(s string) ([]int64, error) {
	var sizes []int64
	for part := range strings.SplitSeq(s, ",") {
		size, err := parseMemory(part)
		if err != nil {
			return nil, err
		}
		sizes = append(sizes, size)
	}
	return sizes, nil
}

func parseMemory(s string) (int64, error) {
	s = strings.TrimSpace(s)
	for _, u := range []struct {
		suffix string
		bytes  float64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"GB", 1e9}, {"MB", 1e6}} {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
			if err == nil && v > 0 && v*u.bytes < math.MaxInt64 {
				return int64(v * u.bytes), nil
			}
			break
		}
	}
	return 0, fmt.Errorf("%q: want a size such as 32GiB, 80GB or 512MiB", s)
}
