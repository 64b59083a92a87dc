package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/gonb-gpt/tutorial/lib/tutorial"
)

func init() {
	register(command{name: "params", summary: "print the notebooks' parameters as the environment sets them; fail on an invalid one", run: runParams})
}

func runParams(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("params", "[--mode quick|full] [--env KEY=VALUE ...]", `
Prints the parameters the notebooks will use (tutorial.Load), one KEY=VALUE line per environment
variable, or fails naming each variable whose value is not valid and what it accepts. --mode and
--env act as in gpt notebooks; without --mode, GPT_QUICK is the environment's.`)
	mode := fs.String("mode", "", "quick or full: GPT_QUICK as gpt notebooks --mode sets it (default: the environment's)")
	var env envList
	fs.Var(&env, "env", "KEY=VALUE over the environment (repeatable)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	env, err := withMode(*mode, env)
	if err != nil {
		return err
	}
	p, err := notebookParams(env)
	if err != nil {
		return err
	}
	for _, kv := range p.Env() {
		fmt.Fprintln(stdout, kv)
	}
	return nil
}

// withMode puts GPT_QUICK for --mode (quick, full, or "" for the environment's) before env.
func withMode(mode string, env envList) (envList, error) {
	switch mode {
	case "":
		return env, nil
	case "quick":
		return append(envList{"GPT_QUICK=1"}, env...), nil
	case "full":
		return append(envList{"GPT_QUICK=0"}, env...), nil
	}
	return nil, fmt.Errorf("%w: --mode must be quick or full, got %q", errUsage, mode)
}

// notebookParams parses the notebooks' parameters from the environment with env's KEY=VALUE over it
// (the last of a key wins, as in the notebooks' environment).
func notebookParams(env envList) (*tutorial.Params, error) {
	return tutorial.Parse(func(key string) string {
		v := os.Getenv(key)
		for _, kv := range env {
			if k, val, _ := strings.Cut(kv, "="); k == key {
				v = val
			}
		}
		return v
	})
}
