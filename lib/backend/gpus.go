package backend

import (
	"fmt"
	"reflect"
	"sync"

	"github.com/gomlx/compute"
)

// cudaBackends remembers the GPUs of the XLA CUDA backends made by [New]. Entries are never removed:
// a program makes few backends.
var cudaBackends = struct {
	sync.Mutex
	gpus map[compute.Backend][]GPU
}{gpus: map[compute.Backend][]GPU{}}

// registerCUDA records that b runs XLA on CUDA, on gpus (nil when unknown).
func registerCUDA(b compute.Backend, gpus []GPU) {
	if b == nil || !reflect.TypeOf(b).Comparable() {
		return
	}
	cudaBackends.Lock()
	defer cudaBackends.Unlock()
	cudaBackends.gpus[b] = gpus
}

// hostGPUs are the GPUs of this machine, detected once, for XLA CUDA backends not made by New.
var hostGPUs = sync.OnceValue(func() []GPU { return detectGPUs(HostSystem()).gpus })

// cudaGPUs tells whether b runs XLA on CUDA and on which GPUs: those [New] found for the backends it
// made; for another XLA backend whose description names CUDA (made by compute.NewWithConfig, say),
// this machine's GPUs in CUDA_VISIBLE_DEVICES's selection.
func cudaGPUs(b compute.Backend) (gpus []GPU, cuda bool) {
	if b == nil {
		return nil, false
	}
	if reflect.TypeOf(b).Comparable() {
		cudaBackends.Lock()
		gpus, cuda = cudaBackends.gpus[b]
		cudaBackends.Unlock()
		if cuda {
			return gpus, true
		}
	}
	if b.Name() == XLABackend && isCUDAConfig(b.Description()) { // "xla:cuda - …"
		return hostGPUs(), true
	}
	return nil, false
}

// GPUsOf returns the NVIDIA GPUs that an XLA CUDA backend made by New runs on, nil for any other
// backend (pure-Go, xla:cpu) or when unknown.
//
// For an XLA backend not made by New whose description names CUDA, it returns this machine's GPUs
// (nvidia-smi, in CUDA_VISIBLE_DEVICES's selection), detected once per process.
func GPUsOf(b compute.Backend) []GPU {
	gpus, _ := cudaGPUs(b)
	return gpus
}

// DefaultPrecision is the training precision to use on b when the user does not choose: "bf16" when
// every GPU has bf16 (≥ 8.0), "fp16" when one does not (V100, T4: tensor cores for float16), "fp32"
// on CPU backends; why explains it in one sentence naming the card.
func DefaultPrecision(b compute.Backend) (precision, why string) {
	gpus, cuda := cudaGPUs(b)
	if !cuda {
		name := "unknown"
		if b != nil {
			name = b.Name()
		}
		return defaultPrecision(nil, false, cpuLabel(name))
	}
	return defaultPrecision(gpus, true, "")
}

// CheckBF16 returns an error when b runs on a GPU without bfloat16 (compute capability < 8.0), as
// transformers refuses bf16=True there ("Your setup doesn't support bf16/gpu."): name the card and
// its capability and suggest --fp16. nil on CPU backends and on cards with bf16.
func CheckBF16(b compute.Backend) error { return checkBF16(GPUsOf(b)) }

// FlashAttention reports whether cuDNN's fused attention can run on b's GPUs (all ≥ 8.0), and why
// not ("Tesla V100-SXM2-32GB has compute capability 7.0; cuDNN flash attention needs 8.0 (Ampere)").
// On non-CUDA backends: true, "" (the caller checks the backend's op capabilities itself).
func FlashAttention(b compute.Backend) (ok bool, why string) { return flashAttention(GPUsOf(b)) }

// cpuLabel names a backend that computes on the CPU, from its configuration name ("go") or its
// Name() (the pure-Go backend's is "Go Backend").
func cpuLabel(name string) string {
	switch name {
	case GoBackend, "Go Backend":
		return "pure-Go"
	case XLABackend:
		return "XLA CPU"
	}
	return name
}

// defaultPrecision is DefaultPrecision on GPUs of a CUDA backend (cuda), or on a CPU backend named
// cpu. A GPU of unknown compute capability is assumed to have bfloat16.
func defaultPrecision(gpus []GPU, cuda bool, cpu string) (precision, why string) {
	if !cuda {
		return "fp32", fmt.Sprintf("the %s backend runs on the CPU, which has no fast float16 or bfloat16 arithmetic", cpu)
	}
	w, known := weakest(gpus)
	switch {
	case !known:
		return "bf16", "the GPU's compute capability is unknown: assuming bfloat16 (compute capability 8.0 or newer)"
	case !w.HasBF16():
		return "fp16", fmt.Sprintf("%s: no bfloat16 (it needs 8.0), so float16 mixed precision, as transformers' fp16=True",
			hasCapability(w))
	default:
		return "bf16", fmt.Sprintf("%s, with bfloat16 (8.0 or newer)", hasCapability(w))
	}
}

// checkBF16 is CheckBF16 on the GPUs of a backend (nil on CPU backends).
func checkBF16(gpus []GPU) error {
	w, known := weakest(gpus)
	if !known || w.HasBF16() {
		return nil
	}
	return fmt.Errorf("bf16 needs a GPU of compute capability 8.0 (Ampere) or newer, and %s has %s "+
		"(transformers refuses bf16=True there: \"Your setup doesn't support bf16/gpu.\"); use --fp16",
		gpuName(w), w.ComputeCapability())
}

// flashAttention is FlashAttention on the GPUs of a backend (nil on CPU backends).
func flashAttention(gpus []GPU) (ok bool, why string) {
	w, known := weakest(gpus)
	if !known || w.HasFlashAttention() {
		return true, ""
	}
	return false, fmt.Sprintf("%s; cuDNN flash attention needs 8.0 (Ampere)", hasCapability(w))
}
