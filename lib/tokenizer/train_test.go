package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gonb-gpt/tutorial/lib/internal/sharedtest"
)

// trainTutorial trains the tutorial's tokenizer: BPE(unk_token="[UNK]"), Whitespace,
// BpeTrainer(special_tokens=["[PAD]"]) with its default vocab_size 30000.
func trainTutorial(t testing.TB, corpus string) *Tokenizer {
	t.Helper()
	tok, _, err := Train([]string{corpus}, TrainOptions{Trainer: &BpeTrainer{VocabSize: 30000, SpecialTokens: []string{"[PAD]"}},
		PreTokenizer: Whitespace{}, UnkToken: "[UNK]"})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

type bpeGolden struct {
	Golden []struct {
		Text   string   `json:"text"`
		Tokens []string `json:"tokens"`
		IDs    []int    `json:"ids"`
	} `json:"golden"`
}

func checkAgainstHF(t *testing.T, dir, corpus string) {
	got := trainTutorial(t, corpus)
	want, err := Load(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Model.Vocab) != len(want.Model.Vocab) {
		t.Errorf("vocab size %d, HF %d", len(got.Model.Vocab), len(want.Model.Vocab))
	}
	bad := 0
	for tok, id := range want.Model.Vocab {
		if got.Model.Vocab[tok] != id {
			if bad < 5 {
				t.Errorf("vocab[%q] = %d, HF %d", tok, got.Model.Vocab[tok], id)
			}
			bad++
		}
	}
	if len(got.Model.Merges) != len(want.Model.Merges) {
		t.Errorf("%d merges, HF %d", len(got.Model.Merges), len(want.Model.Merges))
	}
	for i := range min(len(got.Model.Merges), len(want.Model.Merges)) {
		if got.Model.Merges[i] != want.Model.Merges[i] {
			t.Fatalf("merge %d = %q, HF %q", i, got.Model.Merges[i], want.Model.Merges[i])
		}
	}
	var g bpeGolden
	data, _ := os.ReadFile(filepath.Join(dir, "golden.json"))
	if err := json.Unmarshal(data, &g); err != nil {
		t.Fatal(err)
	}
	for _, c := range g.Golden {
		e, err := got.Encode(c.Text)
		if err != nil {
			t.Errorf("%q: %v", c.Text, err)
			continue
		}
		if strings.Join(e.Tokens, "|") != strings.Join(c.Tokens, "|") || !slices.Equal(e.IDs, c.IDs) {
			t.Errorf("%q: tokens %q ids %v; HF %q %v", c.Text, e.Tokens, e.IDs, c.Tokens, c.IDs)
		}
	}
}

func TestTrainMatchesHFSmall(t *testing.T) {
	dir := sharedtest.Path(t, "fixtures", "bpe-tutorial-small")
	checkAgainstHF(t, dir, filepath.Join(dir, "corpus.txt"))
}

func TestTrainMatchesHFTutorial(t *testing.T) {
	checkAgainstHF(t, sharedtest.Path(t, "fixtures", "bpe-tutorial"), sharedtest.Path(t, "fixtures", "tutorial-dataset.txt"))
}

func TestTrainerOptions(t *testing.T) {
	counts := map[string]int{"aaab": 5, "ab": 3, "cd": 1, "é": 1}
	m, err := (&BpeTrainer{VocabSize: 100, MinFrequency: 4}).Train(counts)
	if err != nil {
		t.Fatal(err)
	}
	for _, mg := range m.Merges {
		if mg == [2]string{"c", "d"} {
			t.Error("min_frequency 4 merged a pair seen once")
		}
	}
	if len(m.Merges) == 0 || m.Merges[0] != [2]string{"a", "a"} {
		t.Errorf("first merge %v, want the most frequent pair (a, a) (10 times)", m.Merges)
	}
	m, err = (&BpeTrainer{VocabSize: 100, LimitAlphabet: 2}).Train(counts)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := m.Vocab["é"]; ok || m.Vocab["a"] != 0 || m.Vocab["b"] != 1 {
		t.Errorf("limit_alphabet 2 kept %v", m.Tokens[:min(4, len(m.Tokens))])
	}
	m, err = (&BpeTrainer{VocabSize: 100, InitialAlphabet: []rune{'z'}, ContinuingSubwordPrefix: "##", EndOfWordSuffix: "</w>"}).Train(map[string]int{"abc": 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"z", "a", "##b", "##c</w>"} {
		if _, ok := m.Vocab[want]; !ok {
			t.Errorf("vocab lacks %q: %v", want, m.Tokens)
		}
	}
	if _, ok := m.Vocab["ab"]; !ok {
		t.Errorf("merge of a + ##b should give \"ab\" (the prefix is dropped): %v", m.Tokens)
	}
	e, _, _ := m.EncodeWord("abc", nil, nil)
	if len(e) != 1 || m.Tokens[e[0]] != "abc</w>" {
		t.Errorf("encode abc → %v", e)
	}
}
