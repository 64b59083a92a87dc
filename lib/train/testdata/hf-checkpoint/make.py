#!/usr/bin/env python3
"""Makes the optimizer.pt, scheduler.pt and scaler.pt of a transformers checkpoint, as its Trainer
saves them (torch.save of the state_dicts), for a tiny GPT-2 (vocab 16, n_positions 8, n_embd 8,
one layer, tied embeddings), and expected.json with what they hold by parameter name.

The optimizer is built as Trainer.create_optimizer builds it: two groups, first the parameters
that get weight decay (not biases, not LayerNorm), then the others, each in named_parameters()
order; torch numbers the parameters of its state_dict across the groups in that order. Three
AdamW steps with random gradients, each followed by the linear schedule's step
(get_linear_schedule_with_warmup: 2 warm-up steps of 10).

Made with Debian's python3-torch (1.13; `apt-get install python3-torch`): /usr/bin/python3 make.py
"""
import json

import torch

V, P, D, I = 16, 8, 8, 32
shapes = [("transformer.wte.weight", (V, D)), ("transformer.wpe.weight", (P, D)),
          ("transformer.h.0.ln_1.weight", (D,)), ("transformer.h.0.ln_1.bias", (D,)),
          ("transformer.h.0.attn.c_attn.weight", (D, 3 * D)), ("transformer.h.0.attn.c_attn.bias", (3 * D,)),
          ("transformer.h.0.attn.c_proj.weight", (D, D)), ("transformer.h.0.attn.c_proj.bias", (D,)),
          ("transformer.h.0.ln_2.weight", (D,)), ("transformer.h.0.ln_2.bias", (D,)),
          ("transformer.h.0.mlp.c_fc.weight", (D, I)), ("transformer.h.0.mlp.c_fc.bias", (I,)),
          ("transformer.h.0.mlp.c_proj.weight", (I, D)), ("transformer.h.0.mlp.c_proj.bias", (D,)),
          ("transformer.ln_f.weight", (D,)), ("transformer.ln_f.bias", (D,))]
torch.manual_seed(0)
params = {n: torch.nn.Parameter(torch.randn(s) * 0.02) for n, s in shapes}
decay = [n for n, _ in shapes if not n.endswith("bias") and ".ln_" not in n]
groups = [{"params": [params[n] for n in decay], "weight_decay": 0.01},
          {"params": [params[n] for n, _ in shapes if n not in decay], "weight_decay": 0.0}]
opt = torch.optim.AdamW(groups, lr=1e-3, betas=(0.9, 0.999), eps=1e-8)


def linear(step, warmup=2, total=10):
    if step < warmup:
        return step / max(1, warmup)
    return max(0.0, (total - step) / max(1, total - warmup))


sched = torch.optim.lr_scheduler.LambdaLR(opt, linear)
for _ in range(3):
    for p in params.values():
        p.grad = torch.randn(p.shape)
    opt.step()
    sched.step()
torch.save(opt.state_dict(), "optimizer.pt")
torch.save(sched.state_dict(), "scheduler.pt")
torch.save({"scale": 1024.0, "growth_factor": 2.0, "backoff_factor": 0.5, "growth_interval": 2000, "_growth_tracker": 7}, "scaler.pt")
state = opt.state_dict()["state"]
order = decay + [n for n, _ in shapes if n not in decay]
expected = {"step": float(state[0]["step"]), "last_epoch": sched.last_epoch,
            "exp_avg": {n: state[i]["exp_avg"].flatten().tolist() for i, n in enumerate(order)},
            "exp_avg_sq": {n: state[i]["exp_avg_sq"].flatten().tolist() for i, n in enumerate(order)}}
json.dump(expected, open("expected.json", "w"))
