package tutorial

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"reflect"
	"testing"

	"github.com/gonb-gpt/tutorial/lib/gpt2"
)

// fromPretrained loads QuickModelID the way a transformers user does, offline from the hub cache
// (HF_HOME) that Go's client wrote, and prints the ids, loss and greedy continuation of a text.
const fromPretrained = `
import json, sys, torch, transformers as tr
repo, text = sys.argv[1], sys.argv[2]
tok = tr.AutoTokenizer.from_pretrained(repo)
model = tr.AutoModelForCausalLM.from_pretrained(repo, attn_implementation="eager").eval()
ids = tok(text)["input_ids"]
x = torch.tensor([ids])
with torch.no_grad():
    loss = model(input_ids=x, labels=x).loss.item()
    greedy = model.generate(x, max_new_tokens=10, do_sample=False, pad_token_id=0)[0].tolist()
print(json.dumps({"ids": ids, "loss": loss, "greedy": greedy}))
`

// A model downloaded by this project's hub client (quick mode's stand-in for ruGPT-3, from the fake
// hub) is what transformers' from_pretrained(REPO_ID) finds offline, with the same tokenization,
// loss and greedy output as the Go model. Needs python3 with torch and transformers (the device
// machine): set GPT_HF_PYTHON_CHECK=1 (.ci/device-check does).
func TestPythonFromPretrainedOffline(t *testing.T) {
	if os.Getenv("GPT_HF_PYTHON_CHECK") != "1" {
		t.Skip("SKIPPED: needs python3 with torch and transformers; the device check runs it with GPT_HF_PYTHON_CHECK=1")
	}
	_, _, _, m, tok := quickPretrained(t) // HF_HOME: set by Load, inherited by Python
	const text = "Мне нравится, что вы больны не мной"
	e, err := tok.Encode(text)
	if err != nil {
		t.Fatal(err)
	}
	loss, err := m.Loss([][]int{e.IDs}, nil)
	if err != nil {
		t.Fatal(err)
	}
	opts := gpt2.DefaultGenerateOptions()
	opts.MaxNewTokens = 10
	greedy, err := m.Generate([][]int{e.IDs}, opts)
	if err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command("python3", "-c", fromPretrained, QuickModelID, text)
	cmd.Env = append(os.Environ(), "HF_HUB_OFFLINE=1", "HF_HUB_DISABLE_TELEMETRY=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, stderr.String())
	}
	var py struct {
		IDs    []int   `json:"ids"`
		Loss   float64 `json:"loss"`
		Greedy []int   `json:"greedy"`
	}
	if err := json.Unmarshal(out, &py); err != nil {
		t.Fatalf("python output %q: %v", out, err)
	}
	if !reflect.DeepEqual(py.IDs, e.IDs) {
		t.Errorf("ids: transformers %v, Go %v", py.IDs, e.IDs)
	}
	if math.Abs(py.Loss-loss) > 1e-4 {
		t.Errorf("loss: transformers %.6f, Go %.6f", py.Loss, loss)
	}
	if !reflect.DeepEqual(py.Greedy, greedy[0]) {
		t.Errorf("greedy: transformers %v, Go %v", py.Greedy, greedy[0])
	}
	t.Logf("from_pretrained(%q) offline from Go's cache: ids %v, loss %.6f (Go %.6f), greedy equal", QuickModelID, py.IDs, py.Loss, loss)
}
