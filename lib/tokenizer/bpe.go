package tokenizer

import (
	"fmt"
	"sync"
	"unicode/utf8"
)

// BPE is a byte-pair-encoding model with HF tokenizers' semantics: a word is split into characters
// (each looked up in the vocabulary, with ContinuingSubwordPrefix before all but the first and
// EndOfWordSuffix after the last), then the adjacent pair with the lowest merge rank is merged,
// leftmost first, until no pair has a merge.
type BPE struct {
	// Vocab maps tokens to ids; Tokens is its inverse (id → token).
	Vocab  map[string]int
	Tokens []string
	// Merges lists the merges in rank order.
	Merges [][2]string
	// UnkToken replaces characters missing from the vocabulary ("" drops them, as HF does).
	UnkToken                string
	ContinuingSubwordPrefix string
	EndOfWordSuffix         string
	FuseUnk                 bool
	ByteFallback            bool
	IgnoreMerges            bool

	ranks      map[uint64]merge // pair of ids → rank and merged id
	cache      wordCache
	unkIDCache int
	// prefixSet and suffixSet record an explicit "" in tokenizer.json (written back as "", not null).
	prefixSet, suffixSet bool
}

type merge struct {
	rank int32
	id   int32
}

const cacheSize = 1 << 17

func pairKey(a, b int32) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

// NewBPE builds a model from a vocabulary and merges, checking that every merge's parts and result
// are in the vocabulary.
func NewBPE(vocab map[string]int, merges [][2]string) (*BPE, error) {
	m := &BPE{Vocab: vocab, Merges: merges}
	if err := m.init(); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *BPE) init() error {
	maxID := -1
	for _, id := range m.Vocab {
		maxID = max(maxID, id)
	}
	m.Tokens = make([]string, maxID+1)
	for t, id := range m.Vocab {
		if id < 0 {
			return fmt.Errorf("vocabulary: token %q has a negative id %d", t, id)
		}
		m.Tokens[id] = t
	}
	m.ranks = make(map[uint64]merge, len(m.Merges))
	prefixLen := len(m.ContinuingSubwordPrefix)
	for rank, mg := range m.Merges {
		a, ok1 := m.Vocab[mg[0]]
		b, ok2 := m.Vocab[mg[1]]
		if !ok1 || !ok2 {
			return fmt.Errorf("merges[%d] %q %q: a part is not in the vocabulary", rank, mg[0], mg[1])
		}
		right := mg[1]
		if prefixLen > 0 && len(right) >= prefixLen && right[:prefixLen] == m.ContinuingSubwordPrefix {
			right = right[prefixLen:]
		}
		id, ok := m.Vocab[mg[0]+right]
		if !ok {
			return fmt.Errorf("merges[%d] %q %q: the merged token %q is not in the vocabulary", rank, mg[0], mg[1], mg[0]+right)
		}
		k := pairKey(int32(a), int32(b))
		if _, dup := m.ranks[k]; !dup {
			m.ranks[k] = merge{int32(rank), int32(id)}
		}
	}
	m.unkIDCache = -1
	if id, ok := m.Vocab[m.UnkToken]; ok && m.UnkToken != "" {
		m.unkIDCache = id
	}
	m.cache.reset()
	return nil
}

// symbol is a piece of a word being merged.
type symbol struct {
	id         int32
	start, end int32 // bytes of the word
}

// EncodeWord appends the ids of word's tokens to dst, with each token's byte span in word.
func (m *BPE) EncodeWord(word string, dst []int32, spans []Span) ([]int32, []Span, error) {
	if word == "" {
		return dst, spans, nil
	}
	if c := m.cache.get(word); c != nil {
		return append(dst, c.ids...), append(spans, c.spans...), nil
	}
	if m.IgnoreMerges {
		if id, ok := m.Vocab[word]; ok {
			return append(dst, int32(id)), append(spans, Span{0, len(word)}), nil
		}
	}
	syms := make([]symbol, 0, utf8.RuneCountInString(word))
	for i, r := range word {
		n := utf8.RuneLen(r)
		if r == utf8.RuneError {
			_, n = utf8.DecodeRuneInString(word[i:]) // an invalid byte counts as one
		}
		end := i + n
		s := word[i:end]
		if m.ContinuingSubwordPrefix != "" && i > 0 {
			s = m.ContinuingSubwordPrefix + s
		}
		if m.EndOfWordSuffix != "" && end == len(word) {
			s += m.EndOfWordSuffix
		}
		id, ok := m.Vocab[s]
		if !ok {
			if m.ByteFallback {
				ok = true
				for b := i; b < end; b++ {
					bid, found := m.Vocab[fmt.Sprintf("<0x%02X>", word[b])]
					if !found {
						ok = false
						break
					}
					syms = append(syms, symbol{int32(bid), int32(b), int32(b + 1)})
				}
				if ok {
					continue
				}
			}
			if m.UnkToken == "" {
				continue // HF drops characters it cannot represent when there is no unk token
			}
			if m.unkIDCache < 0 {
				return dst, spans, fmt.Errorf("character %q is not in the vocabulary and the unk_token %q is not either", s, m.UnkToken)
			}
			if m.FuseUnk && len(syms) > 0 && syms[len(syms)-1].id == int32(m.unkIDCache) {
				syms[len(syms)-1].end = int32(end)
				continue
			}
			id = m.unkIDCache
		}
		syms = append(syms, symbol{int32(id), int32(i), int32(end)})
	}
	syms = m.mergeSymbols(syms)
	c := &cachedWord{ids: make([]int32, len(syms)), spans: make([]Span, len(syms))}
	for k, s := range syms {
		c.ids[k] = s.id
		c.spans[k] = Span{int(s.start), int(s.end)}
	}
	m.cache.put(word, c)
	return append(dst, c.ids...), append(spans, c.spans...), nil
}

type cachedWord struct {
	ids   []int32
	spans []Span
}

// wordCache maps words to their encodings, in shards each under its own lock, and stops growing
// at cacheSize words (like HF's BPE cache).
type wordCache struct {
	shards [64]struct {
		mu sync.RWMutex
		m  map[string]*cachedWord
	}
}

func (c *wordCache) reset() {
	for i := range c.shards {
		c.shards[i].mu.Lock()
		c.shards[i].m = make(map[string]*cachedWord)
		c.shards[i].mu.Unlock()
	}
}

func shardOf(s string) int {
	h := uint32(2166136261)
	for i := 0; i < len(s) && i < 8; i++ {
		h = (h ^ uint32(s[i])) * 16777619
	}
	return int((h ^ uint32(len(s))*2654435761) % 64)
}

func (c *wordCache) get(w string) *cachedWord {
	sh := &c.shards[shardOf(w)]
	sh.mu.RLock()
	v := sh.m[w]
	sh.mu.RUnlock()
	return v
}

func (c *wordCache) put(w string, v *cachedWord) {
	sh := &c.shards[shardOf(w)]
	sh.mu.Lock()
	if sh.m == nil {
		sh.m = make(map[string]*cachedWord)
	}
	if len(sh.m) < cacheSize/64 {
		sh.m[w] = v
	}
	sh.mu.Unlock()
}

// mergeSymbols applies merges: lowest rank first, leftmost among equals.
func (m *BPE) mergeSymbols(syms []symbol) []symbol {
	for len(syms) > 1 {
		best, bestRank := -1, int32(-1)
		var bestID int32
		for k := 0; k+1 < len(syms); k++ {
			mg, ok := m.ranks[pairKey(syms[k].id, syms[k+1].id)]
			if ok && (best < 0 || mg.rank < bestRank) {
				best, bestRank, bestID = k, mg.rank, mg.id
			}
		}
		if best < 0 {
			break
		}
		// Merge every occurrence of this pair, left to right (the same as merging the leftmost
		// repeatedly, since the pair's rank stays the lowest).
		a, b := syms[best].id, syms[best+1].id
		out := syms[:best]
		for k := best; k < len(syms); {
			if k+1 < len(syms) && syms[k].id == a && syms[k+1].id == b {
				out = append(out, symbol{bestID, syms[k].start, syms[k+1].end})
				k += 2
				continue
			}
			out = append(out, syms[k])
			k++
		}
		syms = out
	}
	return syms
}

// ID returns a token's id.
func (m *BPE) ID(token string) (int, bool) {
	id, ok := m.Vocab[token]
	return id, ok
}

// Token returns an id's token ("" and false when out of range).
func (m *BPE) Token(id int) (string, bool) {
	if id < 0 || id >= len(m.Tokens) {
		return "", false
	}
	return m.Tokens[id], true
}
