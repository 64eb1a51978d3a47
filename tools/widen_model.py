#!/usr/bin/env python3
"""Widen a compact dblink model's ConvLSTM (more hidden channels) so that it computes exactly the
same function as before: a start for fine-tuning with more capacity (issue 12).

usage: PYTHONPATH=python python tools/widen_model.py MODEL.pt OUT.pt HIDDEN [--seed N]

The old hidden units keep their weights and read nothing from the new ones; the new units read the
encoder and every hidden unit through small random weights (σ 0.01, so that their outputs are not
zero and gradients reach them); the decoder reads the new units through zero weights. The output
is therefore the old model's, within fp32 rounding (checked: the script refuses above 1e-5).
"""
import sys

import torch

from _modeltools import SAME_FUNCTION, eager, output_difference, take
from dblink.errors import DBlinkError
from dblink.export import load_model, save_model
from dblink.model import build_model


def widen(old_sd: dict, new_sd: dict, h: int, H: int, gen: torch.Generator) -> dict:
    out = {}
    for k, new in new_sd.items():
        old = old_sd[k]
        if old.shape == new.shape:
            out[k] = old.clone()
            continue
        w = torch.zeros_like(new)
        if k.endswith("conv.weight"):  # ConvLSTM gates: (4·hidden, in + hidden, k, k)
            cin = old.shape[1] - h
            w.normal_(0.0, 0.01, generator=gen)
            for b in range(4):  # the gate blocks i, f, o, g
                w[b * H:b * H + h] = 0.0
                w[b * H:b * H + h, :cin + h] = old[b * h:(b + 1) * h]
        elif k.endswith("conv.bias"):
            for b in range(4):
                w[b * H:b * H + h] = old[b * h:(b + 1) * h]
        elif k == "up.0.weight":  # ConvTranspose2d (2·hidden, decoder, k, k): [forward, backward]
            w[:h] = old[:h]
            w[H:H + h] = old[h:]
        else:
            raise DBlinkError(f"widen: no rule for {k} {tuple(old.shape)} -> {tuple(new.shape)}")
        out[k] = w
    return out


def main(argv: list[str]) -> int:
    try:
        seed, argv = take(argv, "--seed")
        seed = int(seed or 0)
    except (DBlinkError, ValueError) as exc:
        print(f"widen_model: {exc}", file=sys.stderr)
        return 2
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[3], file=sys.stderr)
        return 2
    src, out, H = argv[0], argv[1], int(argv[2])
    try:
        old = load_model(src)
        if old.meta["arch"] != "compact":
            raise DBlinkError(f"{src}: only compact models are widened")
        hp = dict(old.meta.get("hparams", {}))
        h = int(hp.get("hidden", 24))
        if H <= h:
            raise DBlinkError(f"HIDDEN must exceed the model's {h}")
        if int(hp.get("layers", 1)) != 1:  # a second layer's input is the first's hidden state
            raise DBlinkError(f"{src}: only one ConvLSTM layer per direction is widened")
    except DBlinkError as exc:
        print(f"widen_model: {exc}", file=sys.stderr)
        return 1
    ref = eager(old)
    hp["hidden"] = H
    net = build_model("compact", **hp).eval()
    gen = torch.Generator().manual_seed(seed)
    net.load_state_dict(widen(ref.state_dict(), net.state_dict(), h, H, gen))
    diff = output_difference(ref, net, old.meta.get("window", 25))
    print(f"{src}: hidden {h} -> {H}, largest output difference {diff:.1e}")
    if diff > SAME_FUNCTION:
        print("not written: the widened network computes another function", file=sys.stderr)
        return 1
    save_model(net, out, {**old.meta, "hparams": hp})
    print(f"wrote {out}")
    return 0

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
