package train

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/gomlx/compute/dtypes"
	_ "github.com/gomlx/compute/gobackend"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gonb-gpt/tutorial/lib/gpt2"
	"github.com/gonb-gpt/tutorial/lib/internal/sharedtest"
	"github.com/gonb-gpt/tutorial/lib/optim"
)

// Three AdamW steps from the saved weights on the reference batch (lr 1e-3, betas 0.9/0.999,
// eps 1e-8, no decay, clip 1.0): the loss before each within 1e-4 relative of transformers'.
func TestAdamWThreeStepsMatchHF(t *testing.T) {
	dir := sharedtest.Path(t, "fixtures", "tiny-gpt2")
	var ref struct {
		InputIDs [][]int   `json:"input_ids"`
		LR       float64   `json:"adamw_lr"`
		Clip     float64   `json:"adamw_clip"`
		Losses   []float64 `json:"losses_3_steps"`
	}
	data, _ := os.ReadFile(filepath.Join(dir, "reference.json"))
	if err := json.Unmarshal(data, &ref); err != nil {
		t.Fatal(err)
	}
	m, err := gpt2.Load(goBackend(t), dir)
	if err != nil {
		t.Fatal(err)
	}
	opt := optim.NewAdamW()
	opt.MaxGradNorm = ref.Clip
	step, err := NewStep(m, opt)
	if err != nil {
		t.Fatal(err)
	}
	ids, _ := IDsTensor(ref.InputIDs)
	for i, want := range ref.Losses {
		loss, _, err := step.Run(ids, ids, ref.LR)
		if err != nil {
			t.Fatal(err)
		}
		if rel := math.Abs(loss-want) / want; rel > 1e-4 {
			t.Errorf("step %d: loss %.7f, HF %.7f (rel. error %.2g > 1e-4)", i, loss, want, rel)
		} else {
			t.Logf("step %d: loss %.7f, HF %.7f (rel. error %.2g)", i, loss, want, rel)
		}
	}
}

// trainerLoss scales the mean by the count of predicted labels over the count HF's
// get_batch_samples makes before the shift (labels != -100 over [B, T]): rows [5 6 -100 7] and
// [-100 8 9 10] have 6, 7 and 8, 9, 10 as targets (5) and count 3 + 3 = 6 labels: 5/6 of the mean.
func TestTrainerLossCountsBeforeShift(t *testing.T) {
	labels := tensors.FromValue([][]int32{{5, 6, -100, 7}, {-100, 8, 9, 10}})
	out, err := graph.ExecOnce(goBackend(t), func(l *graph.Node) *graph.Node {
		return trainerLoss(graph.Scalar(l.Graph(), dtypes.Float32, 1.2), l)
	}, labels)
	if err != nil {
		t.Fatal(err)
	}
	if got := tensors.MustCopyFlatData[float32](out)[0]; math.Abs(float64(got)-1.2*5/6) > 1e-6 {
		t.Errorf("trainerLoss(1.2) = %v, want 1.2·5/6 = 1", got)
	}
}
