package tokenizer

import (
	"bufio"
	"container/heap"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/gonb-gpt/tutorial/lib/progress"
)

// BpeTrainer trains a BPE model with the semantics of HF tokenizers' BpeTrainer: words are counted
// after pre-tokenization; the alphabet (every character of the words, plus InitialAlphabet, at most
// LimitAlphabet of the most frequent) gets ids after the special tokens, in code-point order; then
// the most frequent adjacent pair is merged again and again — ties broken by the smallest pair of
// ids — until the vocabulary has VocabSize tokens or no pair occurs MinFrequency times.
type BpeTrainer struct {
	VocabSize    int
	MinFrequency int
	// SpecialTokens get the first ids, in order.
	SpecialTokens   []string
	LimitAlphabet   int // 0: no limit
	InitialAlphabet []rune
	// ContinuingSubwordPrefix and EndOfWordSuffix mark tokens inside and at the end of words.
	ContinuingSubwordPrefix string
	EndOfWordSuffix         string
	// Progress receives progress bars (nil: none).
	Progress io.Writer
}

// NewBpeTrainer returns HF's defaults: vocab_size 30000, min_frequency 0.
func NewBpeTrainer() *BpeTrainer { return &BpeTrainer{VocabSize: 30000} }

// TrainStats reports on the input of a training run.
type TrainStats struct {
	Lines, Words, UniqueWords int
	// InvalidUTF8 counts lines that held invalid UTF-8 (each bad byte was replaced by U+FFFD).
	InvalidUTF8 int
}

// CountWords reads the files line by line (keeping line ends, as HF does) and counts the
// pre-tokenized words, in parallel.
func CountWords(files []string, pre PreTokenizer, norm Normalizer) (map[string]int, TrainStats, error) {
	var stats TrainStats
	if len(files) == 0 {
		return nil, stats, errors.New("no training files")
	}
	workers := runtime.GOMAXPROCS(0)
	chunks := make(chan []string, 2*workers)
	results := make(chan map[string]int, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			counts := make(map[string]int)
			var pieces []Piece
			for chunk := range chunks {
				for _, line := range chunk {
					if norm != nil {
						line = norm.Normalize(line)
					}
					pieces = pre.Split(line, pieces[:0])
					for _, p := range pieces {
						counts[p.Text]++
					}
				}
			}
			results <- counts
		}()
	}
	var readErr error
	go func() {
		defer close(chunks)
		for _, f := range files {
			if err := readLines(f, &stats, chunks); err != nil {
				readErr = err
				return
			}
		}
	}()
	go func() { wg.Wait(); close(results) }()
	var total map[string]int
	for c := range results {
		if total == nil {
			total = c
			continue
		}
		if len(c) > len(total) {
			total, c = c, total
		}
		for w, n := range c {
			total[w] += n
		}
	}
	if readErr != nil {
		return nil, stats, readErr
	}
	for _, n := range total {
		stats.Words += n
	}
	stats.UniqueWords = len(total)
	if stats.Words == 0 {
		return nil, stats, fmt.Errorf("the training files (%s) hold no words", strings.Join(files, ", "))
	}
	return total, stats, nil
}

func readLines(path string, stats *TrainStats, out chan<- []string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("training file: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	chunk := make([]string, 0, 4096)
	for {
		line, err := r.ReadString('\n')
		if line != "" {
			stats.Lines++
			if !utf8.ValidString(line) {
				stats.InvalidUTF8++
				line = strings.ToValidUTF8(line, "\uFFFD")
			}
			chunk = append(chunk, line)
			if len(chunk) == cap(chunk) {
				out <- chunk
				chunk = make([]string, 0, 4096)
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("reading %s: %w", path, err)
		}
	}
	if len(chunk) > 0 {
		out <- chunk
	}
	return nil
}

// word is a word being merged: its symbols' ids.
type trainWord []int32

// pairCount is a heap entry: a pair, its count when pushed, and the words where it occurs.
type pairCount struct {
	pair  uint64
	count int64
	pos   []int32
}

type pairHeap []*pairCount

func (h pairHeap) Len() int { return len(h) }
func (h pairHeap) Less(i, j int) bool {
	if h[i].count != h[j].count {
		return h[i].count > h[j].count
	}
	return h[i].pair < h[j].pair // ties: the smallest (left id, right id) first
}
func (h pairHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *pairHeap) Push(x any)   { *h = append(*h, x.(*pairCount)) }
func (h *pairHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// Train builds a BPE model from word counts.
func (t *BpeTrainer) Train(counts map[string]int) (*BPE, error) {
	// Special tokens first, then the alphabet in code-point order.
	vocab := make(map[string]int)
	var tokens []string
	add := func(s string) int32 {
		if id, ok := vocab[s]; ok {
			return int32(id)
		}
		vocab[s] = len(tokens)
		tokens = append(tokens, s)
		return int32(len(tokens) - 1)
	}
	for _, s := range t.SpecialTokens {
		add(s)
	}
	alphabet := make(map[rune]uint64)
	for w, n := range counts {
		for _, r := range w {
			alphabet[r] += uint64(n)
		}
	}
	for _, r := range t.InitialAlphabet {
		alphabet[r] = ^uint64(0)
	}
	kept := make([]rune, 0, len(alphabet))
	for r := range alphabet {
		kept = append(kept, r)
	}
	if t.LimitAlphabet > 0 && len(kept) > t.LimitAlphabet {
		// Drop the least frequent (HF breaks ties in hash order; here by code point).
		sort.Slice(kept, func(i, j int) bool {
			if alphabet[kept[i]] != alphabet[kept[j]] {
				return alphabet[kept[i]] < alphabet[kept[j]]
			}
			return kept[i] < kept[j]
		})
		kept = kept[len(kept)-t.LimitAlphabet:]
	}
	slices.Sort(kept)
	minVocab := len(t.SpecialTokens) + len(kept)
	if t.VocabSize < minVocab {
		return nil, fmt.Errorf("vocab_size %d is smaller than the special tokens and the alphabet (%d + %d characters)",
			t.VocabSize, len(t.SpecialTokens), len(kept))
	}
	for _, r := range kept {
		add(string(r))
	}

	// The words as symbol ids (sorted for determinism: HF uses hash order, which only matters for
	// the ids of prefixed/suffixed characters).
	keys := make([]string, 0, len(counts))
	for w := range counts {
		keys = append(keys, w)
	}
	sort.Strings(keys)
	words := make([]trainWord, len(keys))
	wcounts := make([]int64, len(keys))
	for i, w := range keys {
		wcounts[i] = int64(counts[w])
		n := utf8.RuneCountInString(w)
		word := make(trainWord, 0, n)
		k := 0
		for _, r := range w {
			s := string(r)
			if _, ok := vocab[s]; !ok {
				k++
				continue // not in the (limited) alphabet
			}
			if t.ContinuingSubwordPrefix != "" && k > 0 {
				s = t.ContinuingSubwordPrefix + s
			}
			if t.EndOfWordSuffix != "" && k == n-1 {
				s += t.EndOfWordSuffix
			}
			word = append(word, add(s))
			k++
		}
		words[i] = word
	}

	// Count pairs.
	pairCounts := make(map[uint64]int64)
	where := make(map[uint64][]int32)
	for i, w := range words {
		for k := 0; k+1 < len(w); k++ {
			p := pairKey(w[k], w[k+1])
			pairCounts[p] += wcounts[i]
			if pos := where[p]; len(pos) == 0 || pos[len(pos)-1] != int32(i) {
				where[p] = append(pos, int32(i))
			}
		}
	}
	h := make(pairHeap, 0, len(where))
	for p, pos := range where {
		if c := pairCounts[p]; c > 0 {
			h = append(h, &pairCount{p, c, pos})
		}
	}
	heap.Init(&h)
	clear(where)

	bar := progress.Count(t.Progress, int64(t.VocabSize-len(tokens)), "merges")
	var merges [][2]string
	type change struct {
		pair  uint64
		delta int64
		word  int32
	}
	var changes []change
	for len(tokens) < t.VocabSize && h.Len() > 0 {
		top := h[0]
		if cur := pairCounts[top.pair]; top.count != cur {
			top.count = cur
			heap.Fix(&h, 0)
			continue
		}
		heap.Pop(&h)
		if top.count < 1 || int64(t.MinFrequency) > top.count {
			break
		}
		a, b := int32(top.pair>>32), int32(uint32(top.pair))
		partB := tokens[b]
		if t.ContinuingSubwordPrefix != "" {
			partB = strings.TrimPrefix(partB, t.ContinuingSubwordPrefix)
		}
		before := len(tokens)
		newID := add(tokens[a] + partB)
		if len(tokens) > before {
			bar.Add(1)
		}
		merges = append(merges, [2]string{tokens[a], tokens[b]})

		changes = changes[:0]
		for _, wi := range top.pos {
			w := words[wi]
			out := w[:0]
			// Rebuild the word with every occurrence of (a, b) merged, left to right, recording
			// the pairs that disappear and appear (HF's Word::merge).
			for k := 0; k < len(w); {
				if k+1 < len(w) && w[k] == a && w[k+1] == b {
					if len(out) > 0 {
						prev := out[len(out)-1]
						changes = append(changes, change{pairKey(prev, a), -1, wi}, change{pairKey(prev, newID), 1, wi})
					}
					if k+2 < len(w) {
						next := w[k+2]
						changes = append(changes, change{pairKey(b, next), -1, wi}, change{pairKey(newID, next), 1, wi})
					}
					out = append(out, newID)
					k += 2
					continue
				}
				out = append(out, w[k])
				k++
			}
			words[wi] = out
		}
		for _, c := range changes {
			pairCounts[c.pair] += c.delta * wcounts[c.word]
			if c.delta > 0 {
				if pos := where[c.pair]; len(pos) == 0 || pos[len(pos)-1] != c.word {
					where[c.pair] = append(pos, c.word)
				}
			}
		}
		for p, pos := range where {
			if c := pairCounts[p]; c > 0 {
				heap.Push(&h, &pairCount{p, c, pos})
			}
		}
		clear(where)
	}
	bar.Done() // the vocabulary size is an upper bound: merging stops when no pair is left

	m := &BPE{Vocab: vocab, Merges: merges, ContinuingSubwordPrefix: t.ContinuingSubwordPrefix, EndOfWordSuffix: t.EndOfWordSuffix}
	if err := m.init(); err != nil {
		return nil, fmt.Errorf("trained model: %w", err)
	}
	return m, nil
}
