package tutorial

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/gomlx/compute"
	"github.com/gonb-gpt/tutorial/lib/gpt2"
	"github.com/gonb-gpt/tutorial/lib/hub/hubtest"
)

// QuickConfig is a GPT-2 with ruGPT-3 small's configuration fields (vocab 50264, n_positions
// 2048, eos 50256 ...) but tiny sizes: quick mode fine-tunes it instead of the real model.
func QuickConfig() *gpt2.Config {
	cfg := gpt2.DefaultConfig()
	cfg.VocabSize, cfg.NPositions, cfg.NEmbd, cfg.NLayer, cfg.NHead = 50264, 2048, 64, 2, 4
	bos, eos, pad := 50256, 50256, 0
	cfg.BOSTokenID, cfg.EOSTokenID, cfg.PadTokenID = &bos, &eos, &pad
	return cfg
}

// StartQuickHub serves QuickModelID from a local fake hub — QuickConfig with random weights (seed
// 1) and ruGPT-3's real tokenizer files — and points HF_ENDPOINT at it for this process. Stop it
// with the returned function.
func StartQuickHub(backend compute.Backend, p *Params) (stop func(), err error) {
	dir := p.Path("quick-hub-repo")
	if _, err := os.Stat(filepath.Join(dir, "model.safetensors")); err != nil {
		m, err := gpt2.New(backend, QuickConfig(), 1)
		if err != nil {
			return nil, err
		}
		if err := m.Save(dir); err != nil {
			return nil, err
		}
		files, err := RuGPT3TokenizerFiles()
		if err != nil {
			return nil, err
		}
		for name, data := range files {
			if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
				return nil, err
			}
		}
	}
	repo, err := hubtest.LoadRepo(dir)
	if err != nil {
		return nil, err
	}
	srv, err := hubtest.Start(map[string]*hubtest.Repo{QuickModelID: repo}, hubtest.Faults{})
	if err != nil {
		return nil, fmt.Errorf("quick hub: %w", err)
	}
	old, had := os.LookupEnv("HF_ENDPOINT")
	_ = os.Setenv("HF_ENDPOINT", srv.URL)
	return func() {
		_ = srv.Close()
		if had {
			_ = os.Setenv("HF_ENDPOINT", old)
		} else {
			_ = os.Unsetenv("HF_ENDPOINT")
		}
	}, nil
}
