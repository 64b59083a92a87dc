package notebook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Options configure [Run].
type Options struct {
	// OutDir receives the executed copies (and a .log of nbconvert's own output for each); ignored
	// with InPlace. Default "build/notebooks".
	OutDir string
	// InPlace writes the outputs into the notebooks themselves (to commit a real run).
	InPlace bool
	// Env holds "KEY=VALUE" parameters added to the environment of the kernel.
	Env []string
	// CellTimeout bounds each cell's execution (default 1 hour).
	CellTimeout time.Duration
	// Kernel is the Jupyter kernel name (default "gonb").
	Kernel string
	// Log receives one line per notebook as it starts and ends (default: discarded).
	Log io.Writer
	// Clean also fails a notebook whose outputs are not fit to commit (see [Clean]) or, run into
	// OutDir, whose kinds of output differ from the committed notebook's (see [SameKinds]).
	Clean bool
}

// Result is the outcome of one notebook.
type Result struct {
	// Notebook is the source notebook's path, Executed the executed copy's.
	Notebook, Executed string
	// Problems lists what failed (empty when the notebook passed).
	Problems []Problem
	// Wall is the time the execution took.
	Wall time.Duration
}

// Passed reports whether the notebook ran without any problem.
func (r Result) Passed() bool { return len(r.Problems) == 0 }

// Run executes the notebooks one after the other (later ones may use files earlier ones wrote) and
// checks each. It returns an error when any notebook failed; the results say which and why.
func Run(ctx context.Context, notebooks []string, opts Options) ([]Result, error) {
	if opts.OutDir == "" {
		opts.OutDir = filepath.Join("build", "notebooks")
	}
	if opts.CellTimeout == 0 {
		opts.CellTimeout = time.Hour
	}
	if opts.Kernel == "" {
		opts.Kernel = "gonb"
	}
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	nbconvert, err := nbconvertCommand()
	if err != nil {
		return nil, err
	}
	if !opts.InPlace {
		if err := os.MkdirAll(opts.OutDir, 0o755); err != nil {
			return nil, fmt.Errorf("creating the output folder: %w", err)
		}
	}
	var results []Result
	var failed []string
	for _, nb := range notebooks {
		if err := ctx.Err(); err != nil {
			return results, err
		}
		fmt.Fprintf(opts.Log, "▶ %s\n", nb)
		r := runOne(ctx, nbconvert, nb, opts)
		results = append(results, r)
		status := "passed"
		if !r.Passed() {
			status = "FAILED"
			failed = append(failed, filepath.Base(nb))
		}
		fmt.Fprintf(opts.Log, "%s %s in %s → %s\n", status, nb, r.Wall.Round(time.Second), r.Executed)
		for _, p := range r.Problems {
			fmt.Fprintf(opts.Log, "    %s\n", p)
		}
	}
	if len(failed) > 0 {
		return results, fmt.Errorf("%d of %d notebooks failed: %s", len(failed), len(notebooks), strings.Join(failed, ", "))
	}
	return results, nil
}

func runOne(ctx context.Context, nbconvert []string, nb string, opts Options) Result {
	start := time.Now()
	r := Result{Notebook: nb}
	abs, err := filepath.Abs(nb)
	if err != nil {
		r.Problems = []Problem{{What: err.Error()}}
		return r
	}
	args := append(nbconvert[1:], "--to", "notebook", "--execute", "--allow-errors",
		"--ExecutePreprocessor.kernel_name="+opts.Kernel,
		fmt.Sprintf("--ExecutePreprocessor.timeout=%d", int(opts.CellTimeout.Seconds())))
	var logPath string
	if opts.InPlace {
		r.Executed = nb
		args = append(args, "--inplace", abs)
		logPath = filepath.Join(os.TempDir(), strings.TrimSuffix(filepath.Base(nb), ".ipynb")+".nbconvert.log")
	} else {
		outDir, err := filepath.Abs(opts.OutDir)
		if err != nil {
			r.Problems = []Problem{{What: err.Error()}}
			return r
		}
		name := filepath.Base(nb)
		r.Executed = filepath.Join(opts.OutDir, name)
		args = append(args, "--output-dir", outDir, "--output", name, abs)
		logPath = filepath.Join(opts.OutDir, strings.TrimSuffix(name, ".ipynb")+".log")
	}
	var committed []byte
	if opts.Clean && !opts.InPlace {
		if committed, err = os.ReadFile(nb); err != nil {
			r.Problems = []Problem{{What: err.Error()}}
			return r
		}
	}
	cmd := exec.CommandContext(ctx, nbconvert[0], args...)
	cmd.Env = append(os.Environ(), opts.Env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	runErr := cmd.Run()
	r.Wall = time.Since(start)
	_ = os.WriteFile(logPath, out.Bytes(), 0o644)
	if runErr != nil {
		r.Problems = append(r.Problems, Problem{What: fmt.Sprintf("nbconvert failed (%v; log in %s): %s",
			runErr, logPath, lastLines(out.String(), 5))})
	}
	problems, err := CheckFile(r.Executed)
	if err != nil {
		if runErr == nil {
			r.Problems = append(r.Problems, Problem{What: err.Error()})
		}
		return r
	}
	r.Problems = append(r.Problems, problems...)
	if opts.Clean {
		r.Problems = append(r.Problems, cleanProblems(r.Executed, committed)...)
	}
	return r
}

// cleanProblems runs Clean on the executed notebook and, given the committed one, SameKinds.
func cleanProblems(executed string, committed []byte) []Problem {
	data, err := os.ReadFile(executed)
	if err != nil {
		return []Problem{{What: err.Error()}}
	}
	problems, err := Clean(data)
	if err != nil {
		return []Problem{{What: err.Error()}}
	}
	if committed != nil {
		differ, err := SameKinds(committed, data)
		if err != nil {
			return append(problems, Problem{What: err.Error()})
		}
		problems = append(problems, differ...)
	}
	return problems
}

// nbconvertCommand finds nbconvert: the jupyter-nbconvert script or `jupyter nbconvert`.
func nbconvertCommand() ([]string, error) {
	if p, err := exec.LookPath("jupyter-nbconvert"); err == nil {
		return []string{p}, nil
	}
	if p, err := exec.LookPath("jupyter"); err == nil {
		return []string{p, "nbconvert"}, nil
	}
	return nil, errors.New("jupyter nbconvert not found: run kernel/install.sh (it installs Jupyter and the GoNB kernel)")
}

// List returns the notebooks (*.ipynb) of a directory in name order.
func List(dir string) ([]string, error) {
	matches, err := filepath.Glob(filepath.Join(dir, "*.ipynb"))
	if err != nil {
		return nil, err
	}
	sort.Strings(matches)
	if len(matches) == 0 {
		return nil, fmt.Errorf("no notebooks in %s", dir)
	}
	return matches, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
