package tokenizer

import (
	"os"
	"strings"
	"testing"

	"github.com/gonb-gpt/tutorial/lib/internal/sharedtest"
)

func benchEncode(b *testing.B, tokPath ...string) {
	tok, err := Load(sharedtest.Path(b, tokPath...))
	if err != nil {
		b.Fatal(err)
	}
	data, err := os.ReadFile(sharedtest.Path(b, "fixtures", "tutorial-dataset.txt"))
	if err != nil {
		b.Fatal(err)
	}
	var lines []string
	for l := range strings.SplitSeq(string(data), "\n") {
		if strings.TrimSpace(l) != "" {
			lines = append(lines, l)
		}
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := tok.EncodeBatch(lines); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodeRuGPT3 encodes the tutorial dataset's lines with ruGPT-3's byte-level BPE.
func BenchmarkEncodeRuGPT3(b *testing.B) { benchEncode(b, "tokenizers", "rugpt3", "tokenizer.json") }

// BenchmarkEncodeTutorial encodes them with the tutorial's BPE.
func BenchmarkEncodeTutorial(b *testing.B) {
	benchEncode(b, "fixtures", "bpe-tutorial", "tokenizer.json")
}

// BenchmarkTrainTutorial trains the tutorial's BPE on the tutorial dataset.
func BenchmarkTrainTutorial(b *testing.B) {
	corpus := sharedtest.Path(b, "fixtures", "tutorial-dataset.txt")
	for b.Loop() {
		if _, _, err := Train([]string{corpus}, TrainOptions{Trainer: &BpeTrainer{VocabSize: 30000, SpecialTokens: []string{"[PAD]"}}, UnkToken: "[UNK]"}); err != nil {
			b.Fatal(err)
		}
	}
}
