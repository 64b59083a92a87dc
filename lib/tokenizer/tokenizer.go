// Package tokenizer is a pure-Go tokenizer with the semantics of Hugging Face tokenizers: BPE
// training (BpeTrainer), encoding and decoding with the Whitespace, WhitespaceSplit, ByteLevel
// (GPT-2, ruGPT-3) and Metaspace pre-tokenizers, added and special tokens, padding and truncation,
// and tokenizer.json in and out, so that a tokenizer trained here loads in Python and the other
// way round.
package tokenizer

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// AddedToken is a token matched in the text before pre-tokenization (HF's AddedToken).
type AddedToken struct {
	ID         int    `json:"id"`
	Content    string `json:"content"`
	SingleWord bool   `json:"single_word"`
	LStrip     bool   `json:"lstrip"`
	RStrip     bool   `json:"rstrip"`
	Normalized bool   `json:"normalized"`
	Special    bool   `json:"special"`
}

// Normalizer transforms text before pre-tokenization.
type Normalizer interface {
	Normalize(string) string
	Type() string
}

// UnicodeNormalizer is one of HF's NFC, NFD, NFKC and NFKD normalizers.
type UnicodeNormalizer struct{ Form string }

// Normalize implements Normalizer.
func (u UnicodeNormalizer) Normalize(s string) string {
	switch u.Form {
	case "NFC":
		return norm.NFC.String(s)
	case "NFD":
		return norm.NFD.String(s)
	case "NFKC":
		return norm.NFKC.String(s)
	default:
		return norm.NFKD.String(s)
	}
}

// Type implements Normalizer.
func (u UnicodeNormalizer) Type() string { return u.Form }

// Lowercase is HF's Lowercase normalizer.
type Lowercase struct{}

// Normalize implements Normalizer.
func (Lowercase) Normalize(s string) string { return strings.ToLower(s) }

// Type implements Normalizer.
func (Lowercase) Type() string { return "Lowercase" }

// Decoder turns tokens back into text.
type Decoder interface {
	Decode(tokens []string) string
	Type() string
}

// ByteLevelDecoder maps byte-level characters back to bytes (invalid UTF-8 becomes U+FFFD, as
// HF's from_utf8_lossy does). Its flags do not change decoding; they are kept for tokenizer.json.
type ByteLevelDecoder struct{ AddPrefixSpace, TrimOffsets, UseRegex bool }

// NewByteLevelDecoder returns HF's decoders.ByteLevel() (all flags true).
func NewByteLevelDecoder() ByteLevelDecoder { return ByteLevelDecoder{true, true, true} }

// Type implements Decoder.
func (ByteLevelDecoder) Type() string { return "ByteLevel" }

// Decode implements Decoder.
func (ByteLevelDecoder) Decode(tokens []string) string {
	var buf []byte
	for _, t := range tokens {
		for _, r := range t {
			if b, ok := runeToByte[r]; ok {
				buf = append(buf, b)
			} else {
				buf = utf8.AppendRune(buf, r)
			}
		}
	}
	return strings.ToValidUTF8(string(buf), "\uFFFD")
}

// MetaspaceDecoder turns "▁" back into spaces, dropping the one put before the text.
type MetaspaceDecoder struct {
	Replacement   rune
	PrependScheme string
	Split         bool
}

// Type implements Decoder.
func (*MetaspaceDecoder) Type() string { return "Metaspace" }

// Decode implements Decoder.
func (d *MetaspaceDecoder) Decode(tokens []string) string {
	var b strings.Builder
	for i, t := range tokens {
		t = strings.ReplaceAll(t, string(d.Replacement), " ")
		if i == 0 && d.PrependScheme != "never" {
			t = strings.TrimPrefix(t, " ")
		}
		b.WriteString(t)
	}
	return b.String()
}

// BPEDecoder is HF's BPEDecoder: the end-of-word suffix becomes a space.
type BPEDecoder struct{ Suffix string }

// Type implements Decoder.
func (*BPEDecoder) Type() string { return "BPEDecoder" }

// Decode implements Decoder.
func (d *BPEDecoder) Decode(tokens []string) string {
	var b strings.Builder
	for i, t := range tokens {
		repl := " "
		if i == len(tokens)-1 {
			repl = ""
		}
		b.WriteString(strings.ReplaceAll(t, d.Suffix, repl))
	}
	return b.String()
}

// Padding configures padding of batches (HF's enable_padding).
type Padding struct {
	// Strategy is "BatchLongest" (pad to the longest of the batch) or "Fixed" (to Length).
	Strategy         string
	Length           int
	Direction        string // "Right" or "Left"
	PadToMultipleOf  int
	PadID, PadTypeID int
	PadToken         string
}

// Truncation configures truncation (HF's enable_truncation).
type Truncation struct {
	MaxLength int
	Stride    int
	Strategy  string // "LongestFirst"
	Direction string // "Right" or "Left"
}

// Tokenizer is the whole pipeline: added tokens, normalizer, pre-tokenizer, BPE model, decoder,
// padding and truncation.
type Tokenizer struct {
	Model        *BPE
	Normalizer   Normalizer
	PreTokenizer PreTokenizer
	Decoder      Decoder
	// PostProcessor is kept as read from tokenizer.json ("ByteLevel" only changes offsets).
	PostProcessor map[string]any
	Added         []AddedToken
	Padding       *Padding
	Truncation    *Truncation
	// ModelInputNames are the inputs the transformers wrapper of this tokenizer returns (its
	// model_input_names): PreTrainedTokenizerFast's ["input_ids", "token_type_ids",
	// "attention_mask"] for a tokenizer.json loaded on its own, as the tutorial wraps its trained
	// tokenizer; GPT2TokenizerFast's ["input_ids", "attention_mask"] for a GPT-2 model folder (see
	// LoadDir). A model given token_type_ids adds their embeddings (GPT-2: wte), so this matters.
	ModelInputNames []string
	// CleanUpTokenizationSpaces is tokenizer_config.json's clean_up_tokenization_spaces
	// (transformers' default: false), the default of DecodeOptions.CleanUpTokenizationSpaces.
	CleanUpTokenizationSpaces bool
	// CleanUpForBPE is tokenizer_config.json's
	// clean_up_tokenization_spaces_for_bpe_even_though_it_will_corrupt_output: without it
	// transformers (from 5.7) ignores CleanUpTokenizationSpaces for BPE models (see DecodeWith).
	CleanUpForBPE bool

	addedByID map[int]*AddedToken
}

// Model input names of transformers' tokenizer classes (PreTrainedTokenizerBase.model_input_names
// and GPT2TokenizerFast.model_input_names).
var (
	fastInputNames = []string{"input_ids", "token_type_ids", "attention_mask"}
	gpt2InputNames = []string{"input_ids", "attention_mask"}
)

// ReturnsTokenTypeIDs reports whether the transformers wrapper returns token_type_ids (see
// ModelInputNames); they are the encoding's TypeIDs, all zeros for one text without a template.
func (t *Tokenizer) ReturnsTokenTypeIDs() bool {
	return slices.Contains(t.ModelInputNames, "token_type_ids")
}

// Encoding is the result of encoding one text (HF's Encoding).
type Encoding struct {
	IDs               []int
	Tokens            []string
	TypeIDs           []int
	AttentionMask     []int
	SpecialTokensMask []int
	// Offsets are byte spans in the input text.
	Offsets []Span
	// Overflowing holds the parts cut off by truncation.
	Overflowing []*Encoding
}

// Len is the number of tokens.
func (e *Encoding) Len() int { return len(e.IDs) }

// New returns a tokenizer around a model, with no normalizer, pre-tokenizer or decoder.
func New(model *BPE) *Tokenizer {
	t := &Tokenizer{Model: model, ModelInputNames: slices.Clone(fastInputNames)}
	t.index()
	return t
}

func (t *Tokenizer) index() {
	t.addedByID = make(map[int]*AddedToken, len(t.Added))
	for i := range t.Added {
		t.addedByID[t.Added[i].ID] = &t.Added[i]
	}
}

// AddSpecialTokens adds special tokens (with new ids when not in the vocabulary).
func (t *Tokenizer) AddSpecialTokens(tokens ...string) { t.addTokens(true, tokens) }

// AddTokens adds normal added tokens.
func (t *Tokenizer) AddTokens(tokens ...string) { t.addTokens(false, tokens) }

func (t *Tokenizer) addTokens(special bool, tokens []string) {
	for _, s := range tokens {
		if s == "" {
			continue
		}
		dup := false
		for _, a := range t.Added {
			if a.Content == s {
				dup = true
			}
		}
		if dup {
			continue
		}
		id, ok := t.Model.Vocab[s]
		if !ok {
			id = t.VocabSize()
		}
		t.Added = append(t.Added, AddedToken{ID: id, Content: s, Special: special, Normalized: !special})
	}
	t.index()
}

// VocabSize counts the model's vocabulary and the added tokens outside it (HF's
// get_vocab_size(with_added_tokens=True)).
func (t *Tokenizer) VocabSize() int {
	n := len(t.Model.Tokens)
	for _, a := range t.Added {
		if a.ID >= n {
			n = a.ID + 1
		}
	}
	return n
}

// TokenToID returns the id of a token (added tokens included).
func (t *Tokenizer) TokenToID(token string) (int, bool) {
	for _, a := range t.Added {
		if a.Content == token {
			return a.ID, true
		}
	}
	return t.Model.ID(token)
}

// IDToToken returns the token of an id.
func (t *Tokenizer) IDToToken(id int) (string, bool) {
	if a, ok := t.addedByID[id]; ok {
		return a.Content, true
	}
	return t.Model.Token(id)
}

// EnablePadding pads every batch to its longest encoding (or to a fixed length when length > 0)
// with the pad token ("[PAD]" by default) — HF's enable_padding().
func (t *Tokenizer) EnablePadding(padToken string, length int) error {
	if padToken == "" {
		padToken = "[PAD]"
	}
	id, ok := t.TokenToID(padToken)
	if !ok {
		return fmt.Errorf("padding: the pad token %q is not in the vocabulary", padToken)
	}
	p := &Padding{Strategy: "BatchLongest", Direction: "Right", PadID: id, PadToken: padToken}
	if length > 0 {
		p.Strategy, p.Length = "Fixed", length
	}
	t.Padding = p
	return nil
}

// EnableTruncation cuts encodings to maxLength tokens (HF's enable_truncation).
func (t *Tokenizer) EnableTruncation(maxLength int) {
	t.Truncation = &Truncation{MaxLength: maxLength, Strategy: "LongestFirst", Direction: "Right"}
}

// segment is a part of the input: either an added token or text for the model.
type segment struct {
	start, end int
	added      *AddedToken
}

// splitAdded finds the added tokens in text (leftmost, longest), honouring single_word, lstrip and
// rstrip.
func (t *Tokenizer) splitAdded(text string, dst []segment) []segment {
	if len(t.Added) == 0 {
		return append(dst, segment{0, len(text), nil})
	}
	pos := 0
	for pos < len(text) {
		bestAt, bestLen := -1, 0
		var best *AddedToken
		for i := range t.Added {
			a := &t.Added[i]
			from := pos
			for {
				k := strings.Index(text[from:], a.Content)
				if k < 0 {
					break
				}
				at := from + k
				if a.SingleWord && !isSingleWord(text, at, at+len(a.Content)) {
					from = at + 1
					continue
				}
				if bestAt < 0 || at < bestAt || (at == bestAt && len(a.Content) > bestLen) {
					bestAt, bestLen, best = at, len(a.Content), a
				}
				break
			}
		}
		if best == nil {
			break
		}
		s, e := bestAt, bestAt+bestLen
		if best.LStrip {
			for s > pos {
				r, n := utf8.DecodeLastRuneInString(text[pos:s])
				if !unicode.IsSpace(r) {
					break
				}
				s -= n
			}
		}
		if best.RStrip {
			for e < len(text) {
				r, n := utf8.DecodeRuneInString(text[e:])
				if !unicode.IsSpace(r) {
					break
				}
				e += n
			}
		}
		if s > pos {
			dst = append(dst, segment{pos, s, nil})
		}
		dst = append(dst, segment{s, e, best})
		pos = e
	}
	if pos < len(text) {
		dst = append(dst, segment{pos, len(text), nil})
	}
	return dst
}

func isSingleWord(text string, s, e int) bool {
	if s > 0 {
		r, _ := utf8.DecodeLastRuneInString(text[:s])
		if wordClass(r) == classWord {
			return false
		}
	}
	if e < len(text) {
		r, _ := utf8.DecodeRuneInString(text[e:])
		if wordClass(r) == classWord {
			return false
		}
	}
	return true
}

// Encode tokenizes one text. Truncation applies, padding only to a fixed length (batches are
// padded by EncodeBatch).
func (t *Tokenizer) Encode(text string) (*Encoding, error) {
	e, err := t.encode(text)
	if err != nil {
		return nil, err
	}
	if t.Padding != nil && t.Padding.Strategy == "Fixed" {
		t.pad(e, t.Padding.Length)
	}
	return e, nil
}

// scratch holds what encodeInto makes: the ids, their spans in the text and whether each is a
// special token, with the pre-tokenizer's pieces; reused, it makes encoding allocation-free.
type scratch struct {
	ids      []int32
	spans    []Span
	specials []bool
	pieces   []Piece
	segs     []segment
}

func (sc *scratch) reset() {
	sc.ids, sc.spans, sc.specials = sc.ids[:0], sc.spans[:0], sc.specials[:0]
}

// encodeInto tokenizes text into sc (reset first): no truncation or padding.
func (t *Tokenizer) encodeInto(text string, sc *scratch) error {
	if t.Model == nil {
		return fmt.Errorf("tokenizer has no model")
	}
	sc.reset()
	sc.segs = t.splitAdded(text, sc.segs[:0])
	for _, seg := range sc.segs {
		if seg.added != nil {
			sc.ids = append(sc.ids, int32(seg.added.ID))
			sc.spans = append(sc.spans, Span{seg.start, seg.end})
			sc.specials = append(sc.specials, seg.added.Special)
			continue
		}
		part := text[seg.start:seg.end]
		if t.Normalizer != nil {
			part = t.Normalizer.Normalize(part)
		}
		if t.PreTokenizer != nil {
			sc.pieces = t.PreTokenizer.Split(part, sc.pieces[:0])
		} else {
			sc.pieces = append(sc.pieces[:0], Piece{part, Span{0, len(part)}})
		}
		for _, p := range sc.pieces {
			n := len(sc.ids)
			var err error
			sc.ids, sc.spans, err = t.Model.EncodeWord(p.Text, sc.ids, sc.spans)
			if err != nil {
				return fmt.Errorf("encoding %q: %w", p.Text, err)
			}
			for k := n; k < len(sc.ids); k++ {
				sc.spans[k] = mapSpan(p, sc.spans[k], seg.start)
				sc.specials = append(sc.specials, false)
			}
		}
	}
	return nil
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// AppendIDs appends the ids of text's tokens to dst, without truncation or padding: what Encode
// gives as IDs, without building an Encoding. Safe for concurrent use.
func (t *Tokenizer) AppendIDs(dst []int32, text string) ([]int32, error) {
	sc := scratchPool.Get().(*scratch)
	defer scratchPool.Put(sc)
	if err := t.encodeInto(text, sc); err != nil {
		return dst, err
	}
	return append(dst, sc.ids...), nil
}

func (t *Tokenizer) encode(text string) (*Encoding, error) {
	var sc scratch
	if err := t.encodeInto(text, &sc); err != nil {
		return nil, err
	}
	ids, spans, specials := sc.ids, sc.spans, sc.specials
	e := &Encoding{
		IDs: make([]int, len(ids)), Tokens: make([]string, len(ids)), TypeIDs: make([]int, len(ids)),
		AttentionMask: make([]int, len(ids)), SpecialTokensMask: make([]int, len(ids)), Offsets: spans,
	}
	for i, id := range ids {
		e.IDs[i] = int(id)
		e.Tokens[i], _ = t.IDToToken(int(id))
		e.AttentionMask[i] = 1
		if specials[i] {
			e.SpecialTokensMask[i] = 1
		}
	}
	if t.Truncation != nil && t.Truncation.MaxLength > 0 && e.Len() > t.Truncation.MaxLength {
		t.truncate(e)
	}
	return e, nil
}

// mapSpan turns a token's span inside a piece into a span of the input text. Byte-level pieces are
// longer than their source (two bytes per mapped byte at most), so their spans are scaled back by
// counting characters.
func mapSpan(p Piece, s Span, segStart int) Span {
	if p.Span.End-p.Span.Start == len(p.Text) {
		return Span{segStart + p.Span.Start + s.Start, segStart + p.Span.Start + s.End}
	}
	// Byte-level: each character of the piece is one byte of the source.
	start := utf8.RuneCountInString(p.Text[:s.Start])
	end := start + utf8.RuneCountInString(p.Text[s.Start:s.End])
	return Span{segStart + p.Span.Start + start, segStart + p.Span.Start + min(end, p.Span.End-p.Span.Start)}
}

func (t *Tokenizer) truncate(e *Encoding) {
	n := t.Truncation.MaxLength
	cut := func(s, k int) *Encoding {
		return &Encoding{IDs: e.IDs[s:k], Tokens: e.Tokens[s:k], TypeIDs: e.TypeIDs[s:k], AttentionMask: e.AttentionMask[s:k],
			SpecialTokensMask: e.SpecialTokensMask[s:k], Offsets: e.Offsets[s:k]}
	}
	step := n - t.Truncation.Stride
	if step <= 0 {
		step = n
	}
	var parts []*Encoding
	if t.Truncation.Direction == "Left" {
		for end := e.Len(); end > 0; end -= step {
			parts = append(parts, cut(max(0, end-n), end))
			if end-n <= 0 {
				break
			}
		}
	} else {
		for s := 0; s < e.Len(); s += step {
			parts = append(parts, cut(s, min(e.Len(), s+n)))
			if s+n >= e.Len() {
				break
			}
		}
	}
	*e = *parts[0]
	e.Overflowing = parts[1:]
}

func (t *Tokenizer) pad(e *Encoding, length int) {
	p := t.Padding
	if p.PadToMultipleOf > 0 && length%p.PadToMultipleOf != 0 {
		length += p.PadToMultipleOf - length%p.PadToMultipleOf
	}
	n := length - e.Len()
	if n <= 0 {
		return
	}
	ids, toks, types, mask, spec, offs := make([]int, n), make([]string, n), make([]int, n), make([]int, n), make([]int, n), make([]Span, n)
	for i := range n {
		ids[i], toks[i], types[i], spec[i] = p.PadID, p.PadToken, p.PadTypeID, 1
	}
	if p.Direction == "Left" {
		e.IDs, e.Tokens, e.TypeIDs = append(ids, e.IDs...), append(toks, e.Tokens...), append(types, e.TypeIDs...)
		e.AttentionMask, e.SpecialTokensMask, e.Offsets = append(mask, e.AttentionMask...), append(spec, e.SpecialTokensMask...), append(offs, e.Offsets...)
		return
	}
	e.IDs, e.Tokens, e.TypeIDs = append(e.IDs, ids...), append(e.Tokens, toks...), append(e.TypeIDs, types...)
	e.AttentionMask, e.SpecialTokensMask, e.Offsets = append(e.AttentionMask, mask...), append(e.SpecialTokensMask, spec...), append(e.Offsets, offs...)
}

// EncodeBatch tokenizes texts in parallel and pads them (when padding is enabled).
func (t *Tokenizer) EncodeBatch(texts []string) ([]*Encoding, error) {
	out := make([]*Encoding, len(texts))
	workers := min(runtime.GOMAXPROCS(0), max(1, len(texts)/64))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	next := 0
	const chunk = 256
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				s := next
				next += chunk
				mu.Unlock()
				if s >= len(texts) {
					return
				}
				for i := s; i < min(s+chunk, len(texts)); i++ {
					e, err := t.encode(texts[i])
					if err != nil {
						mu.Lock()
						if firstErr == nil {
							firstErr = fmt.Errorf("text %d: %w", i, err)
						}
						mu.Unlock()
						return
					}
					out[i] = e
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if t.Padding != nil {
		length := t.Padding.Length
		if t.Padding.Strategy != "Fixed" {
			length = 0
			for _, e := range out {
				length = max(length, e.Len())
			}
		}
		for _, e := range out {
			t.pad(e, length)
		}
	}
	return out, nil
}

// Decode turns ids back into text; special tokens are left out when skipSpecial (HF's default).
// Without a decoder the tokens are joined with spaces, as HF does: the tutorial's BPE tokenizer
// then puts spaces inside words ("Алпатыча поздравля набо"); byte-level and Metaspace tokenizers
// decode losslessly.
func (t *Tokenizer) Decode(ids []int, skipSpecial bool) (string, error) {
	tokens := make([]string, 0, len(ids))
	for _, id := range ids {
		if a, ok := t.addedByID[id]; ok {
			if skipSpecial && a.Special {
				continue
			}
			tokens = append(tokens, a.Content)
			continue
		}
		tok, ok := t.Model.Token(id)
		if !ok {
			return "", fmt.Errorf("decode: id %d is outside the vocabulary (size %d)", id, t.VocabSize())
		}
		tokens = append(tokens, tok)
	}
	if t.Decoder == nil {
		return strings.Join(tokens, " "), nil
	}
	return t.Decoder.Decode(tokens), nil
}
