package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gonb-gpt/tutorial/lib/backend"
	"github.com/gonb-gpt/tutorial/lib/gpt2"
	"github.com/gonb-gpt/tutorial/lib/optim"
	"github.com/gonb-gpt/tutorial/lib/tokenizer"
	"github.com/gonb-gpt/tutorial/lib/train"
	"k8s.io/klog/v2"
)

func init() {
	register(command{name: "bench", summary: "benchmarks: `bench tokenizer`, `bench generate`, `bench train` (tokens/s, step and compile time), `bench display` (the live display's cost)", run: runBench})
}

func runBench(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(stdout, "Usage: gpt bench tokenizer|generate|train|display [flags]   (gpt bench train --help for the flags)")
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
	case "display":
		return benchDisplay(args[1:], stdout)
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
	if err := badFlags(atLeast("new-tokens", *newTokens, 1), atLeast("prompt-len", *promptLen, 1), atLeast("batch", *batch, 1), atLeast("runs", *runs, 1)); err != nil {
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
	for _, noCache := range []bool{false, true} {
		opts := gpt2.DefaultGenerateOptions()
		opts.MaxNewTokens, opts.NoCache, opts.EOSTokenIDs = *newTokens, noCache, []int{} // never stop early
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
	case "overhead":
		// The tutorial's 12 layers (148 parameters, 445 variables with AdamW's state) at sizes where
		// computing costs next to nothing: a step's time is the framework's fixed cost per step.
		cfg.VocabSize, cfg.NPositions, cfg.NEmbd, cfg.NHead = 64, 64, 16, 2
	default:
		return nil, fmt.Errorf("%w: size %q (tiny, tutorial, rugpt3small or overhead)", errUsage, size)
	}
	cfg.ResidPdrop, cfg.EmbdPdrop, cfg.AttnPdrop = 0.1, 0.1, 0.1
	return cfg, nil
}

// benchTrain measures training steps (the Trainer's own step: forward, loss, gradients, AdamW).
func benchTrain(args []string, stdout io.Writer) error {
	fs := newFlags("bench train", "[flags]", `
Times training steps of a random GPT-2 of --size (tiny; tutorial: vocab 30000, 12 layers, d 768;
rugpt3small: vocab 50264, n_positions 2048) on random blocks, for each of --dtypes and --attn: the
first step (compilation included) and the median of --steps more, printing tokens/s, step time and
compile time, one RESULT line each. --phase times part of the step: forward (the loss in training
mode), grad (loss and gradients, reduced to their norm), grads (loss and every gradient as an
output) or step (gradients and the AdamW update: the Trainer's step).
--dropout 0 sets every dropout probability to 0 (the fused attention kernel has no dropout).
--xla-dump DIR sets XLA_FLAGS=--xla_dump_to=DIR (XLA backends) to inspect the compiled programs.
executable_cache=H/M/E counts the process's compilations loaded from the executable cache, compiled
and stored, and cache entries that could not be used. --dtypes fp32 alone sets up the backend as
gpt train does for float32 (on XLA CUDA, gemms on cuBLAS without Triton: gemms= in RESULT).`)
	size := fs.String("size", "tiny", "tiny, tutorial or rugpt3small")
	batch := fs.Int("batch", 8, "per_device_train_batch_size")
	block := fs.Int("block", 0, "block size (default: 1024, or 64 for tiny)")
	steps := fs.Int("steps", 5, "timed steps after the first")
	dtypesFlag := fs.String("dtypes", "fp32,bf16", "precisions: fp32, bf16 and/or fp16 (autocast; fp16 with the loss scaler)")
	attnFlag := fs.String("attn", "sdpa", "attn_implementation(s): eager and/or sdpa")
	dropoutFlag := fs.String("dropout", "", "dropout probability for resid/embd/attn (default: GPT2Config's 0.1)")
	phase := fs.String("phase", "step", "forward, grad, grads or step")
	dump := fs.String("xla-dump", "", "XLA dump folder")
	cpuProfile := fs.String("cpuprofile", "", "write a Go CPU profile of the timed steps to this file")
	logV := fs.Int("log-v", 0, "GoMLX/go-xla log verbosity (klog -v; 1 logs compile and execution times)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := setLogVerbosity(*logV); err != nil {
		return err
	}
	if err := badFlags(atLeast("batch", *batch, 1), atLeast("steps", *steps, 1), atLeast("block", *block, 0)); err != nil {
		return err
	}
	if !slices.Contains([]string{"forward", "grad", "grads", "step"}, *phase) {
		return fmt.Errorf("%w: --phase %q (forward, grad, grads or step)", errUsage, *phase)
	}
	if *dump != "" {
		_ = os.Setenv("XLA_FLAGS", strings.TrimSpace(os.Getenv("XLA_FLAGS")+" --xla_dump_to="+*dump+" --xla_dump_hlo_as_text"))
	}
	cfg, err := benchConfig(*size)
	if err != nil {
		return err
	}
	if *dropoutFlag != "" {
		p, err := strconv.ParseFloat(*dropoutFlag, 64)
		if err != nil || p < 0 || p >= 1 {
			return fmt.Errorf("%w: --dropout %q: want a probability in [0, 1)", errUsage, *dropoutFlag)
		}
		cfg.ResidPdrop, cfg.EmbdPdrop, cfg.AttnPdrop = p, p, p
	}
	if *block == 0 {
		*block = 1024
		if *size == "tiny" || *size == "overhead" {
			*block = 64
		}
	}
	if *block > cfg.NPositions {
		return fmt.Errorf("%w: --block %d is longer than n_positions %d", errUsage, *block, cfg.NPositions)
	}
	var opts []backend.Option
	if strings.TrimSpace(*dtypesFlag) == "fp32" {
		opts = append(opts, backend.ForFloat32Training())
	}
	b, report, err := backend.New(opts...)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s\n", strings.SplitN(report.String(), "\n", 2)[0])
	gemms := cmp.Or(report.Gemms, "XLA's default")
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
		dt = strings.TrimSpace(dt)
		autocast, err := gpt2.AutocastDType(dt)
		if err != nil {
			return fmt.Errorf("%w: --dtypes: %v", errUsage, err)
		}
		for _, a := range strings.Split(*attnFlag, ",") {
			attn, err := gpt2.ParseAttnImplementation(strings.TrimSpace(a))
			if err != nil {
				return fmt.Errorf("%w: --attn: %v", errUsage, err)
			}
			m, err := gpt2.New(b, cfg, 1)
			if err != nil {
				return err
			}
			m.Autocast, m.AttnImplementation = autocast, attn
			run, err := benchPhase(m, *phase)
			if err != nil {
				return err
			}
			start := time.Now()
			loss, err := run(idsT)()
			if err != nil {
				return err
			}
			first := time.Since(start).Seconds()
			stopProfile, err := startCPUProfile(*cpuProfile)
			if err != nil {
				return err
			}
			var times []float64
			var prev func() (float64, error)
			for range *steps {
				// Each unit is launched before the previous one's result is read, as the Trainer does:
				// the host's work overlaps the device's (on backends that run programs asynchronously).
				s := time.Now()
				wait := run(idsT)
				if prev != nil {
					if loss, err = prev(); err != nil {
						return err
					}
				}
				prev = wait
				times = append(times, time.Since(s).Seconds())
			}
			if loss, err = prev(); err != nil {
				return err
			}
			if err := stopProfile(); err != nil {
				return err
			}
			sort.Float64s(times)
			med := times[len(times)/2]
			hits, misses, cacheErrs := backend.ExecutableCacheStats()
			fmt.Fprintf(stdout, "RESULT go-%s size=%s dtype=%s attn=%s dropout=%g batch=%d block=%d tokens/s=%.0f step_ms=%.1f compile_s=%.2f executable_cache=%d/%d/%d loss=%.5f path=%q gemms=%q\n",
				*phase, *size, dt, attn, cfg.AttnPdrop, *batch, *block, float64(*batch**block)/med, med*1000, first-med, hits, misses, cacheErrs, loss, m.AttentionPath(true), gemms)
		}
	}
	return nil
}

// benchPhase returns a function that launches one timed unit of --phase on a batch (ids as labels)
// and returns a function waiting for its loss.
func benchPhase(m *gpt2.Model, phase string) (func(ids *tensors.Tensor) func() (float64, error), error) {
	failed := func(err error) func() (float64, error) { return func() (float64, error) { return 0, err } }
	if phase == "step" {
		step, err := train.NewStep(m, optim.NewAdamW())
		if err != nil {
			return nil, err
		}
		return func(ids *tensors.Tensor) func() (float64, error) {
			p, err := step.Launch(ids, ids, 1e-4)
			if err != nil {
				return failed(err)
			}
			return func() (float64, error) {
				loss, _, err := p.Wait()
				return loss, err
			}
		}, nil
	}
	e, err := model.NewExec(m.Backend, m.Store, func(scope *model.Scope, in []*graph.Node) []*graph.Node {
		if phase == "forward" {
			store := scope.Store()
			store.SetTraining(in[0].Graph(), true)
			return []*graph.Node{m.LossGraph(store, in[0], nil, in[0], true)}
		}
		loss, _, grads := train.TrainingGradients(m, scope.Store(), in[0], nil, in[0], nil)
		if phase == "grads" {
			// Every gradient returned (left on the device): the cost of one output buffer each.
			return append([]*graph.Node{loss}, grads...)
		}
		// The gradients' global norm stands for the gradients (returning them all would time the
		// transfers to the host): XLA cannot drop any of them.
		sum := graph.ScalarZero(loss.Graph(), loss.DType())
		for _, g := range grads {
			sum = graph.Add(sum, graph.ReduceAllSum(graph.Square(g)))
		}
		return []*graph.Node{loss, sum}
	})
	if err != nil {
		return nil, err
	}
	return func(ids *tensors.Tensor) func() (float64, error) {
		out, err := func() (out []*tensors.Tensor, err error) {
			defer func() {
				if r := recover(); r != nil {
					err = fmt.Errorf("bench %s: %v", phase, r)
				}
			}()
			return e.Call(ids)
		}()
		if err != nil {
			return failed(err)
		}
		return func() (loss float64, err error) {
			defer func() {
				if r := recover(); r != nil {
					err = fmt.Errorf("bench %s: %v", phase, r)
				}
			}()
			return float64(tensors.MustCopyFlatData[float32](out[0])[0]), nil // waits for the result
		}
	}, nil
}

// setLogVerbosity sets klog's -v (GoMLX and go-xla log through klog; at 1 go-xla logs each
// compilation and execution with its duration).
func setLogVerbosity(v int) error {
	if v <= 0 {
		return nil
	}
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	if err := fs.Set("v", strconv.Itoa(v)); err != nil {
		return fmt.Errorf("--log-v: %w", err)
	}
	return nil
}

// startCPUProfile starts a Go CPU profile into path ("" does nothing) and returns its stop.
func startCPUProfile(path string) (stop func() error, err error) {
	if path == "" {
		return func() error { return nil }, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() error {
		pprof.StopCPUProfile()
		return f.Close()
	}, nil
}
