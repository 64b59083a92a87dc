// Package train trains GPT-2 with the semantics of transformers' Trainer.
package train

import (
	"fmt"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck // GoMLX's idiomatic dot-import.
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gonb-gpt/tutorial/lib/gpt2"
	"github.com/gonb-gpt/tutorial/lib/optim"
)

// Step is one compiled training step: forward in training mode, loss, gradients, AdamW update of
// the model's store. GoMLX compiles it once per batch shape.
type Step struct {
	Model *gpt2.Model
	Opt   *optim.AdamW
	exec  *model.Exec
	dp    *dataParallel // nil: one device
}

// Devices is the number of devices the step runs on (its batch must split evenly over them).
func (s *Step) Devices() int {
	if s.dp == nil {
		return 1
	}
	return s.dp.devices
}

// TrainingGradients builds, in training mode, the loss of ids/labels and the gradient of every
// parameter (in m.ParamNames order).
func TrainingGradients(m *gpt2.Model, store *model.Store, ids, labels *Node) (loss *Node, params, grads []*Node) {
	// Training mode before any variable is used: otherwise backends that prefer constants for
	// variables (the pure-Go one) bake the weights into the program, and updates are lost.
	store.SetTraining(ids.Graph(), true)
	loss = m.LossGraph(store, ids, labels, true)
	names := m.ParamNames()
	params = make([]*Node, len(names))
	for i, n := range names {
		params[i] = m.Param(loss.Graph(), n)
	}
	return loss, params, Gradient(loss, params...)
}

// NewStep prepares a training step for a model and optimizer, data-parallel over the backend's
// devices when it has several.
func NewStep(m *gpt2.Model, opt *optim.AdamW) (*Step, error) {
	dp, err := newDataParallel(m.Backend.NumDevices())
	if err != nil {
		return nil, err
	}
	return newStep(m, opt, dp)
}

// newStep prepares a step, sharded as dp says (nil: one device, no sharding).
func newStep(m *gpt2.Model, opt *optim.AdamW, dp *dataParallel) (*Step, error) {
	names := m.ParamNames()
	e, err := model.NewExec(m.Backend, m.Store, func(scope *model.Scope, in []*Node) []*Node {
		store := scope.Store()
		loss, params, grads := TrainingGradients(m, store, in[0], in[1])
		norm := opt.Apply(store, names, params, grads, in[2])
		return []*Node{loss, norm}
	})
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	step := &Step{Model: m, Opt: opt, exec: e, dp: dp}
	if step.dp != nil {
		// The device assignment is explicit: without it go-xla refuses to compile the sharded program
		// ("no device assignment given to Client.Compile(), but computation is not (device)
		// portable", measured on XLA CUDA with a one-device mesh, 2026-11-27).
		devices := make([]compute.DeviceNum, step.dp.devices)
		for i := range devices {
			devices[i] = compute.DeviceNum(i)
		}
		step.exec = e.AutoSharding(step.dp.batchSpec.Mesh).WithDeviceAssignment(devices).
			WithInputShardingSpecs(step.dp.batchSpec, step.dp.batchSpec, step.dp.rep).
			WithOutputShardingSpecs(step.dp.rep, step.dp.rep)
		if err := step.exec.SetDefaultShardingSpec(step.dp.rep); err != nil {
			return nil, fmt.Errorf("train: data parallel: %w", err)
		}
	}
	return step, nil
}

// Run trains on one batch (ids and labels [B, T] int32) at learning rate lr, returning the loss
// before the update and the gradient norm before clipping.
func (s *Step) Run(ids, labels *tensors.Tensor, lr float64) (loss, gradNorm float64, err error) {
	p, err := s.Launch(ids, labels, lr)
	if err != nil {
		return 0, 0, err
	}
	return p.Wait()
}

// Launch starts one training step and returns without waiting for its results where the backend
// runs programs asynchronously (XLA: lib/backend), so that the next batch can be prepared and
// launched while the device computes; the model's weights are the updated ones for whatever runs
// next. [Pending.Wait] returns the step's loss and gradient norm.
func (s *Step) Launch(ids, labels *tensors.Tensor, lr float64) (p *Pending, err error) {
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, fmt.Errorf("train step: %v", r)
		}
	}()
	if s.dp != nil {
		loss, norm, err := s.runParallel(ids, labels, lr)
		s.Model.WeightsChanged()
		if err != nil {
			return nil, err
		}
		return &Pending{loss: loss, norm: norm, resolved: true}, nil
	}
	out, err := s.exec.Call(ids, labels, float32(lr))
	if err != nil {
		return nil, fmt.Errorf("train step: %w", err)
	}
	// Inference programs may hold the old weights as constants.
	s.Model.WeightsChanged()
	return &Pending{lossT: out[0], normT: out[1]}, nil
}

// Pending is a launched training step (see [Step.Launch]).
type Pending struct {
	lossT, normT *tensors.Tensor
	loss, norm   float64
	err          error
	resolved     bool // loss, norm and err are final
}

// Wait returns the step's loss (before the update) and gradient norm (before clipping), waiting
// for the device to finish the step.
func (p *Pending) Wait() (loss, gradNorm float64, err error) {
	if !p.resolved {
		p.resolved = true
		func() {
			defer func() {
				if r := recover(); r != nil {
					p.err = fmt.Errorf("train step: %v", r)
				}
			}()
			p.loss = float64(tensors.MustCopyFlatData[float32](p.lossT)[0])
			p.norm = float64(tensors.MustCopyFlatData[float32](p.normT)[0])
		}()
		p.lossT, p.normT = nil, nil
	}
	return p.loss, p.norm, p.err
}

// IDsTensor packs a rectangular batch of token ids as an int32 tensor [B, T] (gpt2.IDsTensor).
func IDsTensor(batch [][]int) (*tensors.Tensor, error) { return gpt2.IDsTensor(batch) }

// accumStep is training with gradient accumulation: k micro-batches add their gradients (each
// divided by k) into accumulators, and the k-th applies the optimizer to them.
type accumStep struct {
	k, n       int
	acc, apply *model.Exec
}

const accumPrefix = "/grad_accum"

func newAccumStep(m *gpt2.Model, opt *optim.AdamW, k int) (*accumStep, error) {
	names := m.ParamNames()
	accVar := func(store *model.Store, name string, shape *Node) *model.Variable {
		v := store.VariableWithShape(accumPrefix+gpt2.VarPath(name), shape.Shape(), zerosInit)
		v.SetTrainable(false)
		return v
	}
	acc, err := model.NewExec(m.Backend, m.Store, func(scope *model.Scope, in []*Node) []*Node {
		store := scope.Store()
		loss, params, grads := TrainingGradients(m, store, in[0], in[1])
		g := loss.Graph()
		for i, n := range names {
			v := accVar(store, n, params[i])
			v.SetNodeValue(Add(v.NodeValue(g), DivScalar(grads[i], float64(k))))
		}
		return []*Node{loss}
	})
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	apply, err := model.NewExec(m.Backend, m.Store, func(scope *model.Scope, in []*Node) []*Node {
		store := scope.Store()
		g := in[0].Graph()
		store.SetTraining(g, true)
		params := make([]*Node, len(names))
		grads := make([]*Node, len(names))
		for i, n := range names {
			params[i] = m.Param(g, n)
			v := accVar(store, n, params[i])
			grads[i] = v.NodeValue(g)
			v.SetNodeValue(ZerosLike(grads[i]))
		}
		return []*Node{opt.Apply(store, names, params, grads, in[0])}
	})
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	return &accumStep{k: k, acc: acc, apply: apply}, nil
}

// run adds one micro-batch; on the k-th it applies the update (done = true, with the gradient norm).
func (s *accumStep) run(ids *tensors.Tensor, lr float64) (loss, norm float64, done bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("train step: %v", r)
		}
	}()
	out, err := s.acc.Call(ids, ids)
	if err != nil {
		return 0, 0, false, fmt.Errorf("train step: %w", err)
	}
	loss = float64(tensors.MustCopyFlatData[float32](out[0])[0])
	s.n++
	if s.n < s.k {
		return loss, 0, false, nil
	}
	s.n = 0
	out, err = s.apply.Call(float32(lr))
	if err != nil {
		return 0, 0, false, fmt.Errorf("train step: %w", err)
	}
	return loss, float64(tensors.MustCopyFlatData[float32](out[0])[0]), true, nil
}

func zerosInit(g *Graph, shape shapes.Shape) *Node { return Zeros(g, shape) }
