package gpt2

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gonb-gpt/tutorial/lib/internal/sharedtest"
	"github.com/gonb-gpt/tutorial/lib/internal/testbackend"
)

// reference is ../shared/fixtures/tiny-gpt2/reference.json, made by transformers 5.17 / torch 2.11.
type reference struct {
	InputIDs     [][]int            `json:"input_ids"`
	Logits       [][][]float64      `json:"logits"`
	Loss         float64            `json:"loss"`
	GradNorms    map[string]float64 `json:"grad_norms"`
	GreedyPrompt [][]int            `json:"greedy_prompt"`
	GreedyOutput [][]int            `json:"greedy_output"`
	AdamwLR      float64            `json:"adamw_lr"`
	AdamwClip    float64            `json:"adamw_clip"`
	Losses3Steps []float64          `json:"losses_3_steps"`
}

func loadReference(t testing.TB) (*reference, string) {
	t.Helper()
	dir := sharedtest.Path(t, "fixtures", "tiny-gpt2")
	data, err := os.ReadFile(filepath.Join(dir, "reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r reference
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	return &r, dir
}

// goBackend is the backend the tests run on: the pure-Go one, or another with GPT_TEST_BACKEND
// (the device check runs these tests on XLA CUDA).
func goBackend(t testing.TB) compute.Backend { return testbackend.Get(t) }

func loadTiny(t testing.TB, weightsFile string) (*Model, *reference) {
	t.Helper()
	ref, dir := loadReference(t)
	cfg, err := LoadConfig(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := LoadWeightsFile(goBackend(t), cfg, filepath.Join(dir, weightsFile), dir)
	if err != nil {
		t.Fatal(err)
	}
	return m, ref
}

func l2(x []float32) float64 {
	s := 0.0
	for _, v := range x {
		s += float64(v) * float64(v)
	}
	return math.Sqrt(s)
}

// maxAbsDiff is the largest |a - b| over logits [B][T][V] (b's shape).
func maxAbsDiff[A, B float32 | float64](a [][][]A, b [][][]B) float64 {
	d := 0.0
	for i := range b {
		for j := range b[i] {
			for k := range b[i][j] {
				d = max(d, math.Abs(float64(a[i][j][k])-float64(b[i][j][k])))
			}
		}
	}
	return d
}

// Tolerances: logits max abs error ≤ 1e-4; loss relative error ≤ 1e-5; every gradient norm
// relative error ≤ 1e-4.
func TestParityWithHF(t *testing.T) {
	for _, file := range []string{"model.safetensors", "pytorch_model.bin"} {
		t.Run(file, func(t *testing.T) {
			m, ref := loadTiny(t, file)
			logits, err := m.Logits(ref.InputIDs)
			if err != nil {
				t.Fatal(err)
			}
			maxErr := maxAbsDiff(logits, ref.Logits)
			if maxErr > 1e-4 {
				t.Errorf("logits max abs error %g > 1e-4", maxErr)
			}
			loss, grads, err := m.Gradients(ref.InputIDs, nil)
			if err != nil {
				t.Fatal(err)
			}
			if rel := math.Abs(loss-ref.Loss) / ref.Loss; rel > 1e-5 {
				t.Errorf("loss %v, HF %v (rel. error %g > 1e-5)", loss, ref.Loss, rel)
			}
			if len(ref.GradNorms) != len(grads) {
				t.Errorf("%d gradients, HF %d", len(grads), len(ref.GradNorms))
			}
			for name, want := range ref.GradNorms {
				g, ok := grads[name]
				if !ok {
					t.Errorf("no gradient for %s", name)
					continue
				}
				got := l2(g.Data)
				if rel := math.Abs(got-want) / math.Max(want, 1e-12); rel > 1e-4 {
					t.Errorf("|grad %s| = %g, HF %g (rel. error %g > 1e-4)", name, got, want, rel)
				}
			}
			t.Logf("logits max abs error %.2g, loss %.8f (HF %.8f)", maxErr, loss, ref.Loss)
		})
	}
}

// The same weights saved in PyTorch's legacy (pre-1.6, non-zip) format give exactly the logits of
// model.safetensors, and so match transformers' as well.
func TestParityLegacyTorchFile(t *testing.T) {
	st, ref := loadTiny(t, "model.safetensors")
	legacy, _ := loadTiny(t, "pytorch_model_legacy.bin")
	want, err := st.Logits(ref.InputIDs)
	if err != nil {
		t.Fatal(err)
	}
	got, err := legacy.Logits(ref.InputIDs)
	if err != nil {
		t.Fatal(err)
	}
	if d := maxAbsDiff(got, want); d != 0 {
		t.Fatalf("logits: the legacy file and model.safetensors differ by up to %g", d)
	}
	maxErr := maxAbsDiff(got, ref.Logits)
	if maxErr > 1e-4 {
		t.Errorf("logits max abs error %g > 1e-4", maxErr)
	}
}
