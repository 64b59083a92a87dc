package backend

import (
	"fmt"

	"github.com/gomlx/compute"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck // GoMLX's idiomatic dot-import.
)

// Check runs a tiny computation on the backend (x² + 1 over a small vector) and compares the result,
// proving the backend compiles and executes programs.
func Check(b compute.Backend) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("running a test computation on %s: %v", b.Name(), r)
		}
	}()
	out, err := ExecOnce(b, func(x *Node) *Node { return AddScalar(Square(x), 1) }, []float32{1, 2, 3})
	if err != nil {
		return fmt.Errorf("running a test computation on %s: %w", b.Name(), err)
	}
	got, ok := out.Value().([]float32)
	if !ok || len(got) != 3 || got[0] != 2 || got[1] != 5 || got[2] != 10 {
		return fmt.Errorf("test computation on %s: got %v, want [2 5 10]", b.Name(), out.Value())
	}
	return nil
}
