package gpt2

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"slices"

	"github.com/gonb-gpt/tutorial/lib/fileutil"
)

// GenerationConfig is the part of transformers' generation_config.json that GPT-2 generation uses;
// the other fields are kept as they were (Extra), so that a file read and saved again loses nothing.
// A nil field is absent from the file (or null): transformers' default applies (see
// GenerateOptionsFrom).
type GenerationConfig struct {
	BOSTokenID *int
	// EOSTokenID is eos_token_id when the file holds one id, EOSTokenIDs when it holds a list
	// (transformers accepts both and stops on any of them). A non-nil EOSTokenIDs wins, and is what
	// Save writes; EOS returns the ids either way.
	EOSTokenID  *int
	EOSTokenIDs []int
	PadTokenID  *int

	MaxLength         *int // max_length: the total length, prompt included
	MaxNewTokens      *int // max_new_tokens (wins over max_length)
	MinLength         *int // min_length
	MinNewTokens      *int // min_new_tokens
	DoSample          *bool
	TopK              *int
	TopP              *float64
	Temperature       *float64
	RepetitionPenalty *float64
	NoRepeatNGramSize *int // no_repeat_ngram_size

	Extra map[string]json.RawMessage
}

// EOS returns the end-of-sequence ids (nil when the file has none; an empty list when it has an
// empty list).
func (gc *GenerationConfig) EOS() []int {
	switch {
	case gc == nil:
		return nil
	case gc.EOSTokenIDs != nil:
		return slices.Clone(gc.EOSTokenIDs) // an empty list stays a list: none
	case gc.EOSTokenID != nil:
		return []int{*gc.EOSTokenID}
	}
	return nil
}

// genField is one known field of generation_config.json: a pointer to its (pointer) field.
type genField struct {
	key string
	dst any
}

// value is the field's value to write (nil when unset).
func (f genField) value() any {
	v := reflect.ValueOf(f.dst).Elem()
	if v.IsNil() {
		return nil
	}
	return v.Elem().Interface()
}

func (gc *GenerationConfig) fields() []genField {
	return []genField{
		{"bos_token_id", &gc.BOSTokenID}, {"pad_token_id", &gc.PadTokenID},
		{"max_length", &gc.MaxLength}, {"max_new_tokens", &gc.MaxNewTokens},
		{"min_length", &gc.MinLength}, {"min_new_tokens", &gc.MinNewTokens},
		{"do_sample", &gc.DoSample}, {"top_k", &gc.TopK}, {"top_p", &gc.TopP}, {"temperature", &gc.Temperature},
		{"repetition_penalty", &gc.RepetitionPenalty}, {"no_repeat_ngram_size", &gc.NoRepeatNGramSize},
	}
}

// parseEOS reads eos_token_id as transformers' configs hold it: an id (one), a list (list, not nil
// even when empty), or null (both nil).
func parseEOS(raw json.RawMessage) (one *int, list []int, err error) {
	if err := json.Unmarshal(raw, &one); err == nil {
		return one, nil, nil
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, nil, fmt.Errorf("eos_token_id: want an id or a list of ids, got %s", raw)
	}
	if list == nil {
		list = []int{}
	}
	return nil, list, nil
}

// UnmarshalJSON reads generation_config.json: the known fields (eos_token_id an id or a list),
// everything else into Extra. A known field that is null stays in Extra (and unset).
func (gc *GenerationConfig) UnmarshalJSON(data []byte) error {
	var all map[string]json.RawMessage
	if err := json.Unmarshal(data, &all); err != nil {
		return err
	}
	*gc = GenerationConfig{Extra: map[string]json.RawMessage{}}
	for _, f := range gc.fields() {
		raw, ok := all[f.key]
		if !ok {
			continue
		}
		if err := json.Unmarshal(raw, f.dst); err != nil {
			return fmt.Errorf("%s: %w", f.key, err)
		}
		if f.value() != nil {
			delete(all, f.key)
		}
	}
	if raw, ok := all["eos_token_id"]; ok {
		var err error
		if gc.EOSTokenID, gc.EOSTokenIDs, err = parseEOS(raw); err != nil {
			return err
		}
		if gc.EOSTokenID != nil || gc.EOSTokenIDs != nil {
			delete(all, "eos_token_id")
		}
	}
	gc.Extra = all
	return nil
}

// MarshalJSON writes Extra and the known fields that are set.
func (gc *GenerationConfig) MarshalJSON() ([]byte, error) { return json.Marshal(gc.toMap()) }

// toMap is the file's content: Extra as it was read, and the known fields that are set.
func (gc *GenerationConfig) toMap() map[string]any {
	m := map[string]any{}
	for k, v := range gc.Extra {
		m[k] = v
	}
	for _, f := range gc.fields() {
		if v := f.value(); v != nil {
			m[f.key] = v
		}
	}
	switch {
	case gc.EOSTokenIDs != nil:
		m["eos_token_id"] = gc.EOSTokenIDs
	case gc.EOSTokenID != nil:
		m["eos_token_id"] = *gc.EOSTokenID
	}
	return m
}

// Validate rejects what transformers' GenerationConfig.validate rejects when it loads the file
// among the fields kept here: max_new_tokens ≤ 0.
func (gc *GenerationConfig) Validate() error {
	if gc.MaxNewTokens != nil && *gc.MaxNewTokens <= 0 {
		return fmt.Errorf("max_new_tokens must be greater than 0, but is %d", *gc.MaxNewTokens)
	}
	return nil
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
	if err := gc.Validate(); err != nil {
		return nil, fmt.Errorf("generation config %s: %w", path, err)
	}
	return gc, nil
}

// Save writes generation_config.json (indented; transformers_version added when missing).
func (gc *GenerationConfig) Save(path string) error {
	m := gc.toMap()
	if _, ok := m["transformers_version"]; !ok {
		m["transformers_version"] = "5.17.0"
	}
	pretty, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return fileutil.WriteFileAtomic(path, append(pretty, '\n'), 0o644)
}

// EffectiveGenerationConfig returns the generation config generate() starts from: the model's
// generation_config.json (Model.Generation) or, without one, what transformers derives from
// config.json (GenerationConfig.from_model_config: its bos, eos and pad token ids).
func (m *Model) EffectiveGenerationConfig() *GenerationConfig {
	if m.Generation != nil {
		return m.Generation
	}
	return &GenerationConfig{BOSTokenID: m.Config.BOSTokenID, EOSTokenID: m.Config.EOSTokenID, EOSTokenIDs: m.Config.EOSTokenIDs, PadTokenID: m.Config.PadTokenID}
}
