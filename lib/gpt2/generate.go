package gpt2

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck // GoMLX's idiomatic dot-import.
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// GenerateOptions are HF generate()'s arguments. DefaultGenerateOptions gives transformers' global
// defaults (GenerationConfig._get_default_generation_params); Model.DefaultGenerateOptions starts
// from the model's generation_config.json instead, as generate() called without arguments does.
type GenerateOptions struct {
	// MaxNewTokens is max_new_tokens: how many tokens to add (0: unset). It wins over MaxLength.
	MaxNewTokens int
	// MaxLength is max_length: the total length, the (padded) prompt included (0: unset). With
	// neither set, transformers' default applies: 20 new tokens, the total capped at n_positions
	// (GenerationMixin._prepare_generated_length).
	MaxLength int
	// MinNewTokens is min_new_tokens: the EOS cannot be chosen before that many new tokens (0: none).
	MinNewTokens int
	// MinLength is min_length: the EOS cannot be chosen before the sequence (the padded prompt
	// included) is that long (0: none; MinNewTokens, when set, replaces it, as in transformers).
	MinLength int
	// DoSample samples (with Temperature, TopK, TopP) instead of taking the most likely token.
	DoSample          bool
	TopK              int     // 0: no top-k (HF's default is 50)
	TopP              float64 // ≥ 1: no nucleus filtering; 0 keeps only the most likely token
	Temperature       float64 // 1: none
	RepetitionPenalty float64 // 1: none
	// NoRepeatNGramSize is no_repeat_ngram_size: no n-gram of that size occurs twice (0: off).
	NoRepeatNGramSize int
	// Seed makes sampling reproducible.
	Seed uint64
	// EOSTokenIDs stop a sequence when generated, any of them (eos_token_id, an id or a list). nil:
	// the model's (its generation config's, else config.json's); an empty list: never stop; negative
	// ids never match.
	EOSTokenIDs []int
	// PadTokenID fills finished sequences and left-pads prompts of different lengths (nil: the
	// model's pad_token_id, else the first EOS, as transformers' _prepare_special_tokens does).
	PadTokenID *int
	// TokenTypeIDs are token_type_ids for the prompts (nil: none), shaped as the prompts: GPT-2
	// embeds them with wte and adds them to the inputs, and each new token gets its row's last value
	// (_update_model_kwargs_for_generation). A tokenizer that returns them (tokenizer.Tokenizer's
	// ReturnsTokenTypeIDs) gives zeros.
	TokenTypeIDs [][]int
	// Padded takes the prompts as HF's input_ids: one rectangular batch, already padded, passed as it
	// is and returned with its padding. Its attention mask is AttentionMask, or, without one, what
	// _prepare_attention_mask_for_generation infers: tokens equal to the pad id are masked when the
	// pad id occurs in the inputs and is not an EOS; otherwise nothing is. Without Padded, prompts of
	// different lengths are left-padded with the pad id and masked, as a tokenizer's padding and
	// attention_mask would, and are returned without the padding.
	Padded bool
	// AttentionMask is attention_mask (1: attend, 0: padding) for a Padded batch (nil: inferred).
	AttentionMask [][]int
	// NoCache recomputes the whole sequence at each step instead of using the key/value cache.
	NoCache bool
	// TruncatePrompt keeps the last tokens of a prompt that, with the new tokens, would not fit
	// n_positions; without it such a prompt is an error.
	TruncatePrompt bool
	// OnToken is called with each new token as it is chosen (sequence index, token id).
	OnToken func(seq, token int)
}

// defaultMaxLength is GenerationConfig's default max_length: with neither max_length nor
// max_new_tokens set, generate adds that many tokens (capped at n_positions).
const defaultMaxLength = 20

// DefaultGenerateOptions returns transformers' global defaults (what generate() uses where neither
// the call nor the model's generation config sets a value): the length left unset (20 new tokens,
// capped at n_positions), greedy, top_k 50 and top_p 1 and temperature 1 (used when sampling), no
// repetition penalty, the model's special tokens.
func DefaultGenerateOptions() GenerateOptions {
	return GenerateOptions{TopK: 50, TopP: 1, Temperature: 1, RepetitionPenalty: 1}
}

// GenerateOptionsFrom returns the options a generation config sets over transformers' global
// defaults, as _prepare_generation_config merges them (nil: the defaults). Explicit options are then
// set on the result.
func GenerateOptionsFrom(gc *GenerationConfig) GenerateOptions {
	o := DefaultGenerateOptions()
	if gc == nil {
		return o
	}
	setInt := func(dst *int, src *int) {
		if src != nil {
			*dst = *src
		}
	}
	setFloat := func(dst *float64, src *float64) {
		if src != nil {
			*dst = *src
		}
	}
	setInt(&o.MaxNewTokens, gc.MaxNewTokens)
	setInt(&o.MaxLength, gc.MaxLength)
	setInt(&o.MinNewTokens, gc.MinNewTokens)
	setInt(&o.MinLength, gc.MinLength)
	setInt(&o.TopK, gc.TopK)
	setInt(&o.NoRepeatNGramSize, gc.NoRepeatNGramSize)
	setFloat(&o.TopP, gc.TopP)
	setFloat(&o.Temperature, gc.Temperature)
	setFloat(&o.RepetitionPenalty, gc.RepetitionPenalty)
	if gc.DoSample != nil {
		o.DoSample = *gc.DoSample
	}
	if eos := gc.EOS(); eos != nil {
		o.EOSTokenIDs = eos
	}
	if gc.PadTokenID != nil {
		pad := *gc.PadTokenID
		o.PadTokenID = &pad
	}
	return o
}

// DefaultGenerateOptions returns the options generate() uses when called without arguments: the
// model's generation config (generation_config.json, or config.json's special tokens without one;
// see EffectiveGenerationConfig) over transformers' global defaults. Set explicit options on the
// result: they override the file, as generate()'s keyword arguments do.
func (m *Model) DefaultGenerateOptions() GenerateOptions {
	return GenerateOptionsFrom(m.EffectiveGenerationConfig())
}

// Validate checks the options as HF's generate does before it runs: max_new_tokens and max_length
// not negative (0 here: unset), and the logits processors' own checks (transformers'
// generation/logits_process.py), which apply only where generate builds the processor:
// RepetitionPenaltyLogitsProcessor (any penalty ≠ 1) wants a penalty > 0; TemperatureLogitsWarper
// wants temperature > 0, TopKLogitsWarper top_k > 0 (0 turns it off) and TopPLogitsWarper top_p ≥ 0,
// all three only when sampling. top_p ≥ 1 turns nucleus filtering off (generate builds
// TopPLogitsWarper only for top_p < 1, so it never rejects top_p > 1). Non-finite penalties and
// temperatures are rejected too. min_new_tokens, min_length and no_repeat_ngram_size ≤ 0 are off.
func (o GenerateOptions) Validate() error {
	bad := func(name string, v any, want string) error {
		return fmt.Errorf("gpt2: generate: %s = %v: want %s", name, v, want)
	}
	switch {
	case o.MaxNewTokens < 0:
		return bad("max_new_tokens", o.MaxNewTokens, "a whole number ≥ 1 (0: unset)")
	case o.MaxLength < 0:
		return bad("max_length", o.MaxLength, "a whole number ≥ 1 (0: unset)")
	case !(o.RepetitionPenalty > 0) || math.IsInf(o.RepetitionPenalty, 0):
		return bad("repetition_penalty", o.RepetitionPenalty, "a number > 0 (1: off)")
	case o.DoSample && o.TopK < 0:
		return bad("top_k", o.TopK, "a whole number ≥ 0 (0: off)")
	case o.DoSample && (!(o.Temperature > 0) || math.IsInf(o.Temperature, 0)):
		return bad("temperature", o.Temperature, "a number > 0 when sampling (greedy decoding: leave do_sample off)")
	case o.DoSample && !(o.TopP >= 0):
		return bad("top_p", o.TopP, "a number in [0, 1] (1: off)")
	case o.AttentionMask != nil && !o.Padded:
		return errors.New("gpt2: generate: an attention mask needs Padded (a rectangular batch of input_ids)")
	}
	return nil
}

// cacheBucket rounds cache lengths up so that one program serves many lengths.
const cacheBucket = 64

// promptBucket rounds prompt lengths up (left padding, masked out) for the same reason.
const promptBucket = 16

func roundUp(n, m int) int { return (n + m - 1) / m * m }

// Generate continues each prompt, as HF's generate does for a decoder-only model, and returns each
// prompt followed by its new tokens (see GenerateOptions.Padded for the padding): positions count
// from each sequence's first unmasked token, the logits processors run in transformers' order
// (repetition penalty, no-repeat n-grams, minimum length; then, when sampling, temperature, top-k,
// top-p) over each row of input_ids as transformers sees it (padding included), a sequence that
// emits an EOS is then filled with the pad token until all are done.
func (m *Model) Generate(prompts [][]int, opts GenerateOptions) ([][]int, error) {
	if len(prompts) == 0 {
		return nil, errors.New("gpt2: no prompt")
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	eos, pad, hasPad := m.specialTokens(opts)
	in, err := m.generateInputs(prompts, opts, eos, pad, hasPad)
	if err != nil {
		return nil, err
	}
	newTokens, keep, err := generatedLength(opts, in.longest, len(in.ids[0]), m.Config.NPositions)
	if err != nil {
		return nil, err
	}
	in.truncate(keep)
	P := len(in.ids[0])
	minLength := opts.MinLength
	if opts.MinNewTokens > 0 {
		minLength = P + opts.MinNewTokens // _prepare_generated_length: min_new_tokens wins
	}
	g := &generation{m: m, opts: opts, in: in, eos: eos, pad: pad, minLength: minLength,
		rng: rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x5851f42d4c957f2d))}
	rows, err := g.run(newTokens, !opts.NoCache)
	if err != nil {
		return nil, err
	}
	if !opts.Padded {
		for b, r := range rows {
			rows[b] = r[P-in.lens[b]:]
		}
	}
	return rows, nil
}

// specialTokens resolves eos_token_id and pad_token_id as _prepare_generation_config and
// _prepare_special_tokens do: the options, else the model's generation config; the pad falls back
// to the first EOS.
func (m *Model) specialTokens(o GenerateOptions) (eos []int, pad int, hasPad bool) {
	gc := m.EffectiveGenerationConfig()
	eos = o.EOSTokenIDs
	if eos == nil {
		eos = gc.EOS()
	}
	switch {
	case o.PadTokenID != nil:
		return eos, *o.PadTokenID, true
	case gc.PadTokenID != nil:
		return eos, *gc.PadTokenID, true
	case len(eos) > 0:
		return eos, eos[0], true
	}
	return eos, 0, false
}

// generateInputs are the prompts as transformers' generate sees them: input_ids [B][P] (left-padded
// with the pad id when ragged), attention_mask [B][P] and token_type_ids [B][P] (nil: none).
type generateInputs struct {
	ids, mask, types [][]int
	lens             []int // each prompt's length in ids (P when Padded)
	longest          int   // the index of a longest prompt
}

// truncate keeps the last keep columns.
func (in *generateInputs) truncate(keep int) {
	P := len(in.ids[0])
	if keep >= P {
		return
	}
	for b := range in.ids {
		in.ids[b] = in.ids[b][P-keep:]
		in.mask[b] = in.mask[b][P-keep:]
		if in.types != nil {
			in.types[b] = in.types[b][P-keep:]
		}
		in.lens[b] = min(in.lens[b], keep)
	}
}

func (m *Model) generateInputs(prompts [][]int, o GenerateOptions, eos []int, pad int, hasPad bool) (*generateInputs, error) {
	V := m.Config.VocabSize
	in := &generateInputs{}
	P := 0
	for i, p := range prompts {
		if len(p) == 0 {
			return nil, fmt.Errorf("gpt2: prompt %d is empty", i)
		}
		for _, id := range p {
			if id < 0 || id >= V {
				return nil, fmt.Errorf("gpt2: prompt %d: token id %d is outside the vocabulary (size %d)", i, id, V)
			}
		}
		if len(p) > P {
			P, in.longest = len(p), i
		}
		in.lens = append(in.lens, len(p))
	}
	if o.Padded {
		for i, p := range prompts {
			if len(p) != P {
				return nil, fmt.Errorf("gpt2: padded input_ids: row %d has %d tokens, row %d has %d (a padded batch is rectangular)", i, len(p), in.longest, P)
			}
		}
	}
	if o.TokenTypeIDs != nil {
		if err := m.validateTypes(prompts, o.TokenTypeIDs); err != nil {
			return nil, err
		}
		in.types = make([][]int, len(prompts))
	}
	padding := pad // transformers' input_ids hold the tokenizer's padding: the pad id
	if !hasPad {
		padding = -1 // none (a placeholder: masked, never penalized)
	}
	in.ids = make([][]int, len(prompts))
	in.mask = make([][]int, len(prompts))
	for b, p := range prompts {
		left := P - len(p)
		in.ids[b] = make([]int, P)
		in.mask[b] = make([]int, P)
		for t := range left {
			in.ids[b][t] = padding
		}
		copy(in.ids[b][left:], p)
		for t := left; t < P; t++ {
			in.mask[b][t] = 1
		}
		if in.types != nil {
			in.types[b] = make([]int, P) // a tokenizer pads token_type_ids with 0
			copy(in.types[b][left:], o.TokenTypeIDs[b])
		}
	}
	if !o.Padded {
		return in, nil
	}
	if o.AttentionMask != nil {
		if len(o.AttentionMask) != len(prompts) {
			return nil, fmt.Errorf("gpt2: attention_mask has %d rows, input_ids %d", len(o.AttentionMask), len(prompts))
		}
		for b, row := range o.AttentionMask {
			if len(row) != P {
				return nil, fmt.Errorf("gpt2: attention_mask row %d has %d values, input_ids %d", b, len(row), P)
			}
			for _, v := range row {
				if v != 0 && v != 1 {
					return nil, fmt.Errorf("gpt2: attention_mask value %d: want 0 or 1", v)
				}
			}
			copy(in.mask[b], row)
		}
		return in, nil
	}
	// _prepare_attention_mask_for_generation: mask the pad id when it occurs in the inputs and is not
	// an EOS; otherwise attend to everything.
	if hasPad && !slices.Contains(eos, pad) && slices.ContainsFunc(in.ids, func(r []int) bool { return slices.Contains(r, pad) }) {
		for b, r := range in.ids {
			for t, id := range r {
				if id == pad {
					in.mask[b][t] = 0
				}
			}
		}
	}
	return in, nil
}

// generatedLength returns how many tokens to generate for a batch padded to P tokens, and how many
// of its last columns to keep (P unless TruncatePrompt cuts it), as _prepare_generated_length and
// _validate_generated_length decide: max_new_tokens wins; else max_length is the total; else the
// default max_length 20 is new tokens, with the total capped at n_positions (max_position_embeddings).
// An explicit length beyond n_positions is an error (unless TruncatePrompt makes room).
func generatedLength(o GenerateOptions, longest, P, nPos int) (newTokens, keep int, err error) {
	switch {
	case o.MaxNewTokens > 0:
		if P+o.MaxNewTokens <= nPos {
			return o.MaxNewTokens, P, nil
		}
		if !o.TruncatePrompt {
			return 0, 0, fmt.Errorf("gpt2: prompt %d has %d tokens; with %d new ones that exceeds n_positions %d (shorten it, or truncate the prompt)",
				longest, P, o.MaxNewTokens, nPos)
		}
		if keep = nPos - o.MaxNewTokens; keep <= 0 {
			return 0, 0, fmt.Errorf("gpt2: max_new_tokens %d leaves no room in n_positions %d", o.MaxNewTokens, nPos)
		}
		return o.MaxNewTokens, keep, nil
	case o.MaxLength > 0:
		if o.MaxLength > nPos {
			return 0, 0, fmt.Errorf("gpt2: max_length %d exceeds n_positions %d", o.MaxLength, nPos)
		}
		if P >= o.MaxLength {
			return 0, 0, fmt.Errorf("gpt2: input length of input_ids is %d, but max_length is set to %d (increase max_length, or set max_new_tokens)", P, o.MaxLength)
		}
		return o.MaxLength - P, P, nil
	}
	if total := min(defaultMaxLength+P, nPos); P < total {
		return total - P, P, nil
	}
	if !o.TruncatePrompt {
		return 0, 0, fmt.Errorf("gpt2: prompt %d has %d tokens: n_positions %d leaves no room for a new one (shorten it, or truncate the prompt)",
			longest, P, nPos)
	}
	keep = max(nPos-defaultMaxLength, 1)
	return nPos - keep, keep, nil
}

// generation is the state of one Generate call.
type generation struct {
	m         *Model
	opts      GenerateOptions
	in        *generateInputs
	eos       []int
	pad       int // fills finished sequences
	minLength int
	rng       *rand.Rand
}

// slots are the model's inputs over the cache slots [B, L], flat: slot s of a sequence holds
// [bucket padding | the padded prompt | new tokens].
type slots struct {
	B, L     int
	ids, pos []int32
	mask     []bool
	types    []int32 // nil: no token types
}

func (g *generation) run(newTokens int, useCache bool) ([][]int, error) {
	m, in := g.m, g.in
	B, P, V := len(in.ids), len(in.ids[0]), m.Config.VocabSize
	Pb := max(min(roundUp(P, promptBucket), m.Config.NPositions), P)
	L := min(roundUp(Pb+newTokens, cacheBucket), m.Config.NPositions+(Pb-P))
	s := &slots{B: B, L: L, ids: make([]int32, B*L), pos: make([]int32, B*L), mask: make([]bool, B*L)}
	if in.types != nil {
		s.types = make([]int32, B*L)
	}
	rows := make([][]int, B)     // input_ids as transformers sees them, growing
	nextPos := make([]int32, B)  // position of each sequence's next token
	nextType := make([]int32, B) // token type of each sequence's new tokens
	for b := range B {
		rows[b] = append(make([]int, 0, P+newTokens), in.ids[b]...)
		seen := int32(0)
		for t, id := range in.ids[b] {
			i := b*L + Pb - P + t
			if id >= 0 && id < V {
				s.ids[i] = int32(id) // an out-of-vocabulary pad id is masked: any id does
			}
			s.mask[i] = in.mask[b][t] == 1
			// _prepare_position_ids_for_generation: cumsum(attention_mask) − 1, 0 where masked.
			if s.mask[i] {
				s.pos[i] = seen
				seen++
			}
			if s.types != nil {
				s.types[i] = int32(in.types[b][t])
			}
		}
		nextPos[b] = s.pos[b*L+Pb-1] + 1 // _update_model_kwargs_for_generation: last position + 1
		if s.types != nil {
			nextType[b] = s.types[b*L+Pb-1]
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
	for step := range newTokens {
		var last [][]float32
		var err error
		if useCache {
			start, T := cur-1, 1
			if step == 0 {
				start, T = 0, Pb
			}
			last, cacheK, cacheV, err = g.cachedStep(s, start, T, cacheK, cacheV)
		} else {
			last, err = g.fullStep(s, cur-1)
		}
		if err != nil {
			return nil, err
		}
		allDone := true
		for b := range B {
			next := g.pad
			if !done[b] {
				if next, err = g.choose(last[b], rows[b], step); err != nil {
					return nil, err
				}
				if g.opts.OnToken != nil {
					g.opts.OnToken(b, next)
				}
				done[b] = slices.Contains(g.eos, next)
			}
			rows[b] = append(rows[b], next)
			i := b*L + cur
			if next >= 0 && next < V {
				s.ids[i] = int32(next)
			}
			s.mask[i] = true
			s.pos[i] = nextPos[b]
			nextPos[b]++
			if s.types != nil {
				s.types[i] = nextType[b]
			}
			allDone = allDone && done[b]
		}
		cur++
		if allDone || cur >= L {
			break
		}
	}
	return rows, nil
}

// cachedStep runs T tokens starting at slot start through the model with the cache, returning the
// logits of the last of them and the updated caches.
func (g *generation) cachedStep(s *slots, start, T int, cacheK, cacheV []*tensors.Tensor) ([][]float32, []*tensors.Tensor, []*tensors.Tensor, error) {
	m := g.m
	nl := m.Config.NLayer
	types := s.types != nil
	first := 4 // the first cache input
	if types {
		first = 5
	}
	e, err := m.exec(execKey("generate-cached", types), func(scope *model.Scope, in []*Node) []*Node {
		kIn, vIn := in[first:first+nl], in[first+nl:first+2*nl]
		fi := forwardInputs{ids: in[0], positions: in[1], keyMask: in[2], offset: in[3], cacheK: kIn, cacheV: vIn,
			dynamicUpdate: m.supports(compute.OpTypeDynamicUpdateSlice)}
		if types {
			fi.tokenTypes = in[4]
		}
		out := m.Config.forward(scope.Store(), fi, false, nil)
		Tn := out.logits.Shape().Dim(1)
		last := Squeeze(Slice(out.logits, AxisRange(), AxisRange(Tn-1, Tn), AxisRange()), 1)
		return append(append([]*Node{last}, out.cacheK...), out.cacheV...)
	})
	if err != nil {
		return nil, nil, nil, err
	}
	B, L := s.B, s.L
	sub := func(flat []int32) *tensors.Tensor {
		out := make([]int32, B*T)
		for b := range B {
			copy(out[b*T:], flat[b*L+start:b*L+start+T])
		}
		return tensors.FromFlatDataAndDimensions(out, B, T)
	}
	args := []any{sub(s.ids), sub(s.pos), tensors.FromFlatDataAndDimensions(s.mask, B, L), int32(start)}
	if types {
		args = append(args, sub(s.types))
	}
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
func (g *generation) fullStep(s *slots, at int) ([][]float32, error) {
	m := g.m
	types := s.types != nil
	e, err := m.exec(execKey("generate-full", types), func(scope *model.Scope, in []*Node) []*Node {
		fi := forwardInputs{ids: in[0], positions: in[1], keyMask: in[2]}
		if types {
			fi.tokenTypes = in[4]
		}
		out := m.Config.forward(scope.Store(), fi, false, nil)
		// The logits at slot `at` of every sequence (a gather: the pure-Go backend has no DynamicSlice).
		B, L, V := in[0].Shape().Dim(0), in[0].Shape().Dim(1), m.Config.VocabSize
		gr := in[0].Graph()
		rows := Add(MulScalar(Iota(gr, shapes.Make(dtypes.Int32, B, 1), 0), int32(L)), BroadcastToDims(ConvertDType(in[3], dtypes.Int32), B, 1))
		return []*Node{Gather(Reshape(out.logits, B*L, V), rows)}
	})
	if err != nil {
		return nil, err
	}
	B, L := s.B, s.L
	args := []any{tensors.FromFlatDataAndDimensions(s.ids, B, L), tensors.FromFlatDataAndDimensions(s.pos, B, L),
		tensors.FromFlatDataAndDimensions(s.mask, B, L), int32(at)}
	if types {
		args = append(args, tensors.FromFlatDataAndDimensions(s.types, B, L))
	}
	out, err := call(e, args...)
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

// choose picks the next token of a sequence from its logits, applying HF's processors in the order
// GenerationMixin._get_logits_processor builds them: RepetitionPenaltyLogitsProcessor,
// NoRepeatNGramLogitsProcessor, MinLengthLogitsProcessor and MinNewTokensLengthLogitsProcessor; then,
// when sampling, TemperatureLogitsWarper, TopKLogitsWarper and TopPLogitsWarper. row is the
// sequence's input_ids so far as transformers holds them (the padded prompt and the new tokens);
// step counts the new tokens.
func (g *generation) choose(logits []float32, row []int, step int) (int, error) {
	o := g.opts
	V := len(logits)
	x := make([]float64, V)
	for i, v := range logits {
		x[i] = float64(v)
	}
	if o.RepetitionPenalty != 1 {
		// Once per distinct id of input_ids (gather, then scatter): prompt and padding included.
		seen := map[int]bool{}
		for _, id := range row {
			if id < 0 || id >= V || seen[id] {
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
	if o.NoRepeatNGramSize > 0 {
		for _, id := range bannedNGramTokens(row, o.NoRepeatNGramSize) {
			if id >= 0 && id < V {
				x[id] = math.Inf(-1)
			}
		}
	}
	if len(row) < g.minLength || step < o.MinNewTokens {
		for _, id := range g.eos {
			if id >= 0 && id < V {
				x[id] = math.Inf(-1)
			}
		}
	}
	if !o.DoSample {
		best := 0 // torch.argmax: the first of equal maxima
		for i := range x {
			if x[i] > x[best] {
				best = i
			}
		}
		return best, nil
	}
	if o.Temperature != 1 {
		for i := range x {
			x[i] /= o.Temperature
		}
	}
	order := make([]int, V)
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return x[order[a]] > x[order[b]] })
	if math.IsInf(x[order[0]], -1) || math.IsNaN(x[order[0]]) {
		return 0, errors.New("gpt2: generate: every token was filtered out (no finite logit to sample from)")
	}
	keep := V
	if o.TopK > 0 && o.TopK < keep {
		// HF keeps every token whose logit is ≥ the k-th largest.
		kth := x[order[o.TopK-1]]
		keep = o.TopK
		for keep < V && x[order[keep]] >= kth {
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
	if o.TopP < 1 {
		// TopPLogitsWarper: remove the tail (ascending) whose cumulative probability is ≤ 1 − top_p,
		// keeping at least min_tokens_to_keep = 1 token — top_p 0 keeps the most likely one.
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
			return order[i], nil
		}
	}
	return order[keep-1], nil
}

// bannedNGramTokens returns the tokens NoRepeatNGramLogitsProcessor bans after row: those that
// followed, somewhere in row, the n−1 tokens row ends with (for n = 1, every token of row).
func bannedNGramTokens(row []int, n int) []int {
	cur := len(row)
	if cur+1 < n {
		return nil
	}
	prefix := row[cur-n+1:]
	var banned []int
	for i := 0; i+n <= cur; i++ {
		if slices.Equal(row[i:i+n-1], prefix) {
			banned = append(banned, row[i+n-1])
		}
	}
	return banned
}

// supports reports whether the backend implements an op.
func (m *Model) supports(op compute.OpType) bool {
	return m.Backend.Capabilities().Operations[op]
}
