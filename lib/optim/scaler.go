package optim

import (
	"fmt"

	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck // GoMLX's idiomatic dot-import.
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// GradScaler is torch.amp.GradScaler, the dynamic loss scaling of float16 training
// (TrainingArguments' fp16=True): the loss is multiplied by the scale before the backward pass so
// that small gradients survive float16; the gradients are divided by it again before clipping and
// the update. When a gradient holds an inf or NaN the update is skipped (parameters and optimizer
// state unchanged) and the scale is multiplied by BackoffFactor; after GrowthInterval updates in a
// row without one it is multiplied by GrowthFactor.
//
// Its state (scale and growth tracker) lives in the store under ScalerPrefix, so that the whole
// step runs on the device without a round trip to the host.
type GradScaler struct {
	InitScale, GrowthFactor, BackoffFactor float64
	GrowthInterval                         int
}

// NewGradScaler returns torch's defaults: init_scale 2¹⁶, growth_factor 2, backoff_factor 0.5,
// growth_interval 2000.
func NewGradScaler() *GradScaler {
	return &GradScaler{InitScale: 65536, GrowthFactor: 2, BackoffFactor: 0.5, GrowthInterval: 2000}
}

// ScalerPrefix is the store scope of the scaler's state.
const ScalerPrefix = "/grad_scaler"

// vars returns the scaler's state variables, created with the initial state when missing.
func (s *GradScaler) vars(store *model.Store) (scale, tracker *model.Variable, err error) {
	if scale, err = store.CreateVariable(ScalerPrefix+"/scale", tensors.FromValue(float32(s.InitScale))); err != nil {
		return nil, nil, fmt.Errorf("grad scaler: %w", err)
	}
	if tracker, err = store.CreateVariable(ScalerPrefix+"/growth_tracker", tensors.FromValue(float32(0))); err != nil {
		return nil, nil, fmt.Errorf("grad scaler: %w", err)
	}
	scale.SetTrainable(false)
	tracker.SetTrainable(false)
	return scale, tracker, nil
}

// mustVars is vars while a graph is being built, where GoMLX reports errors by panicking (the
// executor turns them into errors).
func (s *GradScaler) mustVars(store *model.Store) (scale, tracker *model.Variable) {
	scale, tracker, err := s.vars(store)
	if err != nil {
		panic(err)
	}
	return scale, tracker
}

// Scale returns the current loss scale (a float32 scalar): multiply the loss by it before taking
// gradients, and pass those gradients to Step.
func (s *GradScaler) Scale(store *model.Store, g *Graph) *Node {
	scale, _ := s.mustVars(store)
	return scale.NodeValue(g)
}

// Step unscales the gradients of a scaled loss, applies opt to them when they are all finite
// (torch's GradScaler.unscale_, clip_grad_norm_ and scaler.step(optimizer)), and updates the scale
// (scaler.update(), torch's _amp_update_scale_). It returns the unscaled gradients' global norm (inf
// or NaN when the step was skipped, as HF then logs) and skipped, a float32 scalar: 1 when the
// update was skipped, else 0.
func (s *GradScaler) Step(store *model.Store, opt *AdamW, names []string, params, grads []*Node, lr *Node) (norm, skipped *Node) {
	g := lr.Graph()
	scaleVar, trackerVar := s.mustVars(store)
	scale, tracker := scaleVar.NodeValue(g), trackerVar.NodeValue(g)
	inv := Inverse(scale)
	finite := Const(g, true)
	unscaled := make([]*Node, len(grads))
	for i, gr := range grads {
		unscaled[i] = Mul(gr, inv)
		finite = LogicalAnd(finite, LogicalAll(IsFinite(gr)))
	}
	norm = opt.apply(store, names, params, unscaled, lr, finite)

	zero, one := ScalarZero(g, dtypes.Float32), ScalarOne(g, dtypes.Float32)
	good := Where(finite, AddScalar(tracker, 1), zero) // updates in a row without inf/NaN
	grow := GreaterOrEqual(good, Scalar(g, dtypes.Float32, float64(s.GrowthInterval)))
	grown := MulScalar(scale, s.GrowthFactor)
	grown = Where(IsFinite(grown), grown, scale) // torch keeps the scale when growing overflows
	scaleVar.SetNodeValue(Where(finite, Where(grow, grown, scale), MulScalar(scale, s.BackoffFactor)))
	trackerVar.SetNodeValue(Where(grow, zero, good))
	return norm, Where(finite, zero, one)
}

// ScalerState is torch's GradScaler.state_dict(), the checkpoint's scaler.json.
type ScalerState struct {
	Scale          float64 `json:"scale"`
	GrowthFactor   float64 `json:"growth_factor"`
	BackoffFactor  float64 `json:"backoff_factor"`
	GrowthInterval int     `json:"growth_interval"`
	GrowthTracker  int     `json:"_growth_tracker"`
}

// State reads the scaler's state from the store (its initial state before the first step).
func (s *GradScaler) State(store *model.Store) (ScalerState, error) {
	st := ScalerState{GrowthFactor: s.GrowthFactor, BackoffFactor: s.BackoffFactor, GrowthInterval: s.GrowthInterval}
	scale, tracker, err := s.vars(store)
	if err != nil {
		return st, err
	}
	x, err := scalarValue(scale)
	if err != nil {
		return st, fmt.Errorf("grad scaler: %w", err)
	}
	n, err := scalarValue(tracker)
	if err != nil {
		return st, fmt.Errorf("grad scaler: %w", err)
	}
	st.Scale, st.GrowthTracker = float64(x), int(n)
	return st, nil
}

// SetState restores a state saved by State (the factors and interval come from st as well, as
// torch's load_state_dict does).
func (s *GradScaler) SetState(store *model.Store, st ScalerState) error {
	if !(st.Scale > 0) || st.GrowthInterval < 1 || st.GrowthTracker < 0 {
		return fmt.Errorf("grad scaler: invalid state %+v", st)
	}
	s.GrowthFactor, s.BackoffFactor, s.GrowthInterval = st.GrowthFactor, st.BackoffFactor, st.GrowthInterval
	scale, tracker, err := s.vars(store)
	if err != nil {
		return err
	}
	if err := scale.SetValue(tensors.FromValue(float32(st.Scale))); err != nil {
		return fmt.Errorf("grad scaler: %w", err)
	}
	if err := tracker.SetValue(tensors.FromValue(float32(st.GrowthTracker))); err != nil {
		return fmt.Errorf("grad scaler: %w", err)
	}
	return nil
}
