package gpt2

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gonb-gpt/tutorial/lib/tensorfile"
)

// Save → load gives the same weights, bit for bit, and the same config.
func TestSaveLoadRoundTrip(t *testing.T) {
	m, ref := loadTiny(t, "pytorch_model.bin")
	dir := t.TempDir()
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"config.json", "model.safetensors", "generation_config.json"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("%s not written: %v", f, err)
		}
	}
	again, err := Load(goBackend(t), dir)
	if err != nil {
		t.Fatal(err)
	}
	w1, _ := m.Weights()
	w2, _ := again.Weights()
	for name, a := range w1 {
		b := w2[name]
		if b == nil || len(a.Data) != len(b.Data) {
			t.Fatalf("%s missing after the round trip", name)
		}
		for i := range a.Data {
			if a.Data[i] != b.Data[i] {
				t.Fatalf("%s[%d]: %v → %v", name, i, a.Data[i], b.Data[i])
			}
		}
	}
	// The saved safetensors holds the same tensors as HF's own file.
	hf, _ := tensorfile.ReadSafetensors(filepath.Join(sharedDir(t), "model.safetensors"))
	ours, _ := tensorfile.ReadSafetensors(filepath.Join(dir, "model.safetensors"))
	if len(hf) != len(ours) {
		t.Errorf("%d tensors saved, HF's file has %d", len(ours), len(hf))
	}
	c1, _ := os.ReadFile(filepath.Join(sharedDir(t), "config.json"))
	c2, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	if !strings.Contains(string(c2), `"summary_type": "cls_index"`) || !strings.Contains(string(c1), "summary_type") {
		t.Error("config.json lost the fields this package does not use")
	}
	loss, err := again.Loss(ref.InputIDs, nil)
	if err != nil || loss != mustLoss(t, m, ref.InputIDs) {
		t.Errorf("loss after the round trip %v (%v)", loss, err)
	}
}

func sharedDir(t *testing.T) string { _, dir := loadReference(t); return dir }

func mustLoss(t *testing.T, m *Model, ids [][]int) float64 {
	l, err := m.Loss(ids, nil)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestWeightErrors(t *testing.T) {
	_, dir := loadReference(t)
	cfg, _ := LoadConfig(filepath.Join(dir, "config.json"))
	weights, err := tensorfile.ReadSafetensors(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	delete(weights, "transformer.ln_f.bias")
	weights["transformer.wpe.weight"].Shape = []int{32, 128}
	mm, err := New(goBackend(t), cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	err = mm.SetWeights(weights)
	if err == nil || !strings.Contains(err.Error(), "missing transformer.ln_f.bias") || !strings.Contains(err.Error(), "transformer.wpe.weight: checkpoint [32 128], model [64 64]") {
		t.Errorf("err = %v", err)
	}
	// Without the "transformer." prefix, with an explicit lm_head and legacy buffers: accepted.
	w2, _ := tensorfile.ReadSafetensors(filepath.Join(dir, "model.safetensors"))
	plain := map[string]*tensorfile.Tensor{}
	for k, v := range w2 {
		plain[strings.TrimPrefix(k, "transformer.")] = v
	}
	plain["lm_head.weight"] = w2["transformer.wte.weight"]
	plain["h.0.attn.bias"] = &tensorfile.Tensor{Shape: []int{1}, Data: []float32{1}}
	plain["extra.thing"] = &tensorfile.Tensor{Shape: []int{1}, Data: []float32{1}}
	if err := mm.SetWeights(plain); err != nil {
		t.Fatal(err)
	}
	if len(mm.Warnings) != 1 || !strings.Contains(mm.Warnings[0], "extra.thing") {
		t.Errorf("warnings %v", mm.Warnings)
	}
}
