package data

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/gonb-gpt/tutorial/lib/corpus"
	"github.com/gonb-gpt/tutorial/lib/internal/sharedtest"
	"github.com/gonb-gpt/tutorial/lib/progress"
	"github.com/gonb-gpt/tutorial/lib/tokenizer"
)

// The tutorial's group_texts, per map batch: concatenate, drop the remainder, cut into blocks.
func TestGroupTexts(t *testing.T) {
	seqs := [][]int32{{1, 2, 3}, {}, {4, 5}, {6, 7, 8, 9}, {10}}
	if got, want := GroupTexts(seqs, 4, 0), [][]int32{{1, 2, 3, 4}, {5, 6, 7, 8}}; !reflect.DeepEqual(got, want) {
		t.Errorf("one batch: %v, want %v", got, want)
	}
	// map batches of 2 sequences: [1,2,3]+[] = 3 tokens → 0 blocks; [4,5]+[6,7,8,9] = 6 → one
	// block [4 5 6 7]; [10] → none.
	if got, want := GroupTexts(seqs, 4, 2), [][]int32{{4, 5, 6, 7}}; !reflect.DeepEqual(got, want) {
		t.Errorf("batches of 2: %v, want %v", got, want)
	}
	if got := GroupTexts(nil, 4, 1000); len(got) != 0 {
		t.Errorf("empty: %v", got)
	}
}

// today is the pipeline before streaming, kept here as the reference: every line in memory,
// tokenized with EncodeBatch, grouped with GroupTexts in batches of 1000, flattened.
func today(t *testing.T, tok *tokenizer.Tokenizer, blockSize int, paths ...string) []int32 {
	t.Helper()
	ds, err := corpus.OpenText(paths...)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for l, err := range ds.Lines() {
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, l)
	}
	plain := *tok
	plain.Padding, plain.Truncation = nil, nil
	encs, err := plain.EncodeBatch(lines)
	if err != nil {
		t.Fatal(err)
	}
	seqs := make([][]int32, len(encs))
	for i, e := range encs {
		for _, id := range e.IDs {
			seqs[i] = append(seqs[i], int32(id))
		}
	}
	var flat []int32
	for _, b := range GroupTexts(seqs, blockSize, MapBatchSize) {
		flat = append(flat, b...)
	}
	return flat
}

// cacheBytes is today's cache file for these tokens.
func cacheBytes(blockSize int, tokens []int32) []byte {
	b := []byte(magic)
	b = binary.LittleEndian.AppendUint64(b, uint64(blockSize))
	b = binary.LittleEndian.AppendUint64(b, uint64(len(tokens)/blockSize))
	for _, v := range tokens {
		b = binary.LittleEndian.AppendUint32(b, uint32(v))
	}
	return b
}

// The acceptance check: on the tutorial's dataset, with the tutorial's own BPE and with ruGPT-3's
// byte-level BPE, the streamed blocks and their cache file are byte for byte today's.
func TestTutorialDatasetBlocksAsToday(t *testing.T) {
	dataset := sharedtest.Path(t, "fixtures", "tutorial-dataset.txt")
	for _, tc := range []struct {
		tokenizer string
		blockSize int
	}{
		{"fixtures/bpe-tutorial/tokenizer.json", 1024},
		{"tokenizers/rugpt3/tokenizer.json", 1024},
		{"tokenizers/rugpt3/tokenizer.json", 100}, // a block size that leaves remainders in most batches
	} {
		t.Run(fmt.Sprintf("%s/%d", filepath.Base(filepath.Dir(tc.tokenizer)), tc.blockSize), func(t *testing.T) {
			tok, err := tokenizer.Load(sharedtest.Path(t, strings.Split(tc.tokenizer, "/")...))
			if err != nil {
				t.Fatal(err)
			}
			want := today(t, tok, tc.blockSize, dataset)
			b, err := Load(dataset, tok, Options{BlockSize: tc.blockSize, CacheDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			if b.FromCache || !slices.Equal(b.Tokens, want) {
				t.Fatalf("from cache %v; %d tokens, want today's %d (equal: %v)", b.FromCache, len(b.Tokens), len(want), slices.Equal(b.Tokens, want))
			}
			file, err := os.ReadFile(b.Path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(file, cacheBytes(tc.blockSize, want)) {
				t.Error("the cache file differs from today's format")
			}
			ds, _ := corpus.OpenText(dataset)
			if lines, _ := ds.Count(); b.Stats.Lines != int64(lines) || b.Stats.Bytes != int64(len(mustRead(t, dataset))) || b.Stats.Replaced != 0 {
				t.Errorf("stats %+v", b.Stats)
			}
		})
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// testTokenizer trains a small BPE (the tutorial's kind) on generated text, so that these tests
// need no fixture.
func testTokenizer(t *testing.T) *tokenizer.Tokenizer {
	t.Helper()
	p := filepath.Join(t.TempDir(), "train.txt")
	if err := os.WriteFile(p, []byte(genText(1, 2000)), 0o644); err != nil {
		t.Fatal(err)
	}
	tok, _, err := tokenizer.Train([]string{p}, tokenizer.TrainOptions{
		Trainer: &tokenizer.BpeTrainer{VocabSize: 300, SpecialTokens: []string{"[PAD]", "[UNK]"}}, PreTokenizer: tokenizer.Whitespace{}, UnkToken: "[UNK]"})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

var words = strings.Fields("и в не что он на я с как а то все она так его но да ты к у же вы за бы по только ее мне было вот от меня еще нет о из ему теперь когда даже ну вдруг ли если уже или ни быть был него до вас нибудь опять уж вам ведь там потом себя ничего ей может они тут где есть надо ней для мы тебя их чем была сам чтоб без будто чего раз тоже себе под будет ж тогда кто этот князь Пьер Наташа Андрей сказал")

// genText makes lines of random words (some empty), seeded.
func genText(seed uint64, lines int) string {
	r := rand.New(rand.NewPCG(seed, 7))
	var sb strings.Builder
	for range lines {
		if r.IntN(8) == 0 {
			sb.WriteString("\n")
			continue
		}
		for j := range 1 + r.IntN(40) {
			if j > 0 {
				sb.WriteString(" ")
			}
			sb.WriteString(words[r.IntN(len(words))])
		}
		sb.WriteString(".\n")
	}
	return sb.String()
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func gzipped(t *testing.T, s string) string {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write([]byte(s))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// Streaming gives today's blocks for any number of workers, several files read as one dataset
// (map batches run across the files' boundary, as with data_files=[...]), and gzip files.
func TestLoadStreamsAsToday(t *testing.T) {
	tok := testTokenizer(t)
	dir := t.TempDir()
	a, b := genText(2, 2500), genText(3, 1700)
	pa, pb := writeFile(t, dir, "a.txt", a), writeFile(t, dir, "b.txt", b)
	whole := writeFile(t, dir, "ab.txt", a+b)
	pbz := writeFile(t, dir, "b.txt.gz", gzipped(t, b))
	want := today(t, tok, 32, whole)
	if len(want) < 32*100 {
		t.Fatalf("only %d tokens", len(want))
	}
	for _, tc := range []struct {
		name    string
		paths   []string
		workers int
	}{
		{"one file, 1 worker", []string{whole}, 1},
		{"one file, 7 workers", []string{whole}, 7},
		{"two files", []string{pa, pb}, 3},
		{"a gzip file", []string{pa, pbz}, 2},
	} {
		bl, err := LoadText(&corpus.TextDataset{Paths: tc.paths}, tok, Options{BlockSize: 32, Workers: tc.workers})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !slices.Equal(bl.Tokens, want) || bl.Path != "" || bl.Stats.Lines != 4200 {
			t.Errorf("%s: %d tokens, want %d; equal %v; path %q; stats %+v", tc.name, len(bl.Tokens), len(want), slices.Equal(bl.Tokens, want), bl.Path, bl.Stats)
		}
		bl.Close()
	}
	// Blocks are independent per map batch: the 1000-line batches, not the files, set remainders.
	if got := today(t, tok, 32, pa, pb); !slices.Equal(got, want) {
		t.Error("the reference itself differs across files")
	}
}

// The cache: found again without tokenizing, keyed by content, tokenizer settings and block size;
// the split and the blocks read in place from the mapping.
func TestLoadCaches(t *testing.T) {
	tok := testTokenizer(t)
	dir, cache := t.TempDir(), t.TempDir()
	p := writeFile(t, dir, "c.txt", genText(4, 3000))
	first, err := Load(p, tok, Options{BlockSize: 64, CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	again, err := Load(p, tok, Options{BlockSize: 64, CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if first.FromCache || !again.FromCache || again.Path != first.Path || !slices.Equal(again.Tokens, first.Tokens) {
		t.Errorf("first from cache %v, second %v, same path %v, equal %v", first.FromCache, again.FromCache, again.Path == first.Path, slices.Equal(again.Tokens, first.Tokens))
	}
	other, err := Load(p, tok, Options{BlockSize: 32, CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if other.FromCache || other.Path == first.Path {
		t.Error("another block size found the same cache")
	}
	// An edit of a small file changes the key even with the same size and time.
	st, _ := os.Stat(p)
	content := mustRead(t, p)
	content[10] ^= 1
	writeFile(t, dir, "c.txt", string(content))
	_ = os.Chtimes(p, st.ModTime(), st.ModTime())
	edited, err := Load(p, tok, Options{BlockSize: 64, CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	defer edited.Close()
	if edited.FromCache {
		t.Error("an edited corpus was found in the cache")
	}
	train, eval := first.Split(0.1, 42)
	if len(eval) != first.Len()/10 || len(train)+len(eval) != first.Len() {
		t.Errorf("split %d/%d of %d", len(train), len(eval), first.Len())
	}
	entries, _ := os.ReadDir(cache)
	if len(entries) != 3 {
		t.Errorf("cache holds %d files, want 3", len(entries))
	}
}

// A large file is keyed by size, time and samples: a change in a sample or of the time is seen.
func TestCacheKeyLargeFile(t *testing.T) {
	tok := testTokenizer(t)
	p := filepath.Join(t.TempDir(), "big.txt")
	big := bytes.Repeat([]byte("строка текста\n"), fullHashMax/20)
	if err := os.WriteFile(p, big, 0o644); err != nil {
		t.Fatal(err)
	}
	ds := &corpus.TextDataset{Paths: []string{p}}
	key := func() string {
		k, err := cacheKey(ds, tok, 64)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	k0 := key()
	st, _ := os.Stat(p)
	big[len(big)-2] = 'X' // in the last sample
	if err := os.WriteFile(p, big, 0o644); err != nil {
		t.Fatal(err)
	}
	_ = os.Chtimes(p, st.ModTime(), st.ModTime())
	if key() == k0 {
		t.Error("a change in the last sample kept the key")
	}
	k1 := key()
	_ = os.Chtimes(p, st.ModTime(), st.ModTime().Add(1e9))
	if key() == k1 {
		t.Error("a new modification time kept the key")
	}
}

// faultFS serves dir's files; after `after` bytes of a file, hook runs once, and the read returns
// its error (nil: the read goes on).
type faultFS struct {
	dir   string
	after int64
	hook  func(path string) error
}

func (f faultFS) Open(name string) (fs.File, error) {
	file, err := os.Open(filepath.Join(f.dir, name))
	if err != nil {
		return nil, err
	}
	return &faultFile{File: file, fs: f, path: filepath.Join(f.dir, name)}, nil
}

type faultFile struct {
	*os.File
	fs    faultFS
	path  string
	n     int64
	fired bool
}

func (f *faultFile) Read(p []byte) (int, error) {
	if !f.fired && f.n >= f.fs.after {
		f.fired = true
		if err := f.fs.hook(f.path); err != nil {
			return 0, err
		}
	}
	p = p[:min(len(p), 4096)]
	n, err := f.File.Read(p)
	f.n += int64(n)
	return n, err
}

// Bad input gives a clear error and leaves no cache (nor temporary file) behind.
func TestBadInputLeavesNoCache(t *testing.T) {
	tok := testTokenizer(t)
	text := genText(5, 6000)
	for _, tc := range []struct {
		name    string
		content string
		fsys    func(dir string) fs.FS
		opts    func(*corpus.TextDataset)
		want    string
	}{
		{"read error midway", text, func(dir string) fs.FS {
			return faultFS{dir, 100 << 10, func(string) error { return &fs.PathError{Op: "read", Path: "c.txt", Err: syscall.EIO} }}
		}, nil, "input/output error"},
		{"truncated midway", text, func(dir string) fs.FS {
			return faultFS{dir, 100 << 10, func(p string) error { return os.Truncate(p, 150<<10) }}
		}, nil, "changed while it was read"},
		{"removed midway", text, func(dir string) fs.FS {
			return faultFS{dir, 100 << 10, os.Remove}
		}, nil, "was removed while it was read"},
		{"invalid UTF-8", "первая\nвто\xd1рая\n" + text, nil, nil, "line 2 is not valid UTF-8 (at byte 6 of the line)"},
		{"a 50 MB line", text + strings.Repeat("слово ", 50<<20/12), nil, nil, "longer than 16777216 bytes"},
		{"empty", "\n\n\n", nil, nil, "the corpus is empty or too short"},
		{"bad encoding_errors", text, nil, func(d *corpus.TextDataset) { d.EncodingErrors = "ignore" }, "want strict or replace"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, cache := t.TempDir(), t.TempDir()
			writeFile(t, dir, "c.txt", tc.content)
			ds := &corpus.TextDataset{Paths: []string{filepath.Join(dir, "c.txt")}}
			if tc.fsys != nil {
				ds = &corpus.TextDataset{Paths: []string{"c.txt"}, FS: tc.fsys(dir)}
			}
			if tc.opts != nil {
				tc.opts(ds)
			}
			b, err := LoadText(ds, tok, Options{BlockSize: 64, CacheDir: cache})
			if err == nil {
				b.Close()
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to say %q", err, tc.want)
			}
			if entries, _ := os.ReadDir(cache); len(entries) != 0 {
				t.Errorf("the cache folder holds %v", entries)
			}
		})
	}
}

// encoding_errors="replace": Python's replacement, counted; the key differs from strict's.
func TestReplaceInvalidUTF8(t *testing.T) {
	tok := testTokenizer(t)
	dir := t.TempDir()
	text := genText(6, 3000)
	bad := writeFile(t, dir, "bad.txt", strings.Replace(text, "\n", "\xe2\x82\n", 3))
	good := writeFile(t, dir, "good.txt", strings.Replace(text, "\n", "\ufffd\n", 3))
	ds := &corpus.TextDataset{Paths: []string{bad}, EncodingErrors: "replace"}
	b, err := LoadText(ds, tok, Options{BlockSize: 64})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if want := today(t, tok, 64, good); !slices.Equal(b.Tokens, want) || b.Stats.Replaced != 3 {
		t.Errorf("equal %v, replaced %d lines, want 3", slices.Equal(b.Tokens, want), b.Stats.Replaced)
	}
	strict, _ := cacheKey(&corpus.TextDataset{Paths: []string{bad}}, tok, 64)
	if replace, _ := cacheKey(ds, tok, 64); strict == replace {
		t.Error("strict and replace share a cache key")
	}
}

// A killed run's temporary file is removed by the next build once it is stale, not before.
func TestStaleTemporaryFiles(t *testing.T) {
	tok := testTokenizer(t)
	dir, cache := t.TempDir(), t.TempDir()
	p := writeFile(t, dir, "c.txt", genText(8, 2000))
	stale := writeFile(t, cache, ".blocks-64-0123.bin.tmp-111", "GPTBLK1\n")
	live := writeFile(t, cache, ".blocks-64-4567.bin.tmp-222", "GPTBLK1\n")
	other := writeFile(t, cache, ".notes.txt.tmp-333", "")
	old := mustStat(t, stale).ModTime().Add(-2 * 3600e9)
	_ = os.Chtimes(stale, old, old)
	_ = os.Chtimes(other, old, old)
	b, err := Load(p, tok, Options{BlockSize: 64, CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	for path, want := range map[string]bool{stale: false, live: true, other: true} {
		if _, err := os.Stat(path); (err == nil) != want {
			t.Errorf("%s: exists %v, want %v", filepath.Base(path), err == nil, want)
		}
	}
}

func mustStat(t *testing.T, p string) os.FileInfo {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// A cache file cut short (by a disk that filled up, say, outside this package's own writes) is not
// loaded: it is rebuilt.
func TestTruncatedCacheIsRebuilt(t *testing.T) {
	tok := testTokenizer(t)
	dir, cache := t.TempDir(), t.TempDir()
	p := writeFile(t, dir, "c.txt", genText(9, 2000))
	b, err := Load(p, tok, Options{BlockSize: 64, CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Clone(b.Tokens)
	b.Close()
	if err := os.Truncate(b.Path, mustStat(t, b.Path).Size()-4); err != nil {
		t.Fatal(err)
	}
	again, err := Load(p, tok, Options{BlockSize: 64, CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if again.FromCache || !slices.Equal(again.Tokens, want) {
		t.Errorf("from cache %v, equal %v", again.FromCache, slices.Equal(again.Tokens, want))
	}
}

// htmlRecorder is a notebook display: it keeps the last HTML of each block.
type htmlRecorder struct {
	mu    sync.Mutex
	last  map[string]string
	calls int
}

func (r *htmlRecorder) Write(p []byte) (int, error) { return len(p), nil }
func (r *htmlRecorder) UpdateHTML(id, html string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last == nil {
		r.last = map[string]string{}
	}
	r.last[id] = html
	r.calls++
}

// In a notebook the progress is one HTML block; its final state shows the bytes read (all of them),
// the rate, and the tokens and blocks made.
func TestProgressInNotebook(t *testing.T) {
	tok := testTokenizer(t)
	text := genText(10, 3000)
	p := writeFile(t, t.TempDir(), "c.txt", text)
	rec := &htmlRecorder{}
	b, err := Load(p, tok, Options{BlockSize: 64, Progress: rec})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if len(rec.last) != 1 {
		t.Fatalf("%d HTML blocks", len(rec.last))
	}
	size := progress.Size(int64(len(text)))
	for _, html := range rec.last {
		for _, want := range []string{"<progress", "tokenize", size + "/" + size, "/s]", fmt.Sprintf("%s tokens, %d blocks", countString(b.Stats.Tokens), b.Len())} {
			if !strings.Contains(html, want) {
				t.Errorf("final HTML lacks %q: %s", want, html)
			}
		}
	}
}
