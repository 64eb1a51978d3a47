#!/usr/bin/env python3
"""Re-script a dblink model file with the current network code, same weights and metadata.

usage: PYTHONPATH=python python tools/rescript_model.py MODEL.pt [OUT.pt] [--name NAME]
  (OUT defaults to MODEL; --name renames the model in its metadata, e.g. an older version kept
  bundled beside its successor as filaments-v2)

A model file is TorchScript: the network's code is frozen in it when it is exported. Changes to
``dblink/model.py`` that compute the same function faster (the CPU fast paths of issue 18) reach
an existing file only when it is scripted again. The weights are copied, the metadata kept as it
is; the script prints the largest difference of the two files' outputs on a random window (fp32
rounding, ~1e-7) and refuses to write when it exceeds 1e-5.
"""
import sys

import torch

from dblink.errors import DBlinkError
from dblink.export import load_model, save_model
from dblink.model import build_model


def main(argv: list[str]) -> int:
    name = None
    if "--name" in argv:
        i = argv.index("--name")
        name, argv = argv[i + 1] if i + 1 < len(argv) else "", argv[:i] + argv[i + 2:]
    if len(argv) not in (1, 2) or name == "":
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    src, out = argv[0], argv[-1]
    try:
        old = load_model(src)
    except DBlinkError as exc:
        print(f"rescript_model: {exc}", file=sys.stderr)
        return 1
    net = build_model(old.meta["arch"], **old.meta.get("hparams", {})).eval()
    net.load_state_dict(old.module.state_dict())
    torch.manual_seed(0)
    x = torch.rand(2, 2 * int(old.meta.get("window", 25)) + 1, 48, 48)
    x = x * (torch.rand_like(x) < 0.03)
    with torch.no_grad():
        diff = float((old.module(x) - net(x)).abs().max())  # save_model scripts it below
    print(f"{src}: largest output difference {diff:.1e}")
    if diff > 1e-5:
        print("not written: the current code computes a different function", file=sys.stderr)
        return 1
    save_model(net, out, {**old.meta, "name": name} if name else old.meta)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
