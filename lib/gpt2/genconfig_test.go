package gpt2

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
)

// generation_config.json as transformers writes it: the fields generate uses are read (eos_token_id
// an id or a list: GenerationConfig accepts both), the others are kept; saving writes back what was
// read, a list as a list.
func TestGenerationConfigRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "generation_config.json")
	src := `{
  "bos_token_id": 1,
  "eos_token_id": [2, 5],
  "pad_token_id": 0,
  "do_sample": true,
  "top_k": 3,
  "top_p": 0.95,
  "temperature": 0.7,
  "repetition_penalty": 1.2,
  "max_length": 100,
  "max_new_tokens": 40,
  "min_new_tokens": 2,
  "no_repeat_ngram_size": 3,
  "num_beams": 1,
  "min_length": null,
  "suppress_tokens": [7, 8],
  "transformers_version": "4.27.0"
}
`
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	gc, err := LoadGenerationConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if gc.EOSTokenID != nil || !reflect.DeepEqual(gc.EOS(), []int{2, 5}) || *gc.BOSTokenID != 1 || *gc.PadTokenID != 0 ||
		!*gc.DoSample || *gc.TopK != 3 || *gc.TopP != 0.95 || *gc.Temperature != 0.7 || *gc.RepetitionPenalty != 1.2 ||
		*gc.MaxLength != 100 || *gc.MaxNewTokens != 40 || *gc.MinNewTokens != 2 || *gc.NoRepeatNGramSize != 3 || gc.MinLength != nil {
		t.Fatalf("read %+v", gc)
	}
	for _, k := range []string{"num_beams", "suppress_tokens", "transformers_version", "min_length"} {
		if _, ok := gc.Extra[k]; !ok {
			t.Errorf("Extra lacks %s: %v", k, gc.Extra)
		}
	}
	if _, ok := gc.Extra["top_k"]; ok {
		t.Error("a known field is in Extra")
	}
	o := GenerateOptionsFrom(gc)
	want := GenerateOptions{MaxNewTokens: 40, MaxLength: 100, MinNewTokens: 2, DoSample: true, TopK: 3, TopP: 0.95,
		Temperature: 0.7, RepetitionPenalty: 1.2, NoRepeatNGramSize: 3, EOSTokenIDs: []int{2, 5}, PadTokenID: intp(0)}
	if !reflect.DeepEqual(o, want) {
		t.Errorf("options %+v, want %+v", o, want)
	}
	out := filepath.Join(dir, "saved.json")
	if err := gc.Save(out); err != nil {
		t.Fatal(err)
	}
	var a, b map[string]any
	data, _ := os.ReadFile(out)
	if err := json.Unmarshal(data, &a); err != nil {
		t.Fatal(err)
	}
	_ = json.Unmarshal([]byte(src), &b)
	if !reflect.DeepEqual(a, b) {
		t.Errorf("saved %s, want %s", data, src)
	}
	// One id stays one id.
	gc = &GenerationConfig{EOSTokenID: intp(50256)}
	if data, _ := json.Marshal(gc); string(data) != `{"eos_token_id":50256}` {
		t.Errorf("one eos id written as %s", data)
	}
	var back GenerationConfig
	if err := json.Unmarshal([]byte(`{"eos_token_id": "x"}`), &back); err == nil {
		t.Error("eos_token_id \"x\": no error")
	}
}

// config.json's eos_token_id may be a list (PretrainedConfig takes an int or a list): it loads,
// generation stops on any of its ids, and it is written back as a list.
func TestConfigEOSList(t *testing.T) {
	var c Config
	if err := json.Unmarshal([]byte(`{"n_embd": 8, "n_head": 2, "eos_token_id": [5, 7], "foo": 1}`), &c); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.EOSTokenIDs, []int{5, 7}) || c.EOSTokenID == nil || *c.EOSTokenID != 5 || string(c.Extra["foo"]) != "1" {
		t.Fatalf("eos %v / %v, extra %v", c.EOSTokenIDs, c.EOSTokenID, c.Extra)
	}
	data, err := json.Marshal(&c)
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]json.RawMessage
	if err := json.Unmarshal(data, &back); err != nil || string(back["eos_token_id"]) != "[5,7]" {
		t.Errorf("written eos_token_id %s (%v)", back["eos_token_id"], err)
	}
	var one Config
	if err := json.Unmarshal([]byte(`{"eos_token_id": 3}`), &one); err != nil || one.EOSTokenIDs != nil || *one.EOSTokenID != 3 {
		t.Errorf("a single eos_token_id: %v %v %v", one.EOSTokenIDs, one.EOSTokenID, err)
	}
	m := &Model{Config: &c}
	if got := m.EffectiveGenerationConfig().EOS(); !slices.Equal(got, []int{5, 7}) {
		t.Errorf("generation stops on %v, want [5 7]", got)
	}
}
