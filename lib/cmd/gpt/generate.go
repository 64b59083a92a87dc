package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/gonb-gpt/tutorial/lib/backend"
	"github.com/gonb-gpt/tutorial/lib/gpt2"
	"github.com/gonb-gpt/tutorial/lib/tokenizer"
	"github.com/gonb-gpt/tutorial/lib/tutorial"
)

func init() {
	register(command{name: "generate", summary: "continue a prompt with a GPT-2 model (HF folder), streaming the text", run: runGenerate})
	register(command{name: "score", summary: "the LM loss and perplexity of a text under a model", run: runScore})
}

// resolveModel turns --model into a local folder (hub ids are resolved by resolveHubModel).
var resolveModel = func(ctx context.Context, ref string) (string, error) {
	if st, err := os.Stat(ref); err == nil && st.IsDir() {
		return ref, nil
	}
	return "", fmt.Errorf("model %q: no such folder", ref)
}

func parseIDs(s string) ([]int, error) {
	var ids []int
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		v, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("%w: %q is not a token id", errUsage, f)
		}
		ids = append(ids, v)
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("%w: no token ids", errUsage)
	}
	return ids, nil
}

func joinIDs(ids []int) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = strconv.Itoa(id)
	}
	return strings.Join(parts, ",")
}

// loadModel starts the backend (reporting it on stderr) and loads the model and, if present, its
// tokenizer.
func loadModel(ctx context.Context, ref string, needTokenizer bool) (*gpt2.Model, *tokenizer.Tokenizer, error) {
	dir, err := resolveModel(ctx, ref)
	if err != nil {
		return nil, nil, err
	}
	b, report, err := backend.New()
	if err != nil {
		return nil, nil, err
	}
	fmt.Fprintf(os.Stderr, "%s\n", strings.SplitN(report.String(), "\n", 2)[0])
	m, err := gpt2.Load(b, dir)
	if err != nil {
		return nil, nil, err
	}
	tok, err := tokenizer.LoadDir(dir)
	if err != nil {
		if needTokenizer {
			return nil, nil, fmt.Errorf("tokenizer for %s: %w", dir, err)
		}
		tok = nil
	}
	return m, tok, nil
}

func runGenerate(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("generate", "--model DIR_OR_HUB_ID (--prompt TEXT | --prompt-ids 1,2,3) [flags]", `
Continues the prompt as transformers' generate() does, streaming the text as it comes. The model's
generation_config.json gives the defaults (else transformers': greedy, 20 new tokens capped at
n_positions); the flags given override it (--do-sample samples with --top-k, --top-p, --temperature).
A text prompt goes in as tokenizer(prompt) gives it (token_type_ids included when the tokenizer
returns them); --prompt-ids as input_ids alone (the attention mask inferred from the pad token, as
generate does without one). The text is decoded as tokenizer.decode does (special tokens shown).
--print-ids ends with one line of comma-separated ids: the whole sequence, prompt included, as HF's
generate returns it.`)
	modelRef := fs.String("model", "", "model folder (config.json, weights, tokenizer) or hub id")
	prompt := fs.String("prompt", "", "prompt text")
	promptIDs := fs.String("prompt-ids", "", "prompt as comma-separated token ids")
	flagOpts := gpt2.DefaultGenerateOptions()
	fs.IntVar(&flagOpts.MaxNewTokens, "max-new-tokens", 0, "max_new_tokens: tokens to generate (default: the model's generation config, else 20 capped at n_positions)")
	fs.IntVar(&flagOpts.MaxLength, "max-length", 0, "max_length: total length, prompt included (max_new_tokens wins)")
	fs.IntVar(&flagOpts.MinNewTokens, "min-new-tokens", 0, "min_new_tokens: no EOS before that many new tokens")
	fs.IntVar(&flagOpts.NoRepeatNGramSize, "no-repeat-ngram-size", 0, "no_repeat_ngram_size: no n-gram of that size twice (0: off)")
	fs.BoolVar(&flagOpts.DoSample, "do-sample", false, "sample instead of greedy decoding")
	fs.IntVar(&flagOpts.TopK, "top-k", flagOpts.TopK, "top-k filtering when sampling (0: off)")
	fs.Float64Var(&flagOpts.TopP, "top-p", flagOpts.TopP, "nucleus filtering when sampling (1: off)")
	fs.Float64Var(&flagOpts.Temperature, "temperature", flagOpts.Temperature, "sampling temperature")
	fs.Float64Var(&flagOpts.RepetitionPenalty, "repetition-penalty", flagOpts.RepetitionPenalty, "HF's repetition_penalty (1: off)")
	seed := fs.Uint64("seed", 0, "random seed for sampling")
	noCache := fs.Bool("no-cache", false, "recompute the whole sequence at each step (no key/value cache)")
	truncate := fs.Bool("truncate-prompt", false, "keep the prompt's last tokens when it is too long for n_positions")
	printIDs := fs.Bool("print-ids", false, "end with a line of the sequence's ids")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *modelRef == "" || (*prompt == "") == (*promptIDs == "") {
		return fmt.Errorf("%w: want --model and one of --prompt or --prompt-ids", errUsage)
	}
	set := map[string]bool{} // the flags given: they override the model's generation config
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, f := range []struct {
		name, hf string
		v        int
	}{{"max-new-tokens", "max_new_tokens", flagOpts.MaxNewTokens}, {"max-length", "max_length", flagOpts.MaxLength}} {
		if set[f.name] && f.v < 1 { // GenerationConfig.validate: max_new_tokens must be > 0
			return fmt.Errorf("%w: gpt2: generate: %s = %d: want a whole number ≥ 1", errUsage, f.hf, f.v)
		}
	}
	if err := applyGenerateFlags(gpt2.DefaultGenerateOptions(), flagOpts, set).Validate(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	m, tok, err := loadModel(ctx, *modelRef, *prompt != "")
	if err != nil {
		return err
	}
	opts := applyGenerateFlags(m.DefaultGenerateOptions(), flagOpts, set)
	opts.Seed, opts.NoCache, opts.TruncatePrompt = *seed, *noCache, *truncate
	var ids []int
	if *prompt != "" {
		e, err := tok.Encode(*prompt)
		if err != nil {
			return err
		}
		ids = e.IDs
		if len(ids) == 0 {
			return fmt.Errorf("the prompt encodes to no tokens")
		}
		opts.TokenTypeIDs = tutorial.TokenTypeIDs(tok, e)
	} else {
		if ids, err = parseIDs(*promptIDs); err != nil {
			return err
		}
		opts.Padded = true // generate(input_ids): no attention mask given
	}
	var stream *tutorial.TextStreamer // the text as it comes (with a tokenizer)
	if tok != nil {
		stream = tutorial.NewTextStreamer(stdout, tok, ids)
		opts.OnToken = func(_, id int) { stream.Put(id) }
	}
	out, err := m.Generate([][]int{ids}, opts)
	if err != nil {
		return err
	}
	stream.End()
	if *printIDs || tok == nil {
		fmt.Fprintln(stdout, joinIDs(out[0]))
	}
	return nil
}

// applyGenerateFlags sets over base the generation options whose flags were given (set, by flag
// name), as generate()'s keyword arguments override the model's generation config.
func applyGenerateFlags(base, flags gpt2.GenerateOptions, set map[string]bool) gpt2.GenerateOptions {
	for name, apply := range map[string]func(){
		"max-new-tokens":       func() { base.MaxNewTokens = flags.MaxNewTokens },
		"max-length":           func() { base.MaxLength = flags.MaxLength },
		"min-new-tokens":       func() { base.MinNewTokens = flags.MinNewTokens },
		"no-repeat-ngram-size": func() { base.NoRepeatNGramSize = flags.NoRepeatNGramSize },
		"do-sample":            func() { base.DoSample = flags.DoSample },
		"top-k":                func() { base.TopK = flags.TopK },
		"top-p":                func() { base.TopP = flags.TopP },
		"temperature":          func() { base.Temperature = flags.Temperature },
		"repetition-penalty":   func() { base.RepetitionPenalty = flags.RepetitionPenalty },
	} {
		if set[name] {
			apply()
		}
	}
	return base
}

func runScore(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("score", "--model DIR (--text TEXT | --ids 1,2,3)", `
Prints the mean LM loss transformers returns for model(input_ids, labels=input_ids), and the
perplexity exp(loss).`)
	modelRef := fs.String("model", "", "model folder or hub id")
	text := fs.String("text", "", "text to score")
	idsFlag := fs.String("ids", "", "comma-separated token ids to score")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *modelRef == "" || (*text == "") == (*idsFlag == "") {
		return fmt.Errorf("%w: want --model and one of --text or --ids", errUsage)
	}
	m, tok, err := loadModel(ctx, *modelRef, *text != "")
	if err != nil {
		return err
	}
	var ids []int
	if *text != "" {
		e, err := tok.Encode(*text)
		if err != nil {
			return err
		}
		ids = e.IDs
	} else if ids, err = parseIDs(*idsFlag); err != nil {
		return err
	}
	if len(ids) < 2 {
		return fmt.Errorf("need at least 2 tokens to score, got %d", len(ids))
	}
	loss, err := m.Loss([][]int{ids}, nil)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "tokens: %d\nloss: %.6f\nperplexity: %.4f\n", len(ids), loss, math.Exp(loss))
	return nil
}
