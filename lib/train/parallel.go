package train

import (
	"fmt"
	"os"

	"github.com/gomlx/compute/distributed"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/core/tensors/dtensor"
)

// EnvDataParallel set to "0" keeps training on one device when the backend has several.
const EnvDataParallel = "GPT_DATA_PARALLEL"

// dataParallel is the sharding of a training step over the devices of a backend: a one-axis
// "data" mesh, the batch (axis 0 of ids and labels) split across it, weights, optimizer state and
// outputs replicated. GoMLX's AutoSharding compiles one program for all devices in which the loss
// is the global mean and the gradients are averaged.
//
// UNVERIFIED on several devices: no multi-device backend was available to run it (GoMLX's Go backend
// has no distributed ops; the lent GPU machines have one device). See docs/data-parallel.md.
type dataParallel struct {
	devices   int
	batchSpec *distributed.ShardingSpec
	rep       *distributed.ShardingSpec
}

// newDataParallel returns the sharding for n devices, or nil when n < 2 or it is turned off.
func newDataParallel(n int) (*dataParallel, error) {
	if n < 2 || os.Getenv(EnvDataParallel) == "0" {
		return nil, nil
	}
	return meshOf(n)
}

// meshOf builds the sharding over n devices, n = 1 included (the device check compares that
// sharded program with the plain step on one GPU).
func meshOf(n int) (*dataParallel, error) {
	mesh, err := distributed.NewDeviceMesh([]int{n}, []string{"data"})
	if err != nil {
		return nil, fmt.Errorf("data parallel: %w", err)
	}
	batchSpec, err := distributed.BuildSpec(mesh).S("data").R().Done()
	if err != nil {
		return nil, fmt.Errorf("data parallel: %w", err)
	}
	return &dataParallel{devices: n, batchSpec: batchSpec, rep: distributed.NewReplicatedShardingSpec(mesh)}, nil
}

// runParallel executes a sharded step: args are the step's inputs (ids, [token types,] labels,
// learning rates, k); the batch inputs are split by rows, the rest replicated. Returns device 0's
// outputs (loss, norm, learning rate, skipped: all replicated).
func (s *Step) runParallel(args ...*tensors.Tensor) ([]*tensors.Tensor, error) {
	dp := s.dp
	ids := args[0]
	if ids.Shape().Dim(0)%dp.devices != 0 {
		return nil, fmt.Errorf("data parallel: a batch of %d rows does not split over %d devices", ids.Shape().Dim(0), dp.devices)
	}
	batchInputs := len(args) - 2 // all but the learning rates and k
	in := make([]any, len(args))
	for i, t := range args {
		spec := dp.rep
		if i < batchInputs {
			spec = dp.batchSpec
		}
		d, err := dtensor.ShardTensor(spec, t)
		if err != nil {
			return nil, err
		}
		in[i] = d
	}
	// The outputs come back as shards, device by device ([device 0: loss, norm, lr, skipped; device
	// 1: …]); all are replicated, so device 0's are the values. (GoMLX's DistributedCall would gather
	// them into distributed tensors, but refuses a one-device mesh, which the device check runs.)
	out, err := s.exec.Call(in...)
	if err != nil {
		return nil, fmt.Errorf("data parallel: %w", err)
	}
	if len(out) < 4 {
		return nil, fmt.Errorf("data parallel: %d outputs, want loss, norm, learning rate and skipped", len(out))
	}
	return out[:4], nil
}
