// Package data is the tutorial's text pipeline: tokenize the lines of text files (in parallel,
// in batches), group the tokens into fixed-size blocks exactly as the tutorial's group_texts does,
// and keep the blocks on disk, keyed by corpus, tokenizer and block size, so that a notebook cell
// that runs again reads them (memory-mapped) instead of tokenizing again.
//
// It works at constant memory, as transformers users get from datasets' Arrow files: the lines are
// streamed, tokenized in batches, and each batch's blocks are appended to the cache file as they
// are made; the whole token list is never in memory, and the blocks are memory-mapped to train.
package data

import (
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"

	"github.com/gonb-gpt/tutorial/lib/corpus"
	"github.com/gonb-gpt/tutorial/lib/tokenizer"
)

// MapBatchSize is datasets.map(batched=True)'s default batch size: the tutorial's group_texts runs
// on batches of 1000 tokenized lines, so each batch drops its own remainder.
const MapBatchSize = 1000

// GroupTexts is the tutorial's group_texts applied as datasets.map(group_texts, batched=True)
// applies it: for each batch of mapBatch sequences, concatenate them, drop the remainder that does
// not fill a block, and cut the rest into blocks of blockSize. (labels are a copy of the inputs.)
// [Load] does the same on a stream; this in-memory form states the rule.
func GroupTexts(seqs [][]int32, blockSize, mapBatch int) [][]int32 {
	if mapBatch <= 0 {
		mapBatch = len(seqs)
	}
	var blocks [][]int32
	for start := 0; start < len(seqs); start += mapBatch {
		var concat []int32
		for _, s := range seqs[start:min(len(seqs), start+mapBatch)] {
			concat = append(concat, s...)
		}
		total := len(concat) / blockSize * blockSize
		for i := 0; i < total; i += blockSize {
			blocks = append(blocks, concat[i:i+blockSize])
		}
	}
	return blocks
}

// Options configure [Load].
type Options struct {
	// BlockSize is the tutorial's block_size (1024).
	BlockSize int
	// CacheDir keeps the blocks. "" for no cache: they are written to a temporary file in
	// os.TempDir(), memory-mapped, and the file is removed at once.
	CacheDir string
	// Progress receives a progress bar: bytes read, tokens made, MB/s and time left (nil: none).
	Progress io.Writer
	// Workers is the number of batches tokenized at once (0: GOMAXPROCS).
	Workers int
}

// Blocks is a tokenized corpus cut into blocks of equal size. Its tokens are memory-mapped from a
// file (on unix systems): Block, the held-out Split and the Trainer's shuffling read them in place.
type Blocks struct {
	BlockSize int
	// Tokens holds the blocks one after the other (len = Len()·BlockSize).
	Tokens []int32
	// Path is the cache file the blocks were read from or written to ("" when not cached).
	Path string
	// FromCache says they were read from the cache.
	FromCache bool
	// Stats describe the tokenization, when the blocks were just made (zero from the cache).
	Stats Stats
	// TokenTypeIDs says the tokenized dataset also has a token_type_ids column, as the tutorial's
	// tokenize gives it when the tokenizer returns them (tokenizer.ReturnsTokenTypeIDs): one
	// sequence each, so all zeros, grouped like the ids; the Trainer passes them to the model.
	TokenTypeIDs bool
	closer       func() error
}

// Stats count what a tokenization read and made.
type Stats struct {
	// Bytes read from the files (before decompression) and the lines (examples) in them.
	Bytes, Lines int64
	// Tokens made, before grouping dropped each batch's remainder.
	Tokens int64
	// Replaced is the number of lines whose invalid UTF-8 was replaced (EncodingErrors "replace").
	Replaced int
}

// Len is the number of blocks.
func (b *Blocks) Len() int { return len(b.Tokens) / b.BlockSize }

// Block returns block i.
func (b *Blocks) Block(i int) []int32 { return b.Tokens[i*b.BlockSize : (i+1)*b.BlockSize] }

// Close releases the memory mapping, if any. The blocks must not be used after.
func (b *Blocks) Close() error {
	if b.closer == nil {
		return nil
	}
	err := b.closer()
	b.closer, b.Tokens = nil, nil
	return err
}

// Load returns the blocks of a text file: from the cache when it holds them, else by tokenizing
// the file's lines (as datasets.load_dataset("text") reads them) and grouping them, then caching.
func Load(corpusPath string, tok *tokenizer.Tokenizer, opts Options) (*Blocks, error) {
	return LoadText(&corpus.TextDataset{Paths: []string{corpusPath}}, tok, opts)
}

// LoadText is Load for a text dataset of one or more files (gzip-compressed ones included), read
// in order as one dataset: datasets.load_dataset("text", data_files=[...]).
func LoadText(ds *corpus.TextDataset, tok *tokenizer.Tokenizer, opts Options) (*Blocks, error) {
	if opts.BlockSize <= 0 {
		return nil, fmt.Errorf("data: block size %d: want at least 1", opts.BlockSize)
	}
	if err := ds.Check(); err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	var b *Blocks
	var err error
	if opts.CacheDir == "" {
		b, err = buildTemp(ds, tok, opts)
	} else {
		b, err = loadCached(ds, tok, opts)
	}
	if err != nil {
		return nil, err
	}
	b.TokenTypeIDs = tok.ReturnsTokenTypeIDs()
	return b, nil
}

// CachePath is where LoadText keeps the blocks of ds in cacheDir. It reads a sample of each file
// (all of a small one): see cacheKey.
func CachePath(ds *corpus.TextDataset, tok *tokenizer.Tokenizer, blockSize int, cacheDir string) (string, error) {
	key, err := cacheKey(ds, tok, blockSize)
	if err != nil {
		return "", err
	}
	return filepath.Join(cacheDir, fmt.Sprintf("blocks-%d-%s.bin", blockSize, key)), nil
}

// Split returns a held-out evaluation part (fraction of the blocks, chosen with seed) and the rest,
// as block indices: the blocks themselves stay where they are.
func (b *Blocks) Split(evalFraction float64, seed uint64) (train, eval []int) {
	n := b.Len()
	perm := rand.New(rand.NewPCG(seed, 0x6a09e667)).Perm(n)
	k := int(float64(n) * evalFraction)
	if evalFraction > 0 && k == 0 && n > 1 {
		k = 1
	}
	return perm[k:], perm[:k]
}
