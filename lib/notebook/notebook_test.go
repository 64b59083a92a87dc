package notebook

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCheckShowsGoNBErrorDetail(t *testing.T) {
	problems, err := CheckFile(filepath.Join("testdata", "executed", "compile.ipynb"))
	if err != nil {
		t.Fatal(err)
	}
	if len(problems) != 1 || !strings.Contains(problems[0].What, "undefined: undefinedVariable") {
		t.Errorf("problems = %v, want the compiler's message from GoNB's HTML output", problems)
	}
}

// The files in testdata/executed are real nbconvert+GoNB outputs of the notebooks in testdata.
func TestCheckExecuted(t *testing.T) {
	for _, tc := range []struct {
		name string
		want []string // substrings of the problems, in order; none for a passing notebook
	}{
		{"ok", nil},
		{"panic", []string{"cell 2: Go panic: assignment to entry in nil map", "cell 2: program ended with exit status 2", "cell 2: error output"}},
		{"exit", []string{"cell 1: program ended with exit status 3", "cell 1: error output: ERROR: exit status 3"}},
		{"compile", []string{"cell 1: error output: ERROR: failed to run"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			problems, err := CheckFile(filepath.Join("testdata", "executed", tc.name+".ipynb"))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range problems {
				got = append(got, p.String())
			}
			if len(got) != len(tc.want) {
				t.Fatalf("problems = %q, want %d matching %q", got, len(tc.want), tc.want)
			}
			for i := range got {
				if !strings.Contains(got[i], tc.want[i]) {
					t.Errorf("problem %d = %q, want it to contain %q", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestCheckSynthetic(t *testing.T) {
	for _, tc := range []struct {
		name, ipynb string
		problems    int
	}{
		{"not executed", `{"cells":[{"cell_type":"code","source":"x","execution_count":null,"outputs":[]}]}`, 1},
		{"markdown ignored", `{"cells":[{"cell_type":"markdown","source":["panic: not code"]}]}`, 0},
		{"panic in html", `{"cells":[{"cell_type":"code","source":"x","execution_count":1,"outputs":[{"output_type":"display_data","data":{"text/html":["<pre>panic: boom</pre>\n"]}}]}]}`, 1},
		{"panic line in html", `{"cells":[{"cell_type":"code","source":"x","execution_count":1,"outputs":[{"output_type":"display_data","data":{"text/html":["<pre>\npanic: boom\n</pre>\n"]}}]}]}`, 1},
		{"goroutine dump", `{"cells":[{"cell_type":"code","source":"x","execution_count":1,"outputs":[{"output_type":"stream","name":"stderr","text":"fatal error: all goroutines are asleep\ngoroutine 1 [running]:\n"}]}]}`, 1},
		{"exit status 0 is fine", `{"cells":[{"cell_type":"code","source":"x","execution_count":1,"outputs":[{"output_type":"stream","name":"stdout","text":"exit status 0\n"}]}]}`, 0},
		{"mention is fine", `{"cells":[{"cell_type":"code","source":"x","execution_count":1,"outputs":[{"output_type":"stream","name":"stdout","text":"no panic: here\n"}]}]}`, 0},
		{"image data skipped", `{"cells":[{"cell_type":"code","source":"x","execution_count":1,"outputs":[{"output_type":"display_data","data":{"image/png":"iVBOR","application/json":{"a":1}}}]}]}`, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			problems, err := Check([]byte(tc.ipynb))
			if err != nil {
				t.Fatal(err)
			}
			if len(problems) != tc.problems {
				t.Errorf("problems = %v, want %d", problems, tc.problems)
			}
		})
	}
	if _, err := Check([]byte("not json")); err == nil {
		t.Error("Check(not json) succeeded")
	}
}

// requireJupyter skips unless GPT_NOTEBOOK_TESTS=1 (set by `make test`), and then fails when
// Jupyter or the GoNB kernel is missing: in the README's test command these tests must run.
func requireJupyter(t *testing.T) {
	t.Helper()
	if os.Getenv("GPT_NOTEBOOK_TESTS") != "1" {
		t.Skip("set GPT_NOTEBOOK_TESTS=1 to execute notebooks (make test does)")
	}
	if _, err := nbconvertCommand(); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("jupyter", "kernelspec", "list").CombinedOutput(); err != nil || !strings.Contains(string(out), "gonb") {
		t.Fatalf("the GoNB kernel is not installed (run kernel/install.sh): %s %v", out, err)
	}
}

func TestRunFailsOnPanic(t *testing.T) {
	requireJupyter(t)
	out := t.TempDir()
	results, err := Run(context.Background(), []string{"testdata/panic.ipynb", "testdata/ok.ipynb"},
		Options{OutDir: out, Env: []string{"GPT_TEST_PARAM=from-the-runner"}, CellTimeout: 5 * time.Minute})
	if err == nil || !strings.Contains(err.Error(), "1 of 2 notebooks failed: panic.ipynb") {
		t.Fatalf("Run error = %v, want 1 of 2 failed: panic.ipynb", err)
	}
	if results[0].Passed() || !strings.Contains(results[0].Problems[0].String(), "Go panic: assignment to entry in nil map") {
		t.Errorf("panic.ipynb problems = %v", results[0].Problems)
	}
	if !results[1].Passed() {
		t.Errorf("ok.ipynb problems = %v", results[1].Problems)
	}
	data, err := os.ReadFile(results[1].Executed)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "ok from-the-runner") {
		t.Errorf("the parameter did not reach the notebook: %s", data)
	}
}

func TestRunFailsOnExitAndCompileError(t *testing.T) {
	requireJupyter(t)
	results, err := Run(context.Background(), []string{"testdata/exit.ipynb", "testdata/compile.ipynb"},
		Options{OutDir: t.TempDir(), CellTimeout: 5 * time.Minute})
	if err == nil {
		t.Fatal("Run succeeded on failing notebooks")
	}
	for _, r := range results {
		if r.Passed() {
			t.Errorf("%s passed", r.Notebook)
		}
	}
}
