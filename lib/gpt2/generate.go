package gpt2

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck // GoMLX's idiomatic dot-import.
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// GenerateOptions are HF generate()'s arguments, with its defaults (see DefaultGenerateOptions).
type GenerateOptions struct {
	MaxNewTokens int
	// DoSample samples (with Temperature, TopK, TopP) instead of taking the most likely token.
	DoSample          bool
	TopK              int     // 0: no top-k (HF's default is 50)
	TopP              float64 // 1: no nucleus filtering
	Temperature       float64 // 1: none
	RepetitionPenalty float64 // 1: none
	// Seed makes sampling reproducible.
	Seed uint64
	// EOSTokenID stops a sequence (nil: the model's eos_token_id; a negative value: never stop).
	EOSTokenID *int
	// PadTokenID fills finished sequences (nil: the pad_token_id of the model, else the EOS).
	PadTokenID *int
	// NoCache recomputes the whole sequence at each step instead of using the key/value cache.
	NoCache bool
	// TruncatePrompt keeps the last tokens of a prompt that, with MaxNewTokens, would not fit
	// n_positions; without it such a prompt is an error.
	TruncatePrompt bool
	// OnToken is called with each new token as it is chosen (sequence index, token id).
	OnToken func(seq, token int)
}

// DefaultGenerateOptions returns HF GenerationConfig's defaults: 20 new tokens, top_k 50 (used
// when sampling), top_p 1, temperature 1, no repetition penalty.
func DefaultGenerateOptions() GenerateOptions {
	return GenerateOptions{MaxNewTokens: 20, TopK: 50, TopP: 1, Temperature: 1, RepetitionPenalty: 1}
}

// Validate checks the options as HF's generate does before it runs: max_new_tokens ≥ 1, and the
// logits processors' own checks (transformers' generation/logits_process.py: TemperatureLogitsWarper
// wants temperature > 0 and TopPLogitsWarper top_p in [0, 1], both used only when sampling;
// RepetitionPenaltyLogitsProcessor wants penalty > 0). top_k 0 turns top-k off, as in HF.
func (o GenerateOptions) Validate() error {
	bad := func(name string, v any, want string) error {
		return fmt.Errorf("gpt2: generate: %s = %v: want %s", name, v, want)
	}
	switch {
	case o.MaxNewTokens < 1:
		return bad("max_new_tokens", o.MaxNewTokens, "a whole number ≥ 1")
	case o.TopK < 0:
		return bad("top_k", o.TopK, "a whole number ≥ 0 (0: off)")
	case !(o.RepetitionPenalty > 0) || math.IsInf(o.RepetitionPenalty, 0):
		return bad("repetition_penalty", o.RepetitionPenalty, "a number > 0 (1: off)")
	case o.DoSample && (!(o.Temperature > 0) || math.IsInf(o.Temperature, 0)):
		return bad("temperature", o.Temperature, "a number > 0 when sampling (greedy decoding: leave do_sample off)")
	case o.DoSample && !(o.TopP >= 0 && o.TopP <= 1):
		return bad("top_p", o.TopP, "a number in [0, 1] (1: off)")
	}
	return nil
}

// cacheBucket rounds cache lengths up so that one program serves many lengths.
const cacheBucket = 64

// promptBucket rounds prompt lengths up (left padding, masked out) for the same reason.
const promptBucket = 16

func roundUp(n, m int) int { return (n + m - 1) / m * m }

// Generate continues each prompt, as HF's generate does for a decoder-only model: prompts of
// different lengths are left-padded and masked, positions count from each prompt's first real
// token, a sequence that emits the EOS is then filled with the pad token until all are done. It
// returns each prompt followed by its new tokens (without the left padding).
func (m *Model) Generate(prompts [][]int, opts GenerateOptions) ([][]int, error) {
	if len(prompts) == 0 {
		return nil, errors.New("gpt2: no prompt")
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	eos := -1
	if opts.EOSTokenID != nil {
		eos = *opts.EOSTokenID
	} else if m.Config.EOSTokenID != nil {
		eos = *m.Config.EOSTokenID
	}
	pad := eos
	if opts.PadTokenID != nil {
		pad = *opts.PadTokenID
	} else if m.Config.PadTokenID != nil {
		pad = *m.Config.PadTokenID
	}
	if pad < 0 {
		pad = 0
	}
	maxLen := m.Config.NPositions
	seqs := make([][]int, len(prompts))
	P := 0
	for i, p := range prompts {
		if len(p) == 0 {
			return nil, fmt.Errorf("gpt2: prompt %d is empty", i)
		}
		for _, id := range p {
			if id < 0 || id >= m.Config.VocabSize {
				return nil, fmt.Errorf("gpt2: prompt %d: token id %d is outside the vocabulary (size %d)", i, id, m.Config.VocabSize)
			}
		}
		if len(p)+opts.MaxNewTokens > maxLen {
			if !opts.TruncatePrompt {
				return nil, fmt.Errorf("gpt2: prompt %d has %d tokens; with %d new ones that exceeds n_positions %d (shorten it, or truncate the prompt)",
					i, len(p), opts.MaxNewTokens, maxLen)
			}
			keep := maxLen - opts.MaxNewTokens
			if keep <= 0 {
				return nil, fmt.Errorf("gpt2: max_new_tokens %d leaves no room in n_positions %d", opts.MaxNewTokens, maxLen)
			}
			p = p[len(p)-keep:]
		}
		seqs[i] = append([]int(nil), p...)
		P = max(P, len(p))
	}
	g := &generation{m: m, opts: opts, seqs: seqs, eos: eos, pad: pad, rng: rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x5851f42d4c957f2d))}
	if opts.NoCache {
		return g.run(P, false)
	}
	return g.run(P, true)
}

// generation is the state of one Generate call.
type generation struct {
	m        *Model
	opts     GenerateOptions
	seqs     [][]int
	eos, pad int
	rng      *rand.Rand
}

func (g *generation) run(P int, useCache bool) ([][]int, error) {
	m, B := g.m, len(g.seqs)
	Pb := min(roundUp(P, promptBucket), m.Config.NPositions)
	if Pb < P {
		Pb = P
	}
	L := min(roundUp(Pb+g.opts.MaxNewTokens, cacheBucket), m.Config.NPositions+(Pb-P))
	// Slots: [left padding | prompt | new tokens]; slot s holds token s of the padded sequence.
	ids := make([]int32, B*L)
	mask := make([]bool, B*L)
	pos := make([]int32, B*L)
	for b, s := range g.seqs {
		left := Pb - len(s)
		for t, id := range s {
			ids[b*L+left+t] = int32(id)
			mask[b*L+left+t] = true
			pos[b*L+left+t] = int32(t)
		}
	}
	done := make([]bool, B)
	var cacheK, cacheV []*tensors.Tensor
	H, hd := m.Config.NHead, m.Config.HeadDim()
	if useCache {
		for range m.Config.NLayer {
			cacheK = append(cacheK, tensors.FromShape(shapes.Make(dtypes.Float32, B, H, L, hd)))
			cacheV = append(cacheV, tensors.FromShape(shapes.Make(dtypes.Float32, B, H, L, hd)))
		}
	}
	cur := Pb // next slot to fill
	for step := 0; step < g.opts.MaxNewTokens; step++ {
		var last [][]float32
		var err error
		if useCache {
			start, T := cur-1, 1
			if step == 0 {
				start, T = 0, Pb
			}
			last, cacheK, cacheV, err = g.cachedStep(ids, pos, mask, B, L, start, T, cacheK, cacheV)
		} else {
			last, err = g.fullStep(ids, pos, mask, B, L, cur-1)
		}
		if err != nil {
			return nil, err
		}
		allDone := true
		for b := range B {
			next := g.pad
			if !done[b] {
				next = g.choose(last[b], g.seqs[b])
				if g.opts.OnToken != nil {
					g.opts.OnToken(b, next)
				}
				if next == g.eos {
					done[b] = true
				}
			}
			g.seqs[b] = append(g.seqs[b], next)
			ids[b*L+cur] = int32(next)
			mask[b*L+cur] = true
			pos[b*L+cur] = int32(len(g.seqs[b]) - 1)
			allDone = allDone && done[b]
		}
		cur++
		if allDone || cur >= L {
			break
		}
	}
	return g.seqs, nil
}

// cachedStep runs T tokens starting at slot start through the model with the cache, returning the
// logits of the last of them and the updated caches.
func (g *generation) cachedStep(ids []int32, pos []int32, mask []bool, B, L, start, T int, cacheK, cacheV []*tensors.Tensor) ([][]float32, []*tensors.Tensor, []*tensors.Tensor, error) {
	m := g.m
	nl := m.Config.NLayer
	e, err := m.exec("generate-cached", func(scope *model.Scope, in []*Node) []*Node {
		kIn, vIn := in[4:4+nl], in[4+nl:4+2*nl]
		out := m.Config.forward(scope.Store(), forwardInputs{ids: in[0], positions: in[1], keyMask: in[2],
			offset: in[3], cacheK: kIn, cacheV: vIn, dynamicUpdate: m.supports(compute.OpTypeDynamicUpdateSlice)}, false, nil)
		Tn := out.logits.Shape().Dim(1)
		last := Squeeze(Slice(out.logits, AxisRange(), AxisRange(Tn-1, Tn), AxisRange()), 1)
		return append(append([]*Node{last}, out.cacheK...), out.cacheV...)
	})
	if err != nil {
		return nil, nil, nil, err
	}
	sub := func(flat []int32) *tensors.Tensor {
		out := make([]int32, B*T)
		for b := range B {
			copy(out[b*T:], flat[b*L+start:b*L+start+T])
		}
		return tensors.FromFlatDataAndDimensions(out, B, T)
	}
	args := []any{sub(ids), sub(pos), tensors.FromFlatDataAndDimensions(mask, B, L), int32(start)}
	for _, c := range cacheK {
		args = append(args, c)
	}
	for _, c := range cacheV {
		args = append(args, c)
	}
	out, err := call(e, args...)
	if err != nil {
		return nil, nil, nil, err
	}
	return splitRows(out[0], B, m.Config.VocabSize), out[1 : 1+nl], out[1+nl:], nil
}

// fullStep runs the whole padded sequence and returns the logits at slot at.
func (g *generation) fullStep(ids []int32, pos []int32, mask []bool, B, L, at int) ([][]float32, error) {
	m := g.m
	e, err := m.exec("generate-full", func(scope *model.Scope, in []*Node) []*Node {
		out := m.Config.forward(scope.Store(), forwardInputs{ids: in[0], positions: in[1], keyMask: in[2]}, false, nil)
		// The logits at slot `at` of every sequence (a gather: the pure-Go backend has no DynamicSlice).
		V := m.Config.VocabSize
		gr := in[0].Graph()
		rows := Add(MulScalar(Iota(gr, shapes.Make(dtypes.Int32, B, 1), 0), int32(L)), BroadcastToDims(ConvertDType(in[3], dtypes.Int32), B, 1))
		return []*Node{Gather(Reshape(out.logits, B*L, V), rows)}
	})
	if err != nil {
		return nil, err
	}
	out, err := call(e, tensors.FromFlatDataAndDimensions(ids, B, L), tensors.FromFlatDataAndDimensions(pos, B, L),
		tensors.FromFlatDataAndDimensions(mask, B, L), int32(at))
	if err != nil {
		return nil, err
	}
	return splitRows(out[0], B, m.Config.VocabSize), nil
}

func splitRows(t *tensors.Tensor, B, V int) [][]float32 {
	flat := tensors.MustCopyFlatData[float32](t)
	rows := make([][]float32, B)
	for b := range B {
		rows[b] = flat[b*V : (b+1)*V]
	}
	return rows
}

// choose picks the next token from the logits, applying HF's processors in its order:
// repetition penalty, then (when sampling) temperature, top-k and top-p.
func (g *generation) choose(logits []float32, seq []int) int {
	o := g.opts
	x := make([]float64, len(logits))
	for i, v := range logits {
		x[i] = float64(v)
	}
	if o.RepetitionPenalty > 0 && o.RepetitionPenalty != 1 {
		seen := map[int]bool{}
		for _, id := range seq {
			if seen[id] {
				continue
			}
			seen[id] = true
			if x[id] < 0 {
				x[id] *= o.RepetitionPenalty
			} else {
				x[id] /= o.RepetitionPenalty
			}
		}
	}
	if !o.DoSample {
		best := 0
		for i := range x {
			if x[i] > x[best] {
				best = i
			}
		}
		return best
	}
	if o.Temperature > 0 && o.Temperature != 1 {
		for i := range x {
			x[i] /= o.Temperature
		}
	}
	order := make([]int, len(x))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return x[order[a]] > x[order[b]] })
	keep := len(order)
	if o.TopK > 0 && o.TopK < keep {
		// HF keeps every token whose logit is ≥ the k-th largest.
		kth := x[order[o.TopK-1]]
		keep = o.TopK
		for keep < len(order) && x[order[keep]] >= kth {
			keep++
		}
	}
	// Softmax over the kept tokens.
	probs := make([]float64, keep)
	maxv, sum := x[order[0]], 0.0
	for i := range keep {
		probs[i] = math.Exp(x[order[i]] - maxv)
		sum += probs[i]
	}
	for i := range probs {
		probs[i] /= sum
	}
	if o.TopP > 0 && o.TopP < 1 {
		// HF removes the tail (ascending) whose cumulative probability is ≤ 1 − top_p, keeping ≥ 1.
		tail := 0.0
		cut := keep
		for i := keep - 1; i >= 1; i-- {
			tail += probs[i]
			if tail > 1-o.TopP {
				break
			}
			cut = i
		}
		keep = cut
		sum = 0
		for i := range keep {
			sum += probs[i]
		}
		for i := range keep {
			probs[i] /= sum
		}
	}
	r := g.rng.Float64()
	for i := range keep {
		r -= probs[i]
		if r <= 0 {
			return order[i]
		}
	}
	return order[keep-1]
}

// supports reports whether the backend implements an op.
func (m *Model) supports(op compute.OpType) bool {
	return m.Backend.Capabilities().Operations[op]
}
