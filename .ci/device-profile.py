# Per-kernel GPU time of the tutorial's training step, Go (XLA) next to PyTorch: part of the device
# check (.ci/device-check, step "profile"). torch.profiler's CUPTI tracing records every kernel of
# its process, so the Go step runs in this process too, from the C shared library built from
# lib/internal/devprof (XLA's plugin loads in the same process, beside torch).
#
# Usage: device-profile.py go LIB.so fp32|bf16 DROPOUT STEPS
#        device-profile.py torch fp32|bf16 DROPOUT STEPS
# Prints the GPU time per step by kernel category and the kernels taking the most time, as
# PROFILE lines.
import collections, ctypes, json, os, re, sys, tempfile, time

import torch
from torch.profiler import ProfilerActivity, profile

CATEGORIES = [  # first match wins
    ("attention (fused)", r"fmha|sdpa|flash|cudnn|attention|efficient_attention"),
    ("gemm", r"gemm|xmma|cutlass|nvjet|cublas|ampere_s|sm90_|sm80_|triton_.*dot|splitk"),
    ("rng", r"rng|philox|random|threefry|bernoulli|dropout"),
    ("softmax/reduce", r"reduce|reduction|softmax|norm|sum_|max_"),
    ("gather/scatter", r"scatter|gather|index|embedding"),
    ("copy/transpose/concat", r"copy|transpose|memcpy|memset|concatenate|dynamic_update|cat_|pad"),
    ("optimizer", r"adam|foreach|multi_tensor"),
    ("elementwise/other fusions", r"."),
]


def category(name):
    for cat, pat in CATEGORIES:
        if re.search(pat, name, re.IGNORECASE):
            return cat
    return "other"


def run_profiled(label, steps, fn):
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        t0 = time.time()
        fn(steps)
        torch.cuda.synchronize()
        wall = (time.time() - t0) / steps
    path = tempfile.mktemp(suffix=".json")
    prof.export_chrome_trace(path)
    events = json.load(open(path)).get("traceEvents", [])
    os.remove(path)
    per_name = collections.Counter()
    counts = collections.Counter()
    for e in events:
        if e.get("ph") == "X" and e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset"):
            per_name[e["name"]] += e.get("dur", 0)
            counts[e["name"]] += 1
    gpu = sum(per_name.values()) / steps / 1000
    print(f"PROFILE {label}: wall {wall * 1000:.1f} ms/step, GPU busy {gpu:.1f} ms/step, "
          f"{sum(counts.values()) / steps:.0f} kernels/step", flush=True)
    cats = collections.Counter()
    for name, us in per_name.items():
        cats[category(name)] += us
    for cat, us in cats.most_common():
        print(f"PROFILE {label} category {cat}: {us / steps / 1000:.2f} ms/step", flush=True)
    for name, us in per_name.most_common(30):
        print(f"PROFILE {label} kernel {us / steps / 1000:7.3f} ms/step x{counts[name] / steps:5.1f} "
              f"[{category(name)}] {name[:150]}", flush=True)


def go(lib_path, dtype, dropout, steps):
    lib = ctypes.CDLL(lib_path)
    lib.GptPrepare.argtypes = [ctypes.c_char_p, ctypes.c_double]
    lib.GptSteps.argtypes = [ctypes.c_int]
    torch.zeros(1, device="cuda")  # CUDA initialized before the profiler starts.
    if lib.GptPrepare(dtype.encode(), dropout) != 0:
        sys.exit("GptPrepare failed")

    def fn(n):
        if lib.GptSteps(n) != 0:
            sys.exit("GptSteps failed")
    run_profiled(f"go-{dtype}-dropout{dropout:g}", steps, fn)


def torch_step(dtype, dropout, steps):
    import transformers as tr
    torch.manual_seed(0)
    cfg = tr.GPT2Config(vocab_size=30000, resid_pdrop=dropout, embd_pdrop=dropout, attn_pdrop=dropout)
    model = tr.GPT2LMHeadModel(cfg).cuda()
    opt = torch.optim.AdamW(model.parameters(), lr=5e-5, fused=True)
    x = torch.randint(0, 30000, (8, 1024), device="cuda")

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=dtype == "bf16"):
            loss = model(input_ids=x, labels=x).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
    for _ in range(3):
        step()

    def fn(n):
        for _ in range(n):
            step()
    run_profiled(f"torch-{dtype}-dropout{dropout:g}", steps, fn)


if __name__ == "__main__":
    if sys.argv[1] == "go":
        go(sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5]))
    else:
        torch_step(sys.argv[2], float(sys.argv[3]), int(sys.argv[4]))
