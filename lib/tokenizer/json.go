package tokenizer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"unicode/utf8"

	"github.com/gonb-gpt/tutorial/lib/fileutil"
)

// fileJSON is tokenizer.json's top level.
type fileJSON struct {
	Version       string          `json:"version"`
	Truncation    json.RawMessage `json:"truncation"`
	Padding       json.RawMessage `json:"padding"`
	AddedTokens   []AddedToken    `json:"added_tokens"`
	Normalizer    json.RawMessage `json:"normalizer"`
	PreTokenizer  json.RawMessage `json:"pre_tokenizer"`
	PostProcessor json.RawMessage `json:"post_processor"`
	Decoder       json.RawMessage `json:"decoder"`
	Model         json.RawMessage `json:"model"`
}

type modelJSON struct {
	Type                    string          `json:"type"`
	Dropout                 *float64        `json:"dropout"`
	UnkToken                *string         `json:"unk_token"`
	ContinuingSubwordPrefix *string         `json:"continuing_subword_prefix"`
	EndOfWordSuffix         *string         `json:"end_of_word_suffix"`
	FuseUnk                 bool            `json:"fuse_unk"`
	ByteFallback            bool            `json:"byte_fallback"`
	IgnoreMerges            bool            `json:"ignore_merges"`
	Vocab                   map[string]int  `json:"vocab"`
	Merges                  json.RawMessage `json:"merges"`
}

// component is the part every normalizer, pre-tokenizer, decoder and processor shares.
type component struct {
	Type           string            `json:"type"`
	AddPrefixSpace *bool             `json:"add_prefix_space"`
	TrimOffsets    *bool             `json:"trim_offsets"`
	UseRegex       *bool             `json:"use_regex"`
	Replacement    string            `json:"replacement"`
	PrependScheme  string            `json:"prepend_scheme"`
	Split          *bool             `json:"split"`
	Suffix         string            `json:"suffix"`
	Normalizers    []json.RawMessage `json:"normalizers"`
	Pretokenizers  []json.RawMessage `json:"pretokenizers"`
}

type paddingJSON struct {
	Strategy        json.RawMessage `json:"strategy"`
	Direction       string          `json:"direction"`
	PadToMultipleOf *int            `json:"pad_to_multiple_of"`
	PadID           int             `json:"pad_id"`
	PadTypeID       int             `json:"pad_type_id"`
	PadToken        string          `json:"pad_token"`
}

type truncationJSON struct {
	Direction string `json:"direction"`
	MaxLength int    `json:"max_length"`
	Strategy  string `json:"strategy"`
	Stride    int    `json:"stride"`
}

func isNull(r json.RawMessage) bool {
	return len(bytes.TrimSpace(r)) == 0 || string(bytes.TrimSpace(r)) == "null"
}

// Load reads a tokenizer.json file.
func Load(path string) (*Tokenizer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	t, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("tokenizer %s: %w", path, err)
	}
	return t, nil
}

// Parse reads tokenizer.json content. Errors name the field at fault.
func Parse(data []byte) (*Tokenizer, error) {
	var f fileJSON
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("not a tokenizer.json: %w", err)
	}
	if isNull(f.Model) {
		return nil, fmt.Errorf("model: missing")
	}
	var m modelJSON
	if err := json.Unmarshal(f.Model, &m); err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	if m.Type != "" && m.Type != "BPE" {
		return nil, fmt.Errorf("model.type: %q is not supported (only BPE)", m.Type)
	}
	if m.Vocab == nil {
		return nil, fmt.Errorf("model.vocab: missing")
	}
	if len(m.Vocab) > 10_000_000 {
		return nil, fmt.Errorf("model.vocab: %d entries is not plausible", len(m.Vocab))
	}
	merges, err := parseMerges(m.Merges)
	if err != nil {
		return nil, err
	}
	bpe := &BPE{Vocab: m.Vocab, Merges: merges, FuseUnk: m.FuseUnk, ByteFallback: m.ByteFallback, IgnoreMerges: m.IgnoreMerges}
	if m.UnkToken != nil {
		bpe.UnkToken = *m.UnkToken
	}
	if m.ContinuingSubwordPrefix != nil {
		bpe.ContinuingSubwordPrefix, bpe.prefixSet = *m.ContinuingSubwordPrefix, true
	}
	if m.EndOfWordSuffix != nil {
		bpe.EndOfWordSuffix, bpe.suffixSet = *m.EndOfWordSuffix, true
	}
	if len(m.Vocab) > 0 {
		maxID := 0
		for tok, id := range m.Vocab {
			if id < 0 || id > 10_000_000 {
				return nil, fmt.Errorf("model.vocab[%q]: id %d out of range", tok, id)
			}
			maxID = max(maxID, id)
		}
	}
	if err := bpe.init(); err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	t := &Tokenizer{Model: bpe, Added: f.AddedTokens, ModelInputNames: slices.Clone(fastInputNames)}
	for i, a := range t.Added {
		if a.Content == "" {
			return nil, fmt.Errorf("added_tokens[%d].content: empty", i)
		}
		if a.ID < 0 {
			return nil, fmt.Errorf("added_tokens[%d].id: %d", i, a.ID)
		}
	}
	if t.Normalizer, err = parseNormalizer(f.Normalizer, "normalizer"); err != nil {
		return nil, err
	}
	if t.PreTokenizer, err = parsePreTokenizer(f.PreTokenizer, "pre_tokenizer"); err != nil {
		return nil, err
	}
	if t.Decoder, err = parseDecoder(f.Decoder); err != nil {
		return nil, err
	}
	if !isNull(f.PostProcessor) {
		var c component
		if err := json.Unmarshal(f.PostProcessor, &c); err != nil {
			return nil, fmt.Errorf("post_processor: %w", err)
		}
		if c.Type != "ByteLevel" {
			return nil, fmt.Errorf("post_processor.type: %q is not supported (only ByteLevel or null)", c.Type)
		}
		_ = json.Unmarshal(f.PostProcessor, &t.PostProcessor)
	}
	if !isNull(f.Padding) {
		var p paddingJSON
		if err := json.Unmarshal(f.Padding, &p); err != nil {
			return nil, fmt.Errorf("padding: %w", err)
		}
		pad := &Padding{Strategy: "BatchLongest", Direction: p.Direction, PadID: p.PadID, PadTypeID: p.PadTypeID, PadToken: p.PadToken}
		if p.PadToMultipleOf != nil {
			pad.PadToMultipleOf = *p.PadToMultipleOf
		}
		var fixed struct {
			Fixed int `json:"Fixed"`
		}
		if json.Unmarshal(p.Strategy, &fixed) == nil && fixed.Fixed > 0 {
			pad.Strategy, pad.Length = "Fixed", fixed.Fixed
		}
		t.Padding = pad
	}
	if !isNull(f.Truncation) {
		var tr truncationJSON
		if err := json.Unmarshal(f.Truncation, &tr); err != nil {
			return nil, fmt.Errorf("truncation: %w", err)
		}
		t.Truncation = &Truncation{MaxLength: tr.MaxLength, Stride: tr.Stride, Strategy: tr.Strategy, Direction: tr.Direction}
	}
	t.index()
	return t, nil
}

func parseMerges(raw json.RawMessage) ([][2]string, error) {
	if isNull(raw) {
		return nil, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, fmt.Errorf("model.merges: %w", err)
	}
	merges := make([][2]string, len(items))
	for i, it := range items {
		var pair []string
		if err := json.Unmarshal(it, &pair); err == nil {
			if len(pair) != 2 {
				return nil, fmt.Errorf("model.merges[%d]: want 2 parts, got %d", i, len(pair))
			}
			merges[i] = [2]string{pair[0], pair[1]}
			continue
		}
		var s string
		if err := json.Unmarshal(it, &s); err != nil {
			return nil, fmt.Errorf("model.merges[%d]: neither a pair nor a string", i)
		}
		a, b, ok := cutSpace(s)
		if !ok {
			return nil, fmt.Errorf("model.merges[%d]: %q is not two tokens separated by a space", i, s)
		}
		merges[i] = [2]string{a, b}
	}
	return merges, nil
}

func cutSpace(s string) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' {
			if i == 0 || i == len(s)-1 {
				return "", "", false
			}
			return s[:i], s[i+1:], true
		}
	}
	return "", "", false
}

func parseNormalizer(raw json.RawMessage, field string) (Normalizer, error) {
	if isNull(raw) {
		return nil, nil
	}
	var c component
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("%s: %w", field, err)
	}
	switch c.Type {
	case "NFC", "NFD", "NFKC", "NFKD":
		return UnicodeNormalizer{c.Type}, nil
	case "Lowercase":
		return Lowercase{}, nil
	case "Sequence":
		var seq sequenceNormalizer
		for i, r := range c.Normalizers {
			n, err := parseNormalizer(r, fmt.Sprintf("%s.normalizers[%d]", field, i))
			if err != nil {
				return nil, err
			}
			if n != nil {
				seq = append(seq, n)
			}
		}
		return seq, nil
	}
	return nil, fmt.Errorf("%s.type: %q is not supported (NFC, NFD, NFKC, NFKD, Lowercase, Sequence)", field, c.Type)
}

type sequenceNormalizer []Normalizer

func (s sequenceNormalizer) Normalize(x string) string {
	for _, n := range s {
		x = n.Normalize(x)
	}
	return x
}
func (sequenceNormalizer) Type() string { return "Sequence" }

func parsePreTokenizer(raw json.RawMessage, field string) (PreTokenizer, error) {
	if isNull(raw) {
		return nil, nil
	}
	var c component
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("%s: %w", field, err)
	}
	switch c.Type {
	case "Whitespace":
		return Whitespace{}, nil
	case "WhitespaceSplit":
		return WhitespaceSplit{}, nil
	case "ByteLevel":
		b := NewByteLevel()
		if c.AddPrefixSpace != nil {
			b.AddPrefixSpace = *c.AddPrefixSpace
		}
		if c.TrimOffsets != nil {
			b.TrimOffsets = *c.TrimOffsets
		}
		if c.UseRegex != nil {
			b.UseRegex = *c.UseRegex
		}
		return b, nil
	case "Metaspace":
		m := NewMetaspace()
		if err := metaspaceFields(&c, field, &m.Replacement, &m.PrependScheme, &m.Split_); err != nil {
			return nil, err
		}
		return m, nil
	case "Sequence":
		var seq SequencePreTokenizer
		for i, r := range c.Pretokenizers {
			p, err := parsePreTokenizer(r, fmt.Sprintf("%s.pretokenizers[%d]", field, i))
			if err != nil {
				return nil, err
			}
			if p != nil {
				seq = append(seq, p)
			}
		}
		return seq, nil
	}
	return nil, fmt.Errorf("%s.type: %q is not supported (Whitespace, WhitespaceSplit, ByteLevel, Metaspace, Sequence)", field, c.Type)
}

func metaspaceFields(c *component, field string, repl *rune, scheme *string, split *bool) error {
	if c.Replacement != "" {
		r, n := utf8.DecodeRuneInString(c.Replacement)
		if n != len(c.Replacement) {
			return fmt.Errorf("%s.replacement: %q is not one character", field, c.Replacement)
		}
		*repl = r
	}
	if c.PrependScheme != "" {
		switch c.PrependScheme {
		case "always", "first", "never":
			*scheme = c.PrependScheme
		default:
			return fmt.Errorf("%s.prepend_scheme: %q (want always, first or never)", field, c.PrependScheme)
		}
	} else if c.AddPrefixSpace != nil && !*c.AddPrefixSpace {
		*scheme = "never"
	}
	if c.Split != nil {
		*split = *c.Split
	}
	return nil
}

// SequencePreTokenizer applies pre-tokenizers one after the other, each to the pieces of the
// previous one.
type SequencePreTokenizer []PreTokenizer

// Type implements PreTokenizer.
func (SequencePreTokenizer) Type() string { return "Sequence" }

// Split implements PreTokenizer.
func (s SequencePreTokenizer) Split(text string, dst []Piece) []Piece {
	pieces := []Piece{{text, Span{0, len(text)}}}
	for _, p := range s {
		var next []Piece
		for _, pc := range pieces {
			for _, sub := range p.Split(pc.Text, nil) {
				next = append(next, Piece{sub.Text, Span{pc.Span.Start + sub.Span.Start, pc.Span.Start + sub.Span.End}})
			}
		}
		pieces = next
	}
	return append(dst, pieces...)
}

func parseDecoder(raw json.RawMessage) (Decoder, error) {
	if isNull(raw) {
		return nil, nil
	}
	var c component
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("decoder: %w", err)
	}
	switch c.Type {
	case "ByteLevel":
		d := NewByteLevelDecoder()
		for _, f := range []struct {
			v   *bool
			dst *bool
		}{{c.AddPrefixSpace, &d.AddPrefixSpace}, {c.TrimOffsets, &d.TrimOffsets}, {c.UseRegex, &d.UseRegex}} {
			if f.v != nil {
				*f.dst = *f.v
			}
		}
		return d, nil
	case "Metaspace":
		d := &MetaspaceDecoder{Replacement: '▁', PrependScheme: "always", Split: true}
		if err := metaspaceFields(&c, "decoder", &d.Replacement, &d.PrependScheme, &d.Split); err != nil {
			return nil, err
		}
		return d, nil
	case "BPEDecoder":
		suffix := c.Suffix
		if suffix == "" {
			suffix = "</w>"
		}
		return &BPEDecoder{Suffix: suffix}, nil
	}
	return nil, fmt.Errorf("decoder.type: %q is not supported (ByteLevel, Metaspace, BPEDecoder)", c.Type)
}

// Save writes the tokenizer as tokenizer.json (atomically), in the layout HF tokenizers writes.
func (t *Tokenizer) Save(path string) error {
	return fileutil.WriteAtomic(path, 0o644, t.WriteJSON)
}

// WriteJSON writes tokenizer.json content.
func (t *Tokenizer) WriteJSON(w io.Writer) error {
	var b bytes.Buffer
	b.WriteString("{\n  \"version\": \"1.0\",\n  \"truncation\": ")
	if t.Truncation == nil {
		b.WriteString("null")
	} else {
		writeIndented(&b, map[string]any{"direction": orDefault(t.Truncation.Direction, "Right"), "max_length": t.Truncation.MaxLength,
			"strategy": orDefault(t.Truncation.Strategy, "LongestFirst"), "stride": t.Truncation.Stride}, "  ")
	}
	b.WriteString(",\n  \"padding\": ")
	if t.Padding == nil {
		b.WriteString("null")
	} else {
		var strategy any = "BatchLongest"
		if t.Padding.Strategy == "Fixed" {
			strategy = map[string]int{"Fixed": t.Padding.Length}
		}
		var multiple any
		if t.Padding.PadToMultipleOf > 0 {
			multiple = t.Padding.PadToMultipleOf
		}
		writeIndented(&b, map[string]any{"strategy": strategy, "direction": orDefault(t.Padding.Direction, "Right"),
			"pad_to_multiple_of": multiple, "pad_id": t.Padding.PadID, "pad_type_id": t.Padding.PadTypeID, "pad_token": t.Padding.PadToken}, "  ")
	}
	b.WriteString(",\n  \"added_tokens\": [")
	for i, a := range t.Added {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, "\n    {\n      \"id\": %d,\n      \"content\": %s,\n      \"single_word\": %t,\n      \"lstrip\": %t,\n      \"rstrip\": %t,\n      \"normalized\": %t,\n      \"special\": %t\n    }",
			a.ID, jsonString(a.Content), a.SingleWord, a.LStrip, a.RStrip, a.Normalized, a.Special)
	}
	if len(t.Added) > 0 {
		b.WriteString("\n  ")
	}
	b.WriteString("],\n  \"normalizer\": ")
	writeComponent(&b, normalizerJSON(t.Normalizer))
	b.WriteString(",\n  \"pre_tokenizer\": ")
	writeComponent(&b, preTokenizerJSON(t.PreTokenizer))
	b.WriteString(",\n  \"post_processor\": ")
	if t.PostProcessor == nil {
		b.WriteString("null")
	} else {
		writeIndented(&b, t.PostProcessor, "  ")
	}
	b.WriteString(",\n  \"decoder\": ")
	writeComponent(&b, decoderJSON(t.Decoder))
	m := t.Model
	fmt.Fprintf(&b, ",\n  \"model\": {\n    \"type\": \"BPE\",\n    \"dropout\": null,\n    \"unk_token\": %s,\n    \"continuing_subword_prefix\": %s,\n    \"end_of_word_suffix\": %s,\n    \"fuse_unk\": %t,\n    \"byte_fallback\": %t,\n    \"ignore_merges\": %t,\n    \"vocab\": {",
		nullable(m.UnkToken, false), nullable(m.ContinuingSubwordPrefix, m.prefixSet), nullable(m.EndOfWordSuffix, m.suffixSet), m.FuseUnk, m.ByteFallback, m.IgnoreMerges)
	ids := make([]int, 0, len(m.Vocab))
	for _, id := range m.Vocab {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	for i, id := range ids {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, "\n      %s: %d", jsonString(m.Tokens[id]), id)
	}
	b.WriteString("\n    },\n    \"merges\": [")
	for i, mg := range m.Merges {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, "\n      [\n        %s,\n        %s\n      ]", jsonString(mg[0]), jsonString(mg[1]))
	}
	b.WriteString("\n    ]\n  }\n}")
	_, err := w.Write(b.Bytes())
	return err
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// nullable writes s as a JSON string, or null when it is empty and not set explicitly.
func nullable(s string, set bool) string {
	if s == "" && !set {
		return "null"
	}
	return jsonString(s)
}

func jsonString(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return string(bytes.TrimRight(b.Bytes(), "\n"))
}

func writeIndented(b *bytes.Buffer, v any, prefix string) {
	var tmp bytes.Buffer
	enc := json.NewEncoder(&tmp)
	enc.SetEscapeHTML(false)
	enc.SetIndent(prefix, "  ")
	_ = enc.Encode(v)
	b.Write(bytes.TrimRight(tmp.Bytes(), "\n"))
}

// writeComponent writes an ordered list of key/value pairs as a JSON object, or null.
func writeComponent(b *bytes.Buffer, kv []any) {
	if kv == nil {
		b.WriteString("null")
		return
	}
	b.WriteString("{")
	for i := 0; i < len(kv); i += 2 {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString("\n    " + jsonString(kv[i].(string)) + ": ")
		if nested, ok := kv[i+1].([][]any); ok {
			b.WriteString("[")
			for k, n := range nested {
				if k > 0 {
					b.WriteString(",")
				}
				b.WriteString("\n      ")
				var inner bytes.Buffer
				writeComponent(&inner, n)
				b.Write(bytes.ReplaceAll(inner.Bytes(), []byte("\n"), []byte("\n    ")))
			}
			b.WriteString("\n    ]")
			continue
		}
		var tmp bytes.Buffer
		enc := json.NewEncoder(&tmp)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(kv[i+1])
		b.Write(bytes.TrimRight(tmp.Bytes(), "\n"))
	}
	b.WriteString("\n  }")
}

func normalizerJSON(n Normalizer) []any {
	switch v := n.(type) {
	case nil:
		return nil
	case sequenceNormalizer:
		var items [][]any
		for _, x := range v {
			items = append(items, normalizerJSON(x))
		}
		return []any{"type", "Sequence", "normalizers", items}
	default:
		return []any{"type", n.Type()}
	}
}

func preTokenizerJSON(p PreTokenizer) []any {
	switch v := p.(type) {
	case nil:
		return nil
	case *ByteLevel:
		return []any{"type", "ByteLevel", "add_prefix_space", v.AddPrefixSpace, "trim_offsets", v.TrimOffsets, "use_regex", v.UseRegex}
	case *Metaspace:
		return []any{"type", "Metaspace", "replacement", string(v.Replacement), "prepend_scheme", v.PrependScheme, "split", v.Split_}
	case SequencePreTokenizer:
		var items [][]any
		for _, x := range v {
			items = append(items, preTokenizerJSON(x))
		}
		return []any{"type", "Sequence", "pretokenizers", items}
	default:
		return []any{"type", p.Type()}
	}
}

func decoderJSON(d Decoder) []any {
	switch v := d.(type) {
	case nil:
		return nil
	case ByteLevelDecoder:
		return []any{"type", "ByteLevel", "add_prefix_space", v.AddPrefixSpace, "trim_offsets", v.TrimOffsets, "use_regex", v.UseRegex}
	case *MetaspaceDecoder:
		return []any{"type", "Metaspace", "replacement", string(v.Replacement), "prepend_scheme", v.PrependScheme, "split", v.Split}
	case *BPEDecoder:
		return []any{"type", "BPEDecoder", "suffix", v.Suffix}
	}
	return []any{"type", d.Type()}
}

// SavePretrained writes the tokenizer into a model folder the way PreTrainedTokenizerFast's
// save_pretrained does: tokenizer.json, and a tokenizer_config.json naming the class that loads
// tokenizer.json as it is ("tokenizer_class": "PreTrainedTokenizerFast"). Without that file,
// transformers' AutoTokenizer would pick the tokenizer class of config.json's model_type (gpt2: a
// byte-level BPE) and rebuild a different pre-tokenizer around the vocabulary.
func (t *Tokenizer) SavePretrained(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("tokenizer: %w", err)
	}
	if err := t.Save(filepath.Join(dir, "tokenizer.json")); err != nil {
		return err
	}
	cfg := map[string]any{
		"tokenizer_class":              "PreTrainedTokenizerFast",
		"clean_up_tokenization_spaces": false,
		// What the loaded tokenizer returns, so that transformers feeds the model the same inputs
		// (PreTrainedTokenizerFast's default includes token_type_ids, GPT2TokenizerFast's does not).
		"model_input_names": t.ModelInputNames,
	}
	for _, st := range []struct{ key, token string }{{"pad_token", "[PAD]"}, {"unk_token", "[UNK]"}, {"bos_token", "<|endoftext|>"}, {"eos_token", "<|endoftext|>"}} {
		if _, ok := t.TokenToID(st.token); ok {
			cfg[st.key] = st.token
		}
	}
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return fmt.Errorf("tokenizer: %w", err)
	}
	return fileutil.WriteAtomic(filepath.Join(dir, "tokenizer_config.json"), 0o644, func(w io.Writer) error {
		_, err := w.Write(append(data, '\n'))
		return err
	})
}
