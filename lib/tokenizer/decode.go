package tokenizer

import "strings"

// DecodeOptions are the arguments of transformers' tokenizer.decode beyond the ids.
type DecodeOptions struct {
	// SkipSpecialTokens leaves the special tokens out (decode's skip_special_tokens, default False:
	// they are shown, as the tutorial's tokenizer.decode(out[0]) shows "<|endoftext|>").
	SkipSpecialTokens bool
	// CleanUpTokenizationSpaces overrides the tokenizer's clean_up_tokenization_spaces (nil: the
	// tokenizer's, Tokenizer.CleanUpTokenizationSpaces).
	CleanUpTokenizationSpaces *bool
}

// DecodeWith turns ids back into text as transformers' tokenizer.decode(ids, **options) does
// (TokenizersBackend._decode in transformers 5.17): the tokenizers pipeline's decode, then
// clean_up_tokenization when clean_up_tokenization_spaces asks for it — except that transformers
// (from 5.7) skips that clean-up for a BPE model, which every tokenizer of this package is, unless
// clean_up_tokenization_spaces_for_bpe_even_though_it_will_corrupt_output is set
// (Tokenizer.CleanUpForBPE). Nothing is trimmed. An id the tokenizer does not know (a model's
// vocabulary can be larger than its tokenizer's) is left out, as the tokenizers library's decode
// does, where Decode fails.
func (t *Tokenizer) DecodeWith(ids []int, o DecodeOptions) (string, error) {
	known := make([]int, 0, len(ids))
	for _, id := range ids {
		if _, ok := t.IDToToken(id); ok {
			known = append(known, id)
		}
	}
	text, err := t.Decode(known, o.SkipSpecialTokens)
	if err != nil {
		return "", err
	}
	clean := t.CleanUpTokenizationSpaces
	if o.CleanUpTokenizationSpaces != nil {
		clean = *o.CleanUpTokenizationSpaces
	}
	// The model is always a BPE here (Tokenizer.Model): transformers' guard applies.
	if clean && t.CleanUpForBPE {
		text = CleanUpTokenization(text)
	}
	return text, nil
}

// CleanUpTokenization is transformers' PreTrainedTokenizerBase.clean_up_tokenization: it removes
// the space before punctuation and English contractions that WordPiece-era decoding left, with the
// same replacements applied one after another in the same order.
func CleanUpTokenization(s string) string {
	for _, r := range [...][2]string{
		{" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"},
		{" n't", "n't"}, {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"},
	} {
		s = strings.ReplaceAll(s, r[0], r[1])
	}
	return s
}
