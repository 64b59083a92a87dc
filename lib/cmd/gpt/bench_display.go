package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/gonb-gpt/tutorial/lib/backend"
	"github.com/gonb-gpt/tutorial/lib/data"
	"github.com/gonb-gpt/tutorial/lib/gpt2"
	"github.com/gonb-gpt/tutorial/lib/train"
)

// benchDisplay measures what the live training display costs: the Trainer's throughput with the
// display as a notebook shows it (HTML through GoNB's pipe to a stand-in for the kernel), as log lines,
// and with NoProgress, alternating, medians.
func benchDisplay(args []string, stdout io.Writer) error {
	fs := newFlags("bench display", "[flags]", `
Trains a random GPT-2 of quick mode's sizes (vocab 30000, 2 layers, d 64, 4 heads, blocks of 64,
batches of 16, a log entry every 25 steps) for --steps steps with the Trainer, --rounds times in each
of three ways, alternating: NoProgress; the live display as a notebook gets it (HTML blocks sent by
gonbui through a named pipe to a goroutine that decodes them as GoNB's kernel does); and log lines
(to a file). Prints the median tokens/s of each (the Trainer's train_tokens_per_second), the ratio
to NoProgress, and how many HTML updates were sent and their mean size.`)
	steps := fs.Int("steps", 150, "training steps per run")
	rounds := fs.Int("rounds", 3, "runs of each way")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := badFlags(atLeast("steps", *steps, 1), atLeast("rounds", *rounds, 1)); err != nil {
		return err
	}
	kernel, err := startFakeGoNB()
	if err != nil {
		return err
	}
	b, report, err := backend.New()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s\n", strings.SplitN(report.String(), "\n", 2)[0])
	cfg := gpt2.DefaultConfig()
	cfg.VocabSize, cfg.NPositions, cfg.NEmbd, cfg.NLayer, cfg.NHead = 30000, 128, 64, 2, 4
	rng := rand.New(rand.NewPCG(1, 2))
	blocks := &data.Blocks{BlockSize: 64}
	for range 1247 * 64 { // quick mode's 1247 blocks
		blocks.Tokens = append(blocks.Tokens, int32(rng.IntN(cfg.VocabSize)))
	}
	tmp, err := os.MkdirTemp("", "gpt-bench-display-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	logFile, err := os.Create(filepath.Join(tmp, "progress.log"))
	if err != nil {
		return err
	}
	defer logFile.Close()
	ways := []string{"none", "notebook", "lines"}
	results := map[string][]float64{}
	for r := range *rounds {
		for _, way := range ways {
			m, err := gpt2.New(b, cfg, 42)
			if err != nil {
				return err
			}
			args := train.DefaultArguments(filepath.Join(tmp, "out"))
			args.MaxSteps, args.LoggingSteps, args.SaveSteps, args.PerDeviceTrainBatchSize, args.LearningRate, args.WarmupSteps = *steps, 25, 0, 16, 5e-3, 10
			args.SaveStrategy = "no"
			tr := &train.Trainer{Model: m, Args: args, TrainData: blocks, Log: io.Discard}
			switch way {
			case "none":
				tr.NoProgress = true
			case "notebook":
				tr.Progress = os.Stderr // a notebook cell's stderr: the live HTML block
			case "lines":
				tr.Progress = logFile
			}
			out, err := tr.Train(context.Background())
			if err != nil {
				return err
			}
			tps := out.Metrics["train_tokens_per_second"]
			results[way] = append(results[way], tps)
			fmt.Fprintf(stdout, "round %d %-8s %.0f tokens/s\n", r+1, way, tps)
		}
	}
	median := func(v []float64) float64 {
		s := append([]float64(nil), v...)
		sort.Float64s(s)
		return s[len(s)/2]
	}
	base := median(results["none"])
	updates, size := kernel()
	for _, way := range ways {
		fmt.Fprintf(stdout, "RESULT display=%s tokens/s=%.0f ratio=%.4f\n", way, median(results[way]), median(results[way])/base)
	}
	if updates > 0 {
		fmt.Fprintf(stdout, "notebook: %d HTML updates in %d runs of %d steps (%.1f per run), %.1f kB each on average\n",
			updates, *rounds, *steps, float64(updates)/float64(*rounds), float64(size)/float64(updates)/1000)
	}
	return nil
}
