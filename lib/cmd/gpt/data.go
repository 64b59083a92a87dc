package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/gonb-gpt/tutorial/lib/corpus"
	"github.com/gonb-gpt/tutorial/lib/data"
	"github.com/gonb-gpt/tutorial/lib/progress"
	"github.com/gonb-gpt/tutorial/lib/tokenizer"
)

func init() {
	register(command{name: "data", summary: "`data prepare`: tokenize a corpus into training blocks (cached; what `train` reads)", run: runData})
}

func runData(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: gpt data prepare [flags]", errUsage)
	}
	switch args[0] {
	case "prepare":
		return dataPrepare(ctx, args[1:], stdout)
	case "-h", "--help", "help":
		fmt.Fprintln(stdout, "Usage: gpt data prepare [flags]  (gpt data prepare --help)")
		return nil
	}
	return fmt.Errorf("%w: unknown data command %q (prepare)", errUsage, args[0])
}

// corpusFlags are the flags that say which blocks to train on: `data prepare` and `train` share
// them, and the code that loads the blocks.
type corpusFlags struct {
	corpora        stringList
	blockSize      *int
	cacheDir       *string
	encodingErrors *string
	maxLineBytes   *int
}

func addCorpusFlags(fs *flag.FlagSet) *corpusFlags {
	c := &corpusFlags{}
	fs.Var(&c.corpora, "corpus", "training text, one example per line; repeatable, read in order as one dataset; gzip files are decompressed (default dataset.txt)")
	c.blockSize = fs.Int("block-size", 1024, "tokens per training block (the tutorial's block_size)")
	c.cacheDir = fs.String("cache-dir", defaultCacheDir("blocks"), "where the tokenized blocks are kept")
	c.encodingErrors = fs.String("encoding-errors", "strict", "invalid UTF-8: strict (an error naming the line) or replace (U+FFFD, counted), as load_dataset's encoding_errors")
	c.maxLineBytes = fs.Int("max-line-bytes", corpus.DefaultMaxLineBytes, "longest line accepted, in bytes")
	return c
}

// check validates the flags before any work, and gives --corpus its default.
func (c *corpusFlags) check() error {
	if len(c.corpora) == 0 {
		c.corpora = stringList{"dataset.txt"}
	}
	errs := []error{atLeast("block-size", *c.blockSize, 1), atLeast("max-line-bytes", *c.maxLineBytes, 1)}
	if e := *c.encodingErrors; e != "strict" && e != "replace" {
		errs = append(errs, fmt.Errorf("--encoding-errors %s: want strict or replace", e))
	}
	return badFlags(errs...)
}

// load returns the blocks (from the cache or tokenized, with progress on progressW unless nil)
// and says where they came from on stdout.
func (c *corpusFlags) load(tok *tokenizer.Tokenizer, progressW, stdout io.Writer) (*data.Blocks, error) {
	ds := &corpus.TextDataset{Paths: c.corpora, EncodingErrors: *c.encodingErrors, MaxLineBytes: *c.maxLineBytes}
	start := time.Now()
	b, err := data.LoadText(ds, tok, data.Options{BlockSize: *c.blockSize, CacheDir: *c.cacheDir, Progress: progressW})
	if err != nil {
		return nil, err
	}
	where := b.Path
	if where == "" {
		where = "no cache (--cache-dir \"\")"
	}
	fmt.Fprintf(stdout, "%d blocks of %d tokens (%d tokens), %s: %s\n", b.Len(), b.BlockSize, len(b.Tokens), cacheWord(b.FromCache), where)
	if !b.FromCache {
		s := time.Since(start).Seconds()
		fmt.Fprintf(stdout, "tokenized %s in %d lines into %d tokens in %.1f s (%.1f MB/s)\n",
			progress.Size(b.Stats.Bytes), b.Stats.Lines, b.Stats.Tokens, s, float64(b.Stats.Bytes)/1e6/s)
	}
	if b.Stats.Replaced > 0 {
		fmt.Fprintf(stdout, "warning: %d lines had invalid UTF-8, replaced by U+FFFD (--encoding-errors replace)\n", b.Stats.Replaced)
	}
	return b, nil
}

func dataPrepare(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("data prepare", "--corpus FILE [--corpus FILE...] --tokenizer PATH_OR_DIR [--block-size N] [--cache-dir DIR]", `
Tokenizes the corpus's lines and groups the tokens into --block-size blocks, as the tutorial's
tokenize and group_texts do with datasets.map (batches of 1000 lines), and keeps them in --cache-dir,
where `+"`gpt train`"+` with the same flags finds them. It streams: memory stays flat whatever the
corpus's size. Prints the number of blocks and tokens and the cache file; a second run finds the
file and prints the same. A corpus file up to 64 MiB is keyed by its whole content, a larger one by
its size, modification time and samples of its content (docs/data.md).`)
	c := addCorpusFlags(fs)
	tokPath := fs.String("tokenizer", "", "tokenizer.json, a model folder holding one, or a hub id")
	quiet := fs.Bool("quiet", false, "no progress bar")
	if err := parse(fs, args); err != nil {
		return err
	}
	c.corpora = append(c.corpora, fs.Args()...)
	if err := c.check(); err != nil {
		return err
	}
	if *tokPath == "" {
		return fmt.Errorf("%w: --tokenizer is required", errUsage)
	}
	tok, err := loadTokenizer(ctx, *tokPath)
	if err != nil {
		return err
	}
	var progressW io.Writer = os.Stderr
	if *quiet {
		progressW = nil
	}
	b, err := c.load(tok, progressW, stdout)
	if err != nil {
		return err
	}
	return b.Close()
}
