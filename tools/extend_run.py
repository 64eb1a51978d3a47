"""Continue a training run in a new folder with more iterations and changed settings (issue 12).

The new folder starts from the old run's last checkpoint — weights, optimizer, learning-rate
schedule and step — with the config's ``steps`` and any ``--set KEY=VALUE`` (dotted keys, JSON
values) replaced; ``--reset-best`` forgets the old best weights, so that the exported model comes
from iterations run with the new settings. Then resume it with the usual command::

    .venv/bin/python tools/extend_run.py runs/mito-a runs/mito-b --steps 1200 --set loss.pos_weight=1.5 --reset-best
    bash models/train_domains_cpu.sh runs/mito-b

The training stream is indexed by the global step, so continuing a run is the same as having
run it with the new settings from that step on.
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import torch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("src", type=Path)
    p.add_argument("dst", type=Path)
    p.add_argument("--steps", type=int, required=True, help="the new total of iterations")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--reset-best", action="store_true")
    a = p.parse_args()
    if a.dst.exists():
        raise SystemExit(f"{a.dst} exists")
    ckpt = torch.load(a.src / "checkpoint.pt", map_location="cpu", weights_only=True)
    if a.steps <= int(ckpt["step"]):
        raise SystemExit(f"--steps {a.steps} is not after the run's step {ckpt['step']}")
    cfg = json.loads(ckpt["config"])
    cfg["steps"] = a.steps
    for item in a.set:
        key, _, value = item.partition("=")
        *path, last = key.split(".")
        node = cfg
        for k in path:
            node = node[k]
        node[last] = json.loads(value)
    ckpt["config"] = json.dumps(cfg)
    if a.reset_best:
        ckpt["best_metrics"] = {"f1": -1.0}
    a.dst.mkdir(parents=True)
    torch.save(ckpt, a.dst / "checkpoint.pt")
    shutil.copy(a.src / "log.csv", a.dst / "log.csv")
    (a.dst / "config.json").write_text(json.dumps(cfg, indent=2))
    print(f"{a.dst}: from step {ckpt['step']} to {a.steps}; {', '.join(a.set) or 'same settings'}")


if __name__ == "__main__":
    main()
