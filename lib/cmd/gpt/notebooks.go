package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/gonb-gpt/tutorial/lib/notebook"
)

func init() {
	register(command{name: "notebooks", summary: "execute notebooks headless with the GoNB kernel; fail on any error or panic", run: runNotebooks})
}

// envList collects repeated --env KEY=VALUE flags.
type envList []string

func (e *envList) String() string { return strings.Join(*e, ",") }
func (e *envList) Set(v string) error {
	if k, _, ok := strings.Cut(v, "="); !ok || k == "" {
		return fmt.Errorf("want KEY=VALUE, got %q", v)
	}
	*e = append(*e, v)
	return nil
}

func runNotebooks(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("notebooks", "[flags] [NOTEBOOK.ipynb ...]", `
Executes the notebooks (default: every notebooks/*.ipynb, in name order) with nbconvert and the GoNB
kernel, writes the executed copies, and fails when any cell errs or any output holds a Go panic or a
non-zero exit status, and (--clean) when the outputs are unfit to commit. Parameters reach the
notebooks as environment variables: --mode sets GPT_QUICK, --env adds more.`)
	dir := fs.String("dir", "notebooks", "folder of the notebooks to run when none are named")
	out := fs.String("out", "build/notebooks", "folder for the executed copies")
	inPlace := fs.Bool("in-place", false, "write the outputs into the notebooks themselves (to commit a real run)")
	mode := fs.String("mode", "quick", "quick (tiny sizes, local data: minutes on a CPU) or full (the tutorial's sizes)")
	timeout := fs.Duration("cell-timeout", time.Hour, "time limit of each cell")
	clean := fs.Bool("clean", true, "also fail on outputs unfit to commit (stderr, absolute paths, a training cell without its live block) and on kinds of output that differ from the committed notebook's")
	var env envList
	fs.Var(&env, "env", "KEY=VALUE passed to the notebooks (repeatable)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *mode == "" {
		return fmt.Errorf("%w: --mode must be quick or full", errUsage)
	}
	env, err := withMode(*mode, env)
	if err != nil {
		return err
	}
	// Stop before the first notebook on a parameter its first cell would refuse.
	if _, err := notebookParams(env); err != nil {
		return err
	}
	nbs := fs.Args()
	if len(nbs) == 0 {
		if nbs, err = notebook.List(*dir); err != nil {
			return err
		}
	}
	start := time.Now()
	_, err = notebook.Run(ctx, nbs, notebook.Options{OutDir: *out, InPlace: *inPlace, Env: env, CellTimeout: *timeout, Log: stdout, Clean: *clean})
	fmt.Fprintf(stdout, "%d notebook(s) in %s\n", len(nbs), time.Since(start).Round(time.Second))
	return err
}
