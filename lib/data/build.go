package data

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/gonb-gpt/tutorial/lib/corpus"
	"github.com/gonb-gpt/tutorial/lib/fileutil"
	"github.com/gonb-gpt/tutorial/lib/progress"
	"github.com/gonb-gpt/tutorial/lib/tokenizer"
)

// The cache file: magic, the block size and the number of blocks (uint64 little-endian each), then
// the blocks' tokens as int32 little-endian.
const (
	magic      = "GPTBLK1\n"
	headerSize = 24
)

// Cache keys. A corpus file up to fullHashMax bytes is hashed whole, so its key is its content.
// A larger one is keyed by its size, its modification time and samples of its content (its first
// and last sampleSize bytes and samples-2 evenly spaced between): reading it whole twice (once for
// the key, once to tokenize) would double the time of every run. A change that keeps the size and
// the modification time and falls between the samples is not seen; touch the file (or delete the
// cache file) after such an edit.
const (
	fullHashMax = 64 << 20
	samples     = 64
	sampleSize  = 64 << 10
)

// cacheKey hashes what the blocks depend on: each file's content (see fullHashMax), the tokenizer,
// the block size, the grouping batch and how invalid UTF-8 is handled.
func cacheKey(ds *corpus.TextDataset, tok *tokenizer.Tokenizer, blockSize int) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "blocks v2\nblock=%d map_batch=%d encoding_errors=%q files=%d\n", blockSize, MapBatchSize, ds.EncodingErrors, len(ds.Paths))
	for _, p := range ds.Paths {
		if err := fingerprint(h, ds, p); err != nil {
			return "", fmt.Errorf("data: %w", err)
		}
	}
	if err := tok.WriteJSON(h); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil))[:24], nil
}

func fingerprint(h hash.Hash, ds *corpus.TextDataset, path string) error {
	f, err := ds.OpenFile(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	size := st.Size()
	ra, ok := f.(io.ReaderAt)
	if size <= fullHashMax || !ok {
		fmt.Fprintf(h, "file size=%d whole\n", size)
		if n, err := io.Copy(h, f); err != nil || n != size {
			return fmt.Errorf("reading %s: %d of %d bytes: %v", path, n, size, err)
		}
		return nil
	}
	fmt.Fprintf(h, "file size=%d mtime=%d sampled\n", size, st.ModTime().UnixNano())
	buf := make([]byte, sampleSize)
	for i := range int64(samples) {
		off := i * (size - sampleSize) / (samples - 1)
		if _, err := ra.ReadAt(buf, off); err != nil {
			return fmt.Errorf("reading %s at %d: %w", path, off, err)
		}
		h.Write(buf)
	}
	return nil
}

// loadCached reads the blocks from opts.CacheDir, or builds them there: into a temporary file,
// renamed into place only when complete, so that a killed run leaves no cache that loads.
func loadCached(ds *corpus.TextDataset, tok *tokenizer.Tokenizer, opts Options) (*Blocks, error) {
	path, err := CachePath(ds, tok, opts.BlockSize, opts.CacheDir)
	if err != nil {
		return nil, err
	}
	if b, err := readCache(path, opts.BlockSize); err == nil {
		return b, nil
	}
	if err := os.MkdirAll(opts.CacheDir, 0o755); err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	// What killed runs left (a live one writes its file at least every few seconds).
	fileutil.RemoveStale(opts.CacheDir, "blocks-*.bin", time.Hour)
	f, err := fileutil.Create(path, 0o644)
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	stats, err := build(ds, tok, opts, f.File)
	if err != nil {
		f.Abort()
		return nil, err
	}
	if err := f.Commit(); err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	b, err := readCache(path, opts.BlockSize)
	if err != nil {
		return nil, fmt.Errorf("data: reading the blocks just written to %s: %w", path, err)
	}
	b.FromCache, b.Stats = false, stats
	return b, nil
}

// buildTemp builds the blocks into a temporary file and maps it; the file is removed at once (the
// mapping keeps its pages until Close).
func buildTemp(ds *corpus.TextDataset, tok *tokenizer.Tokenizer, opts Options) (*Blocks, error) {
	f, err := os.CreateTemp("", "gpt-blocks-*.bin")
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	defer os.Remove(f.Name())
	stats, err := build(ds, tok, opts, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	b, err := readCache(f.Name(), opts.BlockSize)
	if err != nil {
		return nil, fmt.Errorf("data: reading the blocks just written to %s: %w", f.Name(), err)
	}
	b.Path, b.FromCache, b.Stats = "", false, stats
	return b, nil
}

// batch is one map batch of lines and, once tokenized, its blocks.
type batch struct {
	seq    int
	lines  []string
	nLines int
	tokens int64   // tokens made from the lines
	blocks []int32 // the batch's blocks, one after the other
	err    error
}

// tokenize is group_texts on one map batch: its lines' tokens concatenated, cut into blocks of bs,
// the remainder dropped.
func (b *batch) tokenize(tok *tokenizer.Tokenizer, bs int) {
	var concat []int32
	for i, line := range b.lines {
		if concat, b.err = tok.AppendIDs(concat, line); b.err != nil {
			b.err = fmt.Errorf("data: tokenizing the dataset's line %d: %w", b.seq*MapBatchSize+i+1, b.err)
			break
		}
	}
	b.tokens, b.nLines = int64(len(concat)), len(b.lines)
	b.blocks, b.lines = concat[:len(concat)/bs*bs], nil
}

// build tokenizes ds into blocks written to f (from its start): a reader batches the lines,
// workers tokenize and group the batches in parallel, and the batches' blocks are written in
// order as they come. At most a few batches per worker are in memory at once.
func build(ds *corpus.TextDataset, tok *tokenizer.Tokenizer, opts Options, f io.WriterAt) (Stats, error) {
	var stats Stats
	r, err := ds.Open()
	if err != nil {
		return stats, fmt.Errorf("data: %w", err)
	}
	defer r.Close()
	total, err := ds.Size()
	if err != nil {
		return stats, fmt.Errorf("data: %w", err)
	}
	bar := progress.Bytes(opts.Progress, total, "tokenize")
	defer bar.Finish()
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	bs := opts.BlockSize

	stop := make(chan struct{}) // closed when the writer gives up
	slots := make(chan struct{}, 2*workers+2)
	work := make(chan *batch)
	done := make(chan *batch, cap(slots))
	var readErr error
	reported := int64(0) // bytes shown on the bar
	go func() {          // the reader
		defer close(work)
		for seq := 0; ; seq++ {
			b := &batch{seq: seq, lines: make([]string, 0, MapBatchSize)}
			for len(b.lines) < MapBatchSize {
				line, err := r.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					readErr = fmt.Errorf("data: %w", err)
					return
				}
				b.lines = append(b.lines, line)
			}
			if len(b.lines) == 0 {
				return
			}
			last := len(b.lines) < MapBatchSize // read before a worker owns b
			n := r.BytesRead()
			bar.Add(n - reported)
			reported = n
			select {
			case slots <- struct{}{}:
			case <-stop:
				return
			}
			select {
			case work <- b:
			case <-stop:
				return
			}
			if last {
				return
			}
		}
	}()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for b := range work {
				b.tokenize(tok, bs) // AppendIDs: no truncation or padding, as the tutorial's tokenize
				done <- b
			}
		})
	}
	go func() { wg.Wait(); close(done) }()

	w := &blockWriter{f: f, off: headerSize}
	pending := map[int]*batch{}
	next, blocks := 0, int64(0)
	var workErr error
	for b := range done {
		if workErr != nil {
			continue // drain
		}
		pending[b.seq] = b
		for b := pending[next]; b != nil; b = pending[next] {
			delete(pending, next)
			next++
			<-slots
			if b.err == nil {
				b.err = w.write(b.blocks)
			}
			if b.err != nil {
				workErr = b.err
				close(stop)
				break
			}
			blocks += int64(len(b.blocks) / bs)
			stats.Tokens += b.tokens
			stats.Lines += int64(b.nLines)
			bar.Describe(fmt.Sprintf("%s tokens, %d blocks", countString(stats.Tokens), blocks))
		}
	}
	// The reader has returned: done is closed only after the workers, which end after work closes.
	stats.Bytes, stats.Replaced = r.BytesRead(), r.Replaced()
	switch {
	case workErr != nil:
		return stats, workErr
	case readErr != nil:
		return stats, readErr
	case blocks == 0:
		return stats, fmt.Errorf("data: no block of %d tokens in %v: %d lines, %d tokens (each batch of %d lines drops what does not fill a block): the corpus is empty or too short",
			bs, ds.Paths, stats.Lines, stats.Tokens, MapBatchSize)
	}
	hdr := make([]byte, 0, headerSize)
	hdr = append(hdr, magic...)
	hdr = binary.LittleEndian.AppendUint64(hdr, uint64(bs))
	hdr = binary.LittleEndian.AppendUint64(hdr, uint64(blocks))
	if _, err := f.WriteAt(hdr, 0); err != nil {
		return stats, fmt.Errorf("data: writing the blocks: %w", err)
	}
	bar.Add(stats.Bytes - reported)
	bar.Done()
	return stats, nil
}

// blockWriter writes tokens as int32 little-endian at increasing offsets.
type blockWriter struct {
	f   io.WriterAt
	off int64
	buf []byte
}

func (w *blockWriter) write(tokens []int32) error {
	w.buf = w.buf[:0]
	for _, v := range tokens {
		w.buf = binary.LittleEndian.AppendUint32(w.buf, uint32(v))
	}
	if _, err := w.f.WriteAt(w.buf, w.off); err != nil {
		return fmt.Errorf("data: writing the blocks: %w", err)
	}
	w.off += int64(len(w.buf))
	return nil
}

// countString is 950, 12.3k, 4.56M, 1.23B.
func countString(n int64) string {
	switch {
	case n < 1000:
		return fmt.Sprint(n)
	case n < 1e6:
		return fmt.Sprintf("%.3gk", float64(n)/1e3)
	case n < 1e9:
		return fmt.Sprintf("%.3gM", float64(n)/1e6)
	}
	return fmt.Sprintf("%.3gB", float64(n)/1e9)
}

var errBadCache = errors.New("not a block cache")

func readCache(path string, blockSize int) (*Blocks, error) {
	data, closer, err := mapFile(path)
	if err != nil {
		return nil, err
	}
	if len(data) < headerSize || string(data[:8]) != magic {
		_ = closer()
		return nil, errBadCache
	}
	bs := int(binary.LittleEndian.Uint64(data[8:16]))
	n := int(binary.LittleEndian.Uint64(data[16:24]))
	if bs != blockSize || n <= 0 || len(data) != headerSize+4*n*bs {
		_ = closer()
		return nil, errBadCache
	}
	return &Blocks{BlockSize: bs, Tokens: int32View(data[headerSize:]), Path: path, FromCache: true, closer: closer}, nil
}
