// Command devprof is built as a C shared library (go build -buildmode=c-shared) for the device
// check's per-kernel profile: Python loads it beside torch, whose profiler (CUPTI) then records
// every kernel of the process, XLA's included, so the Go training step can be timed kernel by
// kernel next to PyTorch's (.ci/device-profile.py). It is not a user command.
package main

import "C"

import (
	"fmt"
	"math/rand/v2"
	"os"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gonb-gpt/tutorial/lib/backend"
	"github.com/gonb-gpt/tutorial/lib/gpt2"
	"github.com/gonb-gpt/tutorial/lib/optim"
	"github.com/gonb-gpt/tutorial/lib/train"
)

var (
	step *train.Step
	ids  *tensors.Tensor
)

// GptPrepare builds a random GPT-2 of the tutorial's size (vocab 30000, 12 layers, d 768; batch 8,
// block 1024) and its training step in dtype ("fp32" or "bf16") with every dropout at the given
// probability, and runs two steps (compilation included). It returns 0, or 1 after printing the
// error.
//
//export GptPrepare
func GptPrepare(dtype *C.char, dropout C.double) C.int {
	if err := prepare(C.GoString(dtype), float64(dropout)); err != nil {
		fmt.Fprintln(os.Stderr, "devprof:", err)
		return 1
	}
	return 0
}

// GptSteps runs n more training steps. It returns 0, or 1 after printing the error.
//
//export GptSteps
func GptSteps(n C.int) C.int {
	for range int(n) {
		if _, _, err := step.Run(ids, ids, 1e-4); err != nil {
			fmt.Fprintln(os.Stderr, "devprof:", err)
			return 1
		}
	}
	return 0
}

func prepare(dtype string, dropout float64) error {
	b, report, err := backend.New(backend.WithoutReexec())
	if err != nil {
		return err
	}
	fmt.Fprint(os.Stderr, report.String())
	cfg := gpt2.DefaultConfig()
	cfg.VocabSize = 30000
	batchSize, block := 8, 1024
	if os.Getenv("GPT_DEVPROF_TINY") == "1" { // To try the library where computing is slow.
		cfg.VocabSize, cfg.NPositions, cfg.NEmbd, cfg.NLayer, cfg.NHead = 1000, 64, 64, 2, 4
		batchSize, block = 2, 64
	}
	cfg.ResidPdrop, cfg.EmbdPdrop, cfg.AttnPdrop = dropout, dropout, dropout
	m, err := gpt2.New(b, cfg, 1)
	if err != nil {
		return err
	}
	if m.Autocast, err = gpt2.AutocastDType(dtype); err != nil {
		return err
	}
	if step, err = train.NewStep(m, optim.NewAdamW()); err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(1, 2))
	batch := make([][]int, batchSize)
	for i := range batch {
		batch[i] = make([]int, block)
		for j := range batch[i] {
			batch[i][j] = rng.IntN(cfg.VocabSize)
		}
	}
	if ids, err = train.IDsTensor(batch); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "devprof: %s dropout %g, attention %s\n", dtype, dropout, m.AttentionPath(true))
	if r := GptSteps(2); r != 0 {
		return fmt.Errorf("warm-up steps failed")
	}
	return nil
}

func main() {}
