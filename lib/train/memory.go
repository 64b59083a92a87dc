package train

import (
	"fmt"
	"strings"

	"github.com/gonb-gpt/tutorial/lib/gpt2"
)

// Fixed allowances of the memory estimate, beside what scales with the model and the batch.
const (
	// WorkspaceBytes covers cuBLAS's and cuDNN's workspaces, XLA's scratch buffers and the BFC
	// allocator's fragmentation.
	WorkspaceBytes int64 = 1 << 30
	// ContextBytes is the CUDA context (its kernels, cuBLAS/cuDNN handles): outside XLA's allocator.
	ContextBytes int64 = 512 << 20
	// XLAMemoryFraction is the share of a card's memory that XLA's BFC allocator may take: the PJRT
	// CUDA plugin's default memory_fraction, which caps it even without preallocation. Append
	// ",memory_fraction=0.9" to GOMLX_BACKEND's configuration to raise it.
	XLAMemoryFraction = 0.75
)

// MemoryEstimate is an estimate, in bytes, of the GPU memory one device needs for a training step
// of GPT-2 as this project computes it (lib/gpt2's graph, lib/optim's AdamW).
type MemoryEstimate struct {
	// Params is the number of parameters.
	Params int64
	// Weights, Gradients and Optimizer (AdamW's m and v) are float32: 4 + 4 + 8 bytes per parameter.
	Weights, Gradients, Optimizer int64
	// HalfWeights are the float16/bfloat16 copies that mixed precision casts the weights to (2
	// bytes per parameter; 0 in float32).
	HalfWeights int64
	// Activations are what the forward pass keeps for the backward pass, logits excepted.
	Activations int64
	// Logits are the [batch, block, vocab] logits, their log-softmax and gradient.
	Logits int64
	// Workspace is WorkspaceBytes + ContextBytes.
	Workspace int64
	Total     int64
}

// halfBytes is the size of a matrix product's operands and result in a precision.
func halfBytes(precision string) (int64, error) {
	switch precision {
	case "fp32":
		return 4, nil
	case "fp16", "bf16":
		return 2, nil
	}
	return 0, fmt.Errorf("memory estimate: precision %q: want fp32, fp16 or bf16", precision)
}

// EstimateMemory estimates the GPU memory of one training step of cfg on one device: a batch of
// batch blocks of blockSize tokens, in precision "fp32", "fp16" or "bf16" (mixed precision as
// torch.autocast runs it), with cuDNN's flash attention (flash: only in fp16/bf16 with
// attn_pdrop 0, as lib/gpt2 routes it) or the eager graph.
//
// It is an estimate: XLA fuses, recomputes and reuses buffers as it sees fit, so real use can
// differ either way. nvidia-smi shows more: XLA's allocator reserves memory in growing regions, each
// up to twice the request that made it. Gradient accumulation adds 4 bytes per parameter (the
// accumulators), and data parallelism the buffers of the gradients' all-reduce, which this does
// not count.
//
// The activations follow Korthikanti et al. 2022 ("Reducing Activation Recomputation in Large
// Transformer Models": per layer s·b·h·(34 + 5·a·s/h) bytes in half precision with dropout, the
// a·s² term gone with flash attention), redone for what lib/gpt2's graph keeps. With s the block,
// b the batch, h n_embd, a n_head, I the MLP width (4h), V the vocabulary, x the bytes of a matrix
// product's operand (2 in fp16/bf16, 4 in fp32) and 1 byte per dropout mask, per token of a layer:
//
//   - ln_1 (float32, composed of elementwise ops): the centered input and the normalized value
//     that its gradient needs, 4h + 4h; its output cast for c_attn: xh;
//   - c_attn's result, q, k and v: 3xh;
//   - eager attention, per head and pair of positions: the float32 softmax (its gradient needs it),
//     4; the weights cast to the half type, or their dropout, which the product with v needs: x
//     (none in fp32 without dropout: the softmax itself is the operand); the dropout mask: 1.
//     Flash attention keeps only its output and the float32 log-sum-exp per head and position;
//   - the attention output, c_proj's operand: xh; the residual dropout's mask: h;
//   - ln_2 and its output cast for c_fc: 8h + xh;
//   - gelu_new runs in float32: its input and tanh(…) (not recomputed: tanh is costly) 4I + 4I;
//     its output cast for mlp.c_proj: xI; the residual dropout's mask: h.
//
// That is, with I = 4h and dropout, 70 s·b·h + 7 a·s²·b bytes per layer in fp16/bf16 (Korthikanti's
// 34 and 5 count a float16 residual stream and layer norms, and gelu's input only), 90 s·b·h +
// 9 a·s²·b in fp32. Without attention dropout the eager graph keeps 6 bytes per score in fp16/bf16
// (the float32 softmax and its half copy) against fp32's 4: at the tutorial's sizes (a·s/h = 16)
// its activations then exceed fp32's, and only flash attention saves memory there.
//
// Besides the layers: the embedding dropout's mask, ln_f and its output cast for lm_head. The
// logits: lm_head's result is converted to float32 for the log-softmax, and two float32 [b, s, V]
// tensors are live at once (forward: the logits and the saved exponentials; backward: those and
// their gradient), plus, in fp16/bf16, lm_head's half result or the half gradient that its
// backward products take.
//
// Compared with the peaks measured on an H100 (docs/benchmarks.md: tutorial size, batch 8, block
// 1024; nvidia-smi, which counts the allocator's whole regions): fp32 eager 21.5 GiB estimated,
// 34.9 seen; bf16 eager 18.5 and 19.1–19.7; bf16 flash 10.6 and 10.8–12.1 (both bf16 figures were
// measured before the residual stream and gelu were float32, which this counts).
func EstimateMemory(cfg *gpt2.Config, batch, blockSize int, precision string, flash bool) (MemoryEstimate, error) {
	x, err := halfBytes(precision)
	if err != nil {
		return MemoryEstimate{}, err
	}
	switch {
	case batch < 1:
		return MemoryEstimate{}, fmt.Errorf("memory estimate: batch %d: want ≥ 1", batch)
	case blockSize < 1 || blockSize > cfg.NPositions:
		return MemoryEstimate{}, fmt.Errorf("memory estimate: block %d: want 1 to n_positions (%d)", blockSize, cfg.NPositions)
	case flash && precision == "fp32":
		return MemoryEstimate{}, fmt.Errorf("memory estimate: flash attention runs in fp16 or bf16, not fp32")
	case flash && cfg.AttnPdrop > 0:
		return MemoryEstimate{}, fmt.Errorf("memory estimate: flash attention needs attn_pdrop 0 (the fused kernel has no dropout), not %v", cfg.AttnPdrop)
	}
	if err := cfg.Validate(); err != nil {
		return MemoryEstimate{}, fmt.Errorf("memory estimate: %w", err)
	}
	mask := func(p float64) int64 {
		if p > 0 {
			return 1
		}
		return 0
	}
	b, s := int64(batch), int64(blockSize)
	h, a, inner, vocab := int64(cfg.NEmbd), int64(cfg.NHead), int64(cfg.Inner()), int64(cfg.VocabSize)
	tokens := b * s
	layerNorm := 8 * h // float32 centered input and normalized value
	attnBlock := layerNorm + x*h + 3*x*h + x*h + mask(cfg.ResidPdrop)*h
	mlpBlock := layerNorm + x*h + 8*inner + x*inner + mask(cfg.ResidPdrop)*h
	perToken := attnBlock + mlpBlock
	var attention int64
	if flash {
		attention = 4 * b * a * s // log-sum-exp
	} else {
		weights := int64(4) + mask(cfg.AttnPdrop) // float32 softmax, dropout mask
		if cfg.AttnPdrop > 0 || x < 4 {
			weights += x // the operand of the product with v
		}
		attention = weights * b * a * s * s
	}
	acts := int64(cfg.NLayer)*(tokens*perToken+attention) +
		tokens*mask(cfg.EmbdPdrop)*h + tokens*(layerNorm+x*h)
	logitBytes := int64(8)
	if x < 4 {
		logitBytes += x
	}
	n := int64(cfg.NumParameters())
	e := MemoryEstimate{
		Params: n, Weights: 4 * n, Gradients: 4 * n, Optimizer: 8 * n,
		Activations: acts, Logits: tokens * vocab * logitBytes, Workspace: WorkspaceBytes + ContextBytes,
	}
	if x < 4 {
		e.HalfWeights = 2 * n
	}
	e.Total = e.Weights + e.Gradients + e.Optimizer + e.HalfWeights + e.Activations + e.Logits + e.Workspace
	return e, nil
}

// MaxBatchSize is the largest per-device batch whose estimate (EstimateMemory) fits in
// memoryBytes, 0 when not even one block fits.
func MaxBatchSize(cfg *gpt2.Config, blockSize int, precision string, flash bool, memoryBytes int64) (int, error) {
	fits := func(batch int) (bool, error) {
		e, err := EstimateMemory(cfg, batch, blockSize, precision, flash)
		return err == nil && e.Total <= memoryBytes, err
	}
	ok, err := fits(1)
	if err != nil || !ok {
		return 0, err
	}
	// The estimate grows with the batch: double past the budget, then bisect.
	lo, hi := 1, 2
	for {
		if ok, _ := fits(hi); !ok {
			break
		}
		if hi > 1<<24 {
			return 0, fmt.Errorf("memory estimate: a batch over %d fits in %d bytes", hi, memoryBytes)
		}
		lo, hi = hi, 2*hi
	}
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		if ok, _ := fits(mid); ok {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo, nil
}

// UsableMemory is how much of a card's memory a training step may use under XLA: the allocator's
// share (fraction of the card) plus the CUDA context outside it, at most the card.
func UsableMemory(cardBytes int64, fraction float64) int64 {
	return min(cardBytes, int64(fraction*float64(cardBytes))+ContextBytes)
}

// GiB is a byte count in GiB.
func GiB(bytes int64) float64 { return float64(bytes) / (1 << 30) }

// MemoryTable prints estimates side by side in GiB, one column per estimate headed by names.
func MemoryTable(names []string, es ...MemoryEstimate) string {
	var sb strings.Builder
	row := func(label string, value func(MemoryEstimate) int64) {
		fmt.Fprintf(&sb, "  %-30s", label)
		for _, e := range es {
			fmt.Fprintf(&sb, " %8.2f", GiB(value(e)))
		}
		sb.WriteString("\n")
	}
	fmt.Fprintf(&sb, "  %-30s", "GiB")
	for _, name := range names {
		fmt.Fprintf(&sb, " %8s", name)
	}
	sb.WriteString("\n")
	row("weights (float32)", func(e MemoryEstimate) int64 { return e.Weights })
	row("weights cast to fp16/bf16", func(e MemoryEstimate) int64 { return e.HalfWeights })
	row("gradients (float32)", func(e MemoryEstimate) int64 { return e.Gradients })
	row("AdamW m and v (float32)", func(e MemoryEstimate) int64 { return e.Optimizer })
	row("activations", func(e MemoryEstimate) int64 { return e.Activations })
	row("logits, log-softmax, gradient", func(e MemoryEstimate) int64 { return e.Logits })
	row("workspace and CUDA context", func(e MemoryEstimate) int64 { return e.Workspace })
	row("total", func(e MemoryEstimate) int64 { return e.Total })
	return sb.String()
}

// String is the estimate as a short table in GiB.
func (e MemoryEstimate) String() string { return MemoryTable([]string{"estimate"}, e) }
