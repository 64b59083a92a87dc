// Package data is the tutorial's text pipeline: tokenize the lines of a text file (in parallel,
// in batches), group the tokens into fixed-size blocks exactly as the tutorial's group_texts does,
// and keep the blocks on disk, keyed by corpus, tokenizer and block size, so that a notebook cell
// that runs again reads them (memory-mapped) instead of tokenizing again.
package data

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/gonb-gpt/tutorial/lib/corpus"
	"github.com/gonb-gpt/tutorial/lib/fileutil"
	"github.com/gonb-gpt/tutorial/lib/progress"
	"github.com/gonb-gpt/tutorial/lib/tokenizer"
)

// MapBatchSize is datasets.map(batched=True)'s default batch size: the tutorial's group_texts runs
// on batches of 1000 tokenized lines, so each batch drops its own remainder.
const MapBatchSize = 1000

// GroupTexts is the tutorial's group_texts applied as datasets.map(group_texts, batched=True)
// applies it: for each batch of mapBatch sequences, concatenate them, drop the remainder that does
// not fill a block, and cut the rest into blocks of blockSize. (labels are a copy of the inputs.)
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
	// CacheDir keeps the tokenized blocks ("" for no cache).
	CacheDir string
	// Progress receives a progress bar (nil: none).
	Progress io.Writer
}

// Blocks is a tokenized corpus cut into blocks of equal size.
type Blocks struct {
	BlockSize int
	// Tokens holds the blocks one after the other (len = Len()·BlockSize).
	Tokens []int32
	// Path is the cache file the blocks were read from or written to ("" when not cached).
	Path string
	// FromCache says they were read from the cache.
	FromCache bool
	// TokenTypeIDs says the tokenized dataset also has a token_type_ids column, as the tutorial's
	// tokenize gives it when the tokenizer returns them (tokenizer.ReturnsTokenTypeIDs): one
	// sequence each, so all zeros, grouped like the ids; the Trainer passes them to the model.
	TokenTypeIDs bool
	closer       func() error
}

// Len is the number of blocks.
func (b *Blocks) Len() int { return len(b.Tokens) / b.BlockSize }

// Block returns block i.
func (b *Blocks) Block(i int) []int32 { return b.Tokens[i*b.BlockSize : (i+1)*b.BlockSize] }

// Close releases the memory mapping, if any.
func (b *Blocks) Close() error {
	if b.closer != nil {
		return b.closer()
	}
	return nil
}

// cacheKey hashes what the blocks depend on: the corpus bytes, the tokenizer, the block size and
// the grouping batch.
func cacheKey(corpusPath string, tok *tokenizer.Tokenizer, blockSize int) (string, error) {
	h := sha256.New()
	f, err := os.Open(corpusPath)
	if err != nil {
		return "", fmt.Errorf("data: %w", err)
	}
	defer f.Close()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("data: reading %s: %w", corpusPath, err)
	}
	if err := tok.WriteJSON(h); err != nil {
		return "", err
	}
	fmt.Fprintf(h, "\nblock=%d map_batch=%d v1", blockSize, MapBatchSize)
	return hex.EncodeToString(h.Sum(nil))[:24], nil
}

const magic = "GPTBLK1\n"

// Load returns the blocks of a corpus: from the cache when it holds them, else by tokenizing the
// corpus's lines (as datasets.load_dataset("text") reads them) and grouping them, then caching.
func Load(corpusPath string, tok *tokenizer.Tokenizer, opts Options) (*Blocks, error) {
	b, err := load(corpusPath, tok, opts)
	if err != nil {
		return nil, err
	}
	b.TokenTypeIDs = tok.ReturnsTokenTypeIDs()
	return b, nil
}

func load(corpusPath string, tok *tokenizer.Tokenizer, opts Options) (*Blocks, error) {
	if opts.BlockSize <= 0 {
		return nil, fmt.Errorf("data: block size %d", opts.BlockSize)
	}
	var cachePath string
	if opts.CacheDir != "" {
		key, err := cacheKey(corpusPath, tok, opts.BlockSize)
		if err != nil {
			return nil, err
		}
		cachePath = filepath.Join(opts.CacheDir, fmt.Sprintf("blocks-%d-%s.bin", opts.BlockSize, key))
		if b, err := readCache(cachePath, opts.BlockSize); err == nil {
			return b, nil
		}
	}
	seqs, err := Tokenize(corpusPath, tok, opts.Progress)
	if err != nil {
		return nil, err
	}
	blocks := GroupTexts(seqs, opts.BlockSize, MapBatchSize)
	if len(blocks) == 0 {
		return nil, fmt.Errorf("data: %s gives no block of %d tokens (%d lines): the corpus is empty or too short", corpusPath, opts.BlockSize, len(seqs))
	}
	flat := make([]int32, 0, len(blocks)*opts.BlockSize)
	for _, b := range blocks {
		flat = append(flat, b...)
	}
	out := &Blocks{BlockSize: opts.BlockSize, Tokens: flat}
	if cachePath != "" {
		if err := os.MkdirAll(opts.CacheDir, 0o755); err != nil {
			return nil, fmt.Errorf("data: %w", err)
		}
		if err := writeCache(cachePath, out); err != nil {
			return nil, err
		}
		out.Path = cachePath
	}
	return out, nil
}

// Tokenize encodes every line of a text file (empty lines give empty sequences), in parallel
// batches, without padding or truncation, as the tutorial's tokenize does.
func Tokenize(corpusPath string, tok *tokenizer.Tokenizer, progressW io.Writer) ([][]int32, error) {
	ds, err := corpus.OpenText(corpusPath)
	if err != nil {
		return nil, err
	}
	plain := *tok
	plain.Padding, plain.Truncation = nil, nil
	var lines []string
	for l, err := range ds.Lines() {
		if err != nil {
			return nil, err
		}
		lines = append(lines, l)
	}
	bar := progress.Count(progressW, int64(len(lines)), "tokenize")
	defer bar.Finish()
	seqs := make([][]int32, 0, len(lines))
	const batch = 4096
	for s := 0; s < len(lines); s += batch {
		encs, err := plain.EncodeBatch(lines[s:min(len(lines), s+batch)])
		if err != nil {
			return nil, fmt.Errorf("data: tokenizing %s: %w", corpusPath, err)
		}
		for _, e := range encs {
			ids := make([]int32, len(e.IDs))
			for i, id := range e.IDs {
				ids[i] = int32(id)
			}
			seqs = append(seqs, ids)
		}
		bar.Add(int64(len(encs)))
	}
	return seqs, nil
}

func writeCache(path string, b *Blocks) error {
	return fileutil.WriteAtomic(path, 0o644, func(w io.Writer) error {
		hdr := make([]byte, 0, 24)
		hdr = append(hdr, magic...)
		hdr = binary.LittleEndian.AppendUint64(hdr, uint64(b.BlockSize))
		hdr = binary.LittleEndian.AppendUint64(hdr, uint64(b.Len()))
		if _, err := w.Write(hdr); err != nil {
			return err
		}
		buf := make([]byte, 0, 1<<16)
		for _, v := range b.Tokens {
			buf = binary.LittleEndian.AppendUint32(buf, uint32(v))
			if len(buf) >= 1<<16 {
				if _, err := w.Write(buf); err != nil {
					return err
				}
				buf = buf[:0]
			}
		}
		_, err := w.Write(buf)
		return err
	})
}

var errBadCache = errors.New("not a block cache")

func readCache(path string, blockSize int) (*Blocks, error) {
	data, closer, err := mapFile(path)
	if err != nil {
		return nil, err
	}
	if len(data) < 24 || string(data[:8]) != magic {
		_ = closer()
		return nil, errBadCache
	}
	bs := int(binary.LittleEndian.Uint64(data[8:16]))
	n := int(binary.LittleEndian.Uint64(data[16:24]))
	if bs != blockSize || n < 0 || len(data) != 24+4*n*bs {
		_ = closer()
		return nil, errBadCache
	}
	return &Blocks{BlockSize: bs, Tokens: int32View(data[24:]), Path: path, FromCache: true, closer: closer}, nil
}

// Split returns a held-out evaluation part (fraction of the blocks, chosen with seed) and the rest.
func (b *Blocks) Split(evalFraction float64, seed uint64) (train, eval []int) {
	n := b.Len()
	perm := rand.New(rand.NewPCG(seed, 0x6a09e667)).Perm(n)
	k := int(float64(n) * evalFraction)
	if evalFraction > 0 && k == 0 && n > 1 {
		k = 1
	}
	return perm[k:], perm[:k]
}
