package notebook

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The committed notebooks are what people read first (GitHub, Jupyter before running): no stderr
// noise, no paths of the machine that ran them, and every training cell ends on its live block. The
// runner's --clean checks the same on every re-execution, and that it gives the same kinds of output.
func TestCommittedNotebooksClean(t *testing.T) {
	nbs, err := List(filepath.Join("..", "..", "notebooks"))
	if err != nil {
		t.Fatal(err)
	}
	trainingCells := 0
	for _, nb := range nbs {
		data, err := os.ReadFile(nb)
		if err != nil {
			t.Fatal(err)
		}
		problems, err := Clean(data)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range problems {
			t.Errorf("%s: %s", filepath.Base(nb), p)
		}
		var f File
		if err := json.Unmarshal(data, &f); err != nil {
			t.Fatal(err)
		}
		for _, k := range kinds(f) {
			for _, kind := range k {
				if kind == "gpt-train" {
					trainingCells++
				}
			}
		}
	}
	// 03 (from scratch), 04 (fine-tuning) and 05 (data parallel) each train once.
	if trainingCells != 3 {
		t.Errorf("%d committed training blocks, want 3", trainingCells)
	}
}

// nb builds a one-code-cell notebook with the given source and outputs (JSON).
func nb(source string, outputs ...string) []byte {
	src, _ := json.Marshal(source)
	out := "[" + strings.Join(outputs, ",") + "]"
	return []byte(`{"cells":[{"cell_type":"markdown","source":"x"},{"cell_type":"code","execution_count":1,"source":` + string(src) + `,"outputs":` + out + `}]}`)
}

func stream(name, text string) string {
	t, _ := json.Marshal(text)
	return `{"output_type":"stream","name":"` + name + `","text":` + string(t) + `}`
}

func htmlOut(h string) string {
	t, _ := json.Marshal(h)
	return `{"output_type":"display_data","data":{"text/html":` + string(t) + `},"metadata":{}}`
}

const finalBlock = `<div class="gpt-train" data-step="150" data-max-steps="150"><table></table><svg></svg></div>`

func TestClean(t *testing.T) {
	for _, c := range []struct {
		name  string
		ipynb []byte
		want  string // a problem containing this ("" none)
	}{
		{"clean", nb(`fmt.Println("x")`, stream("stdout", "чекпоинты: [work/gpt2/checkpoint-20]\nhttp://az.lib.ru/tmp/x 1/2\n")), ""},
		{"stderr", nb(`x`, stream("stderr", "step 24/150 [====>...]\r")), "stderr output: step 24/150"},
		{"work path", nb(`x`, stream("stdout", "saved to /work/main/work/gpt2\n")), "absolute path of the machine in an output: /work/main/work/gpt2"},
		{"root path in html", nb(`x`, htmlOut(`<pre>cache "/root/.cache/huggingface"</pre>`)), "/root/.cache/huggingface"},
		{"tmp path", nb(`x`, stream("stdout", "dir=/tmp/gonb_1234/x\n")), "/tmp/gonb_1234/x"},
		{"training block", nb(`out := must.M1(trainer.Train(ctx))`, stream("stdout", "***** Running training *****\n"), htmlOut(finalBlock)), ""},
		{"training without block", nb(`trainer.Train(ctx)`, stream("stdout", "Step Training Loss\n")), "training cell with 0 live training blocks"},
		{"two blocks", nb(`trainer.Train(ctx)`, htmlOut(finalBlock), htmlOut(finalBlock)), "with 2 live training blocks"},
		{"not final", nb(`trainer.Train(ctx)`, htmlOut(strings.Replace(finalBlock, `data-step="150"`, `data-step="149"`, 1))), "not in its final state"},
		{"no curve", nb(`trainer.Train(ctx)`, htmlOut(strings.Replace(finalBlock, "<svg></svg>", "", 1))), "lacks the loss table or the loss curve"},
	} {
		problems, err := Clean(c.ipynb)
		if err != nil {
			t.Fatal(err)
		}
		got := fmt.Sprint(problems)
		if c.want == "" && len(problems) > 0 || c.want != "" && !strings.Contains(got, c.want) {
			t.Errorf("%s: problems %s, want %q", c.name, got, c.want)
		}
		if c.want != "" && !strings.Contains(got, "cell 2:") {
			t.Errorf("%s: %s does not name the cell", c.name, got)
		}
	}
}

func TestSameKinds(t *testing.T) {
	committed := nb(`x`, stream("stdout", "a\n"), htmlOut(finalBlock), stream("stdout", "b\n"))
	for _, c := range []struct {
		name     string
		executed []byte
		want     string
	}{
		{"same", nb(`x`, stream("stdout", "other text\n"), htmlOut(finalBlock)), ""},
		{"a progress block more", nb(`x`, stream("stdout", "a\n"), htmlOut(`<div class="gpt-progress">tokenize</div>`), htmlOut(finalBlock)), ""},
		{"stderr more", nb(`x`, stream("stdout", "a\n"), stream("stderr", "w\n"), htmlOut(finalBlock)), "outputs [gpt-train stderr stdout], but the committed notebook shows [gpt-train stdout]"},
		{"block missing", nb(`x`, stream("stdout", "a\n")), "outputs [stdout]"},
		{"svg instead", nb(`x`, stream("stdout", "a\n"), `{"output_type":"display_data","data":{"image/svg+xml":"<svg/>","text/plain":"x"}}`), "[image/svg+xml+text/plain stdout]"},
	} {
		problems, err := SameKinds(committed, c.executed)
		if err != nil {
			t.Fatal(err)
		}
		got := fmt.Sprint(problems)
		if c.want == "" && len(problems) > 0 || c.want != "" && !strings.Contains(got, c.want) {
			t.Errorf("%s: problems %s, want %q", c.name, got, c.want)
		}
	}
}
