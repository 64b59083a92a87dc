package gpt2

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/gonb-gpt/tutorial/lib/fileutil"
)

// GenerationConfig is the part of transformers' generation_config.json this package reads and
// writes; other fields are kept as they were.
type GenerationConfig struct {
	BOSTokenID *int                       `json:"bos_token_id,omitempty"`
	EOSTokenID *int                       `json:"eos_token_id,omitempty"`
	PadTokenID *int                       `json:"pad_token_id,omitempty"`
	Extra      map[string]json.RawMessage `json:"-"`
}

// LoadGenerationConfig reads generation_config.json (os.ErrNotExist when absent).
func LoadGenerationConfig(path string) (*GenerationConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	gc := &GenerationConfig{}
	if err := json.Unmarshal(data, gc); err != nil {
		return nil, fmt.Errorf("generation config %s: %w", path, err)
	}
	if err := json.Unmarshal(data, &gc.Extra); err != nil {
		return nil, fmt.Errorf("generation config %s: %w", path, err)
	}
	for _, k := range []string{"bos_token_id", "eos_token_id", "pad_token_id"} {
		delete(gc.Extra, k)
	}
	return gc, nil
}

// Save writes generation_config.json.
func (gc *GenerationConfig) Save(path string) error {
	m := map[string]any{}
	for k, v := range gc.Extra {
		m[k] = v
	}
	if gc.BOSTokenID != nil {
		m["bos_token_id"] = *gc.BOSTokenID
	}
	if gc.EOSTokenID != nil {
		m["eos_token_id"] = *gc.EOSTokenID
	}
	if gc.PadTokenID != nil {
		m["pad_token_id"] = *gc.PadTokenID
	}
	if _, ok := m["transformers_version"]; !ok {
		m["transformers_version"] = "5.17.0"
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return fileutil.WriteFileAtomic(path, append(data, '\n'), 0o644)
}
