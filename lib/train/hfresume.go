package train

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gonb-gpt/tutorial/lib/gpt2"
	"github.com/gonb-gpt/tutorial/lib/optim"
	"github.com/gonb-gpt/tutorial/lib/tensorfile"
)

// Resuming from a checkpoint that transformers' Trainer saved: its weights (model.safetensors),
// trainer_state.json, and the torch pickles optimizer.pt (torch.optim.AdamW's state_dict),
// scheduler.pt (LambdaLR's) and, in fp16, scaler.pt (GradScaler's), read with tensorfile's
// allow-listed unpickler. rng_state.pth (torch's, numpy's and Python's generators) has no
// counterpart here: dropout draws a fresh stream, as it would on another machine.

// hfOptimizerNames maps the parameter numbers of an HF optimizer state_dict to names:
// Trainer.create_optimizer puts the parameters with weight decay first, then the others, each in
// named_parameters() order, and torch numbers them across the groups in that order.
func hfOptimizerNames(m *gpt2.Model) (decay, rest []string) {
	for _, n := range m.ParamNames() {
		if optim.DefaultNoDecay(n) {
			rest = append(rest, n)
		} else {
			decay = append(decay, n)
		}
	}
	return decay, rest
}

// loadHFOptimizer restores the optimizer's moments and step count from optimizer.pt, checked
// against scheduler.pt's count of schedule steps.
func (t *Trainer) loadHFOptimizer(dir string) error {
	path := filepath.Join(dir, "optimizer.pt")
	obj, err := tensorfile.ReadTorchObject(path)
	if err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("resume: %s: %s", path, fmt.Sprintf(format, args...))
	}
	sd, ok := obj.(map[any]any)
	if !ok {
		return bad("not an optimizer state_dict (a %T)", obj)
	}
	groups, ok := sd["param_groups"].([]any)
	if !ok {
		return bad("no param_groups")
	}
	decay, rest := hfOptimizerNames(t.Model)
	want := [][]string{decay, rest}
	if len(groups) != len(want) {
		return bad("%d parameter groups, want %d (with and without weight decay, as Trainer.create_optimizer makes them)", len(groups), len(want))
	}
	names := map[int]string{}
	for g, raw := range groups {
		group, _ := raw.(map[any]any)
		ids, _ := group["params"].([]any)
		if len(ids) != len(want[g]) {
			return bad("group %d has %d parameters, this model %d", g, len(ids), len(want[g]))
		}
		for i, id := range ids {
			n, ok := id.(int)
			if !ok {
				return bad("group %d: parameter number %v", g, id)
			}
			names[n] = want[g][i]
		}
	}
	state, _ := sd["state"].(map[any]any)
	step := -1.0
	_, shapes := t.Model.Config.ParamShapes()
	for id, raw := range state {
		n, _ := id.(int)
		name, ok := names[n]
		if !ok {
			return bad("state of parameter %v, which no group holds", id)
		}
		st, _ := raw.(map[any]any)
		s, ok := st["step"].(*tensorfile.Tensor)
		if !ok || len(s.Data) != 1 {
			return bad("%s: no step", name)
		}
		if step >= 0 && float64(s.Data[0]) != step {
			return bad("%s: step %v, other parameters %v", name, s.Data[0], step)
		}
		step = float64(s.Data[0])
		for key, prefix := range map[string]string{"exp_avg": "/m", "exp_avg_sq": "/v"} {
			tt, ok := st[key].(*tensorfile.Tensor)
			if !ok {
				return bad("%s: no %s", name, key)
			}
			if !slices.Equal(tt.Shape, shapes[name]) {
				return bad("%s: %s of shape %v, the parameter's is %v", name, key, tt.Shape, shapes[name])
			}
			if err := t.setOptimizerVar(optim.StatePrefix+prefix+gpt2.VarPath(name), tensors.FromFlatDataAndDimensions(tt.Data, tt.Shape...)); err != nil {
				return bad("%s: %v", name, err)
			}
		}
	}
	if len(state) > 0 && len(state) != len(names) {
		return bad("state for %d of %d parameters", len(state), len(names))
	}
	step = max(step, 0)
	if err := t.setOptimizerVar(optim.StatePrefix+"/step", tensors.FromScalar(float32(step))); err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	// The schedule's position is the count of applied updates (lr_scheduler.step() runs after each
	// optimizer step that was not skipped), which is the optimizer's step.
	spath := filepath.Join(dir, "scheduler.pt")
	sobj, err := tensorfile.ReadTorchObject(spath)
	if err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	ssd, _ := sobj.(map[any]any)
	if last, ok := ssd["last_epoch"].(int); !ok || float64(last) != step {
		return fmt.Errorf("resume: %s: last_epoch %v, but the optimizer took %v steps", spath, ssd["last_epoch"], step)
	}
	return nil
}

// setOptimizerVar sets (or creates, not trainable) an optimizer state variable.
func (t *Trainer) setOptimizerVar(path string, val *tensors.Tensor) error {
	if v := t.Model.Store.GetVariable(path); v != nil {
		return v.SetValue(val)
	}
	v, err := t.Model.Store.CreateVariable(path, val)
	if err != nil {
		return err
	}
	v.SetTrainable(false)
	return nil
}

// loadHFScaler reads scaler.pt (torch.amp.GradScaler.state_dict()); false when there is none.
func loadHFScaler(dir string) (optim.ScalerState, bool, error) {
	path := filepath.Join(dir, "scaler.pt")
	var st optim.ScalerState
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return st, false, nil
	}
	obj, err := tensorfile.ReadTorchObject(path)
	if err != nil {
		return st, false, fmt.Errorf("resume: %w", err)
	}
	sd, _ := obj.(map[any]any)
	num := func(key string) (float64, bool) {
		switch v := sd[key].(type) {
		case float64:
			return v, true
		case int:
			return float64(v), true
		}
		return 0, false
	}
	var ok [5]bool
	var interval, tracker float64
	st.Scale, ok[0] = num("scale")
	st.GrowthFactor, ok[1] = num("growth_factor")
	st.BackoffFactor, ok[2] = num("backoff_factor")
	interval, ok[3] = num("growth_interval")
	tracker, ok[4] = num("_growth_tracker")
	if ok != [5]bool{true, true, true, true, true} {
		return st, false, fmt.Errorf("resume: %s: not a GradScaler state_dict", path)
	}
	st.GrowthInterval, st.GrowthTracker = int(interval), int(tracker)
	return st, true, nil
}
