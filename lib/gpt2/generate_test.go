package gpt2

import (
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

func TestGreedyMatchesHF(t *testing.T) {
	m, ref := loadTiny(t, "model.safetensors")
	for _, noCache := range []bool{false, true} {
		opts := DefaultGenerateOptions()
		opts.NoCache = noCache
		var streamed []int
		opts.OnToken = func(_, tok int) { streamed = append(streamed, tok) }
		out, err := m.Generate(ref.GreedyPrompt, opts)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(out, ref.GreedyOutput) {
			t.Errorf("noCache=%v: %v, HF %v", noCache, out, ref.GreedyOutput)
		}
		if !reflect.DeepEqual(streamed, ref.GreedyOutput[0][len(ref.GreedyPrompt[0]):]) {
			t.Errorf("streamed tokens %v", streamed)
		}
	}
}

// The cache changes nothing: the same seed gives the same samples with and without it, and a batch
// of prompts of different lengths (left-padded) gives what each prompt gives alone.
func TestCacheAndBatchAgree(t *testing.T) {
	m, _ := loadTiny(t, "model.safetensors")
	prompts := [][]int{{5, 6, 7, 8, 9, 10, 11}, {42, 17}, {300}}
	opts := DefaultGenerateOptions()
	opts.DoSample, opts.TopK, opts.TopP, opts.Temperature, opts.Seed, opts.MaxNewTokens = true, 20, 0.9, 0.8, 7, 12
	opts.EOSTokenIDs = []int{} // never stop
	withCache, err := m.Generate(prompts, opts)
	if err != nil {
		t.Fatal(err)
	}
	opts.NoCache = true
	without, err := m.Generate(prompts, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(withCache, without) {
		t.Errorf("sampling with cache %v, without %v", withCache, without)
	}
	greedy := DefaultGenerateOptions()
	greedy.EOSTokenIDs = []int{}
	batch, err := m.Generate(prompts, greedy)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range prompts {
		alone, err := m.Generate([][]int{p}, greedy)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(alone[0], batch[i]) {
			t.Errorf("prompt %d alone %v, in a batch %v", i, alone[0], batch[i])
		}
	}
}

func TestGenerateBadInput(t *testing.T) {
	m, _ := loadTiny(t, "model.safetensors")
	long := make([]int, 60)
	opts := DefaultGenerateOptions()
	opts.MaxNewTokens = 20 // explicit: beyond n_positions is an error (the default length is capped: TestDefaultLengthCapped)
	if _, err := m.Generate([][]int{long}, opts); err == nil || !strings.Contains(err.Error(), "exceeds n_positions 64") {
		t.Errorf("long prompt: %v", err)
	}
	opts.TruncatePrompt = true
	out, err := m.Generate([][]int{long}, opts)
	if err != nil || len(out[0]) != 64 {
		t.Errorf("truncated prompt: %v (len %d)", err, len(out[0]))
	}
	if _, err := m.Generate([][]int{{5000}}, DefaultGenerateOptions()); err == nil {
		t.Error("out-of-vocabulary id: no error")
	}
	if _, err := m.Generate([][]int{{}}, DefaultGenerateOptions()); err == nil {
		t.Error("empty prompt: no error")
	}
}

func TestRepetitionPenaltyAndTopK(t *testing.T) {
	g := &generation{opts: GenerateOptions{RepetitionPenalty: 2, DoSample: false}}
	// Token 0 would win, but it was seen: 4/2 = 2 < 3.
	if got := choose(t, g, []float32{4, 3, -1}, []int{0, 2}); got != 1 {
		t.Errorf("repetition penalty: chose %d", got)
	}
	g = &generation{opts: GenerateOptions{DoSample: true, TopK: 1, TopP: 1, Temperature: 1}}
	g.rng = newTestRand()
	for range 20 {
		if got := choose(t, g, []float32{1, 5, 2}, nil); got != 1 {
			t.Fatalf("top_k=1 chose %d", got)
		}
	}
}

func newTestRand() *rand.Rand { return rand.New(rand.NewPCG(1, 2)) }

// choose is generation.choose at the first step, failing the test on an error.
func choose(t *testing.T, g *generation, logits []float32, row []int) int {
	t.Helper()
	got, err := g.choose(logits, row, 0)
	if err != nil {
		t.Fatal(err)
	}
	return got
}
