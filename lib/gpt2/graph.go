package gpt2

import (
	"fmt"
	"math"
	"strings"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck // GoMLX's idiomatic dot-import.
	"github.com/gomlx/gomlx/ml/layers/attention"
	"github.com/gomlx/gomlx/ml/model"
)

// minValue is what masked attention scores are set to (torch.finfo(float32).min, as HF uses).
const minValue = -math.MaxFloat32

// VarPath returns the store path of an HF parameter name: "transformer.h.0.ln_1.weight" →
// "/transformer/h/0/ln_1/weight".
func VarPath(hfName string) string {
	b := []byte("/" + hfName)
	for i := range b {
		if b[i] == '.' {
			b[i] = '/'
		}
	}
	return string(b)
}

// HFName is the inverse of VarPath.
func HFName(path string) string {
	b := []byte(path)
	if len(b) > 0 && b[0] == '/' {
		b = b[1:]
	}
	for i := range b {
		if b[i] == '/' {
			b[i] = '.'
		}
	}
	return string(b)
}

// ParamShapes lists the model's parameters in HF's order (named_parameters()) with their shapes.
// Conv1D weights are [in, out], as HF stores them.
func (c *Config) ParamShapes() ([]string, map[string][]int) {
	D, I := c.NEmbd, c.Inner()
	var names []string
	shapes := map[string][]int{}
	add := func(name string, dims ...int) {
		names = append(names, name)
		shapes[name] = dims
	}
	add("transformer.wte.weight", c.VocabSize, D)
	add("transformer.wpe.weight", c.NPositions, D)
	for l := range c.NLayer {
		p := fmt.Sprintf("transformer.h.%d.", l)
		add(p+"ln_1.weight", D)
		add(p+"ln_1.bias", D)
		add(p+"attn.c_attn.weight", D, 3*D)
		add(p+"attn.c_attn.bias", 3*D)
		add(p+"attn.c_proj.weight", D, D)
		add(p+"attn.c_proj.bias", D)
		add(p+"ln_2.weight", D)
		add(p+"ln_2.bias", D)
		add(p+"mlp.c_fc.weight", D, I)
		add(p+"mlp.c_fc.bias", I)
		add(p+"mlp.c_proj.weight", I, D)
		add(p+"mlp.c_proj.bias", D)
	}
	add("transformer.ln_f.weight", D)
	add("transformer.ln_f.bias", D)
	if !c.TieWordEmbeddings {
		add("lm_head.weight", c.VocabSize, D)
	}
	return names, shapes
}

// NumParameters counts the parameters of a model of this configuration (HF's
// sum(p.numel() for p in model.parameters())).
func (c *Config) NumParameters() int {
	_, shapes := c.ParamShapes()
	n := 0
	for _, dims := range shapes {
		k := 1
		for _, d := range dims {
			k *= d
		}
		n += k
	}
	return n
}

// Inputs of the forward graph.
type forwardInputs struct {
	// ids [B, T] int32; positions [B, T] int32; tokenTypes [B, T] int32 or nil: HF's
	// token_type_ids, which GPT2Model embeds with wte and adds to the input embeddings.
	ids, positions, tokenTypes *Node
	// keyMask [B, S] bool: which key slots (padding excluded) may be attended to; nil: all.
	keyMask *Node
	// cacheK, cacheV per layer [B, H, L, hd] and the slot where ids go (scalar int32); nil: no
	// cache (ids then fill slots 0..T-1).
	cacheK, cacheV []*Node
	offset         *Node
	// autocast is the half-precision dtype of mixed precision (BFloat16 or Float16), or
	// InvalidDType for float32 throughout (see forward).
	autocast dtypes.DType
	// attn is the attention implementation (config's attn_implementation).
	attn AttnImplementation
	// dynamicUpdate uses DynamicUpdateSlice to write the cache (XLA); without it (the pure-Go
	// backend lacks the op) one token is written with a select and a prompt only at slot 0.
	dynamicUpdate bool
}

// writeCache writes the new keys or values x [B, H, T, hd] into cache [B, H, L, hd] at slot offset.
func writeCache(cache, x, offset *Node, dynamic bool) *Node {
	g := x.Graph()
	B, H, T, hd := x.Shape().Dim(0), x.Shape().Dim(1), x.Shape().Dim(2), x.Shape().Dim(3)
	L := cache.Shape().Dim(2)
	if dynamic {
		zero := ScalarZero(g, dtypes.Int32)
		return DynamicUpdateSlice(cache, x, []*Node{zero, zero, offset, zero})
	}
	if T == 1 {
		slot := Equal(Iota(g, shapes.Make(dtypes.Int32, 1, 1, L, 1), 2), BroadcastToDims(offset, 1, 1, 1, 1))
		return Where(BroadcastToDims(slot, B, H, L, hd), BroadcastToDims(x, B, H, L, hd), cache)
	}
	// A prompt: written at slot 0 (the caller guarantees it).
	if T == L {
		return x
	}
	return Concatenate([]*Node{x, Slice(cache, AxisRange(), AxisRange(), AxisRange(T, L), AxisRange())}, 2)
}

// forwardOutputs of the forward graph.
type forwardOutputs struct {
	logits         *Node   // [B, T, V]
	cacheK, cacheV []*Node // updated caches (nil without cache)
}

// param returns the graph node of a parameter (by HF name).
func param(store *model.Store, g *Graph, name string) *Node {
	v := store.GetVariable(VarPath(name))
	if v == nil {
		panic(fmt.Errorf("gpt2: parameter %s is missing", name))
	}
	return v.NodeValue(g)
}

// layerNorm normalizes over the last axis (biased variance, as torch does), in float32.
func layerNorm(x, weight, bias *Node, eps float64) *Node {
	mean := ReduceAndKeep(x, ReduceMean, -1)
	centered := Sub(x, mean)
	variance := ReduceAndKeep(Square(centered), ReduceMean, -1)
	normed := Div(centered, Sqrt(AddScalar(variance, eps))) // Rsqrt has no gradient in GoMLX
	return Add(Mul(normed, ExpandLeftToRank(weight, x.Rank())), ExpandLeftToRank(bias, x.Rank()))
}

// autocast converts x to the half type dt of mixed precision (InvalidDType: x unchanged).
func autocast(x *Node, dt dtypes.DType) *Node {
	if dt == dtypes.InvalidDType {
		return x
	}
	return ConvertDType(x, dt)
}

// dot is Einsum(equation, x, y) — given also as DotGeneral's contracting and batch axes, with the
// output in DotGeneral's order (batch, x's free axes, y's free axes), which the equations respect.
//
// In half precision on XLA it leaves the accumulator type unset: XLA's GPU gemms accumulate
// bf16 products in float32 anyway (as torch's autocast matmuls do), and GoMLX then computes the
// gradients in bf16 as well. With float32 named as the accumulator — GoMLX's default for half
// precision — its gradient converts both operands of every backward gemm to float32, which runs the
// backward pass at TF32/float32 speed instead of bf16's. Elsewhere (the pure-Go backend, float32) it
// is Einsum.
func dot(equation string, x, y *Node, xContract, xBatch, yContract, yBatch []int) *Node {
	if !x.DType().IsHalfPrecision() || !strings.HasPrefix(x.Graph().Backend().Name(), "xla") {
		return Einsum(equation, x, y)
	}
	return Dot(x, y).WithAccumulatorDType(dtypes.InvalidDType).General(xContract, xBatch, yContract, yBatch)
}

// conv1D is HF's Conv1D: x·W + b with W as [in, out].
func conv1D(x, w, b *Node) *Node {
	return Add(dot("btd,de->bte", x, w, []int{2}, nil, []int{0}, nil), ExpandLeftToRank(b, x.Rank()))
}

// activation applies config.activation_function.
func activation(name string, x *Node) *Node {
	switch name {
	case "gelu_new", "gelu_pytorch_tanh", "gelu_fast":
		// 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
		inner := MulScalar(Add(x, MulScalar(Mul(Square(x), x), 0.044715)), math.Sqrt(2/math.Pi))
		return Mul(MulScalar(x, 0.5), AddScalar(Tanh(inner), 1))
	case "gelu":
		return Mul(MulScalar(x, 0.5), AddScalar(Erf(MulScalar(x, 1/math.Sqrt2)), 1))
	case "quick_gelu":
		return Mul(x, Sigmoid(MulScalar(x, 1.702)))
	case "relu":
		return Max(x, ZerosLike(x))
	case "silu", "swish":
		return Mul(x, Sigmoid(x))
	case "tanh":
		return Tanh(x)
	}
	panic(fmt.Errorf("gpt2: activation_function %q is not supported", name))
}

// dropout zeroes with probability p and rescales, when training.
func dropout(g *Graph, x *Node, p float64, training bool, rng func(shape shapes.Shape) *Node) *Node {
	if !training || p <= 0 {
		return x
	}
	keep := GreaterOrEqual(rng(x.Shape()), Scalar(g, x.DType(), p))
	return Where(keep, DivScalar(x, 1-p), ZerosLike(x))
}

// forward builds GPT2LMHeadModel's forward pass.
//
// Under mixed precision (in.autocast) it computes what torch.autocast computes in GPT-2: the matrix
// products (Conv1D's addmm, attention's matmuls or fused kernel, lm_head) take and return the half
// type, their float32 parameters cast where used; embeddings, the residual stream, layer norms,
// softmax, the activation (gelu_new's pow runs in float32 under autocast) and the loss stay float32.
func (c *Config) forward(store *model.Store, in forwardInputs, training bool, rng func(shapes.Shape) *Node) forwardOutputs {
	g := in.ids.Graph()
	B, T := in.ids.Shape().Dim(0), in.ids.Shape().Dim(1)
	D, H, hd := c.NEmbd, c.NHead, c.HeadDim()
	get := func(name string) *Node { return param(store, g, name) }
	// linear is Conv1D under autocast; full brings a half-precision result back to float32.
	linear := func(x *Node, prefix string) *Node {
		return conv1D(autocast(x, in.autocast), autocast(get(prefix+".weight"), in.autocast), autocast(get(prefix+".bias"), in.autocast))
	}
	full := func(x *Node) *Node { return ConvertDType(x, dtypes.Float32) }
	wte := get("transformer.wte.weight")
	wpe := get("transformer.wpe.weight")
	h := Add(Gather(wte, ExpandAxes(in.ids, -1)), Gather(wpe, ExpandAxes(in.positions, -1)))
	if in.tokenTypes != nil {
		// GPT2Model.forward: token_type_embeds = self.wte(token_type_ids), added to the inputs and
		// position embeddings (a tokenizer that returns token_type_ids of zeros adds wte[0]).
		h = Add(h, Gather(wte, ExpandAxes(in.tokenTypes, -1)))
	}
	h = dropout(g, h, c.EmbdPdrop, training, rng)

	// Attention mask [B, 1, T, S] over sequence slots: a query in slot offset+t sees the keys in
	// slots ≤ offset+t (causal; in the cache, later slots are not written yet) that keyMask allows.
	S := T
	var offset *Node
	if in.cacheK != nil {
		S = in.cacheK[0].Shape().Dim(2)
		offset = ConvertDType(in.offset, dtypes.Int32)
	}
	qSlot := Iota(g, shapes.Make(dtypes.Int32, T, 1), 0)
	if offset != nil {
		qSlot = Add(qSlot, BroadcastToDims(offset, T, 1))
	}
	kSlot := Iota(g, shapes.Make(dtypes.Int32, 1, S), 1)
	allowed := GreaterOrEqual(BroadcastToDims(qSlot, T, S), BroadcastToDims(kSlot, T, S)) // [T, S]
	allowed = BroadcastToDims(ExpandAxes(allowed, 0), B, T, S)
	if in.keyMask != nil {
		allowed = And(allowed, BroadcastToDims(ExpandAxes(in.keyMask, 1), B, T, S))
	}
	allowed = BroadcastToDims(ExpandAxes(allowed, 1), B, H, T, S)

	fused, _ := in.attn.route(in.cacheK == nil && in.keyMask == nil, c.AttnPdrop, training, in.autocast, g.Backend())
	var outK, outV []*Node
	for l := range c.NLayer {
		p := fmt.Sprintf("transformer.h.%d.", l)
		residual := h
		x := layerNorm(h, get(p+"ln_1.weight"), get(p+"ln_1.bias"), c.LayerNormEpsilon)
		qkv := linear(x, p+"attn.c_attn")
		split := func(i int) *Node { // [B, H, T, hd]
			part := Slice(qkv, AxisRange(), AxisRange(), AxisRange(i*D, (i+1)*D))
			return TransposeAllDims(Reshape(part, B, T, H, hd), 0, 2, 1, 3)
		}
		q, k, v := split(0), split(1), split(2)
		if in.cacheK != nil {
			k = writeCache(in.cacheK[l], k, offset, in.dynamicUpdate)
			v = writeCache(in.cacheV[l], v, offset, in.dynamicUpdate)
			outK, outV = append(outK, k), append(outV, v)
		}
		scale := 1.0
		if c.ScaleAttnWeights {
			scale /= math.Sqrt(float64(hd))
		}
		if c.ScaleAttnByInverseLayerIdx {
			scale /= float64(l + 1)
		}
		var attn *Node
		if fused {
			// [B, H, T, hd] → [B, T, H, hd], the layout cuDNN's kernel takes without copies.
			bshd := func(x *Node) *Node { return TransposeAllDims(x, 0, 2, 1, 3) }
			attn, _ = attention.Core(bshd(q), bshd(k), bshd(v), attention.LayoutBSHD,
				attention.CoreOptions{Scale: scale, UseCausalMask: true})
			attn = Reshape(attn, B, T, D)
		} else {
			attn = eagerAttention(g, q, k, v, allowed, scale, c.AttnPdrop, training, rng)
			attn = Reshape(TransposeAllDims(attn, 0, 2, 1, 3), B, T, D)
		}
		attn = linear(attn, p+"attn.c_proj")
		h = Add(residual, full(dropout(g, attn, c.ResidPdrop, training, rng)))

		residual = h
		x = layerNorm(h, get(p+"ln_2.weight"), get(p+"ln_2.bias"), c.LayerNormEpsilon)
		x = activation(c.ActivationFunction, full(linear(x, p+"mlp.c_fc")))
		x = linear(x, p+"mlp.c_proj")
		h = Add(residual, full(dropout(g, x, c.ResidPdrop, training, rng)))
	}
	h = layerNorm(h, get("transformer.ln_f.weight"), get("transformer.ln_f.bias"), c.LayerNormEpsilon)
	head := wte
	if !c.TieWordEmbeddings {
		head = get("lm_head.weight")
	}
	logits := full(dot("btd,vd->btv", autocast(h, in.autocast), autocast(head, in.autocast), []int{2}, nil, []int{1}, nil))
	return forwardOutputs{logits: logits, cacheK: outK, cacheV: outV}
}

// eagerAttention is HF's eager_attention_forward: q, k, v [B, H, T|S, hd], scores masked with
// float32's lowest value where allowed [B, H, T, S] is false, softmax in float32, dropout on the
// weights. Returns [B, H, T, hd].
func eagerAttention(g *Graph, q, k, v, allowed *Node, scale, pdrop float64, training bool, rng func(shapes.Shape) *Node) *Node {
	scores := dot("bhtd,bhsd->bhts", q, k, []int{3}, []int{0, 1}, []int{3}, []int{0, 1})
	if scale != 1 {
		scores = MulScalar(scores, scale)
	}
	scores = ConvertDType(scores, dtypes.Float32)
	scores = Where(allowed, scores, Scalar(g, scores.DType(), minValue))
	weights := ConvertDType(Softmax(scores, -1), v.DType())
	weights = dropout(g, weights, pdrop, training, rng)
	return dot("bhts,bhsd->bhtd", weights, v, []int{3}, []int{0, 1}, []int{2}, []int{0, 1})
}

// causalLMLoss is HF's ForCausalLMLoss: the labels padded with -100 and shifted left (the logits
// are not sliced, so neither their copy nor, in training, the padding of their gradient is needed),
// -100 ignored, the mean over the counted tokens (NaN when none counts, as torch's mean). logits
// [B, T, V] float32, labels [B, T] int32.
func causalLMLoss(logits, labels *Node) *Node {
	g := logits.Graph()
	B, T, V := logits.Shape().Dim(0), logits.Shape().Dim(1), logits.Shape().Dim(2)
	if T < 2 {
		return Scalar(g, logits.DType(), math.NaN()) // No token has a next one to predict.
	}
	ignore := Scalar(g, labels.DType(), -100)
	target := Concatenate([]*Node{ // [B, T]: labels[:, 1:] then -100
		Slice(labels, AxisRange(), AxisRange(1, T)),
		BroadcastToDims(Reshape(ignore, 1, 1), B, 1),
	}, 1)
	valid := NotEqual(target, ignore) // [B, T]
	safe := Where(valid, target, ZerosLike(target))
	logp := LogSoftmax(logits, -1)
	N := B * T
	flat := Reshape(logp, N, V)
	rows := Iota(g, shapes.Make(dtypes.Int32, N, 1), 0)
	idx := Concatenate([]*Node{rows, Reshape(ConvertDType(safe, dtypes.Int32), N, 1)}, 1)
	picked := Reshape(Gather(flat, idx), B, T) // log p(label)
	validF := ConvertDType(valid, logits.DType())
	total := ReduceAllSum(Mul(Neg(picked), validF))
	return Div(total, ReduceAllSum(validF))
}
