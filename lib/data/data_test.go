package data

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/gonb-gpt/tutorial/lib/internal/sharedtest"
	"github.com/gonb-gpt/tutorial/lib/tokenizer"
)

// The tutorial's group_texts, per map batch: concatenate, drop the remainder, cut into blocks.
func TestGroupTexts(t *testing.T) {
	seqs := [][]int32{{1, 2, 3}, {}, {4, 5}, {6, 7, 8, 9}, {10}}
	if got, want := GroupTexts(seqs, 4, 0), [][]int32{{1, 2, 3, 4}, {5, 6, 7, 8}}; !reflect.DeepEqual(got, want) {
		t.Errorf("one batch: %v, want %v", got, want)
	}
	// map batches of 2 sequences: [1 2 3 | ] → none of 4... [1,2,3]+[] = 3 tokens → 0 blocks;
	// [4,5]+[6,7,8,9] = 6 → one block [4 5 6 7]; [10] → none.
	if got, want := GroupTexts(seqs, 4, 2), [][]int32{{4, 5, 6, 7}}; !reflect.DeepEqual(got, want) {
		t.Errorf("batches of 2: %v, want %v", got, want)
	}
	if got := GroupTexts(nil, 4, 1000); len(got) != 0 {
		t.Errorf("empty: %v", got)
	}
}

func TestLoadCaches(t *testing.T) {
	dir := sharedtest.Path(t, "fixtures", "bpe-tutorial-small")
	tok, err := tokenizer.Load(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	b, err := Load(filepath.Join(dir, "corpus.txt"), tok, Options{BlockSize: 64, CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	if b.FromCache || b.Len() < 100 {
		t.Fatalf("first load: from cache %v, %d blocks", b.FromCache, b.Len())
	}
	again, err := Load(filepath.Join(dir, "corpus.txt"), tok, Options{BlockSize: 64, CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if !again.FromCache || !reflect.DeepEqual(again.Tokens, b.Tokens) {
		t.Errorf("second load: from cache %v, equal %v", again.FromCache, reflect.DeepEqual(again.Tokens, b.Tokens))
	}
	// Tokenizing by hand agrees.
	seqs, _ := Tokenize(filepath.Join(dir, "corpus.txt"), tok, nil)
	want := GroupTexts(seqs, 64, MapBatchSize)
	if len(want) != b.Len() || !reflect.DeepEqual(want[3], b.Block(3)) {
		t.Error("blocks differ from GroupTexts(Tokenize())")
	}
	train, eval := b.Split(0.1, 42)
	if len(eval) != b.Len()/10 || len(train)+len(eval) != b.Len() {
		t.Errorf("split %d/%d of %d", len(train), len(eval), b.Len())
	}
	empty := filepath.Join(t.TempDir(), "empty.txt")
	_ = os.WriteFile(empty, []byte("\n\n"), 0o644)
	if _, err := Load(empty, tok, Options{BlockSize: 64}); err == nil {
		t.Error("empty corpus: no error")
	}
}
