package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/gonb-gpt/tutorial/lib/backend"
	"github.com/gonb-gpt/tutorial/lib/gpt2"
	"github.com/gonb-gpt/tutorial/lib/optim"
	"github.com/gonb-gpt/tutorial/lib/tokenizer"
	"github.com/gonb-gpt/tutorial/lib/train"
)

func init() {
	register(command{name: "bench", summary: "benchmarks: `bench tokenizer`, `bench generate`, `bench train` (tokens/s, step and compile time)", run: runBench})
}

func runBench(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(stdout, "Usage: gpt bench tokenizer|generate|train [flags]   (gpt bench train --help for the flags)")
		if len(args) == 0 {
			return fmt.Errorf("%w: which benchmark?", errUsage)
		}
		return nil
	}
	switch args[0] {
	case "tokenizer":
		return benchTokenizer(args[1:], stdout)
	case "generate":
		return benchGenerate(args[1:], stdout)
	case "train":
		return benchTrain(args[1:], stdout)
	}
	return fmt.Errorf("%w: unknown benchmark %q", errUsage, args[0])
}

// benchTokenizer measures what ../shared/bench/hf-tokenizers measures, the same way: training the
// tutorial's BPE on a corpus, and encoding every non-empty line of the corpus in one batch.
func benchTokenizer(args []string, stdout io.Writer) error {
	fs := newFlags("bench tokenizer", "[flags]", `
Trains the tutorial's BPE (Whitespace, vocab 30000, special [PAD]) on --corpus, and encodes every
non-empty line of --corpus in one batch with each --tokenizer, printing lines in the format of the
HF tokenizers anchor (train_s, encode_s, MB/s) and the peak memory.`)
	corpus := fs.String("corpus", "dataset.txt", "the training and encoding text")
	var toks stringList
	fs.Var(&toks, "tokenizer", "tokenizer.json or model folder to encode with (repeatable)")
	train := fs.Bool("train", true, "measure training")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *train {
		start := time.Now()
		tok, _, err := tokenizer.Train([]string{*corpus}, tokenizer.TrainOptions{
			Trainer: &tokenizer.BpeTrainer{VocabSize: 30000, SpecialTokens: []string{"[PAD]"}}, PreTokenizer: tokenizer.Whitespace{}, UnkToken: "[UNK]"})
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "go-tokenizer train_s=%.3f vocab=%d\n", time.Since(start).Seconds(), tok.VocabSize())
	}
	if len(toks) > 0 {
		data, err := os.ReadFile(*corpus)
		if err != nil {
			return err
		}
		var lines []string
		for l := range strings.SplitSeq(string(data), "\n") {
			if strings.TrimSpace(l) != "" {
				lines = append(lines, l)
			}
		}
		size := len(strings.Join(lines, "\n"))
		for _, path := range toks {
			tok, err := tokenizer.LoadDir(path)
			if err != nil {
				return err
			}
			start := time.Now()
			encs, err := tok.EncodeBatch(lines)
			if err != nil {
				return err
			}
			s := time.Since(start).Seconds()
			n := 0
			for _, e := range encs {
				n += e.Len()
			}
			fmt.Fprintf(stdout, "go-tokenizer encode_s=%.3f lines=%d tokens=%d MB/s=%.1f (%s)\n", s, len(lines), n, float64(size)/1e6/s, path)
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Fprintf(stdout, "go-tokenizer heap_sys_MB=%.0f\n", float64(ms.HeapSys)/1e6)
	return nil
}

// benchGenerate measures generation speed with and without the key/value cache.
func benchGenerate(args []string, stdout io.Writer) error {
	fs := newFlags("bench generate", "[flags]", `
Generates --new-tokens tokens greedily from a --prompt-len-token prompt (batch --batch), with the
key/value cache and without, after one warm-up run each (compilation excluded), and prints tokens/s.
--model takes a model folder; without it a random model of --size is built: tiny (the test fixture's
shape: 2 layers, d 64, vocab 1000) or rugpt3small (12 layers, d 768, vocab 50264, n_positions 2048).`)
	modelDir := fs.String("model", "", "model folder (default: random weights of --size)")
	size := fs.String("size", "tiny", "tiny or rugpt3small (without --model)")
	newTokens := fs.Int("new-tokens", 150, "tokens to generate")
	promptLen := fs.Int("prompt-len", 8, "prompt length")
	batch := fs.Int("batch", 1, "prompts at once")
	runs := fs.Int("runs", 3, "timed runs (median)")
	if err := parse(fs, args); err != nil {
		return err
	}
	b, report, err := backend.New()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s\n", strings.SplitN(report.String(), "\n", 2)[0])
	var m *gpt2.Model
	if *modelDir != "" {
		if m, err = gpt2.Load(b, *modelDir); err != nil {
			return err
		}
	} else {
		cfg, err := benchConfig(*size)
		if err != nil {
			return err
		}
		if m, err = gpt2.New(b, cfg, 1); err != nil {
			return err
		}
	}
	prompts := make([][]int, *batch)
	for i := range prompts {
		prompts[i] = make([]int, *promptLen)
		for t := range prompts[i] {
			prompts[i][t] = (i*31 + t*17 + 1) % m.Config.VocabSize
		}
	}
	neg := -1
	for _, noCache := range []bool{false, true} {
		opts := gpt2.DefaultGenerateOptions()
		opts.MaxNewTokens, opts.NoCache, opts.EOSTokenID = *newTokens, noCache, &neg
		warm := time.Now()
		if _, err := m.Generate(prompts, opts); err != nil {
			return err
		}
		warmS := time.Since(warm).Seconds()
		var times []float64
		for range *runs {
			start := time.Now()
			if _, err := m.Generate(prompts, opts); err != nil {
				return err
			}
			times = append(times, time.Since(start).Seconds())
		}
		sort.Float64s(times)
		med := times[len(times)/2]
		mode := "kv-cache"
		if noCache {
			mode = "no-cache"
		}
		fmt.Fprintf(stdout, "generate %-8s batch=%d prompt=%d new=%d: %.1f tokens/s (median %.3fs of %d runs; first run with compilation %.2fs)\n",
			mode, *batch, *promptLen, *newTokens, float64(*batch**newTokens)/med, med, *runs, warmS)
	}
	return nil
}

// benchSizes are the model shapes bench train and bench generate know.
func benchConfig(size string) (*gpt2.Config, error) {
	cfg := gpt2.DefaultConfig()
	switch size {
	case "tiny":
		cfg.VocabSize, cfg.NPositions, cfg.NEmbd, cfg.NLayer, cfg.NHead = 1000, 256, 64, 2, 4
	case "tutorial":
		cfg.VocabSize = 30000 // the tutorial's BPE; GPT2Config's other defaults (12 layers, d 768)
	case "rugpt3small":
		cfg.VocabSize, cfg.NPositions = 50264, 2048
	default:
		return nil, fmt.Errorf("%w: size %q (tiny, tutorial or rugpt3small)", errUsage, size)
	}
	cfg.ResidPdrop, cfg.EmbdPdrop, cfg.AttnPdrop = 0.1, 0.1, 0.1
	return cfg, nil
}

// benchTrain measures training steps (the Trainer's own step: forward, loss, gradients, AdamW).
func benchTrain(args []string, stdout io.Writer) error {
	fs := newFlags("bench train", "[flags]", `
Times training steps of a random GPT-2 of --size (tiny; tutorial: vocab 30000, 12 layers, d 768;
rugpt3small: vocab 50264, n_positions 2048) on random blocks, for each of --dtypes: the first step
(compilation included) and the median of --steps more, printing tokens/s, step time and compile time.
--xla-dump DIR sets XLA_FLAGS=--xla_dump_to=DIR (XLA backends) to inspect the compiled programs.`)
	size := fs.String("size", "tiny", "tiny, tutorial or rugpt3small")
	batch := fs.Int("batch", 8, "per_device_train_batch_size")
	block := fs.Int("block", 0, "block size (default: 1024, or 64 for tiny)")
	steps := fs.Int("steps", 5, "timed steps after the first")
	dtypesFlag := fs.String("dtypes", "fp32,bf16", "fp32 and/or bf16")
	dump := fs.String("xla-dump", "", "XLA dump folder")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *dump != "" {
		_ = os.Setenv("XLA_FLAGS", strings.TrimSpace(os.Getenv("XLA_FLAGS")+" --xla_dump_to="+*dump))
	}
	cfg, err := benchConfig(*size)
	if err != nil {
		return err
	}
	if *block == 0 {
		*block = 1024
		if *size == "tiny" {
			*block = 64
		}
	}
	b, report, err := backend.New()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s\n", strings.SplitN(report.String(), "\n", 2)[0])
	fmt.Fprintf(stdout, "%-12s %-5s %6s %6s %12s %10s %10s\n", "size", "dtype", "batch", "block", "tokens/s", "step ms", "compile s")
	rng := rand.New(rand.NewPCG(1, 2))
	ids := make([][]int, *batch)
	for i := range ids {
		ids[i] = make([]int, *block)
		for j := range ids[i] {
			ids[i][j] = rng.IntN(cfg.VocabSize)
		}
	}
	idsT, err := train.IDsTensor(ids)
	if err != nil {
		return err
	}
	for _, dt := range strings.Split(*dtypesFlag, ",") {
		m, err := gpt2.New(b, cfg, 1)
		if err != nil {
			return err
		}
		m.BF16 = strings.TrimSpace(dt) == "bf16"
		step, err := train.NewStep(m, optim.NewAdamW())
		if err != nil {
			return err
		}
		start := time.Now()
		if _, _, err := step.Run(idsT, idsT, 1e-4); err != nil {
			return err
		}
		first := time.Since(start).Seconds()
		var times []float64
		for range *steps {
			s := time.Now()
			if _, _, err := step.Run(idsT, idsT, 1e-4); err != nil {
				return err
			}
			times = append(times, time.Since(s).Seconds())
		}
		sort.Float64s(times)
		med := times[len(times)/2]
		fmt.Fprintf(stdout, "%-12s %-5s %6d %6d %12.0f %10.1f %10.2f\n", *size, dt, *batch, *block,
			float64(*batch**block)/med, med*1000, first-med)
	}
	return nil
}
