package tokenizer

import "fmt"

// TrainOptions configure [Train].
type TrainOptions struct {
	Trainer      *BpeTrainer
	Normalizer   Normalizer
	PreTokenizer PreTokenizer
	Decoder      Decoder
	// UnkToken is the model's unk_token ("" for none; byte-level models need none).
	UnkToken string
}

// Train trains a tokenizer on text files as HF's tokenizer.train(files, trainer) does: the special
// tokens become the first ids and added special tokens.
func Train(files []string, opts TrainOptions) (*Tokenizer, TrainStats, error) {
	trainer := opts.Trainer
	if trainer == nil {
		trainer = NewBpeTrainer()
	}
	pre := opts.PreTokenizer
	if pre == nil {
		pre = Whitespace{}
	}
	counts, stats, err := CountWords(files, pre, opts.Normalizer)
	if err != nil {
		return nil, stats, err
	}
	model, err := trainer.Train(counts)
	if err != nil {
		return nil, stats, err
	}
	model.UnkToken = opts.UnkToken
	if err := model.init(); err != nil {
		return nil, stats, fmt.Errorf("trained model: %w", err)
	}
	t := New(model)
	t.Normalizer, t.PreTokenizer, t.Decoder = opts.Normalizer, pre, opts.Decoder
	t.AddSpecialTokens(trainer.SpecialTokens...)
	return t, stats, nil
}
