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

from _modeltools import SAME_FUNCTION, eager, output_difference, take
from dblink.errors import DBlinkError
from dblink.export import load_model, save_model


def main(argv: list[str]) -> int:
    try:
        name, argv = take(argv, "--name")
    except DBlinkError:
        name = ""
    if len(argv) not in (1, 2) or name == "":
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    src, out = argv[0], argv[-1]
    try:
        old = load_model(src)
    except DBlinkError as exc:
        print(f"rescript_model: {exc}", file=sys.stderr)
        return 1
    net = eager(old)  # save_model scripts it below
    diff = output_difference(old.module, net, old.meta.get("window", 25))
    print(f"{src}: largest output difference {diff:.1e}")
    if diff > SAME_FUNCTION:
        print("not written: the current code computes a different function", file=sys.stderr)
        return 1
    save_model(net, out, {**old.meta, "name": name} if name else old.meta)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
