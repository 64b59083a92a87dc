#!/usr/bin/env python3
"""Replays a Go training run in transformers' Trainer and compares the logs step by step.

    python3 .ci/hf_train_parity.py DIR

DIR is what lib/train's TestScratchRunTokenTypes writes with GPT_HF_PARITY_DIR=DIR: init/ (the
initial weights and the tokenizer, HF format) and run.json (the TrainingArguments, the training
blocks, the order in which each epoch of the Go run visited them, and its log_history).

The replay is the tutorial's own code path: GPT2LMHeadModel, PreTrainedTokenizerFast (whose
token_type_ids of zeros the model embeds and adds), DataCollatorForLanguageModeling(mlm=False) and
Trainer with the same TrainingArguments; only the sampler is replaced, so that each epoch visits
the blocks in the Go run's order. Dropout is 0 in the config and TF32 is off, so the two runs
compute the same function: every step's loss must agree within 1e-4 (relative), its learning rate
exactly, its grad_norm within 1e-3, its epoch to 4 decimals. Prints RESULT lines; exits 1 on a
mismatch. Runs on CUDA when available, else on the CPU.
"""
import json
import os
import sys
import tempfile

import torch
from torch.utils.data import Dataset, Sampler
from transformers import (DataCollatorForLanguageModeling, GPT2LMHeadModel, PreTrainedTokenizerFast, Trainer,
                          TrainingArguments)


class Blocks(Dataset):
    """The grouped dataset as the tutorial's group_texts leaves it: input_ids, token_type_ids and
    attention_mask per block."""

    def __init__(self, blocks):
        self.blocks = blocks

    def __len__(self):
        return len(self.blocks)

    def __getitem__(self, i):
        b = self.blocks[i]
        return {"input_ids": b, "token_type_ids": [0] * len(b), "attention_mask": [1] * len(b)}


class GoOrder(Sampler):
    """Each epoch, the order the Go run drew."""

    def __init__(self, epochs):
        self.epochs, self.epoch = epochs, 0

    def __iter__(self):
        order = self.epochs[min(self.epoch, len(self.epochs) - 1)]
        self.epoch += 1
        return iter(order)

    def __len__(self):
        return len(self.epochs[0])


class ReplayTrainer(Trainer):
    def __init__(self, *args, go_sampler=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.go_sampler = go_sampler

    def _get_train_sampler(self, *args, **kwargs):
        return self.go_sampler


def main():
    d = sys.argv[1]
    run = json.load(open(os.path.join(d, "run.json")))
    a = run["args"]
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    init = os.path.join(d, "init")
    model = GPT2LMHeadModel.from_pretrained(init, attn_implementation="eager", dtype=torch.float32)
    tok = PreTrainedTokenizerFast.from_pretrained(init)
    if "token_type_ids" not in tok.model_input_names:
        print("the tokenizer does not return token_type_ids: model_input_names", tok.model_input_names)
        return 1
    out = tempfile.mkdtemp(prefix="hf-train-parity-")
    args = TrainingArguments(
        output_dir=out, max_steps=a["max_steps"], per_device_train_batch_size=a["per_device_train_batch_size"],
        gradient_accumulation_steps=a["gradient_accumulation_steps"], learning_rate=a["learning_rate"],
        lr_scheduler_type=a["lr_scheduler_type"], warmup_steps=a["warmup_steps"], weight_decay=a["weight_decay"],
        adam_beta1=a["adam_beta1"], adam_beta2=a["adam_beta2"], adam_epsilon=a["adam_epsilon"],
        max_grad_norm=a["max_grad_norm"], logging_steps=a["logging_steps"], save_strategy="no", seed=a["seed"],
        report_to=[], disable_tqdm=True, dataloader_drop_last=a["dataloader_drop_last"], optim="adamw_torch")
    trainer = ReplayTrainer(model=model, args=args, train_dataset=Blocks(run["blocks"]),
                            data_collator=DataCollatorForLanguageModeling(tok, mlm=False),
                            go_sampler=GoOrder(run["epochs"]))
    trainer.train()
    hf = [e for e in trainer.state.log_history if "loss" in e]
    go = [e for e in run["log_history"] if "loss" in e]
    bad = 0
    if len(hf) != len(go):
        print(f"RESULT hf-train-parity entries go={len(go)} hf={len(hf)}")
        bad += 1
    worst = 0.0
    for g, h in zip(go, hf):
        rel = abs(g["loss"] - h["loss"]) / abs(h["loss"])
        worst = max(worst, rel)
        lr_ok = abs(g["learning_rate"] - h["learning_rate"]) <= 1e-12 * max(1.0, abs(h["learning_rate"]))
        gn = abs(g.get("grad_norm", float("nan")) - float(h["grad_norm"])) / max(1e-12, abs(float(h["grad_norm"])))
        ok = g["step"] == h["step"] and rel <= 1e-4 and lr_ok and gn <= 1e-3 and abs(g["epoch"] - h["epoch"]) < 1e-4
        bad += not ok
        print(f"RESULT hf-train-parity step={h['step']} loss_go={g['loss']:.4f} loss_hf={h['loss']:.4f} rel={rel:.2g} "
              f"lr_go={g['learning_rate']:.6g} lr_hf={h['learning_rate']:.6g} grad_norm_rel={gn:.2g} "
              f"epoch_go={g['epoch']} epoch_hf={h['epoch']:.4f} {'ok' if ok else 'MISMATCH'}")
    print(f"RESULT hf-train-parity steps={len(hf)} worst_loss_rel={worst:.2g} mismatches={bad} device={model.device}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
