package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/gonb-gpt/tutorial/lib/tokenizer"
)

func init() {
	register(command{name: "bench", summary: "benchmarks: `bench tokenizer` (training and encoding speed)", run: runBench})
}

func runBench(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(stdout, "Usage: gpt bench tokenizer [flags]   (gpt bench tokenizer --help for the flags)")
		if len(args) == 0 {
			return fmt.Errorf("%w: which benchmark?", errUsage)
		}
		return nil
	}
	switch args[0] {
	case "tokenizer":
		return benchTokenizer(args[1:], stdout)
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
