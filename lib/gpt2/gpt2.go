package gpt2

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck // GoMLX's idiomatic dot-import.
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gonb-gpt/tutorial/lib/tensorfile"
)

// Model is a GPT2LMHeadModel: its configuration and its parameters, held as variables of a GoMLX
// model.Store under their HF names (VarPath).
type Model struct {
	Config  *Config
	Backend compute.Backend
	Store   *model.Store
	// Generation holds generation_config.json's fields, when the model came with one.
	Generation *GenerationConfig
	// Warnings lists what loading ignored (checkpoint tensors the model does not use).
	Warnings []string
	// Autocast is the mixed precision of training and evaluation, as torch.autocast(dtype=…) runs
	// them under TrainingArguments' bf16/fp16: dtypes.BFloat16 or dtypes.Float16 (see forward for
	// what runs in it); the zero value (dtypes.InvalidDType) computes everything in float32.
	// Generation always runs in float32.
	Autocast dtypes.DType
	// AttnImplementation is transformers' attn_implementation: AttnSDPA (the default, "") or
	// AttnEager. Set it before the first call: compiled programs keep the choice.
	AttnImplementation AttnImplementation

	mu    sync.Mutex
	execs map[string]*model.Exec
}

// AutocastDType maps a precision name to Model.Autocast: "fp32" (InvalidDType: no autocast),
// "bf16" (BFloat16) or "fp16" (Float16), as TrainingArguments' bf16/fp16 choose them.
func AutocastDType(precision string) (dtypes.DType, error) {
	switch precision {
	case "fp32":
		return dtypes.InvalidDType, nil
	case "bf16":
		return dtypes.BFloat16, nil
	case "fp16":
		return dtypes.Float16, nil
	}
	return dtypes.InvalidDType, fmt.Errorf("gpt2: precision %q: want fp32, bf16 or fp16", precision)
}

// New creates a model with HF's initialization: weights normal(0, initializer_range), the
// residual projections (attn.c_proj, mlp.c_proj) normal(0, initializer_range/√(2·n_layer)),
// biases 0, LayerNorm weights 1. seed makes it reproducible.
func New(backend compute.Backend, cfg *Config, seed uint64) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	names, shapes := cfg.ParamShapes()
	weights := make(map[string]*tensorfile.Tensor, len(names))
	for _, name := range names {
		dims := shapes[name]
		n, err := tensorfile.Numel(dims)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		t := &tensorfile.Tensor{Shape: dims, Data: make([]float32, n), DType: "F32"}
		switch {
		case strings.HasSuffix(name, "ln_1.weight"), strings.HasSuffix(name, "ln_2.weight"), strings.HasSuffix(name, "ln_f.weight"):
			for i := range t.Data {
				t.Data[i] = 1
			}
		case strings.HasSuffix(name, ".bias"):
		default:
			std := cfg.InitializerRange
			if strings.HasSuffix(name, "c_proj.weight") {
				std /= math.Sqrt(2 * float64(cfg.NLayer))
			}
			for i := range t.Data {
				t.Data[i] = float32(rng.NormFloat64() * std)
			}
		}
		weights[name] = t
	}
	m := &Model{Config: cfg, Backend: backend, Store: model.NewStore(), execs: map[string]*model.Exec{}}
	if err := m.SetWeights(weights); err != nil {
		return nil, err
	}
	return m, nil
}

// canonicalName maps checkpoint names to the model's: with or without the "transformer." prefix.
func canonicalName(name string) string {
	if strings.HasPrefix(name, "transformer.") || name == "lm_head.weight" {
		return name
	}
	return "transformer." + name
}

// isBuffer reports the non-parameter tensors of old GPT-2 checkpoints (causal-mask buffers).
func isBuffer(name string) bool {
	return strings.HasSuffix(name, ".attn.bias") || strings.HasSuffix(name, ".attn.masked_bias")
}

// SetWeights sets the parameters from checkpoint tensors (names with or without "transformer.",
// legacy buffers ignored, lm_head.weight tied or present). Missing tensors and shape mismatches
// are one error listing them all; nothing is changed then.
func (m *Model) SetWeights(weights map[string]*tensorfile.Tensor) error {
	names, want := m.Config.ParamShapes()
	got := map[string]*tensorfile.Tensor{}
	var unused []string
	for name, t := range weights {
		if isBuffer(name) {
			continue
		}
		c := canonicalName(name)
		if _, ok := want[c]; !ok {
			if c == "lm_head.weight" && m.Config.TieWordEmbeddings {
				continue // tied: the head is the embedding
			}
			unused = append(unused, name)
			continue
		}
		got[c] = t
	}
	var problems []string
	for _, n := range names {
		t, ok := got[n]
		if !ok {
			problems = append(problems, fmt.Sprintf("missing %s %v", n, want[n]))
			continue
		}
		if !slices.Equal(t.Shape, want[n]) {
			problems = append(problems, fmt.Sprintf("%s: checkpoint %v, model %v", n, t.Shape, want[n]))
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return fmt.Errorf("gpt2: the checkpoint does not fit the config (%d problems): %s", len(problems), strings.Join(problems, "; "))
	}
	for _, n := range names {
		t := got[n]
		if _, err := m.Store.CreateVariable(VarPath(n), tensors.FromFlatDataAndDimensions(t.Data, t.Shape...)); err != nil {
			return fmt.Errorf("gpt2: %s: %w", n, err)
		}
		v := m.Store.GetVariable(VarPath(n))
		if err := v.SetValue(tensors.FromFlatDataAndDimensions(t.Data, t.Shape...)); err != nil {
			return fmt.Errorf("gpt2: %s: %w", n, err)
		}
	}
	m.WeightsChanged()
	sort.Strings(unused)
	m.Warnings = nil
	if len(unused) > 0 {
		m.Warnings = append(m.Warnings, "checkpoint tensors not used: "+strings.Join(unused, ", "))
	}
	return nil
}

// Weights returns the parameters as float32 tensors under their HF names.
func (m *Model) Weights() (map[string]*tensorfile.Tensor, error) {
	names, shapes := m.Config.ParamShapes()
	out := make(map[string]*tensorfile.Tensor, len(names))
	for _, n := range names {
		v := m.Store.GetVariable(VarPath(n))
		if v == nil {
			return nil, fmt.Errorf("gpt2: parameter %s is missing", n)
		}
		val, err := v.Value()
		if err != nil {
			return nil, fmt.Errorf("gpt2: %s: %w", n, err)
		}
		data, err := tensors.CopyFlatData[float32](val)
		if err != nil {
			return nil, fmt.Errorf("gpt2: %s: %w", n, err)
		}
		out[n] = &tensorfile.Tensor{Shape: shapes[n], Data: data, DType: "F32"}
	}
	return out, nil
}

// WeightsFile names the weights file found in a model folder (safetensors first).
func WeightsFile(dir string) (string, error) {
	for _, name := range []string{"model.safetensors", "model.safetensors.index.json", "pytorch_model.bin"} {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("gpt2: %s holds no model.safetensors, model.safetensors.index.json or pytorch_model.bin", dir)
}

// Load reads a model folder as GPT2LMHeadModel.from_pretrained does: config.json, the weights
// (model.safetensors, a sharded index, or pytorch_model.bin) and generation_config.json if any.
func Load(backend compute.Backend, dir string) (*Model, error) {
	cfg, err := LoadConfig(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, err
	}
	wpath, err := WeightsFile(dir)
	if err != nil {
		return nil, err
	}
	return LoadWeightsFile(backend, cfg, wpath, dir)
}

// LoadWeightsFile builds a model from a config and one weights file (dir: where to look for
// generation_config.json; "" for none).
func LoadWeightsFile(backend compute.Backend, cfg *Config, wpath, dir string) (*Model, error) {
	weights, err := tensorfile.Read(wpath)
	if err != nil {
		return nil, err
	}
	m := &Model{Config: cfg, Backend: backend, Store: model.NewStore(), execs: map[string]*model.Exec{}}
	if err := m.SetWeights(weights); err != nil {
		return nil, fmt.Errorf("%s: %w", wpath, err)
	}
	if dir != "" {
		if gc, err := LoadGenerationConfig(filepath.Join(dir, "generation_config.json")); err == nil {
			m.Generation = gc
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
	}
	return m, nil
}

// Save writes the model in HF's layout: config.json, model.safetensors (the tied head left out, as
// transformers does) and generation_config.json. The folder is created if needed; each file is
// written atomically.
func (m *Model) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("gpt2: %w", err)
	}
	weights, err := m.Weights()
	if err != nil {
		return err
	}
	if err := tensorfile.WriteSafetensors(filepath.Join(dir, "model.safetensors"), weights); err != nil {
		return err
	}
	if err := m.Config.Save(filepath.Join(dir, "config.json")); err != nil {
		return err
	}
	gc := m.Generation
	if gc == nil {
		gc = &GenerationConfig{BOSTokenID: m.Config.BOSTokenID, EOSTokenID: m.Config.EOSTokenID, PadTokenID: m.Config.PadTokenID}
	}
	return gc.Save(filepath.Join(dir, "generation_config.json"))
}

// WeightsChanged drops the compiled inference programs: on backends that prefer constants for
// variables (the pure-Go one) they hold the weights they were compiled with. Training calls it.
func (m *Model) WeightsChanged() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, e := range m.execs {
		e.Finalize()
		delete(m.execs, k)
	}
}

// exec returns a cached executor (one per kind; GoMLX compiles one program per input shape).
func (m *Model) exec(key string, fn func(*model.Scope, []*Node) []*Node) (*model.Exec, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.execs[key]; ok {
		return e, nil
	}
	e, err := model.NewExec(m.Backend, m.Store, fn)
	if err != nil {
		return nil, err
	}
	m.execs[key] = e
	return e, nil
}

// call runs an executor, turning GoMLX panics into errors.
func call(e *model.Exec, args ...any) (out []*tensors.Tensor, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("gpt2: %v", r)
		}
	}()
	return e.Call(args...)
}

// checkIDs validates a batch of token ids (rectangular, within the vocabulary and n_positions)
// and packs it.
func (m *Model) checkIDs(ids [][]int) (*tensors.Tensor, error) {
	if len(ids) > 0 && len(ids[0]) > m.Config.NPositions {
		return nil, fmt.Errorf("gpt2: %d tokens is longer than n_positions %d", len(ids[0]), m.Config.NPositions)
	}
	for _, row := range ids {
		for _, id := range row {
			if id < 0 || id >= m.Config.VocabSize {
				return nil, fmt.Errorf("gpt2: token id %d is outside the vocabulary (size %d)", id, m.Config.VocabSize)
			}
		}
	}
	return IDsTensor(ids)
}

func positionsFor(B, T int) *tensors.Tensor {
	pos := make([]int32, B*T)
	for i := range pos {
		pos[i] = int32(i % T)
	}
	return tensors.FromFlatDataAndDimensions(pos, B, T)
}

// Batch is a batch of inputs as GPT2LMHeadModel's forward takes them: rectangular rows of token ids.
type Batch struct {
	InputIDs [][]int
	// TokenTypeIDs (nil: none) are embedded with wte and added to the inputs, as GPT2Model does
	// with token_type_ids (the tutorial's PreTrainedTokenizerFast returns them, all zeros).
	TokenTypeIDs [][]int
	// Labels (nil: the inputs) are shifted inside the loss; -100 is ignored.
	Labels [][]int
}

// Logits runs the model in eval mode on a batch of equal-length sequences and returns the logits
// [B][T][V].
func (m *Model) Logits(ids [][]int) ([][][]float32, error) {
	return m.BatchLogits(Batch{InputIDs: ids})
}

// BatchLogits is Logits for a Batch (its labels are not used).
func (m *Model) BatchLogits(b Batch) ([][][]float32, error) {
	ids := b.InputIDs
	args, err := m.inputTensors(b)
	if err != nil {
		return nil, err
	}
	types := b.TokenTypeIDs != nil
	e, err := m.exec(execKey("logits", types), func(scope *model.Scope, in []*Node) []*Node {
		fi := forwardInputs{ids: in[0], positions: in[1], attn: m.AttnImplementation}
		if types {
			fi.tokenTypes = in[2]
		}
		out := m.Config.forward(scope.Store(), fi, false, nil)
		return []*Node{out.logits}
	})
	if err != nil {
		return nil, err
	}
	out, err := call(e, args...)
	if err != nil {
		return nil, err
	}
	flat, err := tensors.CopyFlatData[float32](out[0])
	if err != nil {
		return nil, err
	}
	B, T, V := len(ids), len(ids[0]), m.Config.VocabSize
	res := make([][][]float32, B)
	for b := range B {
		res[b] = make([][]float32, T)
		for t := range T {
			res[b][t] = flat[(b*T+t)*V : (b*T+t+1)*V]
		}
	}
	return res, nil
}

// execKey names an executor kind, with or without token types.
func execKey(kind string, types bool) string {
	if types {
		return kind + "+token_types"
	}
	return kind
}

// inputTensors validates a batch and packs ids, positions and (when given) token types.
func (m *Model) inputTensors(b Batch) ([]any, error) {
	idsT, err := m.checkIDs(b.InputIDs)
	if err != nil {
		return nil, err
	}
	args := []any{idsT, positionsFor(len(b.InputIDs), len(b.InputIDs[0]))}
	if b.TokenTypeIDs != nil {
		typesT, err := m.checkTypes(b.InputIDs, b.TokenTypeIDs)
		if err != nil {
			return nil, err
		}
		args = append(args, typesT)
	}
	return args, nil
}

// checkTypes validates token_type_ids: the inputs' shape, ids within wte (as torch's embedding
// would index it).
func (m *Model) checkTypes(ids, types [][]int) (*tensors.Tensor, error) {
	if err := m.validateTypes(ids, types); err != nil {
		return nil, err
	}
	return IDsTensor(types)
}

// validateTypes checks that token_type_ids are shaped as the inputs' rows (which may be ragged) and
// index wte.
func (m *Model) validateTypes(ids, types [][]int) error {
	if len(types) != len(ids) {
		return fmt.Errorf("gpt2: token_type_ids has %d rows, input_ids %d", len(types), len(ids))
	}
	for i, row := range types {
		if len(row) != len(ids[i]) {
			return fmt.Errorf("gpt2: token_type_ids row %d has %d values, input_ids %d", i, len(row), len(ids[i]))
		}
		for _, v := range row {
			if v < 0 || v >= m.Config.VocabSize {
				return fmt.Errorf("gpt2: token_type_id %d is outside wte (vocab_size %d)", v, m.Config.VocabSize)
			}
		}
	}
	return nil
}

// Loss is the mean LM loss HF returns for model(input_ids, labels=labels) in eval mode (labels nil:
// the inputs; -100 ignored), under m.Autocast as the Trainer evaluates.
func (m *Model) Loss(ids, labels [][]int) (float64, error) {
	return m.BatchLoss(Batch{InputIDs: ids, Labels: labels})
}

// BatchLoss is Loss for a Batch.
func (m *Model) BatchLoss(b Batch) (float64, error) {
	loss, _, err := m.lossAndGrads(b, false)
	return loss, err
}

// Gradients returns the loss and the gradient of every parameter (by HF name), in eval mode.
func (m *Model) Gradients(ids, labels [][]int) (float64, map[string]*tensorfile.Tensor, error) {
	return m.lossAndGrads(Batch{InputIDs: ids, Labels: labels}, true)
}

func (m *Model) labelsTensor(ids, labels [][]int) (*tensors.Tensor, error) {
	if labels == nil {
		labels = ids
	}
	if len(labels) != len(ids) || len(labels[0]) != len(ids[0]) {
		return nil, errors.New("gpt2: labels and inputs differ in shape")
	}
	return IDsTensor(labels)
}

// IDsTensor packs a rectangular batch of token ids (or labels) as an int32 tensor [B, T].
func IDsTensor(batch [][]int) (*tensors.Tensor, error) {
	if len(batch) == 0 || len(batch[0]) == 0 {
		return nil, errors.New("gpt2: empty batch")
	}
	T := len(batch[0])
	flat := make([]int32, 0, len(batch)*T)
	for i, row := range batch {
		if len(row) != T {
			return nil, fmt.Errorf("gpt2: sequence %d has %d tokens, sequence 0 has %d (pad them)", i, len(row), T)
		}
		for _, v := range row {
			flat = append(flat, int32(v))
		}
	}
	return tensors.FromFlatDataAndDimensions(flat, len(batch), T), nil
}

func (m *Model) lossAndGrads(b Batch, grads bool) (float64, map[string]*tensorfile.Tensor, error) {
	args, err := m.inputTensors(b)
	if err != nil {
		return 0, nil, err
	}
	labT, err := m.labelsTensor(b.InputIDs, b.Labels)
	if err != nil {
		return 0, nil, err
	}
	args = append(args, labT)
	types := b.TokenTypeIDs != nil
	names, shapes := m.Config.ParamShapes()
	key := "loss"
	if grads {
		key = "grads"
	}
	// One program per precision: the Trainer sets Autocast, and a program built before must not
	// serve another precision.
	autocast := m.Autocast
	key = fmt.Sprintf("%s/%s", key, autocast)
	e, err := m.exec(execKey(key, types), func(scope *model.Scope, in []*Node) []*Node {
		fi := forwardInputs{ids: in[0], positions: in[1], autocast: autocast, attn: m.AttnImplementation}
		if types {
			fi.tokenTypes = in[2]
		}
		out := m.Config.forward(scope.Store(), fi, false, nil)
		loss := causalLMLoss(out.logits, in[len(in)-1])
		if !grads {
			return []*Node{loss}
		}
		g := loss.Graph()
		vars := make([]*Node, len(names))
		for i, n := range names {
			vars[i] = param(scope.Store(), g, n)
		}
		return append([]*Node{loss}, Gradient(loss, vars...)...)
	})
	if err != nil {
		return 0, nil, err
	}
	out, err := call(e, args...)
	if err != nil {
		return 0, nil, err
	}
	loss := float64(tensors.MustCopyFlatData[float32](out[0])[0])
	if !grads {
		return loss, nil, nil
	}
	res := make(map[string]*tensorfile.Tensor, len(names))
	for i, n := range names {
		res[n] = &tensorfile.Tensor{Shape: shapes[n], Data: tensors.MustCopyFlatData[float32](out[i+1]), DType: "F32"}
	}
	return loss, res, nil
}

// NumParameters counts the model's parameters.
func (m *Model) NumParameters() int { return m.Config.NumParameters() }

// ParamNames lists the parameters' HF names in HF's order.
func (m *Model) ParamNames() []string {
	names, _ := m.Config.ParamShapes()
	return names
}

// LossGraph builds the LM loss of a batch inside a graph being built by a model.Exec on m.Store:
// ids, tokenTypes (nil: none; see Batch.TokenTypeIDs) and labels [B, T] int32 (-100 ignored).
// training turns dropout on, drawing from the store's random-number state.
func (m *Model) LossGraph(store *model.Store, ids, tokenTypes, labels *Node, training bool) *Node {
	B, T := ids.Shape().Dim(0), ids.Shape().Dim(1)
	g := ids.Graph()
	positions := BroadcastToDims(Iota(g, shapes.Make(dtypes.Int32, 1, T), 1), B, T)
	var rng func(shapes.Shape) *Node
	if training {
		rng = func(s shapes.Shape) *Node { return ConvertDType(store.RandomUniform(g, s), s.DType) }
	}
	out := m.Config.forward(store, forwardInputs{ids: ids, positions: positions, tokenTypes: tokenTypes, autocast: m.Autocast, attn: m.AttnImplementation}, training, rng)
	return causalLMLoss(out.logits, labels)
}

// Param returns a parameter's node inside a graph being built on m.Store.
func (m *Model) Param(g *Graph, name string) *Node { return param(m.Store, g, name) }
