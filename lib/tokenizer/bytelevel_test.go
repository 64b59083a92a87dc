package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/gonb-gpt/tutorial/lib/internal/sharedtest"
)

type byteGolden struct {
	Text    string `json:"text"`
	IDs     []int  `json:"ids"`
	Decoded string `json:"decoded"`
}

func checkByteLevel(t *testing.T, tok *Tokenizer, goldenPath string) {
	t.Helper()
	var cases []byteGolden
	data, err := os.ReadFile(goldenPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	bad := 0
	for _, c := range cases {
		e, err := tok.Encode(c.Text)
		if err != nil {
			t.Fatalf("%q: %v", c.Text, err)
		}
		dec, err := tok.Decode(c.IDs, false) // the goldens were decoded keeping special tokens
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(e.IDs, c.IDs) || dec != c.Decoded {
			bad++
			if bad <= 5 {
				t.Errorf("%q: ids %v decoded %q; HF %v %q", c.Text, e.IDs, dec, c.IDs, c.Decoded)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d cases differ", bad, len(cases))
	}
}

func TestByteLevelGoldens(t *testing.T) {
	for _, name := range []string{"gpt2", "rugpt3"} {
		dir := sharedtest.Path(t, "tokenizers", name)
		t.Run(name+"/tokenizer.json", func(t *testing.T) {
			tok, err := Load(filepath.Join(dir, "tokenizer.json"))
			if err != nil {
				t.Fatal(err)
			}
			checkByteLevel(t, tok, filepath.Join(dir, "golden.json"))
		})
	}
}

// LoadDir on vocab.json + merges.txt (+ special_tokens_map.json) is what AutoTokenizer does with
// the files published with GPT-2 and ruGPT-3: the same ids as tokenizer.json, except that
// "<|endoftext|>" is a special token.
func TestLoadDirVocabMerges(t *testing.T) {
	for _, tc := range []struct {
		name  string
		eosID int
	}{{"gpt2", 50256}, {"rugpt3", 50257}} {
		t.Run(tc.name, func(t *testing.T) {
			src := sharedtest.Path(t, "tokenizers", tc.name)
			dir := t.TempDir()
			for _, f := range []string{"vocab.json", "merges.txt", "special_tokens_map.json"} {
				data, err := os.ReadFile(filepath.Join(src, f))
				if err != nil {
					continue
				}
				if err := os.WriteFile(filepath.Join(dir, f), data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			tok, err := LoadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			e, err := tok.Encode("Привет<|endoftext|>")
			if err != nil {
				t.Fatal(err)
			}
			if e.IDs[len(e.IDs)-1] != tc.eosID || e.SpecialTokensMask[len(e.IDs)-1] != 1 {
				t.Errorf("<|endoftext|> → %v (mask %v), want the special id %d", e.IDs, e.SpecialTokensMask, tc.eosID)
			}
			var cases []byteGolden
			data, _ := os.ReadFile(filepath.Join(src, "golden.json"))
			if err := json.Unmarshal(data, &cases); err != nil {
				t.Fatal(err)
			}
			for _, c := range cases {
				if c.Text == "<|endoftext|>" {
					continue
				}
				e, err := tok.Encode(c.Text)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(e.IDs, c.IDs) {
					t.Fatalf("%q: %v, HF %v", c.Text, e.IDs, c.IDs)
				}
			}
		})
	}
}
