"""Oracle: a checkpoint written by slt-run loads in PyTorch as the reference uses it.

  checkpoint_interop.py CHECKPOINT

Checks torch.load, the reference's keys (model, optimizer, scaler, cfg, epoch), that the
optimizer entry loads into torch.optim.AdamW built with the reference's two parameter
groups (utils_translation.create_optimizer_and_loss_scaler), that every state matches its
parameter's shape, and that the saved CPU generator state is accepted by torch. Prints ok.
"""
import sys

import torch

checkpoint = torch.load(sys.argv[1], map_location="cpu")
for key in ("model", "optimizer", "scaler", "cfg", "epoch", "slt"):
    assert key in checkpoint, f"missing {key}"
assert isinstance(checkpoint["epoch"], int)
assert checkpoint["cfg"]["optim"]["lr"] > 0

model = checkpoint["model"]
groups = checkpoint["optimizer"]["param_groups"]
assert len(groups) == 2, "two parameter groups"
count = sum(len(g["params"]) for g in groups)
names = list(model)[:count]  # parameters come first, buffers after
no_decay = ["bias", "LayerNorm.weight", "layer_norm.weight"]
decay_names = [n for n in names if not any(nd in n for nd in no_decay)]
other_names = [n for n in names if any(nd in n for nd in no_decay)]
assert len(decay_names) == len(groups[0]["params"]), "decayed group"
assert len(other_names) == len(groups[1]["params"]), "no-decay group"
params = {n: torch.nn.Parameter(model[n].clone()) for n in names}
optimizer = torch.optim.AdamW(
    [
        {"params": [params[n] for n in decay_names], "weight_decay": groups[0]["weight_decay"]},
        {"params": [params[n] for n in other_names], "weight_decay": 0.0},
    ],
    lr=groups[0]["lr"],
)
optimizer.load_state_dict(checkpoint["optimizer"])
for name in decay_names + other_names:
    state = optimizer.state[params[name]]
    assert state["exp_avg"].shape == params[name].shape, name
    assert state["exp_avg_sq"].shape == params[name].shape, name
    assert float(state["step"]) == float(checkpoint["slt"]["optimizer_steps"]), name
torch.set_rng_state(checkpoint["slt"]["rng_cpu"])
print("ok")
