package tokenizer

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// LoadDir loads a tokenizer from a model folder the way transformers' AutoTokenizer does for GPT-2
// style models: tokenizer.json when present; otherwise vocab.json and merges.txt as a byte-level
// BPE (GPT2TokenizerFast: ByteLevel pre-tokenizer and decoder), with the special tokens of
// special_tokens_map.json, tokenizer_config.json and added_tokens.json. A path to a tokenizer.json
// file works too.
//
// ModelInputNames are tokenizer_config.json's model_input_names when it has them; else those of the
// class transformers would load: PreTrainedTokenizerFast's (with token_type_ids) when
// tokenizer_class names it, GPT2TokenizerFast's otherwise (another class, or none: AutoTokenizer
// then takes the class of config.json's model_type, which for GPT-2 folders is GPT2TokenizerFast).
func LoadDir(path string) (*Tokenizer, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	if !st.IsDir() {
		return Load(path)
	}
	var t *Tokenizer
	fromVocab := false
	if _, err := os.Stat(filepath.Join(path, "tokenizer.json")); err == nil {
		if t, err = Load(filepath.Join(path, "tokenizer.json")); err != nil {
			return nil, err
		}
	} else {
		if t, err = loadVocabMerges(path); err != nil {
			return nil, err
		}
		fromVocab = true
	}
	if err := addSpecialFromFiles(t, path, fromVocab); err != nil {
		return nil, err
	}
	if err := readTokenizerConfig(t, path); err != nil {
		return nil, err
	}
	return t, nil
}

// readTokenizerConfig sets what tokenizer_config.json says beyond the special tokens:
// ModelInputNames as LoadDir says, and the decoding settings (CleanUpTokenizationSpaces,
// CleanUpForBPE; false when absent, as transformers' defaults).
func readTokenizerConfig(t *Tokenizer, dir string) error {
	path := filepath.Join(dir, "tokenizer_config.json")
	var cfg struct {
		Class         string   `json:"tokenizer_class"`
		InputNames    []string `json:"model_input_names"`
		CleanUp       *bool    `json:"clean_up_tokenization_spaces"`
		CleanUpForBPE *bool    `json:"clean_up_tokenization_spaces_for_bpe_even_though_it_will_corrupt_output"`
	}
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("tokenizer: %w", err)
	default:
		if err := json.Unmarshal(data, &cfg); err != nil {
			return fmt.Errorf("tokenizer %s: %w", path, err)
		}
	}
	t.CleanUpTokenizationSpaces = cfg.CleanUp != nil && *cfg.CleanUp
	t.CleanUpForBPE = cfg.CleanUpForBPE != nil && *cfg.CleanUpForBPE
	switch {
	case len(cfg.InputNames) > 0:
		t.ModelInputNames = cfg.InputNames
	case cfg.Class == "PreTrainedTokenizerFast":
		t.ModelInputNames = slices.Clone(fastInputNames)
	default:
		t.ModelInputNames = slices.Clone(gpt2InputNames)
	}
	return nil
}

func loadVocabMerges(dir string) (*Tokenizer, error) {
	vocabPath, mergesPath := filepath.Join(dir, "vocab.json"), filepath.Join(dir, "merges.txt")
	data, err := os.ReadFile(vocabPath)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("tokenizer: %s has neither tokenizer.json nor vocab.json + merges.txt", dir)
		}
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	var vocab map[string]int
	if err := json.Unmarshal(data, &vocab); err != nil {
		return nil, fmt.Errorf("tokenizer %s: %w", vocabPath, err)
	}
	merges, err := readMergesTxt(mergesPath)
	if err != nil {
		return nil, err
	}
	model, err := NewBPE(vocab, merges)
	if err != nil {
		return nil, fmt.Errorf("tokenizer %s: %w", dir, err)
	}
	t := New(model)
	t.PreTokenizer = NewByteLevel()
	t.Decoder = NewByteLevelDecoder()
	t.PostProcessor = map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": true}
	return t, nil
}

// readMergesTxt reads merges.txt: an optional "#version" line, then "a b" per line.
func readMergesTxt(path string) ([][2]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<16), 1<<24)
	var merges [][2]string
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimRight(sc.Text(), "\r")
		if line == "" || (n == 1 && strings.HasPrefix(line, "#version")) {
			continue
		}
		a, b, ok := cutSpace(line)
		if !ok {
			return nil, fmt.Errorf("tokenizer %s line %d: %q is not two tokens separated by a space", path, n, line)
		}
		merges = append(merges, [2]string{a, b})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("tokenizer %s: %w", path, err)
	}
	return merges, nil
}

// specialValue is a special token in special_tokens_map.json: a string or an AddedToken object.
type specialValue struct{ Content string }

func (s *specialValue) UnmarshalJSON(b []byte) error {
	if err := json.Unmarshal(b, &s.Content); err == nil {
		return nil
	}
	var obj struct {
		Content string `json:"content"`
	}
	if err := json.Unmarshal(b, &obj); err != nil {
		return err
	}
	s.Content = obj.Content
	return nil
}

// addSpecialFromFiles registers the special tokens the transformers files name (bos, eos, unk,
// pad, ...; additional_special_tokens; added_tokens.json), as transformers does on top of the
// model's vocabulary.
func addSpecialFromFiles(t *Tokenizer, dir string, gpt2Defaults bool) error {
	var names []string
	for _, file := range []string{"special_tokens_map.json", "tokenizer_config.json"} {
		data, err := os.ReadFile(filepath.Join(dir, file))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("tokenizer: %w", err)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(data, &m); err != nil {
			return fmt.Errorf("tokenizer %s: %w", file, err)
		}
		for _, key := range []string{"bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"} {
			raw, ok := m[key]
			if !ok || isNull(raw) {
				continue
			}
			var v specialValue
			if err := json.Unmarshal(raw, &v); err != nil {
				return fmt.Errorf("tokenizer %s: %s: %w", file, key, err)
			}
			names = append(names, v.Content)
		}
		if raw, ok := m["additional_special_tokens"]; ok && !isNull(raw) {
			var vs []specialValue
			if err := json.Unmarshal(raw, &vs); err != nil {
				return fmt.Errorf("tokenizer %s: additional_special_tokens: %w", file, err)
			}
			for _, v := range vs {
				names = append(names, v.Content)
			}
		}
	}
	if data, err := os.ReadFile(filepath.Join(dir, "added_tokens.json")); err == nil {
		var added map[string]int
		if err := json.Unmarshal(data, &added); err != nil {
			return fmt.Errorf("tokenizer added_tokens.json: %w", err)
		}
		for tok, id := range added {
			if _, ok := t.TokenToID(tok); !ok {
				t.Added = append(t.Added, AddedToken{ID: id, Content: tok, Normalized: true})
			}
		}
		t.index()
	}
	if len(names) == 0 && gpt2Defaults {
		// GPT2Tokenizer's defaults: bos, eos and unk are "<|endoftext|>".
		names = []string{"<|endoftext|>"}
	}
	t.AddSpecialTokens(names...)
	return nil
}
