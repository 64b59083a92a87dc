// Package train trains GPT-2 with the semantics of transformers' Trainer.
package train

import (
	"fmt"

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
}

// NewStep prepares a training step for a model and optimizer.
func NewStep(m *gpt2.Model, opt *optim.AdamW) (*Step, error) {
	names := m.ParamNames()
	e, err := model.NewExec(m.Backend, m.Store, func(scope *model.Scope, in []*Node) []*Node {
		store := scope.Store()
		// Training mode before any variable is used: otherwise backends that prefer constants for
		// variables (the pure-Go one) bake the weights into the program, and updates are lost.
		store.SetTraining(in[0].Graph(), true)
		loss := m.LossGraph(store, in[0], in[1], true)
		g := loss.Graph()
		params := make([]*Node, len(names))
		for i, n := range names {
			params[i] = m.Param(g, n)
		}
		grads := Gradient(loss, params...)
		norm := opt.Apply(store, names, params, grads, in[2])
		return []*Node{loss, norm}
	})
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	return &Step{Model: m, Opt: opt, exec: e}, nil
}

// Run trains on one batch (ids and labels [B, T] int32) at learning rate lr, returning the loss
// before the update and the gradient norm before clipping.
func (s *Step) Run(ids, labels *tensors.Tensor, lr float64) (loss, gradNorm float64, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("train step: %v", r)
		}
	}()
	out, err := s.exec.Call(ids, labels, float32(lr))
	if err != nil {
		return 0, 0, fmt.Errorf("train step: %w", err)
	}
	// Inference programs may hold the old weights as constants.
	s.Model.WeightsChanged()
	return float64(tensors.MustCopyFlatData[float32](out[0])[0]), float64(tensors.MustCopyFlatData[float32](out[1])[0]), nil
}

// IDsTensor packs a rectangular batch of token ids as an int32 tensor [B, T].
func IDsTensor(batch [][]int) (*tensors.Tensor, error) {
	if len(batch) == 0 || len(batch[0]) == 0 {
		return nil, fmt.Errorf("train: empty batch")
	}
	T := len(batch[0])
	flat := make([]int32, 0, len(batch)*T)
	for i, row := range batch {
		if len(row) != T {
			return nil, fmt.Errorf("train: row %d has %d tokens, want %d", i, len(row), T)
		}
		for _, v := range row {
			flat = append(flat, int32(v))
		}
	}
	return tensors.FromFlatDataAndDimensions(flat, len(batch), T), nil
}
