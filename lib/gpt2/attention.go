package gpt2

import (
	"fmt"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gonb-gpt/tutorial/lib/backend"
)

// AttnImplementation chooses how attention is computed, as transformers' attn_implementation does.
type AttnImplementation string

const (
	// AttnEager is HF's eager_attention_forward: the [B, H, T, S] scores are materialized, masked,
	// soft-maxed in float32 and dropped out. Exact HF numerics; every backend; every case.
	AttnEager AttnImplementation = "eager"
	// AttnSDPA is scaled dot-product attention through GoMLX's attention.Core, transformers' default.
	// On XLA CUDA under bf16 or fp16 autocast it runs cuDNN's fused flash-attention kernels (forward
	// and backward; head size a multiple of 8, Ampere or newer), which never materialize the scores.
	// Where that kernel cannot apply — float32, a backend or a GPU without it (the V100, the T4),
	// generation with a key/value cache or a padding mask, or training with attention dropout (attn_pdrop > 0: cuDNN's kernel has none, so
	// the eager graph keeps HF's dropout) — it computes the same function the eager way.
	AttnSDPA AttnImplementation = "sdpa"
)

// ParseAttnImplementation reads an attn_implementation name ("" is the default, sdpa).
func ParseAttnImplementation(s string) (AttnImplementation, error) {
	switch AttnImplementation(s) {
	case "", AttnSDPA:
		return AttnSDPA, nil
	case AttnEager:
		return AttnEager, nil
	}
	return "", fmt.Errorf("gpt2: attn_implementation %q: want %q or %q", s, AttnEager, AttnSDPA)
}

// route decides how a forward graph computes attention and says why: through attention.Core (sdpa,
// a plain causal batch — no cache, no padding mask —, no attention dropout in training, and for
// half precision a backend with the fused kernel on a GPU that runs it (compute capability 8.0 or
// newer: not the V100 or T4): elsewhere the eager graph keeps the softmax in float32,
// as HF does), or the eager graph.
func (a AttnImplementation) route(plainCausal bool, attnPdrop float64, training bool, autocast dtypes.DType, b compute.Backend) (core bool, why string) {
	switch {
	case a == AttnEager:
		return false, string(AttnEager)
	case !plainCausal:
		return false, "sdpa: eager graph (a key/value cache or a padding mask)"
	case training && attnPdrop > 0:
		return false, "sdpa: eager graph (attn_pdrop > 0 in training: the fused kernel has no dropout)"
	case autocast == dtypes.InvalidDType:
		return true, "sdpa: decomposed (float32: the fused kernel takes bf16/fp16)"
	case !hasFusedAttention(b):
		return false, "sdpa: eager graph (the backend has no fused attention)"
	}
	if ok, why := backend.FlashAttention(b); !ok {
		return false, "sdpa: eager graph (" + why + ")"
	}
	return true, "sdpa: cuDNN flash attention (fused)"
}

func hasFusedAttention(b compute.Backend) bool {
	ops := b.Capabilities().Operations
	return ops[compute.OpTypeFusedScaledDotProductAttention] && ops[compute.OpTypeFusedScaledDotProductAttentionVJP]
}

// AttentionPath says how this model's training (or evaluation) steps compute attention, for
// reports: "eager", "sdpa: cuDNN flash attention (fused)" or "sdpa: … (why not fused)".
func (m *Model) AttentionPath(training bool) string {
	_, why := m.AttnImplementation.route(true, m.Config.AttnPdrop, training, m.Autocast, m.Backend)
	if why == "sdpa: cuDNN flash attention (fused)" && m.Config.HeadDim()%8 != 0 {
		return "sdpa: decomposed (head size not a multiple of 8)" // attention.Core's own fallback
	}
	return why
}
