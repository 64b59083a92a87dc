package optim

import (
	"math"
	"testing"

	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck // GoMLX's idiomatic dot-import.
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gonb-gpt/tutorial/lib/internal/testbackend"
)

// scalerRig is one parameter "w" [3] and a program that hands the given (scaled) gradient to
// GradScaler.Step at lr 0.1, returning the norm and skipped.
type scalerRig struct {
	t      *testing.T
	store  *model.Store
	scaler *GradScaler
	exec   *model.Exec
}

func newScalerRig(t *testing.T, s *GradScaler) *scalerRig {
	t.Helper()
	store := model.NewStore()
	if _, err := store.CreateVariable("/w", tensors.FromValue([]float32{1, 2, 3})); err != nil {
		t.Fatal(err)
	}
	opt := NewAdamW()
	e, err := model.NewExec(testbackend.Get(t), store, func(scope *model.Scope, in []*Node) []*Node {
		st := scope.Store()
		g := in[0].Graph()
		st.SetTraining(g, true)
		w := st.GetVariable("/w").NodeValue(g)
		norm, skipped := s.Step(st, opt, []string{"w"}, []*Node{w}, []*Node{in[0]}, Scalar(g, w.DType(), 0.1))
		return []*Node{norm, skipped}
	})
	if err != nil {
		t.Fatal(err)
	}
	return &scalerRig{t: t, store: store, scaler: s, exec: e}
}

// step runs one update with gradient grad (already multiplied by the scale, as a scaled loss gives).
func (r *scalerRig) step(grad []float32) (norm float64, skipped bool) {
	r.t.Helper()
	out, err := r.exec.Call(tensors.FromValue(grad))
	if err != nil {
		r.t.Fatal(err)
	}
	return float64(tensors.MustCopyFlatData[float32](out[0])[0]), tensors.MustCopyFlatData[float32](out[1])[0] != 0
}

func (r *scalerRig) value(path string) []float32 {
	r.t.Helper()
	v := r.store.GetVariable(path)
	if v == nil {
		r.t.Fatalf("no variable %s", path)
	}
	val, err := v.Value()
	if err != nil {
		r.t.Fatal(err)
	}
	return tensors.MustCopyFlatData[float32](val)
}

func (r *scalerRig) state() ScalerState {
	r.t.Helper()
	st, err := r.scaler.State(r.store)
	if err != nil {
		r.t.Fatal(err)
	}
	return st
}

// A finite scaled gradient is unscaled before the update: with scale 1024, the gradient 1024·g
// moves w as plain AdamW moves it with g (first step: w − lr·sign(g)), and the norm is g's.
func TestGradScalerUnscales(t *testing.T) {
	r := newScalerRig(t, &GradScaler{InitScale: 1024, GrowthFactor: 2, BackoffFactor: 0.5, GrowthInterval: 2000})
	norm, skipped := r.step([]float32{3 * 1024, -4 * 1024, 0})
	if skipped || math.Abs(norm-5) > 1e-5 {
		t.Errorf("norm %v skipped %v, want 5 and false", norm, skipped)
	}
	// Clipping to 1 scales g to (0.6, −0.8, 0); Adam's first step is lr·g/(|g|+eps) per element.
	want := []float32{0.9, 2.1, 3}
	for i, w := range r.value("/w") {
		if math.Abs(float64(w-want[i])) > 1e-5 {
			t.Errorf("w = %v, want %v", r.value("/w"), want)
			break
		}
	}
	if st := r.state(); st.Scale != 1024 || st.GrowthTracker != 1 {
		t.Errorf("state %+v, want scale 1024 and one good step", st)
	}
}

// An inf or NaN gradient (torch: found_inf) skips the update — weights, moments and step count
// unchanged — halves the scale and resets the growth tracker.
func TestGradScalerSkipsOverflow(t *testing.T) {
	for _, bad := range []float32{float32(math.Inf(1)), float32(math.NaN())} {
		r := newScalerRig(t, &GradScaler{InitScale: 65536, GrowthFactor: 2, BackoffFactor: 0.5, GrowthInterval: 2000})
		r.step([]float32{1, 1, 1}) // one good step: moments and step count are not zero
		w, m, step := r.value("/w"), r.value(StatePrefix+"/m/w"), r.value(StatePrefix+"/step")
		norm, skipped := r.step([]float32{1, bad, 1})
		if !skipped || !math.IsNaN(norm) && !math.IsInf(norm, 0) {
			t.Errorf("gradient with %v: skipped %v, norm %v", bad, skipped, norm)
		}
		for _, c := range []struct {
			path        string
			before, now []float32
		}{{"/w", w, r.value("/w")}, {"m", m, r.value(StatePrefix + "/m/w")}, {"step", step, r.value(StatePrefix + "/step")}} {
			for i := range c.before {
				if c.before[i] != c.now[i] {
					t.Errorf("gradient with %v: %s changed from %v to %v", bad, c.path, c.before, c.now)
					break
				}
			}
		}
		if st := r.state(); st.Scale != 32768 || st.GrowthTracker != 0 {
			t.Errorf("gradient with %v: state %+v, want scale 32768, tracker 0", bad, st)
		}
	}
}

// After growth_interval good steps in a row the scale grows by growth_factor and the tracker
// restarts; a scale that would overflow float32 stays as it is (torch's _amp_update_scale_).
func TestGradScalerGrows(t *testing.T) {
	r := newScalerRig(t, &GradScaler{InitScale: 8, GrowthFactor: 2, BackoffFactor: 0.5, GrowthInterval: 3})
	var scales []float64
	for range 7 {
		r.step([]float32{1, 1, 1})
		scales = append(scales, r.state().Scale)
	}
	want := []float64{8, 8, 16, 16, 16, 32, 32}
	for i := range want {
		if scales[i] != want[i] {
			t.Fatalf("scales %v, want %v", scales, want)
		}
	}
	big := newScalerRig(t, &GradScaler{InitScale: math.MaxFloat32, GrowthFactor: 2, BackoffFactor: 0.5, GrowthInterval: 1})
	big.step([]float32{1, 1, 1})
	if st := big.state(); st.Scale != math.MaxFloat32 || st.GrowthTracker != 0 {
		t.Errorf("state %+v, want the scale kept at float32's max", st)
	}
}

// State and SetState round-trip torch's state_dict fields; invalid states are refused.
func TestGradScalerState(t *testing.T) {
	r := newScalerRig(t, NewGradScaler())
	if st := r.state(); st != (ScalerState{Scale: 65536, GrowthFactor: 2, BackoffFactor: 0.5, GrowthInterval: 2000}) {
		t.Errorf("initial state %+v", st)
	}
	want := ScalerState{Scale: 128, GrowthFactor: 4, BackoffFactor: 0.25, GrowthInterval: 10, GrowthTracker: 7}
	if err := r.scaler.SetState(r.store, want); err != nil {
		t.Fatal(err)
	}
	if st := r.state(); st != want {
		t.Errorf("state %+v after SetState(%+v)", st, want)
	}
	r.step([]float32{1, 1, 1})
	if st := r.state(); st.GrowthTracker != 8 {
		t.Errorf("state %+v: the restored tracker did not count on", st)
	}
	for _, bad := range []ScalerState{{Scale: 0, GrowthInterval: 1}, {Scale: math.NaN(), GrowthInterval: 1}, {Scale: 1, GrowthInterval: 0}} {
		if err := r.scaler.SetState(r.store, bad); err == nil {
			t.Errorf("SetState(%+v) accepted", bad)
		}
	}
}
