#!/usr/bin/env python3
"""A/B the network code: the engine's seconds per output frame with ``dblink/model.py`` as it was
at a git revision against the working tree's, same weights, same movie, alternating runs.

usage: PYTHONPATH=python python tools/ab_model_code.py REV ARCH STRIDE STEPS [SIZE] [REPEATS]
  e.g. tools/ab_model_code.py c8aef15^ compact 8 64   (ARCH: paper, or compact as shipped:
  32 hidden channels, both mean channels). Prints each run and the fastest of each side, with the
  largest difference of the two outputs. Run it on a quiet machine (2 threads).
"""
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np
import torch

from dblink.bench import synthetic_video
from dblink.engine import infer
from dblink.model import build_model

ROOT = Path(__file__).resolve().parents[1]


def old_module(rev: str) -> types.ModuleType:
    """``dblink/model.py`` at ``rev``, imported as a module of its own."""
    src = subprocess.run(["git", "show", f"{rev}:python/dblink/model.py"], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    src = src.replace("from .modelmeta", "from dblink.modelmeta")
    # a real file: torch.jit.script reads the classes' source back through inspect
    path = Path(tempfile.mkdtemp(prefix="dblink-ab-")) / "model_at_rev.py"
    path.write_text(src)
    mod = types.ModuleType("model_at_rev")
    mod.__file__ = str(path)
    exec(compile(src, str(path), "exec"), mod.__dict__)  # noqa: S102 - our own file at a revision
    return mod


def main(argv: list[str]) -> int:
    if len(argv) < 4:
        print(__doc__.strip().splitlines()[3], file=sys.stderr)
        return 2
    rev, arch, stride, steps = argv[0], argv[1], int(argv[2]), int(argv[3])
    size = int(argv[4]) if len(argv) > 4 else 128
    repeats = int(argv[5]) if len(argv) > 5 else 3
    torch.set_num_threads(2)
    hp = {"hidden": 32, "mean_input": True, "local_mean": 5} if arch == "compact" else {}
    torch.manual_seed(0)
    new = build_model(arch, **hp).eval()
    old = old_module(rev).build_model(arch, **hp).eval()
    old.load_state_dict(new.state_dict())
    nets = {"old": torch.jit.script(old), "new": torch.jit.script(new)}
    video = synthetic_video(steps, size, 0)
    times: dict[str, list[float]] = {"old": [], "new": []}
    outs = {}
    for _ in range(repeats):
        for k, net in nets.items():
            t = time.perf_counter()
            outs[k] = infer(video, net, 25, stride=stride, confidence=False, progress="none").video
            times[k].append((time.perf_counter() - t) / steps)
    diff = float(np.abs(outs["old"] - outs["new"]).max())
    for k, v in times.items():
        print(f"{k:>4} ({rev if k == 'old' else 'working tree'}): "
              + ", ".join(f"{s:.3f}" for s in v) + f" s/frame; fastest {min(v):.3f}")
    print(f"{arch}, {size}x{size} px, {steps} steps, stride {stride}: new/old "
          f"{min(times['new']) / min(times['old']):.2f}, max |diff| {diff:.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
