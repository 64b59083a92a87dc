package gpt2

import (
	"math"
	"testing"
)

// Where the fused kernel is missing (the pure-Go backend), sdpa takes attention.Core's decomposed
// graph (float32) or the eager graph (bf16, training with attention dropout): the numbers must be
// those of the eager path — logits, loss and every gradient — and so HF's.
func TestSDPAEqualsEager(t *testing.T) {
	eager, ref := loadTiny(t, "model.safetensors")
	eager.AttnImplementation = AttnEager
	sdpa, _ := loadTiny(t, "model.safetensors")
	sdpa.AttnImplementation = AttnSDPA
	if got := sdpa.AttentionPath(false); got != "sdpa: decomposed (float32: the fused kernel takes bf16/fp16)" {
		t.Errorf("AttentionPath = %q", got)
	}
	le, err := eager.Logits(ref.InputIDs)
	if err != nil {
		t.Fatal(err)
	}
	ls, err := sdpa.Logits(ref.InputIDs)
	if err != nil {
		t.Fatal(err)
	}
	maxErr := maxAbsDiff(ls, le)
	if maxErr > 1e-5 {
		t.Errorf("logits: sdpa and eager differ by %g > 1e-5", maxErr)
	}
	lossE, gradsE, err := eager.Gradients(ref.InputIDs, nil)
	if err != nil {
		t.Fatal(err)
	}
	lossS, gradsS, err := sdpa.Gradients(ref.InputIDs, nil)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(lossE-lossS) > 1e-6 {
		t.Errorf("loss: sdpa %v, eager %v", lossS, lossE)
	}
	for name, ge := range gradsE {
		gs := gradsS[name]
		diff := 0.0
		for i := range ge.Data {
			diff = max(diff, math.Abs(float64(ge.Data[i]-gs.Data[i])))
		}
		if scale := l2(ge.Data); diff > 1e-5*max(scale, 1e-3) {
			t.Errorf("gradient %s: sdpa and eager differ by %g (norm %g)", name, diff, scale)
		}
	}
	t.Logf("logits max diff %.2g, loss %.8f vs %.8f", maxErr, lossS, lossE)
}

func TestParseAttnImplementation(t *testing.T) {
	for in, want := range map[string]AttnImplementation{"": AttnSDPA, "sdpa": AttnSDPA, "eager": AttnEager} {
		if got, err := ParseAttnImplementation(in); err != nil || got != want {
			t.Errorf("ParseAttnImplementation(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseAttnImplementation("flash_attention_2"); err == nil {
		t.Error("flash_attention_2 accepted")
	}
}
