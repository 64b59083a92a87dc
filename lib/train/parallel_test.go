package train

import (
	"math"
	"reflect"
	"testing"

	"github.com/gonb-gpt/tutorial/lib/gpt2"
	"github.com/gonb-gpt/tutorial/lib/internal/testbackend"
	"github.com/gonb-gpt/tutorial/lib/optim"
)

// The multi-device execution cannot run here (see docs/data-parallel.md); these check what can be:
// when it turns on, the shardings it builds, and the batch trimming.
func TestDataParallelSetup(t *testing.T) {
	if dp, err := newDataParallel(1); dp != nil || err != nil {
		t.Errorf("one device: %v %v", dp, err)
	}
	dp, err := newDataParallel(4)
	if err != nil || dp == nil || dp.devices != 4 {
		t.Fatalf("four devices: %v %v", dp, err)
	}
	if dp.batchSpec.Rank() != 2 || dp.batchSpec.IsReplicated() || !dp.rep.IsReplicated() || dp.batchSpec.Mesh.NumDevices() != 4 {
		t.Errorf("specs: batch %s, replicated %s", dp.batchSpec, dp.rep)
	}
	t.Setenv(EnvDataParallel, "0")
	if dp, _ := newDataParallel(4); dp != nil {
		t.Error("GPT_DATA_PARALLEL=0 did not turn it off")
	}
}

func TestEvenRows(t *testing.T) {
	for _, tc := range []struct {
		sel     []int
		devices int
		want    []int
	}{
		{[]int{1, 2, 3, 4, 5}, 1, []int{1, 2, 3, 4, 5}},
		{[]int{1, 2, 3, 4, 5}, 2, []int{1, 2, 3, 4}},
		{[]int{1}, 2, []int{}},
		{[]int{1, 2, 3, 4}, 4, []int{1, 2, 3, 4}},
	} {
		if got := evenRows(tc.sel, tc.devices); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("evenRows(%v, %d) = %v, want %v", tc.sel, tc.devices, got, tc.want)
		}
	}
}

// The sharded program of data parallelism, on a mesh of one device, trains exactly as the plain
// step: same losses, gradient norms and weights. The device check runs it on XLA CUDA; GoMLX's
// pure-Go backend has no distributed execution, so it is skipped there, saying so.
func TestDataParallelOneDeviceEqualsPlain(t *testing.T) {
	ref, dir := loadTinyRef(t)
	b := goBackend(t)
	if testbackend.IsGo(t) {
		t.Skip("SKIPPED: the pure-Go backend has no distributed execution (DistributedAutoSharding); the device check runs this on XLA")
	}
	run := func(parallel bool) (losses []float64, weights map[string][]float32) {
		m, err := gpt2.Load(b, dir)
		if err != nil {
			t.Fatal(err)
		}
		var dp *dataParallel
		if parallel {
			if dp, err = meshOf(1); err != nil {
				t.Fatal(err)
			}
		}
		step, err := newStep(m, optim.NewAdamW(), nil, dp, false, true)
		if err != nil {
			t.Fatal(err)
		}
		ids, _ := IDsTensor(ref.InputIDs)
		for range 3 {
			loss, norm, err := step.Run(ids, ids, 1e-3)
			if err != nil {
				t.Fatalf("parallel=%v: %v", parallel, err)
			}
			losses = append(losses, loss, norm)
		}
		return losses, weightsOf(t, m)
	}
	plainL, plainW := run(false)
	dpL, dpW := run(true)
	for i := range plainL {
		if math.Abs(plainL[i]-dpL[i]) > 1e-6*math.Max(1, math.Abs(plainL[i])) {
			t.Errorf("loss/norm %d: plain %v, data parallel %v", i, plainL[i], dpL[i])
		}
	}
	worst := maxWeightDiff(plainW, dpW)
	// As in TestAccumulationEqualsBigBatch: Adam turns summation-order noise into ~1e-6 weight noise.
	if worst > 1e-5 {
		t.Errorf("weights after 3 steps differ by %g", worst)
	}
	t.Logf("plain %v, data parallel %v; weights max diff %g", plainL, dpL, worst)
}
