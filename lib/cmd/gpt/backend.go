package main

import (
	"context"
	"fmt"
	"io"

	"github.com/gonb-gpt/tutorial/lib/backend"
)

func init() {
	register(command{name: "backend", summary: "show which compute backend is used and why; `backend install cuda` installs a PJRT plugin", run: runBackend})
}

func runBackend(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("backend", "[install cuda|cpu]", `
Prints the compute backend the tutorial uses (GOMLX_BACKEND when set; else XLA CUDA when an NVIDIA
GPU and a PJRT CUDA plugin are found; else the pure-Go backend), why, and its devices, then runs a
tiny computation on it.

"gpt backend install cuda" downloads go-xla's PJRT CUDA plugin into ~/.local/lib/go-xla — the only
download this project ever makes on its own, and only when asked.`)
	if err := parse(fs, args); err != nil {
		return err
	}
	switch rest := fs.Args(); {
	case len(rest) == 0:
	case len(rest) == 2 && rest[0] == "install" && (rest[1] == "cuda" || rest[1] == "cpu"):
		if err := backend.Install(rest[1]); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "installed the PJRT %s plugin\n", rest[1])
	default:
		return fmt.Errorf("%w: unexpected arguments %q (want nothing, or: install cuda|cpu)", errUsage, rest)
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
