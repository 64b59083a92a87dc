package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/gonb-gpt/tutorial/lib/hub"
)

func init() {
	register(command{name: "download", summary: "download a model from the Hugging Face hub into its shared cache; prints the snapshot folder", run: runDownload})
	resolveModel = resolveHubModel
}

// resolveHubModel: a local folder as is; otherwise a hub repo id, downloaded (or found in the
// cache) through lib/hub.
func resolveHubModel(ctx context.Context, ref string) (string, error) {
	if st, err := os.Stat(ref); err == nil && st.IsDir() {
		return ref, nil
	}
	if !hub.IsRepoID(ref) {
		return "", fmt.Errorf("model %q is neither a folder nor a hub repository id", ref)
	}
	c, err := hub.New()
	if err != nil {
		return "", err
	}
	c.Progress = os.Stderr
	return c.DownloadModel(ctx, ref, "")
}

func runDownload(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("download", "REPO_ID [--revision REV] [--include GLOB ...]", `
Downloads a model repository from the Hugging Face hub (HF_ENDPOINT) into huggingface_hub's cache
(HF_HOME, HF_HUB_CACHE), sharing it with Python, and prints the snapshot folder. Without --include it
takes what the model and tokenizer loaders need (config, weights — safetensors preferred —,
tokenizer files, generation_config.json). HF_TOKEN authenticates; HF_HUB_OFFLINE=1 uses the cache only,
as does an unreachable hub when the cache holds the files.`)
	revision := fs.String("revision", "main", "branch, tag or commit")
	var include stringList
	fs.Var(&include, "include", "download the files matching this pattern instead of the model's files (repeatable; fnmatch as `hf download --include`: * crosses /, DIR/ is the whole folder)")
	quiet := fs.Bool("quiet", false, "no progress bars")
	if err := parse(fs, reorder(fs, args)); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: want one repository id", errUsage)
	}
	repoID := fs.Arg(0)
	c, err := hub.New()
	if err != nil {
		return err
	}
	if !*quiet {
		c.Progress = os.Stderr
	}
	var snap string
	if len(include) == 0 {
		snap, err = c.DownloadModel(ctx, repoID, *revision)
	} else {
		snap, err = c.DownloadMatching(ctx, repoID, *revision, include)
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, snap)
	return nil
}

// reorder moves flags after a positional argument to the front (the flag package stops at the
// first non-flag); a flag's value goes with it unless fs says the flag is boolean.
func reorder(fs *flag.FlagSet, args []string) []string {
	takesValue := func(a string) bool {
		f := fs.Lookup(strings.TrimLeft(a, "-"))
		if f == nil || strings.Contains(a, "=") {
			return false
		}
		b, ok := f.Value.(interface{ IsBoolFlag() bool })
		return !ok || !b.IsBoolFlag()
	}
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if len(a) > 1 && a[0] == '-' {
			flags = append(flags, a)
			if i+1 < len(args) && takesValue(a) {
				flags = append(flags, args[i+1])
				i++
			}
			continue
		}
		pos = append(pos, a)
	}
	return append(flags, pos...)
}
