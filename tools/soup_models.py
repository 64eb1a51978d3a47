#!/usr/bin/env python3
"""Average the weights of dblink models fine-tuned from one start ("model soup", Wortsman et al.
2022; with the start itself among them, "WiSE-FT", Wortsman et al. 2022): one model file.

usage: PYTHONPATH=python python tools/soup_models.py OUT.pt A.pt B.pt [C.pt ...]
           [--weights 0.5,0.25,0.25] [--name NAME]

Averaging is meaningful only for models that share an architecture *and* a start (fine-tunes of
one model lie in one basin of the loss); the script checks the architecture and input channels
(``arch``, ``hparams``) and refuses otherwise. The metadata is the first model's, with ``soup``
recording the files, their weights and their SHA-256, and ``name`` given by ``--name`` (default:
the first model's). Weights default to equal; they are normalised to sum to 1.
"""
import hashlib
import sys

from _modeltools import take
from dblink.errors import DBlinkError
from dblink.export import load_model, resolve_model, save_model
from dblink.model import build_model


def _sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def main(argv: list[str]) -> int:
    try:
        weights, argv = take(argv, "--weights")
        name, argv = take(argv, "--name")
        if len(argv) < 3:
            print(__doc__.strip().splitlines()[3], file=sys.stderr)
            return 2
        out, srcs = argv[0], argv[1:]
        w = [1.0] * len(srcs) if weights is None else [float(v) for v in weights.split(",")]
        if len(w) != len(srcs) or min(w) < 0 or sum(w) <= 0:
            raise DBlinkError(f"--weights: {len(srcs)} non-negative numbers, not all zero")
        w = [v / sum(w) for v in w]
        models = [load_model(s) for s in srcs]
        key = (models[0].meta["arch"], models[0].meta.get("hparams", {}))
        for s, m in zip(srcs, models):
            if (m.meta["arch"], m.meta.get("hparams", {})) != key:
                raise DBlinkError(f"{s}: another architecture or input channels than {srcs[0]}")
    except (DBlinkError, ValueError) as exc:
        print(f"soup_models: {exc}", file=sys.stderr)
        return 1
    states = [m.module.state_dict() for m in models]
    avg = {k: sum(wi * st[k].double() for wi, st in zip(w, states)).to(states[0][k].dtype)
           for k in states[0]}
    net = build_model(key[0], **key[1]).eval()
    net.load_state_dict(avg)
    meta = dict(models[0].meta)
    meta["soup"] = [{"file": str(s), "weight": round(wi, 6), "sha256": _sha256(resolve_model(s))}
                    for s, wi in zip(srcs, w)]
    if name:
        meta["name"] = name
    save_model(net, out, meta)
    print(f"wrote {out}: " + ", ".join(f"{wi:.3g} × {s}" for s, wi in zip(srcs, w)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
