package train

import (
	"reflect"
	"testing"
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
