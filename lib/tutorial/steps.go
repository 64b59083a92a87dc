package tutorial

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/gomlx/compute"
	"github.com/gonb-gpt/tutorial/lib/backend"
	"github.com/gonb-gpt/tutorial/lib/corpus"
	"github.com/gonb-gpt/tutorial/lib/gpt2"
	"github.com/gonb-gpt/tutorial/lib/hub"
	"github.com/gonb-gpt/tutorial/lib/progress"
	"github.com/gonb-gpt/tutorial/lib/tokenizer"
	"github.com/gonb-gpt/tutorial/lib/train"
)

// Scrape writes dataset.txt: the tutorial's eight lib.ru pages (cached in the work folder), or in
// quick mode the two vendored pages from a local mirror. GPT_LIBRU_MIRROR=DIR serves the eight
// pages from a local copy instead of lib.ru (e.g. ../shared/libru-mirror, offline). log receives a
// line per page and the progress (in a notebook, a live block when log is os.Stdout).
func (p *Params) Scrape(ctx context.Context, compat bool, out string, log io.Writer) (*corpus.Result, error) {
	urls := corpus.DefaultURLs
	fetcher := &corpus.Fetcher{CacheDir: p.Path("libru-cache")}
	if dir := os.Getenv("GPT_LIBRU_MIRROR"); dir != "" {
		m, err := corpus.StartMirror(dir)
		if err != nil {
			return nil, err
		}
		defer m.Close()
		fetcher.BaseURL, fetcher.Delay, fetcher.CacheDir = m.URL, -1, ""
	} else if p.Quick {
		m, err := corpus.StartMirror("")
		if err != nil {
			return nil, err
		}
		defer m.Close()
		fetcher.BaseURL, fetcher.Delay, fetcher.CacheDir = m.URL, -1, ""
		urls = corpus.QuickURLs
	}
	opts := corpus.Options{URLs: urls, Fetcher: fetcher, Out: out, TutorialCompat: compat}
	if progress.InNotebook(log) {
		opts.Progress = log // a live block; in text, the page lines say enough
	}
	if log != nil {
		opts.Log = replacingWriter{log, strings.NewReplacer(out, p.Show(out))}
	}
	return corpus.Scrape(ctx, opts)
}

// replacingWriter rewrites what passes through it (whole lines: the corpus logs with Fprintf).
type replacingWriter struct {
	w io.Writer
	r *strings.Replacer
}

func (r replacingWriter) Write(b []byte) (int, error) {
	if _, err := r.r.WriteString(r.w, string(b)); err != nil {
		return 0, err
	}
	return len(b), nil
}

// newer reports whether path exists and is newer than every dependency.
func newer(path string, deps ...string) bool {
	st, err := os.Stat(path)
	if err != nil {
		return false
	}
	for _, d := range deps {
		if ds, err := os.Stat(d); err != nil || ds.ModTime().After(st.ModTime()) {
			return false
		}
	}
	return true
}

// Tokenizer returns the tutorial's BPE (Whitespace, [PAD], vocab_size), trained on dataset.txt and
// saved as tokenizer.json — or read from there when it is newer than dataset.txt.
func (p *Params) Tokenizer(progress io.Writer) (tok *tokenizer.Tokenizer, trained bool, err error) {
	path, corpusPath := p.Path("tokenizer.json"), p.Path("dataset.txt")
	if newer(path, corpusPath) {
		tok, err = tokenizer.Load(path)
		return tok, false, err
	}
	tok, _, err = tokenizer.Train([]string{corpusPath}, tokenizer.TrainOptions{
		Trainer:      &tokenizer.BpeTrainer{VocabSize: p.VocabSize, SpecialTokens: []string{"[PAD]"}, Progress: progress},
		PreTokenizer: tokenizer.Whitespace{}, UnkToken: "[UNK]"})
	if err != nil {
		return nil, false, err
	}
	return tok, true, tok.Save(path)
}

// ByteLevelTokenizer is the lossless alternative: a byte-level BPE (GPT-2's) trained on the same
// corpus, saved as bytelevel-tokenizer.json.
func (p *Params) ByteLevelTokenizer(progress io.Writer) (*tokenizer.Tokenizer, error) {
	path, corpusPath := p.Path("bytelevel-tokenizer.json"), p.Path("dataset.txt")
	if newer(path, corpusPath) {
		return tokenizer.Load(path)
	}
	tok, _, err := tokenizer.Train([]string{corpusPath}, tokenizer.TrainOptions{
		Trainer: &tokenizer.BpeTrainer{VocabSize: p.VocabSize, SpecialTokens: []string{"<|endoftext|>"},
			InitialAlphabet: tokenizer.ByteLevelAlphabet(), Progress: progress},
		PreTokenizer: tokenizer.NewByteLevel(), Decoder: tokenizer.NewByteLevelDecoder()})
	if err != nil {
		return nil, err
	}
	return tok, tok.Save(path)
}

// ScratchConfig is the tutorial's GPT2Config(vocab_size=len(vocab), bos_token_id=…("[CLS]"),
// eos_token_id=…("[EOS]")): the tokenizer has neither token, so both are None; other sizes are the
// defaults (or quick mode's).
func (p *Params) ScratchConfig(tok *tokenizer.Tokenizer) *gpt2.Config {
	cfg := gpt2.DefaultConfig()
	cfg.VocabSize, cfg.NLayer, cfg.NEmbd, cfg.NHead, cfg.NPositions = tok.VocabSize(), p.NLayer, p.NEmbd, p.NHead, p.NPositions
	cfg.BOSTokenID, cfg.EOSTokenID = tokenID(tok, "[CLS]"), tokenID(tok, "[EOS]")
	return cfg
}

func tokenID(tok *tokenizer.Tokenizer, s string) *int {
	if id, ok := tok.TokenToID(s); ok {
		return &id
	}
	return nil
}

// ScratchModel returns the untrained model, saved in gpt2-scratch-init/ (seed 42) so that every
// cell starts from the same weights.
func (p *Params) ScratchModel(backend compute.Backend, tok *tokenizer.Tokenizer) (*gpt2.Model, error) {
	dir := p.Path("gpt2-scratch-init")
	cfg := p.ScratchConfig(tok)
	if m, err := gpt2.Load(backend, dir); err == nil && sameConfig(m.Config, cfg) {
		return m, nil
	}
	m, err := gpt2.New(backend, cfg, 42)
	if err != nil {
		return nil, err
	}
	return m, m.Save(dir)
}

// PretrainedDir downloads the model to fine-tune (ruGPT-3 small, or quick mode's stand-in served by
// a local fake hub) into the hub cache and returns its snapshot folder.
func (p *Params) PretrainedDir(ctx context.Context, backend compute.Backend) (string, error) {
	if p.Quick {
		stop, err := StartQuickHub(backend, p)
		if err != nil {
			return "", err
		}
		defer stop()
	}
	c, err := hub.New()
	if err != nil {
		return "", err
	}
	c.Progress = os.Stdout // notes as text, the download bars as a live block in a notebook
	return c.DownloadModel(ctx, p.ModelID, "")
}

// ScratchArgs are the tutorial's TrainingArguments(output_dir="gpt2-scratch", num_train_epochs=30,
// learning_rate=5e-5, warmup_steps=200, save_steps=1500) — quick mode trains max_steps steps instead.
func (p *Params) ScratchArgs() *train.TrainingArguments {
	a := train.DefaultArguments(p.Path("gpt2-scratch"))
	a.NumTrainEpochs, a.LearningRate, a.WarmupSteps, a.SaveSteps = p.Epochs, p.LearningRate, float64(p.Warmup), float64(p.SaveSteps)
	a.MaxSteps, a.LoggingSteps, a.PerDeviceTrainBatchSize, a.SaveTotalLimit = p.MaxSteps, float64(p.LoggingSteps), p.BatchSize, 3
	return a
}

// FinetuneArgs are the tutorial's fine-tuning TrainingArguments (output_dir="gpt2-finetune", the
// same values as from scratch) — quick mode trains FTMaxSteps steps.
func (p *Params) FinetuneArgs() *train.TrainingArguments {
	a := train.DefaultArguments(p.Path("gpt2-finetune"))
	a.NumTrainEpochs, a.LearningRate, a.WarmupSteps, a.SaveSteps = p.FTEpochs, p.FTLearningRate, float64(p.Warmup), float64(p.SaveSteps)
	a.MaxSteps, a.LoggingSteps, a.PerDeviceTrainBatchSize, a.SaveTotalLimit = p.FTMaxSteps, float64(p.LoggingSteps), p.FTBatchSize, 3
	if p.Quick {
		a.LoggingSteps, a.SaveSteps = 10, 20
	}
	return a
}

// UsePrecision sets the mixed precision of args as GPT_PRECISION says: fp32, fp16 or bf16 outright,
// or with "auto" what the card does best (backend.DefaultPrecision: fp16 on a V100 or T4, bf16 from
// Ampere on, fp32 on the CPU). It returns a line for the notebook saying which and why.
func (p *Params) UsePrecision(args *train.TrainingArguments, b compute.Backend) string {
	prec, why := p.Precision, "GPT_PRECISION="+p.Precision
	if prec == "auto" {
		prec, why = backend.DefaultPrecision(b)
		why = "GPT_PRECISION=auto: " + why
	}
	args.FP16, args.BF16 = prec == "fp16", prec == "bf16"
	return fmt.Sprintf("Точность обучения: %s (%s)", prec, why)
}

// sameConfig compares two configurations as config.json would hold them.
func sameConfig(a, b *gpt2.Config) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && string(ja) == string(jb)
}
