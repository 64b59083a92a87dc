// Package optim holds the optimizer of HF's Trainer: torch.optim.AdamW with the Trainer's parameter
// groups (no weight decay on biases and LayerNorm weights) and global-norm gradient clipping, as
// graph operations on a GoMLX model.Store. (GoMLX's own Adam differs: epsilon 1e-7 and decay
// applied to every variable.)
package optim

import (
	"fmt"
	"strings"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck // GoMLX's idiomatic dot-import.
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// AdamW is torch.optim.AdamW as transformers' Trainer sets it up.
type AdamW struct {
	Beta1, Beta2, Epsilon float64
	WeightDecay           float64
	// MaxGradNorm clips the global L2 norm of the gradients (0: no clipping).
	MaxGradNorm float64
	// NoDecay reports the parameters weight decay skips (default: biases and LayerNorm weights).
	NoDecay func(name string) bool
}

// NewAdamW returns TrainingArguments' defaults: betas 0.9/0.999, eps 1e-8, no weight decay, clip 1.0.
func NewAdamW() *AdamW {
	return &AdamW{Beta1: 0.9, Beta2: 0.999, Epsilon: 1e-8, MaxGradNorm: 1}
}

// DefaultNoDecay is the Trainer's rule for GPT-2: biases and LayerNorm parameters get no decay.
func DefaultNoDecay(name string) bool {
	return strings.HasSuffix(name, ".bias") || strings.Contains(name, "ln_")
}

// StatePrefix is the store scope of the optimizer's state: step, and first and second moments.
const StatePrefix = "/optimizer"

// Apply adds to the graph the update of the named parameters from their gradients at learning rate
// lr (a scalar node, so a schedule needs no recompilation), updating the store's variables (params
// and optimizer state). It returns the global gradient norm before clipping.
//
// The order is torch's: clip (coefficient max_norm/(norm+1e-6), capped at 1), then for each
// parameter p ← p·(1 − lr·wd); m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·g²;
// p ← p − lr/(1−β1ᵗ) · m / (√v/√(1−β2ᵗ) + ε).
func (o *AdamW) Apply(store *model.Store, names []string, params, grads []*Node, lr *Node) *Node {
	return o.apply(store, names, params, grads, lr, nil)
}

// Steps returns the number of updates applied so far (torch's state["step"]; a scheduler steps
// once per applied update), from the store, as a float32 scalar node.
func (o *AdamW) Steps(store *model.Store, g *Graph) *Node {
	return o.stepVar(store).NodeValue(g)
}

// AppliedUpdates is the number of updates an AdamW has applied to the store's parameters (0 before
// the first; restored with the optimizer state from a checkpoint).
func AppliedUpdates(store *model.Store) (int, error) {
	v := store.GetVariable(StatePrefix + "/step")
	if v == nil {
		return 0, nil
	}
	n, err := scalarValue(v)
	if err != nil {
		return 0, fmt.Errorf("optimizer step count: %w", err)
	}
	return int(n), nil
}

// scalarValue reads a float32 scalar variable.
func scalarValue(v *model.Variable) (float32, error) {
	t, err := v.Value()
	if err != nil {
		return 0, fmt.Errorf("%s: %w", v.Path(), err)
	}
	data, err := tensors.CopyFlatData[float32](t)
	if err != nil || len(data) != 1 {
		return 0, fmt.Errorf("%s: want a float32 scalar (%v)", v.Path(), err)
	}
	return data[0], nil
}

func (o *AdamW) stepVar(store *model.Store) *model.Variable {
	v := store.VariableWithValue(StatePrefix+"/step", float32(0))
	v.SetTrainable(false)
	return v
}

// apply is Apply, where ok (a boolean scalar, nil: always) decides whether the update happens:
// when false, parameters and optimizer state (step included) keep their values, as when
// torch.amp.GradScaler skips optimizer.step().
func (o *AdamW) apply(store *model.Store, names []string, params, grads []*Node, lr, ok *Node) *Node {
	g := lr.Graph()
	set := func(v *model.Variable, value *Node) {
		if ok != nil {
			value = Where(ok, value, v.NodeValue(g))
		}
		v.SetNodeValue(value)
	}
	dt := dtypes.Float32
	noDecay := o.NoDecay
	if noDecay == nil {
		noDecay = DefaultNoDecay
	}
	// Global norm.
	var sq *Node
	for _, gr := range grads {
		s := ReduceAllSum(Square(gr))
		if sq == nil {
			sq = s
		} else {
			sq = Add(sq, s)
		}
	}
	norm := Sqrt(sq)
	if o.MaxGradNorm > 0 {
		coef := Div(Scalar(g, dt, o.MaxGradNorm), AddScalar(norm, 1e-6))
		coef = Min(coef, ScalarOne(g, dt))
		for i := range grads {
			grads[i] = Mul(grads[i], coef)
		}
	}
	stepVar := o.stepVar(store)
	step := AddScalar(stepVar.NodeValue(g), 1)
	set(stepVar, step)
	bc1 := OneMinus(Pow(Scalar(g, dt, o.Beta1), step))
	bc2 := OneMinus(Pow(Scalar(g, dt, o.Beta2), step))
	stepSize := Div(lr, bc1)
	sqrtBC2 := Sqrt(bc2)
	for i, name := range names {
		p, gr := params[i], grads[i]
		path := "/" + strings.ReplaceAll(name, ".", "/")
		mVar := store.VariableWithShape(StatePrefix+"/m"+path, p.Shape(), model.VariableInitializer(zerosInit))
		vVar := store.VariableWithShape(StatePrefix+"/v"+path, p.Shape(), model.VariableInitializer(zerosInit))
		mVar.SetTrainable(false)
		vVar.SetTrainable(false)
		if o.WeightDecay > 0 && !noDecay(name) {
			p = Mul(p, OneMinus(MulScalar(lr, o.WeightDecay)))
		}
		m := Add(MulScalar(mVar.NodeValue(g), o.Beta1), MulScalar(gr, 1-o.Beta1))
		v := Add(MulScalar(vVar.NodeValue(g), o.Beta2), MulScalar(Square(gr), 1-o.Beta2))
		set(mVar, m)
		set(vVar, v)
		denom := AddScalar(Div(Sqrt(v), sqrtBC2), o.Epsilon)
		p = Sub(p, Mul(stepSize, Div(m, denom)))
		set(store.GetVariable(path), p)
	}
	return norm
}

func zerosInit(g *Graph, shape shapes.Shape) *Node { return Zeros(g, shape) }
