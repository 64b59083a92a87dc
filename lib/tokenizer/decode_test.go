package tokenizer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gonb-gpt/tutorial/lib/internal/sharedtest"
)

// PreTrainedTokenizerBase.clean_up_tokenization: its replacements, one after another.
func TestCleanUpTokenization(t *testing.T) {
	in := "a , b . c ? d ! e ' f do n't I 'm it 's we 've they 're"
	want := "a, b. c? d! e'f don't I'm it's we've they're"
	if got := CleanUpTokenization(in); got != want {
		t.Errorf("CleanUpTokenization(%q) = %q, want %q", in, got, want)
	}
}

// tokenizer.decode in transformers 5.17 (TokenizersBackend._decode): special tokens shown by default
// (skip_special_tokens=False); clean_up_tokenization_spaces from tokenizer_config.json (default
// False), which transformers ignores for a BPE model unless
// clean_up_tokenization_spaces_for_bpe_even_though_it_will_corrupt_output is set; an override per
// call; ids the tokenizer does not know left out (the tokenizers library's decode skips them).
func TestDecodeWithAsTransformers(t *testing.T) {
	src := sharedtest.Path(t, "tokenizers", "gpt2", "tokenizer.json")
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	const text = "Hello , world . I do n't know<|endoftext|>"
	const cleaned = "Hello, world. I don't know<|endoftext|>"
	for _, tc := range []struct {
		config string // tokenizer_config.json ("": none)
		want   string // decode(ids)
	}{
		{"", text},
		{`{"clean_up_tokenization_spaces": false}`, text},
		{`{"clean_up_tokenization_spaces": true}`, text}, // BPE: ignored
		{`{"clean_up_tokenization_spaces": true, "clean_up_tokenization_spaces_for_bpe_even_though_it_will_corrupt_output": true}`, cleaned},
	} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		if tc.config != "" {
			if err := os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), []byte(tc.config), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		tok, err := LoadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		e, err := tok.Encode(text)
		if err != nil {
			t.Fatal(err)
		}
		got, err := tok.DecodeWith(e.IDs, DecodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("config %s: decode %q, want %q", tc.config, got, tc.want)
		}
		skipped, _ := tok.DecodeWith(e.IDs, DecodeOptions{SkipSpecialTokens: true})
		if want := strings.TrimSuffix(tc.want, "<|endoftext|>"); skipped != want {
			t.Errorf("config %s: decode(skip_special_tokens=True) %q, want %q", tc.config, skipped, want)
		}
		off := false
		if raw, _ := tok.DecodeWith(e.IDs, DecodeOptions{CleanUpTokenizationSpaces: &off}); raw != text {
			t.Errorf("config %s: decode(clean_up_tokenization_spaces=False) %q", tc.config, raw)
		}
	}
	tok, err := Load(src)
	if err != nil {
		t.Fatal(err)
	}
	ids := []int{15496, 99999, 995}
	if got, err := tok.DecodeWith(ids, DecodeOptions{}); err != nil || got != "Hello world" {
		t.Errorf("decode with an unknown id: %q, %v", got, err)
	}
	if _, err := tok.Decode(ids, false); err == nil {
		t.Error("Decode with an unknown id: no error")
	}
}
