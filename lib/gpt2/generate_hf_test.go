package gpt2

import (
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/gonb-gpt/tutorial/lib/internal/testbackend"
)

func intp(v int) *int           { return &v }
func floatp(v float64) *float64 { return &v }

// generate runs m.Generate, failing the test on an error.
func generate(t *testing.T, m *Model, prompts [][]int, o GenerateOptions) [][]int {
	t.Helper()
	out, err := m.Generate(prompts, o)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// generation_config.json fills the defaults of generate(), as
// GenerationMixin._prepare_generation_config merges it: the call's arguments over the model's
// generation config over GenerationConfig's global defaults. Here a config that samples with
// top_k 1 (so: greedily) and asks for 5 new tokens.
func TestGenerationConfigFillsDefaults(t *testing.T) {
	m, ref := loadTiny(t, "model.safetensors")
	prompt, greedy := ref.GreedyPrompt, ref.GreedyOutput[0]
	P := len(prompt[0])
	m.Generation = &GenerationConfig{DoSample: boolp(true), TopK: intp(1), MaxNewTokens: intp(5), EOSTokenIDs: []int{999}}
	o := m.DefaultGenerateOptions()
	if !o.DoSample || o.TopK != 1 || o.MaxNewTokens != 5 || !reflect.DeepEqual(o.EOSTokenIDs, []int{999}) || o.TopP != 1 || o.Temperature != 1 {
		t.Fatalf("options from the generation config: %+v", o)
	}
	if out := generate(t, m, prompt, o); !reflect.DeepEqual(out[0], greedy[:P+5]) {
		t.Errorf("with the file's defaults: %v, want %v", out[0], greedy[:P+5])
	}
	// An explicit option overrides the file, as generate()'s keyword arguments do.
	o.MaxNewTokens = 3
	if out := generate(t, m, prompt, o); len(out[0]) != P+3 {
		t.Errorf("max_new_tokens 3 over the file's 5: %d new tokens", len(out[0])-P)
	}
	// max_length from the file is the total length; max_new_tokens wins when both are set
	// (_prepare_generated_length).
	m.Generation = &GenerationConfig{MaxLength: intp(P + 2)}
	if out := generate(t, m, prompt, m.DefaultGenerateOptions()); len(out[0]) != P+2 {
		t.Errorf("max_length %d: output of %d tokens", P+2, len(out[0]))
	}
	o = m.DefaultGenerateOptions()
	o.MaxNewTokens = 4
	if out := generate(t, m, prompt, o); len(out[0]) != P+4 {
		t.Errorf("max_new_tokens 4 with max_length %d: %d new tokens, want 4 (max_new_tokens wins)", P+2, len(out[0])-P)
	}
	// Without generation_config.json, transformers derives one from config.json: its special tokens.
	m.Generation = nil
	o = m.DefaultGenerateOptions()
	if !reflect.DeepEqual(o.EOSTokenIDs, []int{0}) || o.PadTokenID != nil || o.DoSample || o.TopK != 50 || o.MaxNewTokens != 0 {
		t.Errorf("options from config.json: %+v", o)
	}
}

func boolp(v bool) *bool { return &v }

// With neither max_length nor max_new_tokens set, generate adds 20 tokens but caps the total at
// max_position_embeddings (n_positions), as GenerationMixin._prepare_generated_length does, instead
// of failing; a prompt that leaves no room fails as _validate_generated_length does (input length
// ≥ max_length). An explicit length beyond n_positions fails (TestGenerateBadInput).
func TestDefaultLengthCapped(t *testing.T) {
	m, _ := loadTiny(t, "model.safetensors")
	o := DefaultGenerateOptions()
	o.EOSTokenIDs = []int{}
	prompt := make([]int, 60)
	for i := range prompt {
		prompt[i] = 5 + i
	}
	if out := generate(t, m, [][]int{prompt}, o); len(out[0]) != 64 {
		t.Errorf("a 60-token prompt with the default length: %d tokens, want 64 (capped at n_positions)", len(out[0]))
	}
	full := append(prompt, 1, 2, 3, 4)
	if _, err := m.Generate([][]int{full}, o); err == nil || !strings.Contains(err.Error(), "no room") {
		t.Errorf("a 64-token prompt: %v", err)
	}
	o.TruncatePrompt = true
	if out := generate(t, m, [][]int{full}, o); len(out[0]) != 64 || !slices.Equal(out[0][:44], full[20:]) {
		t.Errorf("a 64-token prompt truncated: %v", out[0])
	}
	o.TruncatePrompt = false
	o.MaxLength = 65
	if _, err := m.Generate([][]int{prompt}, o); err == nil || !strings.Contains(err.Error(), "max_length 65 exceeds n_positions 64") {
		t.Errorf("max_length 65: %v", err)
	}
	o.MaxLength = 60
	if _, err := m.Generate([][]int{prompt}, o); err == nil || !strings.Contains(err.Error(), "input length of input_ids is 60, but max_length is set to 60") {
		t.Errorf("max_length 60 for a 60-token prompt: %v", err)
	}
}

// eos_token_id may be a list: a sequence stops on any of them, and the pad token (unset here)
// falls back to the first, as GenerationMixin._prepare_special_tokens does (EosTokenCriteria over
// the list; finished sequences filled with pad_token_id).
func TestEOSList(t *testing.T) {
	m, ref := loadTiny(t, "model.safetensors")
	p1, p2 := ref.GreedyPrompt[0], []int{42, 17, 300}
	o := DefaultGenerateOptions()
	o.MaxNewTokens, o.EOSTokenIDs = 6, []int{}
	alone1, alone2 := generate(t, m, [][]int{p1}, o)[0], generate(t, m, [][]int{p2}, o)[0]
	stop := alone1[len(p1)] // p1's first new token
	if slices.Contains(alone2[len(p2):], stop) {
		t.Fatalf("the fixture changed: %v continues with %d too", alone2, stop)
	}
	o.EOSTokenIDs = []int{999, stop}
	out := generate(t, m, [][]int{p1, p2}, o)
	want1 := append(slices.Clone(p1), stop, 999, 999, 999, 999, 999)
	if !reflect.DeepEqual(out[0], want1) || !reflect.DeepEqual(out[1], alone2) {
		t.Errorf("eos [999 %d]: %v, want %v and %v", stop, out, want1, alone2)
	}
	// The model's generation config may hold the list.
	m.Generation = &GenerationConfig{EOSTokenIDs: []int{stop, 999}}
	o.EOSTokenIDs = nil
	if out := generate(t, m, [][]int{p1}, o); !reflect.DeepEqual(out[0], append(slices.Clone(p1), stop)) {
		t.Errorf("eos list from generation_config.json: %v", out[0])
	}
}

// Validation as transformers rejects, where it does: the logits processors' constructors
// (logits_process.py) for the processors _get_logits_processor builds — TemperatureLogitsWarper,
// TopKLogitsWarper and TopPLogitsWarper only when sampling, RepetitionPenaltyLogitsProcessor
// whenever penalty ≠ 1 — and GenerationConfig.validate (max_new_tokens).
func TestValidateAsHF(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(o *GenerateOptions)
		want string // "" accepted
	}{
		{"temperature 0 greedy", func(o *GenerateOptions) { o.Temperature = 0 }, ""},
		{"temperature 0 sampling", func(o *GenerateOptions) { o.DoSample, o.Temperature = true, 0 }, "temperature = 0"},
		{"temperature -1 sampling", func(o *GenerateOptions) { o.DoSample, o.Temperature = true, -1 }, "temperature = -1"},
		{"top_k -1 greedy", func(o *GenerateOptions) { o.TopK = -1 }, ""},
		{"top_k -1 sampling", func(o *GenerateOptions) { o.DoSample, o.TopK = true, -1 }, "top_k = -1"},
		{"top_k 0 sampling", func(o *GenerateOptions) { o.DoSample, o.TopK = true, 0 }, ""},
		{"top_p -0.1 sampling", func(o *GenerateOptions) { o.DoSample, o.TopP = true, -0.1 }, "top_p = -0.1"},
		{"top_p NaN sampling", func(o *GenerateOptions) { o.DoSample, o.TopP = true, math.NaN() }, "top_p = NaN"},
		{"top_p 0 sampling", func(o *GenerateOptions) { o.DoSample, o.TopP = true, 0 }, ""},
		// generate builds TopPLogitsWarper only for top_p < 1: a larger value is off, not an error.
		{"top_p 1.5 sampling", func(o *GenerateOptions) { o.DoSample, o.TopP = true, 1.5 }, ""},
		{"repetition_penalty 0", func(o *GenerateOptions) { o.RepetitionPenalty = 0 }, "repetition_penalty = 0"},
		{"repetition_penalty -1", func(o *GenerateOptions) { o.RepetitionPenalty = -1 }, "repetition_penalty = -1"},
		{"repetition_penalty NaN", func(o *GenerateOptions) { o.RepetitionPenalty = math.NaN() }, "repetition_penalty = NaN"},
		{"repetition_penalty +Inf", func(o *GenerateOptions) { o.RepetitionPenalty = math.Inf(1) }, "repetition_penalty = +Inf"},
		{"max_new_tokens -1", func(o *GenerateOptions) { o.MaxNewTokens = -1 }, "max_new_tokens = -1"},
		{"max_length -1", func(o *GenerateOptions) { o.MaxLength = -1 }, "max_length = -1"},
		{"min_new_tokens -1", func(o *GenerateOptions) { o.MinNewTokens = -1 }, ""},
		{"no_repeat_ngram_size -1", func(o *GenerateOptions) { o.NoRepeatNGramSize = -1 }, ""},
		{"attention mask without Padded", func(o *GenerateOptions) { o.AttentionMask = [][]int{{1}} }, "needs Padded"},
	} {
		o := DefaultGenerateOptions()
		tc.set(&o)
		err := o.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v, want no error", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.want)
		}
	}
	// generation_config.json with max_new_tokens 0 does not load (GenerationConfig.validate raises).
	var gc GenerationConfig
	if err := gc.UnmarshalJSON([]byte(`{"max_new_tokens": 0}`)); err != nil {
		t.Fatal(err)
	}
	if err := gc.Validate(); err == nil {
		t.Error("max_new_tokens 0 in generation_config.json: no error")
	}
}

// top_p = 0 keeps only the most likely token: TopPLogitsWarper removes the tokens whose
// cumulative probability (ascending) is ≤ 1 − top_p but keeps min_tokens_to_keep = 1.
func TestTopPZeroKeepsMostLikely(t *testing.T) {
	g := &generation{opts: GenerateOptions{DoSample: true, TopP: 0, Temperature: 1, RepetitionPenalty: 1}, rng: newTestRand()}
	for range 100 {
		if got := choose(t, g, []float32{1, 5, 2, 4.9}, nil); got != 1 {
			t.Fatalf("top_p 0 chose %d", got)
		}
	}
	// And top_p 1 (off) samples the others too.
	g.opts.TopP = 1
	seen := map[int]bool{}
	for range 200 {
		seen[choose(t, g, []float32{1, 5, 2, 4.9}, nil)] = true
	}
	if !seen[3] {
		t.Errorf("top_p 1 never chose token 3 (probability ≈ 0.47): %v", seen)
	}
}

// MinNewTokensLengthLogitsProcessor: the EOS logits are −inf until min_new_tokens tokens were
// generated (and MinLengthLogitsProcessor for min_length, which min_new_tokens replaces); with an
// EOS list, every EOS.
func TestMinNewTokens(t *testing.T) {
	g := &generation{opts: GenerateOptions{MinNewTokens: 2, RepetitionPenalty: 1}, eos: []int{0, 3}, minLength: 3 + 2}
	logits := []float32{9, 1, 2, 8}
	prompt := []int{5, 6, 7}
	if got, _ := g.choose(logits, prompt, 0); got != 2 {
		t.Errorf("step 0: chose %d, want 2 (both EOS banned)", got)
	}
	if got, _ := g.choose(logits, append(prompt, 2), 1); got != 2 {
		t.Errorf("step 1: chose %d, want 2", got)
	}
	if got, _ := g.choose(logits, append(prompt, 2, 2), 2); got != 0 {
		t.Errorf("step 2: chose %d, want the EOS 0", got)
	}
	// The model: tiny's greedy continuation is 227 again and again; with 227 as EOS and
	// min_new_tokens 3 the EOS comes after 3 tokens at the earliest.
	m, ref := loadTiny(t, "model.safetensors")
	o := DefaultGenerateOptions()
	o.MaxNewTokens, o.EOSTokenIDs = 8, []int{227}
	p := ref.GreedyPrompt[0]
	if out := generate(t, m, [][]int{p}, o); len(out[0]) != len(p)+1 {
		t.Fatalf("without min_new_tokens: %v", out[0])
	}
	o.MinNewTokens = 3
	out := generate(t, m, [][]int{p}, o)[0]
	if slices.Contains(out[len(p):len(p)+3], 227) || len(out) < len(p)+4 || (len(out) < len(p)+8 && out[len(out)-1] != 227) {
		t.Errorf("min_new_tokens 3: %v", out)
	}
}

// NoRepeatNGramLogitsProcessor: a token that would repeat an n-gram of input_ids (the prompt
// included) is banned (−inf).
func TestNoRepeatNGram(t *testing.T) {
	if got := bannedNGramTokens([]int{5, 6, 7, 5, 6}, 3); !reflect.DeepEqual(got, []int{7}) {
		t.Errorf("banned after 5 6 7 5 6 (n=3): %v", got)
	}
	if got := bannedNGramTokens([]int{5, 6}, 4); got != nil {
		t.Errorf("too short: %v", got)
	}
	if got := bannedNGramTokens([]int{5, 6, 5}, 1); !reflect.DeepEqual(got, []int{5, 6, 5}) {
		t.Errorf("n=1: %v", got)
	}
	g := &generation{opts: GenerateOptions{NoRepeatNGramSize: 3, RepetitionPenalty: 1}}
	if got := choose(t, g, []float32{0, 0, 0, 0, 0, 1, 2, 9}, []int{5, 6, 7, 5, 6}); got != 6 {
		t.Errorf("chose %d, want 6 (7 banned)", got)
	}
	// The model: tiny's greedy continuation repeats 227; with no_repeat_ngram_size 2 no bigram of
	// the whole sequence occurs twice, and the cache changes nothing.
	m, ref := loadTiny(t, "model.safetensors")
	o := DefaultGenerateOptions()
	o.MaxNewTokens, o.EOSTokenIDs, o.NoRepeatNGramSize = 15, []int{}, 2
	var outs [][]int
	for _, noCache := range []bool{false, true} {
		o.NoCache = noCache
		out := generate(t, m, ref.GreedyPrompt, o)[0]
		seen := map[[2]int]bool{}
		for i := 0; i+1 < len(out); i++ {
			bg := [2]int{out[i], out[i+1]}
			if seen[bg] {
				t.Errorf("noCache=%v: bigram %v repeated in %v", noCache, bg, out)
			}
			seen[bg] = true
		}
		outs = append(outs, out)
	}
	if !reflect.DeepEqual(outs[0], outs[1]) {
		t.Errorf("with cache %v, without %v", outs[0], outs[1])
	}
}

// RepetitionPenaltyLogitsProcessor gathers the scores at every id of input_ids: in a left-padded
// batch the pad id is among them, so its logit is penalized too.
func TestRepetitionPenaltyCountsPadding(t *testing.T) {
	g := &generation{opts: GenerateOptions{RepetitionPenalty: 2}}
	// The pad id 0 would win (4 > 3), but it is in the row: 4/2 = 2 < 3.
	if got := choose(t, g, []float32{4, 3, -1}, []int{0, 0, 2}); got != 1 {
		t.Errorf("chose %d, want 1 (the pad id penalized)", got)
	}
	// The model: a ragged batch is the padded batch transformers builds (pad ids, masked) — the
	// same output as that batch given Padded with its attention mask.
	m, _ := loadTiny(t, "model.safetensors")
	o := DefaultGenerateOptions()
	o.MaxNewTokens, o.EOSTokenIDs, o.RepetitionPenalty, o.PadTokenID = 8, []int{}, 1.5, intp(7)
	ragged := generate(t, m, [][]int{{5, 6, 8, 9, 10}, {42, 17}}, o)
	o.Padded, o.AttentionMask = true, [][]int{{1, 1, 1, 1, 1}, {0, 0, 0, 1, 1}}
	padded := generate(t, m, [][]int{{5, 6, 8, 9, 10}, {7, 7, 7, 42, 17}}, o)
	if !reflect.DeepEqual(ragged[0], padded[0]) || !reflect.DeepEqual(ragged[1], padded[1][3:]) {
		t.Errorf("ragged %v, padded %v", ragged, padded)
	}
}

// A rectangular padded batch without an attention mask gets the one
// GenerationMixin._prepare_attention_mask_for_generation infers: input_ids ≠ pad_token_id when the
// pad occurs in the inputs and is not an EOS; all ones when the pad is an EOS.
func TestPaddedInferredMask(t *testing.T) {
	m, _ := loadTiny(t, "model.safetensors")
	rows := [][]int{{5, 6, 8, 9, 10, 11, 12}, {7, 7, 7, 7, 7, 42, 17}}
	o := DefaultGenerateOptions()
	o.MaxNewTokens, o.EOSTokenIDs, o.PadTokenID, o.Padded = 6, []int{}, intp(7), true
	inferred := generate(t, m, rows, o)
	o.AttentionMask = [][]int{{1, 1, 1, 1, 1, 1, 1}, {0, 0, 0, 0, 0, 1, 1}}
	if masked := generate(t, m, rows, o); !reflect.DeepEqual(inferred, masked) {
		t.Errorf("pad ≠ EOS: inferred %v, with the mask of the pad tokens %v", inferred, masked)
	}
	o.Padded, o.AttentionMask = false, nil
	if ragged := generate(t, m, [][]int{rows[0], {42, 17}}, o); !reflect.DeepEqual(ragged[1], inferred[1][5:]) {
		t.Errorf("pad ≠ EOS: padded %v, ragged %v", inferred, ragged)
	}
	// The pad is an EOS (tiny: eos 0, no pad): nothing is masked.
	rows[1] = []int{0, 0, 0, 0, 0, 42, 17}
	o.PadTokenID, o.EOSTokenIDs, o.Padded = nil, nil, true
	o.MaxNewTokens = 6
	unmasked := generate(t, m, rows, o)
	o.AttentionMask = [][]int{{1, 1, 1, 1, 1, 1, 1}, {1, 1, 1, 1, 1, 1, 1}}
	if ones := generate(t, m, rows, o); !reflect.DeepEqual(unmasked, ones) {
		t.Errorf("pad = EOS: inferred %v, all ones %v", unmasked, ones)
	}
	if _, err := m.Generate([][]int{{1, 2}, {3}}, o); err == nil || !strings.Contains(err.Error(), "rectangular") {
		t.Errorf("a ragged Padded batch: %v", err)
	}
}

// token_type_ids in generate: GPT2Model adds wte(token_type_ids) to the inputs, and
// _update_model_kwargs_for_generation extends them with each row's last value. Each generated token
// is the argmax of BatchLogits over the sequence so far with the types so extended, with and
// without the cache; zeros (the tutorial's PreTrainedTokenizerFast) change the output of a model
// whose wte[0] is not zero.
func TestGenerateTokenTypes(t *testing.T) {
	cfg := DefaultConfig()
	cfg.VocabSize, cfg.NPositions, cfg.NEmbd, cfg.NLayer, cfg.NHead = 50, 32, 16, 1, 2
	cfg.EOSTokenID, cfg.BOSTokenID = nil, nil
	m, err := New(testbackend.Get(t), cfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	prompts := [][]int{{3, 9, 4, 17, 8}, {11, 2}}
	types := [][]int{{0, 0, 1, 1, 2}, {0, 0}}
	argmax := func(x []float32) int {
		best := 0
		for i := range x {
			if x[i] > x[best] {
				best = i
			}
		}
		return best
	}
	o := DefaultGenerateOptions()
	o.MaxNewTokens = 6
	var outs [][][]int
	for _, noCache := range []bool{false, true} {
		o.NoCache, o.TokenTypeIDs = noCache, types
		out := generate(t, m, prompts, o)
		outs = append(outs, out)
		for b, seq := range out {
			P := len(prompts[b])
			for k := P; k < len(seq); k++ {
				tt := slices.Clone(types[b])
				for len(tt) < k {
					tt = append(tt, types[b][P-1])
				}
				logits, err := m.BatchLogits(Batch{InputIDs: [][]int{seq[:k]}, TokenTypeIDs: [][]int{tt}})
				if err != nil {
					t.Fatal(err)
				}
				if want := argmax(logits[0][k-1]); seq[k] != want {
					t.Errorf("noCache=%v, sequence %d, token %d: generated %d, BatchLogits' argmax %d", noCache, b, k, seq[k], want)
				}
			}
		}
	}
	if !reflect.DeepEqual(outs[0], outs[1]) {
		t.Errorf("with cache %v, without %v", outs[0], outs[1])
	}
	o.NoCache, o.TokenTypeIDs = false, [][]int{make([]int, 5), make([]int, 2)}
	zeros := generate(t, m, prompts, o)
	o.TokenTypeIDs = nil
	none := generate(t, m, prompts, o)
	if reflect.DeepEqual(zeros, none) {
		t.Errorf("token_type_ids of zeros changed nothing: %v", none)
	}
	o.TokenTypeIDs = [][]int{{0, 0}, {0}}
	if _, err := m.Generate(prompts, o); err == nil {
		t.Error("token_type_ids of the wrong shape: no error")
	}
}
