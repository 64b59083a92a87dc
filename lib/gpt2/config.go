// Package gpt2 is GPT-2 (HF transformers' GPT2LMHeadModel) in GoMLX: the same configuration
// (config.json), the same parameter names (transformer.h.0.attn.c_attn.weight, ...), weights read
// from and written to HF checkpoints (model.safetensors, sharded safetensors, pytorch_model.bin),
// the same numbers (logits, loss, gradients), and generation with a key/value cache.
package gpt2

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"

	"github.com/gonb-gpt/tutorial/lib/fileutil"
)

// Config is HF's GPT2Config: same fields, same JSON names, same defaults.
type Config struct {
	VocabSize                  int      `json:"vocab_size"`
	NPositions                 int      `json:"n_positions"`
	NEmbd                      int      `json:"n_embd"`
	NLayer                     int      `json:"n_layer"`
	NHead                      int      `json:"n_head"`
	NInner                     *int     `json:"n_inner"`
	ActivationFunction         string   `json:"activation_function"`
	ResidPdrop                 float64  `json:"resid_pdrop"`
	EmbdPdrop                  float64  `json:"embd_pdrop"`
	AttnPdrop                  float64  `json:"attn_pdrop"`
	LayerNormEpsilon           float64  `json:"layer_norm_epsilon"`
	InitializerRange           float64  `json:"initializer_range"`
	ScaleAttnWeights           bool     `json:"scale_attn_weights"`
	UseCache                   bool     `json:"use_cache"`
	BOSTokenID                 *int     `json:"bos_token_id"`
	EOSTokenID                 *int     `json:"eos_token_id"`
	PadTokenID                 *int     `json:"pad_token_id"`
	ScaleAttnByInverseLayerIdx bool     `json:"scale_attn_by_inverse_layer_idx"`
	ReorderAndUpcastAttn       bool     `json:"reorder_and_upcast_attn"`
	TieWordEmbeddings          bool     `json:"tie_word_embeddings"`
	ModelType                  string   `json:"model_type"`
	Architectures              []string `json:"architectures,omitempty"`

	// EOSTokenIDs holds eos_token_id when config.json gives a list (PretrainedConfig accepts one:
	// generation stops on any); EOSTokenID is then its first id.
	EOSTokenIDs []int `json:"-"`

	// Extra keeps the fields of config.json this package does not use (summary_*, dtype, ...), so
	// that a config read and written again loses nothing.
	Extra map[string]json.RawMessage `json:"-"`
}

func intPtr(v int) *int { return &v }

// DefaultConfig returns GPT2Config()'s defaults (the 124M-parameter GPT-2).
func DefaultConfig() *Config {
	return &Config{
		VocabSize: 50257, NPositions: 1024, NEmbd: 768, NLayer: 12, NHead: 12, ActivationFunction: "gelu_new",
		ResidPdrop: 0.1, EmbdPdrop: 0.1, AttnPdrop: 0.1, LayerNormEpsilon: 1e-5, InitializerRange: 0.02,
		ScaleAttnWeights: true, UseCache: true, BOSTokenID: intPtr(50256), EOSTokenID: intPtr(50256),
		TieWordEmbeddings: true, ModelType: "gpt2", Architectures: []string{"GPT2LMHeadModel"},
	}
}

// Inner is the MLP's hidden size (n_inner, or 4·n_embd when unset).
func (c *Config) Inner() int {
	if c.NInner != nil && *c.NInner > 0 {
		return *c.NInner
	}
	return 4 * c.NEmbd
}

// HeadDim is n_embd / n_head.
func (c *Config) HeadDim() int { return c.NEmbd / c.NHead }

// Validate checks the sizes.
func (c *Config) Validate() error {
	switch {
	case c.VocabSize <= 0:
		return fmt.Errorf("config: vocab_size %d", c.VocabSize)
	case c.NPositions <= 0:
		return fmt.Errorf("config: n_positions %d", c.NPositions)
	case c.NLayer <= 0:
		return fmt.Errorf("config: n_layer %d", c.NLayer)
	case c.NHead <= 0 || c.NEmbd <= 0 || c.NEmbd%c.NHead != 0:
		return fmt.Errorf("config: n_embd %d is not a multiple of n_head %d", c.NEmbd, c.NHead)
	}
	switch c.ActivationFunction {
	case "gelu_new", "gelu", "relu", "gelu_pytorch_tanh", "gelu_fast", "quick_gelu", "silu", "swish", "tanh":
	default:
		return fmt.Errorf("config: activation_function %q is not supported", c.ActivationFunction)
	}
	return nil
}

// UnmarshalJSON reads config.json over the defaults, keeping unknown fields in Extra.
func (c *Config) UnmarshalJSON(data []byte) error {
	type plain Config
	var all map[string]json.RawMessage
	if err := json.Unmarshal(data, &all); err != nil {
		return err
	}
	var eosList []int
	if raw, ok := all["eos_token_id"]; ok {
		var err error
		if _, eosList, err = parseEOS(raw); err != nil {
			return err
		}
	}
	if eosList != nil {
		rest := maps.Clone(all)
		delete(rest, "eos_token_id")
		var err error
		if data, err = json.Marshal(rest); err != nil {
			return err
		}
	}
	p := (*plain)(DefaultConfig())
	if err := json.Unmarshal(data, p); err != nil {
		return err
	}
	if eosList != nil {
		p.EOSTokenIDs, p.EOSTokenID = eosList, nil
		if len(eosList) > 0 {
			p.EOSTokenID = intPtr(eosList[0])
		}
	}
	known, _ := json.Marshal((*plain)(DefaultConfig()))
	var knownKeys map[string]json.RawMessage
	_ = json.Unmarshal(known, &knownKeys)
	*c = Config(*p)
	c.Extra = map[string]json.RawMessage{}
	for k, v := range all {
		if _, ok := knownKeys[k]; !ok {
			c.Extra[k] = v
		}
	}
	return nil
}

// MarshalJSON writes config.json: the known fields and Extra.
func (c *Config) MarshalJSON() ([]byte, error) {
	type plain Config
	data, err := json.Marshal((*plain)(c))
	if err != nil {
		return nil, err
	}
	if len(c.Extra) == 0 && c.EOSTokenIDs == nil {
		return data, nil
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(data, &all); err != nil {
		return nil, err
	}
	if c.EOSTokenIDs != nil {
		if all["eos_token_id"], err = json.Marshal(c.EOSTokenIDs); err != nil {
			return nil, err
		}
	}
	for k, v := range c.Extra {
		if _, ok := all[k]; !ok {
			all[k] = v
		}
	}
	return json.Marshal(all)
}

// LoadConfig reads a config.json.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c := &Config{}
	if err := json.Unmarshal(data, c); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	if c.ModelType != "" && c.ModelType != "gpt2" {
		return nil, fmt.Errorf("config %s: model_type %q is not gpt2", path, c.ModelType)
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Save writes config.json (atomically, indented as transformers does).
func (c *Config) Save(path string) error {
	data, err := json.Marshal(c)
	if err != nil {
		return err
	}
	var m map[string]any
	_ = json.Unmarshal(data, &m)
	pretty, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return fileutil.WriteFileAtomic(path, append(pretty, '\n'), 0o644)
}
