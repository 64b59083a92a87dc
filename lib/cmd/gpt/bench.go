package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/gonb-gpt/tutorial/lib/backend"
	"github.com/gonb-gpt/tutorial/lib/gpt2"
	"github.com/gonb-gpt/tutorial/lib/tokenizer"
)

func init() {
	register(command{name: "bench", summary: "benchmarks: `bench tokenizer` (training, encoding), `bench generate` (tokens/s)", run: runBench})
}

func runBench(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(stdout, "Usage: gpt bench tokenizer|generate [flags]   (gpt bench generate --help for the flags)")
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
		cfg := gpt2.DefaultConfig()
		switch *size {
		case "tiny":
			cfg.VocabSize, cfg.NPositions, cfg.NEmbd, cfg.NLayer, cfg.NHead = 1000, 256, 64, 2, 4
		case "rugpt3small":
			cfg.VocabSize, cfg.NPositions = 50264, 2048
		default:
			return fmt.Errorf("%w: --size %q (tiny or rugpt3small)", errUsage, *size)
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
