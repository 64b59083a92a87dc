package tutorial

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A fresh clone of the repository — no ../shared beside it, an empty work folder, none of this
// checkout's ignored files (build/, work/) — runs `gpt scrape --mirror builtin` and the quick notebook
// 01 as a newcomer would: a file missing from git, or a path that works only in the developer's
// checkout, fails here. It clones the committed HEAD (uncommitted changes are not in it; CI tests a
// clean clone). It executes a notebook, so it runs with the notebook tests (GPT_NOTEBOOK_TESTS=1,
// set by `make test`).
func TestFreshClone(t *testing.T) {
	if os.Getenv("GPT_NOTEBOOK_TESTS") != "1" {
		t.Skip("set GPT_NOTEBOOK_TESTS=1 to clone the repository and execute a notebook there (make test does)")
	}
	root := repoRoot()
	if _, err := os.Stat(filepath.Join(root, ".git")); err != nil {
		t.Fatalf("%s is not a git checkout: this test clones it: %v", root, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	tmp := t.TempDir()
	clone := filepath.Join(tmp, "tutorial")
	// The newcomer's environment: none of the variables that point the tests or the notebooks at
	// this checkout's data.
	var env []string
	for _, kv := range os.Environ() {
		switch k, _, _ := strings.Cut(kv, "="); k {
		case "GPT_SHARED_DIR", "GPT_WORKDIR", "GPT_LIBRU_MIRROR", "HF_HOME", "HF_HUB_CACHE", "HF_ENDPOINT", "GPT_QUICK":
		default:
			env = append(env, kv)
		}
	}
	run := func(dir string, name string, args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Dir, cmd.Env = dir, env
		start := time.Now()
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s (in %s): %v\n%s", name, strings.Join(args, " "), dir, err, out)
		}
		t.Logf("%s %s: %s", name, strings.Join(args, " "), time.Since(start).Round(time.Second))
		return string(out)
	}
	run(tmp, "git", "clone", "--quiet", "--no-hardlinks", root, clone)
	if _, err := os.Stat(filepath.Join(tmp, "shared")); err == nil {
		t.Fatal("a shared folder is beside the clone")
	}

	out := run(clone, "go", "run", "./lib/cmd/gpt", "scrape", "--mirror", "builtin", "--quiet",
		"--cache-dir", filepath.Join(tmp, "cache"), "--out", filepath.Join(tmp, "dataset.txt"))
	if !strings.Contains(out, "text_0039.shtml") || !strings.Contains(out, "wrote ") {
		t.Errorf("gpt scrape --mirror builtin in the clone:\n%s", out)
	}

	// The clone's library says so in every cell that imports it: the notebook inside the clone must
	// build against the clone (gpt-workspace searches up from the notebook), not against the
	// checkout the kernel was installed from.
	const marker = "library-of-the-fresh-clone"
	if err := os.WriteFile(filepath.Join(clone, "lib", "tutorial", "zz_marker.go"),
		[]byte("package tutorial\n\nimport \"fmt\"\n\nfunc init() { fmt.Println(\""+marker+"\") }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	executed := filepath.Join(tmp, "executed")
	run(clone, "go", "run", "./lib/cmd/gpt", "notebooks", "--mode", "quick", "--out", executed, "notebooks/01_corpus.ipynb")
	// The notebook wrote its dataset into the clone's own work folder.
	if st, err := os.Stat(filepath.Join(clone, "work", "dataset.txt")); err != nil || st.Size() < 100_000 {
		t.Errorf("the quick notebook 01 in the clone left no work/dataset.txt: %v", err)
	}
	if out, err := os.ReadFile(filepath.Join(executed, "01_corpus.ipynb")); err != nil || !strings.Contains(string(out), marker) {
		t.Errorf("notebook 01 in the clone did not build against the clone's library (no %q in its outputs; %v)", marker, err)
	}

	// Copied out of any repository (as into a DataSphere project folder), the notebook builds against
	// the repository the kernel was installed from (GPT_TUTORIAL_DIR in the kernel's environment) and
	// keeps its artifacts in work/ beside it.
	project := filepath.Join(tmp, "project")
	nb, err := os.ReadFile(filepath.Join(clone, "notebooks", "01_corpus.ipynb"))
	if err == nil {
		err = os.MkdirAll(project, 0o755)
	}
	if err == nil {
		err = os.WriteFile(filepath.Join(project, "01_corpus.ipynb"), nb, 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
	copied := filepath.Join(tmp, "executed-copy")
	run(clone, "go", "run", "./lib/cmd/gpt", "notebooks", "--mode", "quick", "--out", copied, filepath.Join(project, "01_corpus.ipynb"))
	if st, err := os.Stat(filepath.Join(project, "work", "dataset.txt")); err != nil || st.Size() < 100_000 {
		t.Errorf("notebook 01 copied to %s left no work/dataset.txt beside it: %v", project, err)
	}
	if out, err := os.ReadFile(filepath.Join(copied, "01_corpus.ipynb")); err != nil || strings.Contains(string(out), marker) {
		t.Errorf("notebook 01 outside any repository built against the clone, not the kernel's repository (%v)", err)
	}
}
