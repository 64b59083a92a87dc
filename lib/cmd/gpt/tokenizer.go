package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/gonb-gpt/tutorial/lib/tokenizer"
)

func init() {
	register(command{name: "tokenizer", summary: "`tokenizer train` a BPE tokenizer (HF-exact); `tokenizer encode` lines from stdin", run: runTokenizer})
}

// stdin is the input of `tokenizer encode` (a variable for tests).
var stdin io.Reader = os.Stdin

func runTokenizer(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: gpt tokenizer train|encode [flags]", errUsage)
	}
	switch args[0] {
	case "train":
		return tokenizerTrain(args[1:], stdout)
	case "encode":
		return tokenizerEncode(args[1:], stdout)
	case "-h", "--help", "help":
		fmt.Fprintln(stdout, "Usage: gpt tokenizer train|encode [flags]  (gpt tokenizer train --help)")
		return nil
	}
	return fmt.Errorf("%w: unknown tokenizer command %q (train or encode)", errUsage, args[0])
}

func tokenizerTrain(args []string, stdout io.Writer) error {
	fs := newFlags("tokenizer train", "--corpus FILE [--corpus FILE...] [flags] --out tokenizer.json", `
Trains a BPE tokenizer with HF tokenizers' semantics (the same vocabulary and merges for the same
input) and saves it as tokenizer.json. The defaults are the tutorial's: BPE(unk_token="[UNK]"),
the Whitespace pre-tokenizer, BpeTrainer(special_tokens=["[PAD]"]), vocab_size 30000.
--pre-tokenizer bytelevel trains a lossless GPT-2-style byte-level BPE (its 256-character alphabet,
no unk token, the ByteLevel decoder); metaspace a SentencePiece-style one (the Metaspace decoder).`)
	var corpora stringList
	fs.Var(&corpora, "corpus", "training text (repeatable)")
	vocab := fs.Int("vocab-size", 30000, "vocabulary size, special tokens and alphabet included")
	minFreq := fs.Int("min-frequency", 0, "merge only pairs seen at least this often")
	special := fs.String("special", "[PAD]", "special tokens, comma-separated, given the first ids")
	unk := fs.String("unk", "[UNK]", "the model's unk_token (\"\" for none; bytelevel uses none)")
	pre := fs.String("pre-tokenizer", "whitespace", "whitespace, whitespacesplit, bytelevel or metaspace")
	limit := fs.Int("limit-alphabet", 0, "keep at most this many characters in the alphabet (0: all)")
	out := fs.String("out", "tokenizer.json", "where to save the tokenizer")
	quiet := fs.Bool("quiet", false, "no progress bar")
	if err := parse(fs, args); err != nil {
		return err
	}
	corpora = append(corpora, fs.Args()...)
	if err := badFlags(atLeast("vocab-size", *vocab, 1), atLeast("min-frequency", *minFreq, 0), atLeast("limit-alphabet", *limit, 0)); err != nil {
		return err
	}
	if len(corpora) == 0 {
		return fmt.Errorf("%w: no --corpus given", errUsage)
	}
	trainer := &tokenizer.BpeTrainer{VocabSize: *vocab, MinFrequency: *minFreq, LimitAlphabet: *limit}
	for _, s := range strings.Split(*special, ",") {
		if s = strings.TrimSpace(s); s != "" {
			trainer.SpecialTokens = append(trainer.SpecialTokens, s)
		}
	}
	if !*quiet {
		trainer.Progress = os.Stderr
	}
	opts := tokenizer.TrainOptions{Trainer: trainer, UnkToken: *unk}
	switch strings.ToLower(*pre) {
	case "whitespace":
		opts.PreTokenizer = tokenizer.Whitespace{}
	case "whitespacesplit":
		opts.PreTokenizer = tokenizer.WhitespaceSplit{}
	case "bytelevel":
		opts.PreTokenizer, opts.Decoder, opts.UnkToken = tokenizer.NewByteLevel(), tokenizer.NewByteLevelDecoder(), ""
		trainer.InitialAlphabet = tokenizer.ByteLevelAlphabet()
	case "metaspace":
		opts.PreTokenizer = tokenizer.NewMetaspace()
		opts.Decoder = &tokenizer.MetaspaceDecoder{Replacement: '▁', PrependScheme: "always", Split: true}
	default:
		return fmt.Errorf("%w: --pre-tokenizer %q (whitespace, whitespacesplit, bytelevel or metaspace)", errUsage, *pre)
	}
	start := time.Now()
	tok, stats, err := tokenizer.Train(corpora, opts)
	if err != nil {
		return err
	}
	if err := tok.Save(*out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "trained on %d lines (%d words, %d distinct) in %.2fs: vocabulary %d, %d merges → %s\n",
		stats.Lines, stats.Words, stats.UniqueWords, time.Since(start).Seconds(), tok.VocabSize(), len(tok.Model.Merges), *out)
	if stats.InvalidUTF8 > 0 {
		fmt.Fprintf(stdout, "warning: %d lines held invalid UTF-8; the bad bytes were replaced by U+FFFD\n", stats.InvalidUTF8)
	}
	return nil
}

func tokenizerEncode(args []string, stdout io.Writer) error {
	fs := newFlags("tokenizer encode", "--tokenizer PATH_OR_DIR [--ids]", `
Reads lines on stdin and prints, per line, a JSON array of the line's tokens (or ids with --ids).
--tokenizer takes a tokenizer.json, or a model folder (tokenizer.json, or vocab.json + merges.txt).`)
	path := fs.String("tokenizer", "", "tokenizer.json or model folder")
	ids := fs.Bool("ids", false, "print ids instead of tokens")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *path == "" {
		return fmt.Errorf("%w: --tokenizer is required", errUsage)
	}
	tok, err := tokenizer.LoadDir(*path)
	if err != nil {
		return err
	}
	sc := bufio.NewScanner(stdin)
	sc.Buffer(make([]byte, 1<<20), 1<<28)
	w := bufio.NewWriter(stdout)
	defer w.Flush()
	n := 0
	for sc.Scan() {
		n++
		e, err := tok.Encode(sc.Text())
		if err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
		var v any = e.Tokens
		if *ids {
			v = e.IDs
		}
		data, _ := json.Marshal(v)
		w.Write(data)
		w.WriteByte('\n')
	}
	return sc.Err()
}
