// Package train trains GPT-2 with the semantics of transformers' Trainer.
package train

import (
	"fmt"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/distributed"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck // GoMLX's idiomatic dot-import.
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gonb-gpt/tutorial/lib/gpt2"
	"github.com/gonb-gpt/tutorial/lib/optim"
)

// Step is one compiled training step: forward in training mode, loss, gradients, AdamW update of
// the model's store (through the loss scaler in float16). GoMLX compiles it once per batch shape.
type Step struct {
	Model *gpt2.Model
	Opt   *optim.AdamW
	// Scaler is the dynamic loss scaler of float16 training (nil in float32 and bfloat16, as in HF).
	Scaler *optim.GradScaler
	exec   *model.Exec
	dp     *dataParallel // nil: one device
	types  bool          // the step takes token_type_ids (after the ids)
}

// Devices is the number of devices the step runs on (its batch must split evenly over them).
func (s *Step) Devices() int {
	if s.dp == nil {
		return 1
	}
	return s.dp.devices
}

// TrainingGradients builds, in training mode, the loss of ids/labels (with token types, nil: none)
// and the gradient of every parameter (in m.ParamNames order). The loss is the model's: the mean
// over the predicted tokens, as model(input_ids, labels=labels).loss. With a scaler (fp16) the loss
// is multiplied by its scale before differentiation: the gradients are then the scaled loss's (pass
// them to scaler.Step); the returned loss is not scaled.
func TrainingGradients(m *gpt2.Model, store *model.Store, ids, tokenTypes, labels *Node, scaler *optim.GradScaler) (loss *Node, params, grads []*Node) {
	return gradients(m, store, ids, tokenTypes, labels, scaler, false)
}

// gradients is TrainingGradients; with numItems the loss is the one transformers' Trainer trains
// on (trainerLoss).
func gradients(m *gpt2.Model, store *model.Store, ids, tokenTypes, labels *Node, scaler *optim.GradScaler, numItems bool) (loss *Node, params, grads []*Node) {
	// Training mode before any variable is used: otherwise backends that prefer constants for
	// variables (the pure-Go one) bake the weights into the program, and updates are lost.
	store.SetTraining(ids.Graph(), true)
	loss = m.LossGraph(store, ids, tokenTypes, labels, true)
	if numItems {
		loss = trainerLoss(loss, labels)
	}
	names := m.ParamNames()
	params = make([]*Node, len(names))
	for i, n := range names {
		params[i] = m.Param(loss.Graph(), n)
	}
	scaled := loss
	if scaler != nil {
		scaled = Mul(loss, scaler.Scale(store, loss.Graph()))
	}
	return loss, params, Gradient(scaled, params...)
}

// trainerLoss turns the model's mean loss of a batch into the loss transformers' Trainer trains on
// and logs. The Trainer passes num_items_in_batch to the model, whose ForCausalLMLoss then divides
// the summed token losses by it instead of taking their mean, and get_batch_samples counts it on the
// labels before the shift (labels != -100 over [B, T]): a full block of T tokens predicts T-1 of
// them and counts T, so the Trainer's loss and gradients are (T-1)/T of the model's mean. Measured
// with transformers 5.17 (device-check step hf-train-parity, 2026-11-27): its Trainer logged 63/64
// of the mean for blocks of 64. Evaluation keeps the mean (prediction_step passes no count).
func trainerLoss(mean, labels *Node) *Node {
	T := labels.Shape().Dim(1)
	if T < 2 {
		return mean // No token is predicted: the mean is NaN already.
	}
	ignore := Scalar(labels.Graph(), labels.DType(), -100)
	count := func(l *Node) *Node { return ReduceAllSum(ConvertDType(NotEqual(l, ignore), mean.DType())) }
	predicted := count(Slice(labels, AxisRange(), AxisRange(1, T)))
	return Mul(mean, Div(predicted, count(labels)))
}

// scalerFor returns the loss scaler a model's precision needs: float16 only, as HF's Trainer
// (accelerate) creates a GradScaler for fp16 and none for bf16 or float32.
func scalerFor(m *gpt2.Model, s *optim.GradScaler) *optim.GradScaler {
	if m.Autocast != dtypes.Float16 {
		return nil
	}
	if s == nil {
		return optim.NewGradScaler()
	}
	return s
}

// lrWindow is the learning rate of an update as the host can give it. HF's scheduler steps only when
// the optimizer ran (trainer.py, _inner_training_loop: lr_scheduler.step() unless
// accelerator.optimizer_step_was_skipped), and a float16 step may be skipped; the host launches a
// step before the previous one's outcome is known. So it passes the rates for both outcomes, LR(k)
// and LR(k+1), where k is the number of updates it knows were applied, and the device picks by the
// optimizer's own count of applied updates.
type lrWindow struct {
	k  int
	lr [2]float64
}

// fixedLR is a window whose rate does not depend on the count.
func fixedLR(lr float64) lrWindow { return lrWindow{lr: [2]float64{lr, lr}} }

func (w lrWindow) tensors() (lrs, k *tensors.Tensor) {
	return tensors.FromValue([]float32{float32(w.lr[0]), float32(w.lr[1])}), tensors.FromValue(float32(w.k))
}

// update adds the optimizer update of the gradients at the window's rate (lrs [2], k scalar), through
// the scaler when there is one. It returns the gradient norm, the rate used and skipped (1 when the
// scaler skipped the update, else 0).
func update(store *model.Store, opt *optim.AdamW, scaler *optim.GradScaler, names []string, params, grads []*Node, lrs, k *Node) (norm, lr, skipped *Node) {
	g := lrs.Graph()
	at := func(i int) *Node { return Reshape(Slice(lrs, AxisElem(i))) }
	lr = Where(Equal(opt.Steps(store, g), k), at(0), at(1))
	if scaler == nil {
		return opt.Apply(store, names, params, grads, lr), lr, ScalarZero(g, dtypes.Float32)
	}
	norm, skipped = scaler.Step(store, opt, names, params, grads, lr)
	return norm, lr, skipped
}

// NewStep prepares a training step for a model and optimizer, data-parallel over the backend's
// devices when it has several; in float16 (m.Autocast) with torch's default loss scaler.
func NewStep(m *gpt2.Model, opt *optim.AdamW) (*Step, error) {
	dp, err := newDataParallel(m.Backend.NumDevices())
	if err != nil {
		return nil, err
	}
	return newStep(m, opt, scalerFor(m, nil), dp, false, false)
}

// newStep prepares a step, sharded as dp says (nil: one device, no sharding); with types it takes
// token_type_ids after the ids; with numItems its loss is the Trainer's (trainerLoss).
func newStep(m *gpt2.Model, opt *optim.AdamW, scaler *optim.GradScaler, dp *dataParallel, types, numItems bool) (*Step, error) {
	names := m.ParamNames()
	e, err := model.NewExec(m.Backend, m.Store, func(scope *model.Scope, in []*Node) []*Node {
		store := scope.Store()
		tt, in := splitTypes(in, types)
		loss, params, grads := gradients(m, store, in[0], tt, in[1], scaler, numItems)
		norm, lr, skipped := update(store, opt, scaler, names, params, grads, in[2], in[3])
		return []*Node{loss, norm, lr, skipped}
	})
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	step := &Step{Model: m, Opt: opt, Scaler: scaler, exec: e, dp: dp, types: types}
	if step.dp != nil {
		// The device assignment is explicit: without it go-xla refuses to compile the sharded program
		// ("no device assignment given to Client.Compile(), but computation is not (device)
		// portable", measured on XLA CUDA with a one-device mesh, 2026-11-27).
		devices := make([]compute.DeviceNum, step.dp.devices)
		for i := range devices {
			devices[i] = compute.DeviceNum(i)
		}
		rep, batch := step.dp.rep, step.dp.batchSpec
		inputs := []*distributed.ShardingSpec{batch, batch, rep, rep}
		if types {
			inputs = append([]*distributed.ShardingSpec{batch}, inputs...)
		}
		step.exec = e.AutoSharding(batch.Mesh).WithDeviceAssignment(devices).
			WithInputShardingSpecs(inputs...).
			WithOutputShardingSpecs(rep, rep, rep, rep)
		if err := step.exec.SetDefaultShardingSpec(rep); err != nil {
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
func (s *Step) Launch(ids, labels *tensors.Tensor, lr float64) (*Pending, error) {
	return s.launch(ids, nil, labels, fixedLR(lr))
}

// launch starts a step; types are the token_type_ids when the step takes them.
func (s *Step) launch(ids, types, labels *tensors.Tensor, w lrWindow) (p *Pending, err error) {
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, fmt.Errorf("train step: %v", r)
		}
	}()
	if s.types != (types != nil) {
		return nil, fmt.Errorf("train step: token_type_ids given: %v, the step was built for them: %v", types != nil, s.types)
	}
	lrs, k := w.tensors()
	args := []*tensors.Tensor{ids, labels, lrs, k}
	if types != nil {
		args = []*tensors.Tensor{ids, types, labels, lrs, k}
	}
	var out []*tensors.Tensor
	if s.dp != nil {
		out, err = s.runParallel(args...)
	} else {
		out, err = s.exec.Call(anys(args)...)
	}
	// Inference programs may hold the old weights as constants.
	s.Model.WeightsChanged()
	if err != nil {
		return nil, fmt.Errorf("train step: %w", err)
	}
	return &Pending{out: out}, nil
}

// StepResult is what one optimizer step reports.
type StepResult struct {
	// Loss is the (unscaled) loss before the update; GradNorm the gradients' global norm before
	// clipping (inf or NaN on a skipped float16 step, as HF logs it).
	Loss, GradNorm float64
	// LR is the learning rate the update used.
	LR float64
	// Skipped: the float16 loss scaler found inf/NaN gradients and skipped the update.
	Skipped bool
}

// Pending is a launched training step (see [Step.Launch]).
type Pending struct {
	out      []*tensors.Tensor // loss, norm, lr, skipped (nil once resolved)
	res      StepResult
	err      error
	resolved bool
}

// Wait returns the step's loss (before the update) and gradient norm (before clipping), waiting
// for the device to finish the step.
func (p *Pending) Wait() (loss, gradNorm float64, err error) {
	r, err := p.Result()
	return r.Loss, r.GradNorm, err
}

// Result waits for the step and returns all it reports.
func (p *Pending) Result() (StepResult, error) {
	if !p.resolved {
		p.resolved = true
		func() {
			defer func() {
				if r := recover(); r != nil {
					p.err = fmt.Errorf("train step: %v", r)
				}
			}()
			if len(p.out) < 4 {
				p.err = fmt.Errorf("train step: %d outputs, want loss, norm, learning rate and skipped", len(p.out))
				return
			}
			p.res = StepResult{Loss: scalar(p.out[0]), GradNorm: scalar(p.out[1]), LR: scalar(p.out[2]), Skipped: scalar(p.out[3]) != 0}
		}()
		p.out = nil
	}
	return p.res, p.err
}

// scalar reads a float32 scalar output (GoMLX panics on another shape: callers recover).
func scalar(t *tensors.Tensor) float64 { return float64(tensors.MustCopyFlatData[float32](t)[0]) }

// IDsTensor packs a rectangular batch of token ids as an int32 tensor [B, T] (gpt2.IDsTensor).
func IDsTensor(batch [][]int) (*tensors.Tensor, error) { return gpt2.IDsTensor(batch) }

// splitTypes takes the token_type_ids out of a step's inputs (ids, [types,] labels, …): nil and the
// inputs as they are when the step has none.
func splitTypes(in []*Node, types bool) (*Node, []*Node) {
	if !types {
		return nil, in
	}
	return in[1], append(in[:1:1], in[2:]...)
}

// anys converts tensors into Exec.Call's arguments.
func anys(ts []*tensors.Tensor) []any {
	out := make([]any, len(ts))
	for i, t := range ts {
		out[i] = t
	}
	return out
}

// accumStep is training with gradient accumulation, as the Trainer does it: the micro-batches of a
// group add the gradients of their losses (trainerLoss), each weighted by its share of the group's
// counted labels, into accumulators, and the last one applies the optimizer to them.
type accumStep struct {
	types      bool
	acc, apply *model.Exec
}

const accumPrefix = "/grad_accum"

func newAccumStep(m *gpt2.Model, opt *optim.AdamW, scaler *optim.GradScaler, types bool) (*accumStep, error) {
	names := m.ParamNames()
	accVar := func(store *model.Store, name string, shape *Node) *model.Variable {
		v := store.VariableWithShape(accumPrefix+gpt2.VarPath(name), shape.Shape(), zerosInit)
		v.SetTrainable(false)
		return v
	}
	acc, err := model.NewExec(m.Backend, m.Store, func(scope *model.Scope, in []*Node) []*Node {
		store := scope.Store()
		tt, in := splitTypes(in, types)
		loss, params, grads := gradients(m, store, in[0], tt, in[1], scaler, true)
		g := loss.Graph()
		weight := in[2]
		for i, n := range names {
			v := accVar(store, n, params[i])
			v.SetNodeValue(Add(v.NodeValue(g), Mul(grads[i], ConvertDType(weight, grads[i].DType()))))
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
		norm, lr, skipped := update(store, opt, scaler, names, params, grads, in[0], in[1])
		return []*Node{norm, lr, skipped}
	})
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	return &accumStep{types: types, acc: acc, apply: apply}, nil
}

// run adds one micro-batch (types: its token_type_ids, when the step takes them) whose gradient
// counts with weight (its share of the group's counted labels: HF divides the summed token losses
// by the group's num_items_in_batch); the last of a group applies the update (with the step's
// result).
func (s *accumStep) run(ids, types *tensors.Tensor, weight float64, last bool, w lrWindow) (res StepResult, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("train step: %v", r)
		}
	}()
	args := []any{ids, ids, float32(weight)}
	if s.types {
		args = []any{ids, types, ids, float32(weight)}
	}
	out, err := s.acc.Call(args...)
	if err != nil {
		return res, fmt.Errorf("train step: %w", err)
	}
	res.Loss = scalar(out[0])
	if !last {
		return res, nil
	}
	lrs, k := w.tensors()
	if out, err = s.apply.Call(lrs, k); err != nil {
		return res, fmt.Errorf("train step: %w", err)
	}
	res.GradNorm, res.LR, res.Skipped = scalar(out[0]), scalar(out[1]), scalar(out[2]) != 0
	return res, nil
}

func zerosInit(g *Graph, shape shapes.Shape) *Node { return Zeros(g, shape) }
