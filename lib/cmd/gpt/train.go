package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"

	"github.com/gonb-gpt/tutorial/lib/backend"
	"github.com/gonb-gpt/tutorial/lib/gpt2"
	"github.com/gonb-gpt/tutorial/lib/tokenizer"
	"github.com/gonb-gpt/tutorial/lib/train"
)

func init() {
	register(command{name: "train", summary: "train GPT-2 from scratch (--config) or fine-tune (--model) with HF Trainer semantics", run: runTrain})
}

// argFlags registers one --kebab-case flag per TrainingArguments field (its JSON name).
func argFlags(fs *flag.FlagSet, args *train.TrainingArguments) {
	v := reflect.ValueOf(args).Elem()
	t := v.Type()
	for i := range t.NumField() {
		name := strings.ReplaceAll(strings.Split(t.Field(i).Tag.Get("json"), ",")[0], "_", "-")
		p := v.Field(i).Addr().Interface()
		usage := "TrainingArguments." + t.Field(i).Tag.Get("json")
		switch ptr := p.(type) {
		case *string:
			fs.StringVar(ptr, name, *ptr, usage)
		case *int:
			fs.IntVar(ptr, name, *ptr, usage)
		case *float64:
			fs.Float64Var(ptr, name, *ptr, usage)
		case *bool:
			fs.BoolVar(ptr, name, *ptr, usage)
		}
	}
}

func runTrain(ctx context.Context, argv []string, stdout io.Writer) error {
	fs := newFlags("train", "--corpus dataset.txt --tokenizer PATH_OR_REPO (--config JSON | --model DIR_OR_REPO) --output-dir DIR [flags]", `
Trains as transformers' Trainer does: the corpus's lines are tokenized, grouped into --block-size
blocks (the tutorial's group_texts; cached), and fed in shuffled batches; AdamW with the learning-rate
schedule, clipping, checkpoints and logging of TrainingArguments, whose every field is a flag below.
--config starts from scratch (a config.json path or inline JSON; vocab_size defaults to the
tokenizer's); --model fine-tunes a model folder or hub id. The final model is saved in --output-dir
in HF format, with loss.svg.`)
	corpusFlags := addCorpusFlags(fs)
	tokPath := fs.String("tokenizer", "", "tokenizer.json, model folder or hub id (default: the --model's)")
	configArg := fs.String("config", "", "GPT2Config as a config.json path or inline JSON (from scratch)")
	modelArg := fs.String("model", "", "model folder or hub id to fine-tune")
	evalFraction := fs.Float64("eval-fraction", 0, "hold out this fraction of the blocks for evaluation (when, says --eval-strategy: no, steps or epoch)")
	seedInit := fs.Uint64("init-seed", 42, "seed of the random initialization (--config)")
	quiet := fs.Bool("quiet", false, "no progress bar")
	attnImpl := fs.String("attn-implementation", "sdpa", "attention: sdpa (cuDNN flash attention on XLA CUDA in bf16 when attn_pdrop is 0) or eager")
	dry := addDryRunFlags(fs)
	args := train.DefaultArguments("")
	argFlags(fs, args)
	if err := parse(fs, argv); err != nil {
		return err
	}
	if err := checkArgs(args); err != nil {
		return err
	}
	if err := corpusFlags.check(); err != nil {
		return err
	}
	if !(*evalFraction >= 0 && *evalFraction < 1) {
		return fmt.Errorf("%w: --eval-fraction %v: want a number in [0, 1)", errUsage, *evalFraction)
	}
	if (*evalFraction > 0) != (args.EvalStrategy != "no") {
		// As HF's Trainer: eval_strategy needs an eval_dataset, and one without it is never used.
		return fmt.Errorf("%w: --eval-fraction %v with --eval-strategy %s: want both (held-out blocks, evaluated by steps or epoch) or neither", errUsage, *evalFraction, args.EvalStrategy)
	}
	if (*configArg == "") == (*modelArg == "") {
		return fmt.Errorf("%w: want one of --config (from scratch) or --model (fine-tuning)", errUsage)
	}
	attn, err := gpt2.ParseAttnImplementation(*attnImpl)
	if err != nil {
		return fmt.Errorf("%w: --attn-implementation: %v", errUsage, err)
	}
	if dry.on {
		return dry.run(ctx, stdout, dryRunInput{config: *configArg, model: *modelArg, tokenizer: *tokPath, blockSize: *corpusFlags.blockSize, attn: attn, args: args})
	}
	var opts []backend.Option
	if !args.FP16 && !args.BF16 {
		opts = append(opts, backend.ForFloat32Training())
	}
	b, report, err := backend.New(opts...)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s\n", strings.SplitN(report.String(), "\n", 2)[0])
	var tok *tokenizer.Tokenizer
	var m *gpt2.Model
	if *modelArg != "" {
		dir, err := resolveModel(ctx, *modelArg)
		if err != nil {
			return err
		}
		if m, err = gpt2.Load(b, dir); err != nil {
			return err
		}
		if *tokPath == "" {
			*tokPath = dir
		}
	}
	if *tokPath == "" {
		return fmt.Errorf("%w: --tokenizer is required with --config", errUsage)
	}
	if tok, err = loadTokenizer(ctx, *tokPath); err != nil {
		return err
	}
	if m == nil {
		cfg, err := parseConfig(*configArg, tok.VocabSize())
		if err != nil {
			return err
		}
		if m, err = gpt2.New(b, cfg, *seedInit); err != nil {
			return err
		}
	}
	m.AttnImplementation = attn
	var progressW io.Writer = os.Stderr
	if *quiet {
		progressW = nil
	}
	blocks, err := corpusFlags.load(tok, progressW, stdout)
	if err != nil {
		return err
	}
	defer blocks.Close()
	tr := &train.Trainer{Model: m, Tokenizer: tok, Args: args, TrainData: blocks, Log: stdout, NoProgress: *quiet}
	if *evalFraction > 0 {
		tr.TrainIndices, tr.EvalIndices = blocks.Split(*evalFraction, uint64(args.Seed))
		tr.EvalData = blocks
	}
	if _, err := tr.Train(ctx); err != nil {
		return err
	}
	if err := m.Save(args.OutputDir); err != nil {
		return err
	}
	if err := tok.SavePretrained(args.OutputDir); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(args.OutputDir, "loss.svg"), []byte(train.LossCurveSVG(tr.History, 640, 360)), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "saved the model (HF format), tokenizer and loss.svg in %s\n", args.OutputDir)
	return nil
}

// loadTokenizer loads --tokenizer: a tokenizer.json, a folder holding one, or a hub repository id
// (downloaded into the hub cache).
func loadTokenizer(ctx context.Context, path string) (*tokenizer.Tokenizer, error) {
	if _, err := os.Stat(path); err != nil {
		if path, err = resolveModel(ctx, path); err != nil {
			return nil, err
		}
	}
	return tokenizer.LoadDir(path)
}

// checkArgs validates the TrainingArguments flags before any work, naming the bad one by its flag.
func checkArgs(args *train.TrainingArguments) error {
	err := args.Validate()
	if ae := (*train.ArgError)(nil); errors.As(err, &ae) {
		return fmt.Errorf("%w: --%s %v: want %s", errUsage, strings.ReplaceAll(ae.Field, "_", "-"), ae.Value, ae.Want)
	}
	return err
}

func cacheWord(fromCache bool) string {
	if fromCache {
		return "from the cache"
	}
	return "tokenized and cached"
}

// parseConfig reads --config: a config.json path or inline JSON, over GPT2Config's defaults, with
// vocab_size defaulting to the tokenizer's.
func parseConfig(arg string, vocab int) (*gpt2.Config, error) {
	raw := []byte(arg)
	if !strings.HasPrefix(strings.TrimSpace(arg), "{") {
		data, err := os.ReadFile(arg)
		if err != nil {
			return nil, fmt.Errorf("--config: %w", err)
		}
		raw = data
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(raw, &probe); err != nil {
		return nil, fmt.Errorf("--config: %w", err)
	}
	cfg := &gpt2.Config{}
	if err := json.Unmarshal(raw, cfg); err != nil {
		return nil, fmt.Errorf("--config: %w", err)
	}
	if _, ok := probe["vocab_size"]; !ok {
		cfg.VocabSize = vocab
	}
	return cfg, cfg.Validate()
}
