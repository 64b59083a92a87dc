package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/gonb-gpt/tutorial/lib/gpt2"
	"github.com/gonb-gpt/tutorial/lib/hub/hubtest"
	"github.com/gonb-gpt/tutorial/lib/internal/sharedtest"
	"github.com/gonb-gpt/tutorial/lib/internal/testbackend"
	"github.com/gonb-gpt/tutorial/lib/tokenizer"
	"github.com/gonb-gpt/tutorial/lib/tutorial"
)

func TestHelpListsSubcommands(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"--help"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d, stderr %s", code, errOut.String())
	}
	for name := range commands {
		if !strings.Contains(out.String(), "\n  "+name+" ") {
			t.Errorf("--help does not list %q:\n%s", name, out.String())
		}
	}
	for _, want := range []string{"backend", "notebooks"} {
		if _, ok := commands[want]; !ok {
			t.Errorf("subcommand %q is not registered", want)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{}, {"nosuch"}, {"notebooks", "--mode", "medium"}, {"backend", "install", "tpu"}, {"backend", "--nosuchflag"}} {
		var out, errOut bytes.Buffer
		if code := run(args, &out, &errOut); code != 2 {
			t.Errorf("gpt %q: exit %d, want 2 (stderr %q)", args, code, errOut.String())
		}
	}
}

// Flags out of range stop the command before any work with exit status 2 and a message naming the
// flag and what it accepts (every bad flag at once where a command checks several).
func TestFlagRanges(t *testing.T) {
	train := func(flags ...string) []string {
		return append([]string{"train", "--config", "{}", "--tokenizer", "x", "--output-dir", "o"}, flags...)
	}
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{train("--per-device-train-batch-size", "0"),
			[]string{"--per-device-train-batch-size 0: want a whole number ≥ 1"}},
		{train("--learning-rate", "NaN"), []string{"--learning-rate NaN: want a number ≥ 0"}},
		{train("--max-steps", "-3"), []string{"--max-steps -3"}},
		{train("--num-train-epochs", "0"), []string{"--num-train-epochs 0", "nothing to train"}},
		{train("--block-size", "0"), []string{"--block-size 0: want a whole number ≥ 1"}},
		{train("--eval-fraction", "1"), []string{"--eval-fraction 1: want a number in [0, 1)"}},
		{train("--eval-fraction", "0.1"), []string{"--eval-fraction 0.1 with --eval-strategy no: want both"}},
		{train("--eval-strategy", "steps"), []string{"--eval-fraction 0 with --eval-strategy steps: want both"}},
		{train("--logging-strategy", "sometimes"), []string{"--logging-strategy sometimes: want no, steps or epoch"}},
		{[]string{"train", "--config", "{}", "--tokenizer", "x"}, []string{"--output-dir : want a folder"}},
		{[]string{"bench", "train", "--batch", "0", "--steps", "-1"}, []string{"--batch 0", "--steps -1"}},
		{[]string{"bench", "generate", "--new-tokens", "0"}, []string{"--new-tokens 0"}},
		{[]string{"bench", "display", "--steps", "0", "--rounds", "-2"}, []string{"--steps 0", "--rounds -2"}},
		{[]string{"generate", "--model", "x", "--prompt", "a", "--max-new-tokens", "0"}, []string{"max_new_tokens = 0: want a whole number ≥ 1"}},
		{[]string{"generate", "--model", "x", "--prompt", "a", "--do-sample", "--temperature", "0"}, []string{"temperature = 0: want a number > 0 when sampling"}},
		{[]string{"generate", "--model", "x", "--prompt", "a", "--max-length", "0"}, []string{"max_length = 0: want a whole number ≥ 1"}},
		{[]string{"generate", "--model", "x", "--prompt", "a", "--do-sample", "--top-p", "-1"}, []string{"top_p = -1: want a number in [0, 1]"}},
		{[]string{"generate", "--model", "x", "--prompt", "a", "--repetition-penalty", "0"}, []string{"repetition_penalty = 0: want a number > 0"}},
		{[]string{"tokenizer", "train", "--vocab-size", "0", "corpus.txt"}, []string{"--vocab-size 0"}},
		{[]string{"data", "prepare", "--block-size", "0", "--encoding-errors", "ignore", "--max-line-bytes", "0"},
			[]string{"--block-size 0", "--encoding-errors ignore: want strict or replace", "--max-line-bytes 0"}},
		{[]string{"train", "--config", "{}", "--tokenizer", "x", "--output-dir", "o", "--encoding-errors", "x"}, []string{"--encoding-errors x"}},
		{[]string{"scrape", "--delay", "-1s"}, []string{"--delay -1s is negative"}},
		{[]string{"params", "--env", "GPT_EPOCHS=abc"}, []string{`GPT_EPOCHS="abc": want a number ≥ 0`}},
	} {
		var out, errOut bytes.Buffer
		code := run(tc.args, &out, &errOut)
		if code == 0 {
			t.Errorf("gpt %q: exit 0", tc.args)
		}
		for _, w := range tc.want {
			if !strings.Contains(errOut.String(), w) {
				t.Errorf("gpt %q: stderr %q lacks %q", tc.args, errOut.String(), w)
			}
		}
	}
}

// gpt params prints every parameter the notebooks use, quick mode's with --mode quick, and gpt
// notebooks refuses a bad one before running any notebook.
func TestParamsCommand(t *testing.T) {
	t.Setenv("GPT_BLOCK_SIZE", "")
	var out, errOut bytes.Buffer
	if code := run([]string{"params", "--mode", "quick", "--env", "GPT_LR=0.01"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	for _, want := range []string{"GPT_QUICK=1\n", "\nGPT_BLOCK_SIZE=64\n", "\nGPT_LR=0.01\n", "\nGPT_GEN_TOKENS=40\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	t.Setenv("GPT_MAX_STEPS", "-1")
	out.Reset()
	errOut.Reset()
	nb := filepath.Join(t.TempDir(), "never-run.ipynb")
	if code := run([]string{"notebooks", "--mode", "quick", nb}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "GPT_MAX_STEPS=-1 with GPT_EPOCHS=0") {
		t.Errorf("gpt notebooks with GPT_MAX_STEPS=-1 in quick mode: exit %d, stderr %q", code, errOut.String())
	}
}

func TestScrapeCommand(t *testing.T) {
	out := filepath.Join(t.TempDir(), "dataset.txt")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"scrape", "--mirror", "builtin", "--quiet", "--out", out}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	for _, want := range []string{"text_0039.shtml: 327737 bytes (windows-1251, content-type), 45 headings + 1436 paragraphs = 1481 lines", "wrote " + out} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, stdout.String())
		}
	}
	stdout.Reset()
	stderr.Reset()
	code := run([]string{"scrape", "--mirror", "builtin", "--quiet", "--out", out, "http://az.lib.ru/t/tolstoj_lew_nikolaewich/nosuch.shtml"}, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "nosuch.shtml: 404 Not Found") {
		t.Errorf("missing page: exit %d, stderr %q", code, stderr.String())
	}
}

func TestTokenizerCommands(t *testing.T) {
	dir := t.TempDir()
	corpus := filepath.Join(dir, "c.txt")
	if err := os.WriteFile(corpus, []byte("Мне нравится, что вы больны не мной.\nМне нравится, что я больна не вами.\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "tok.json")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"tokenizer", "train", "--corpus", corpus, "--vocab-size", "40", "--quiet", "--out", out}, &stdout, &stderr); code != 0 {
		t.Fatalf("train: exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "vocabulary 40") {
		t.Errorf("train output: %s", stdout.String())
	}
	stdin = strings.NewReader("Мне нравится\nвы\n")
	defer func() { stdin = os.Stdin }()
	stdout.Reset()
	if code := run([]string{"tokenizer", "encode", "--tokenizer", out}, &stdout, &stderr); code != 0 {
		t.Fatalf("encode: exit %d: %s", code, stderr.String())
	}
	if lines := strings.Split(strings.TrimSpace(stdout.String()), "\n"); len(lines) != 2 || !strings.HasPrefix(lines[0], `["Мне"`) || lines[1] != `["вы"]` {
		t.Errorf("encode output: %q", stdout.String())
	}
	stdin = strings.NewReader("вы\n")
	stdout.Reset()
	run([]string{"tokenizer", "encode", "--ids", "--tokenizer", out}, &stdout, &stderr)
	if !strings.HasPrefix(stdout.String(), "[") || strings.Contains(stdout.String(), `"`) {
		t.Errorf("--ids output: %q", stdout.String())
	}
	if code := run([]string{"tokenizer", "train", "--corpus", filepath.Join(dir, "missing.txt"), "--quiet"}, &stdout, &stderr); code != 1 {
		t.Errorf("missing corpus: exit %d", code)
	}
}

// `data prepare` tokenizes several files (one gzip-compressed) into the cache, then finds them there;
// bad input is an error naming the file and line.
func TestDataPrepareCommand(t *testing.T) {
	dir := t.TempDir()
	line := "Мне нравится, что вы больны не мной, мне нравится, что я больна не вами.\n"
	a := filepath.Join(dir, "a.txt")
	b := filepath.Join(dir, "b.txt.gz")
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(strings.Repeat(line, 500)))
	zw.Close()
	if err := errors.Join(os.WriteFile(a, []byte(strings.Repeat(line, 700)), 0o644), os.WriteFile(b, gz.Bytes(), 0o644)); err != nil {
		t.Fatal(err)
	}
	tok := filepath.Join(dir, "tok.json")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"tokenizer", "train", "--corpus", a, "--vocab-size", "60", "--quiet", "--out", tok}, &stdout, &stderr); code != 0 {
		t.Fatalf("tokenizer train: exit %d: %s", code, stderr.String())
	}
	cache := filepath.Join(dir, "cache")
	prepare := []string{"data", "prepare", "--corpus", a, "--corpus", b, "--tokenizer", tok, "--block-size", "16", "--cache-dir", cache, "--quiet"}
	var outs []string
	for range 2 {
		stdout.Reset()
		if code := run(prepare, &stdout, &stderr); code != 0 {
			t.Fatalf("data prepare: exit %d: %s", code, stderr.String())
		}
		outs = append(outs, stdout.String())
	}
	// 1200 lines: map batches of 1000 and 200 lines, each dropping its own remainder.
	first := regexp.MustCompile(`^(\d+) blocks of 16 tokens \((\d+) tokens\), tokenized and cached: (\S+)\ntokenized .* in 1200 lines into (\d+) tokens`).FindStringSubmatch(outs[0])
	if first == nil {
		t.Fatalf("first run printed %q", outs[0])
	}
	if !strings.HasPrefix(outs[1], first[1]+" blocks of 16 tokens ("+first[2]+" tokens), from the cache: "+first[3]+"\n") {
		t.Errorf("second run printed %q", outs[1])
	}
	if fi, err := os.Stat(first[3]); err != nil || fi.Size() != 24+4*mustAtoi(t, first[2]) {
		t.Errorf("cache file %s: %v", first[3], err)
	}
	if err := os.WriteFile(a, []byte(line+"\xff\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code := run(prepare, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "a.txt: line 2 is not valid UTF-8") {
		t.Errorf("invalid UTF-8: exit %d, stderr %q", code, stderr.String())
	}
}

func mustAtoi(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestGenerateAndScoreCommands(t *testing.T) {
	dir := sharedtest.Path(t, "fixtures", "tiny-gpt2")
	t.Setenv("GOMLX_BACKEND", "go")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"generate", "--model", dir, "--prompt-ids", "615,892,721,286,283", "--print-ids"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	want := "615,892,721,286,283" + strings.Repeat(",227", 20)
	if got := strings.TrimSpace(stdout.String()); got != want {
		t.Errorf("generate printed %q, want the fixture's greedy output %q", got, want)
	}
	stdout.Reset()
	if code := run([]string{"score", "--model", dir, "--ids", "615,892,721,286,283,347,287,279,988,761,158,631,8,217,262,930"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "loss: ") {
		t.Errorf("score printed %q", stdout.String())
	}
	if code := run([]string{"generate", "--model", dir, "--prompt", "x"}, &stdout, &stderr); code != 1 {
		t.Errorf("text prompt without a tokenizer: exit %d", code)
	}
}

// fixtureGreedy is the tiny fixture's greedy prompt and HF's 20-token greedy continuation of it
// (reference.json), as --prompt-ids and --print-ids write them.
func fixtureGreedy(t *testing.T) (prompt, output string) {
	t.Helper()
	data, err := os.ReadFile(sharedtest.Path(t, "fixtures", "tiny-gpt2", "reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		GreedyPrompt [][]int `json:"greedy_prompt"`
		GreedyOutput [][]int `json:"greedy_output"`
	}
	if err := json.Unmarshal(data, &ref); err != nil {
		t.Fatal(err)
	}
	if len(ref.GreedyPrompt) != 1 || len(ref.GreedyOutput) != 1 || len(ref.GreedyOutput[0]) != len(ref.GreedyPrompt[0])+20 {
		t.Fatalf("reference.json: greedy prompt %v, output %v", ref.GreedyPrompt, ref.GreedyOutput)
	}
	return joinIDs(ref.GreedyPrompt[0]), joinIDs(ref.GreedyOutput[0])
}

// A model folder whose pytorch_model.bin is in PyTorch's legacy (pre-1.6, non-zip) format, as
// older hub checkpoints are: gpt generate reads it and continues the prompt as transformers does.
func TestGenerateLegacyTorchFile(t *testing.T) {
	src := sharedtest.Path(t, "fixtures", "tiny-gpt2")
	dir := t.TempDir()
	for from, to := range map[string]string{"config.json": "config.json", "generation_config.json": "generation_config.json", "pytorch_model_legacy.bin": "pytorch_model.bin"} {
		data, err := os.ReadFile(filepath.Join(src, from))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, to), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	prompt, want := fixtureGreedy(t)
	t.Setenv("GOMLX_BACKEND", "go")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"generate", "--model", dir, "--prompt-ids", prompt, "--max-new-tokens", "20", "--print-ids"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if got := lines[len(lines)-1]; got != want {
		t.Errorf("generate printed %q, want the fixture's greedy output %q", got, want)
	}
}

// The tiny model served by a fake hub under a repo id: gpt download, then gpt generate --model
// REPO_ID gives the fixture's greedy output; offline with the server stopped it still loads.
func TestHubCommands(t *testing.T) {
	repo, err := hubtest.LoadRepo(sharedtest.Path(t, "fixtures", "tiny-gpt2"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"vocab.json", "merges.txt", "special_tokens_map.json"} {
		data, err := os.ReadFile(sharedtest.Path(t, "tokenizers", "rugpt3", f))
		if err != nil {
			t.Fatal(err)
		}
		repo.Files[f] = &hubtest.File{Data: data}
	}
	srv, err := hubtest.Start(map[string]*hubtest.Repo{"test-only/tiny-gpt2": repo}, hubtest.Faults{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	t.Setenv("HF_HOME", t.TempDir())
	t.Setenv("HF_ENDPOINT", srv.URL)
	t.Setenv("HF_HUB_OFFLINE", "")
	t.Setenv("GOMLX_BACKEND", "go")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"download", "test-only/tiny-gpt2", "--quiet"}, &stdout, &stderr); code != 0 {
		t.Fatalf("download: exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "models--test-only--tiny-gpt2/snapshots/"+repo.Commit) {
		t.Errorf("download printed %q", stdout.String())
	}
	srv.Close()
	t.Setenv("HF_HUB_OFFLINE", "1")
	stdout.Reset()
	if code := run([]string{"generate", "--model", "test-only/tiny-gpt2", "--prompt-ids", "615,892,721,286,283", "--print-ids"}, &stdout, &stderr); code != 0 {
		t.Fatalf("generate: exit %d: %s", code, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if want := "615,892,721,286,283" + strings.Repeat(",227", 20); lines[len(lines)-1] != want {
		t.Errorf("generate printed %q", stdout.String())
	}
}

func TestTrainCommand(t *testing.T) {
	dir := sharedtest.Path(t, "fixtures", "bpe-tutorial-small")
	t.Setenv("GOMLX_BACKEND", "go")
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	out := filepath.Join(t.TempDir(), "gpt2-scratch")
	var stdout, stderr bytes.Buffer
	code := run([]string{"train", "--corpus", filepath.Join(dir, "corpus.txt"), "--tokenizer", filepath.Join(dir, "tokenizer.json"),
		"--config", `{"n_embd": 32, "n_layer": 1, "n_head": 2, "n_positions": 64}`, "--output-dir", out, "--block-size", "32",
		"--max-steps", "6", "--logging-steps", "2", "--save-steps", "3", "--save-total-limit", "1", "--per-device-train-batch-size", "4",
		"--learning-rate", "1e-3", "--quiet"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("train: exit %d: %s\n%s", code, stderr.String(), stdout.String())
	}
	for _, want := range []string{"Step     Training Loss", "6        ", "TrainOutput(global_step=6", "saved the model"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("train output lacks %q:\n%s", want, stdout.String())
		}
	}
	for _, f := range []string{"config.json", "model.safetensors", "tokenizer.json", "loss.svg", "checkpoint-6/trainer_state.json"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	if _, err := os.Stat(filepath.Join(out, "checkpoint-3")); err == nil {
		t.Error("save_total_limit 1 kept checkpoint-3")
	}
	stdout.Reset()
	if code := run([]string{"generate", "--model", filepath.Join(out, "checkpoint-6"), "--prompt", "Пьер закашлялся и", "--max-new-tokens", "5"}, &stdout, &stderr); code != 0 {
		t.Fatalf("generate from the checkpoint: exit %d: %s", code, stderr.String())
	}
	// The tutorial's tokenizer has no decoder: HF joins its tokens with spaces ("закашля лся").
	if !strings.HasPrefix(stdout.String(), "Пьер закашля лся и") || len(strings.Fields(stdout.String())) < 6 {
		t.Errorf("generate printed %q", stdout.String())
	}
}

// copyTiny copies the tiny fixture's config and weights into a new folder, with the given
// generation_config.json ("": none).
func copyTiny(t *testing.T, genConfig string) string {
	t.Helper()
	src := sharedtest.Path(t, "fixtures", "tiny-gpt2")
	dir := t.TempDir()
	for _, f := range []string{"config.json", "model.safetensors"} {
		data, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if genConfig != "" {
		if err := os.WriteFile(filepath.Join(dir, "generation_config.json"), []byte(genConfig), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// gpt generate takes its defaults from generation_config.json, as generate() does
// (_prepare_generation_config), and only the flags given override them (flag.Visit): here the file
// samples with top_k 1 (greedily) for 4 new tokens.
func TestGenerateUsesGenerationConfig(t *testing.T) {
	prompt, greedy := fixtureGreedy(t)
	t.Setenv("GOMLX_BACKEND", "go")
	dir := copyTiny(t, `{"do_sample": true, "top_k": 1, "max_new_tokens": 4, "eos_token_id": [999]}`)
	gen := func(flags ...string) string {
		t.Helper()
		var stdout, stderr bytes.Buffer
		args := append([]string{"generate", "--model", dir, "--prompt-ids", prompt, "--print-ids", "--seed", "3"}, flags...)
		if code := run(args, &stdout, &stderr); code != 0 {
			t.Fatalf("gpt %q: exit %d: %s", args, code, stderr.String())
		}
		lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
		return lines[len(lines)-1]
	}
	ids := strings.Split(greedy, ",")
	P := len(strings.Split(prompt, ","))
	if got, want := gen(), strings.Join(ids[:P+4], ","); got != want {
		t.Errorf("with the file's defaults: %q, want %q", got, want)
	}
	if got, want := gen("--max-new-tokens", "6"), strings.Join(ids[:P+6], ","); got != want {
		t.Errorf("--max-new-tokens 6: %q, want %q", got, want)
	}
	// --top-k given: the file's top_k 1 no longer applies (sampling from 1000 tokens then).
	if got := gen("--top-k", "0", "--temperature", "5"); got == strings.Join(ids[:P+4], ",") {
		t.Errorf("--top-k 0 --temperature 5 still decoded greedily: %q", got)
	}
	if got, want := gen("--do-sample=false", "--top-k", "0"), strings.Join(ids[:P+4], ","); got != want {
		t.Errorf("--do-sample=false: %q, want %q", got, want)
	}
}

// Without max_new_tokens or max_length, the 20 new tokens are capped at n_positions
// (_prepare_generated_length) instead of failing; an explicit request beyond it fails.
func TestGenerateDefaultLengthCapped(t *testing.T) {
	t.Setenv("GOMLX_BACKEND", "go")
	dir := copyTiny(t, `{"eos_token_id": []}`)
	ids := make([]int, 60)
	for i := range ids {
		ids[i] = 5 + i
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"generate", "--model", dir, "--prompt-ids", joinIDs(ids), "--print-ids"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if got := strings.Split(strings.TrimSpace(stdout.String()), ","); len(got) != 64 {
		t.Errorf("%d ids, want 64", len(got))
	}
	stderr.Reset()
	if code := run([]string{"generate", "--model", dir, "--prompt-ids", joinIDs(ids), "--max-new-tokens", "20"}, &stdout, &stderr); code != 1 ||
		!strings.Contains(stderr.String(), "exceeds n_positions 64") {
		t.Errorf("--max-new-tokens 20 after 60 tokens: exit %d, stderr %q", code, stderr.String())
	}
}

// A text prompt goes in as tokenizer(prompt) gives it — token_type_ids included when the tokenizer
// returns them (the tutorial's PreTrainedTokenizerFast: zeros) — and the text comes out as
// tokenizer.decode gives it: special tokens shown (skip_special_tokens=False), nothing trimmed. The
// same as tutorial.Complete.
func TestGenerateTextAsTransformers(t *testing.T) {
	tok, err := tokenizer.Load(sharedtest.Path(t, "fixtures", "bpe-tutorial-small", "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := gpt2.DefaultConfig()
	cfg.VocabSize, cfg.NPositions, cfg.NEmbd, cfg.NLayer, cfg.NHead = tok.VocabSize(), 64, 16, 1, 2
	cfg.BOSTokenID, cfg.EOSTokenID = nil, nil
	m, err := gpt2.New(testbackend.Get(t), cfg, 2)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	if err := tok.SavePretrained(dir); err != nil {
		t.Fatal(err)
	}
	if tok, err = tokenizer.LoadDir(dir); err != nil || !tok.ReturnsTokenTypeIDs() {
		t.Fatalf("the saved tokenizer: %v (token_type_ids: %v)", err, err == nil && tok.ReturnsTokenTypeIDs())
	}
	const prompt = "Пьер [PAD] закашлялся"
	opts := gpt2.DefaultGenerateOptions()
	opts.MaxNewTokens = 6
	want, err := tutorial.Complete(m, tok, prompt, opts)
	if err != nil {
		t.Fatal(err)
	}
	e, _ := tok.Encode(prompt)
	noTypes, _ := m.Generate([][]int{e.IDs}, opts)
	if text, _ := tok.DecodeWith(noTypes[0], tokenizer.DecodeOptions{}); text == want {
		t.Fatalf("token_type_ids change nothing for this model (%q): the test would not see them", text)
	}
	t.Setenv("GOMLX_BACKEND", "go")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"generate", "--model", dir, "--prompt", prompt, "--max-new-tokens", "6"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if got := stdout.String(); got != want+"\n" || !strings.HasPrefix(got, "Пьер [PAD] закашля") {
		t.Errorf("gpt generate printed %q, want %q", got, want+"\n")
	}
}
