package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/gonb-gpt/tutorial/lib/backend"
)

func init() {
	register(command{name: "backend", summary: "show which compute backend is used and why; `backend install cuda` installs a PJRT plugin", run: runBackend})
}

// installPlugins are the arguments of `gpt backend install`.
var installPlugins = []string{"cuda", "cuda12", "cuda13", "cpu"}

func runBackend(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("backend", "[install cuda|cuda12|cuda13|cpu]", `
Prints the compute backend the tutorial uses (GOMLX_BACKEND when set; else XLA CUDA when an NVIDIA
GPU and a PJRT CUDA plugin that runs on it are found; else the pure-Go backend), why, the GPUs with
their compute capability, the plugin's CUDA version, the attention path and default precision, and
the devices, then runs a tiny computation on it.

"gpt backend install" downloads a PJRT plugin and its NVIDIA libraries from pypi.org with go-xla's
installer — the only download this project ever makes on its own, and only when asked:
  cuda13  CUDA 13, into ~/.local/lib/go-xla/nvidia: GPUs of compute capability 7.5 or newer
          (T4, A100, L4, H100), NVIDIA driver 580 or newer
  cuda12  CUDA 12, into ~/.local/lib/go-xla-cuda12/nvidia: also older GPUs down to 5.2 (the
          tutorial's Tesla V100 is 7.0, which CUDA 13 dropped), NVIDIA driver 525 or newer
  cuda    cuda12 or cuda13, whichever fits the visible GPUs and driver
  cpu     go-xla's XLA CPU plugin`)
	if err := parse(fs, args); err != nil {
		return err
	}
	switch rest := fs.Args(); {
	case len(rest) == 0:
	case len(rest) == 2 && rest[0] == "install" && slices.Contains(installPlugins, rest[1]):
		if err := backend.Install(rest[1], stdout); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "installed the PJRT %s plugin\n", rest[1])
	default:
		return fmt.Errorf("%w: unexpected arguments %q (want nothing, or: install %s)", errUsage, rest, strings.Join(installPlugins, "|"))
	}
	b, report, err := backend.New()
	if err != nil {
		return err
	}
	defer b.Finalize()
	fmt.Fprintln(stdout, report)
	if err := backend.Check(b); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "check:   x²+1 over [1 2 3] = [2 5 10] ✓")
	return nil
}
