"""Peak memory of `dblink reconstruct` as users run it, against dblink's memory model.

Runs the CLI in a child process for a grid of fields, strides, confidence on/off and both
architectures (the shipped compact model; random paper-layout weights) and prints the peak
resident memory the run measured of itself (``VmHWM``) beside the estimate it made before
starting (``--timings``: ``memory: estimated peak ...; measured peak ...``). Usage::

    .venv/bin/python tools/memory_calibration.py [--quick] [--json out.json]

``tests/test_memory_model.py`` runs a few of these cases (the ±30 % check of issue #18).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DBLINK = [sys.executable, "-m", "dblink.cli"]
_EST = re.compile(r"estimated peak ([0-9.]+) MiB")
_PEAK = re.compile(r"measured peak ([0-9.]+) MiB")


def paper_model(path: Path, **hparams) -> Path:
    """Random weights in the paper's layout (``hparams``: e.g. a smaller ``head`` for quick
    checks), saved as a model file (±10 steps, 40 nm)."""
    import torch

    from dblink.export import save_model
    from dblink.model import build_model, model_hparams

    torch.manual_seed(0)
    save_model(build_model("paper", **hparams), path, {"name": "paper-random", "arch": "paper",
                                            "hparams": model_hparams("paper", **hparams),
                                            "pixel_size_nm": 40.0, "frames_per_step": 10,
                                            "window": 10, "output": "unbounded"})
    return path


def table(path: Path, size_px: int, steps: int, px: float = 40.0, per_frame: int = 40,
          seed: int = 0) -> Path:
    """Uniform random localizations over size_px² render pixels, 10 raw frames per step."""
    rng = np.random.default_rng(seed)
    n_frames = steps * 10
    frame = np.repeat(np.arange(1, n_frames + 1), per_frame)
    xy = rng.uniform(0, size_px * px, size=(len(frame), 2))
    with open(path, "w") as fh:
        fh.write('"id","frame","x [nm]","y [nm]"\n')
        for i, (f, (x, y)) in enumerate(zip(frame, xy)):
            fh.write(f"{i + 1},{f},{x:.1f},{y:.1f}\n")
    return path


def measure(model: str, csv: Path, out: Path, size_px: int, stride: int, confidence: bool,
            window: int, extra: tuple[str, ...] = ()) -> dict:
    """One CLI run: its peak RSS (MiB) and the estimate it printed."""
    cmd = DBLINK + ["reconstruct", str(csv), "-o", str(out), "--model", model, "--overwrite",
                    "--roi", f"0,0,{size_px * 40},{size_px * 40}", "--window", str(window),
                    "--stride", str(stride), "--progress", "none", "--timings", *extra]
    if not confidence:
        cmd.append("--no-confidence")
    env = dict(os.environ, PYTHONPATH=str(ROOT / "python"))
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
    text = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{text}")
    m = _EST.search(text)
    report = next((ln for ln in text.splitlines() if ln.startswith("memory:")), "")
    # the run's own high-water mark (VmHWM, printed by --timings): wait4's ru_maxrss would also
    # count this (parent) process's memory, which the child inherits until it execs
    peak = _PEAK.search(text)
    measured = float(peak.group(1)) if peak else usage.ru_maxrss / 1024
    return {"measured_mib": measured, "estimated_mib": float(m.group(1)) if m else None,
            "report": report}


CASES_FULL = [(arch, size, stride, conf) for arch in ("compact", "paper") for size in (64, 128, 192)
              for stride in (1, 8) for conf in (True, False)
              if not (arch == "paper" and size == 192 and stride == 1)]  # slow on a CPU
CASES_QUICK = [("compact", 128, 8, True), ("paper", 128, 1, True), ("paper", 128, 8, True),
               ("compact", 192, 1, False)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="four cases instead of the full grid")
    ap.add_argument("--window", type=int, default=10)
    ap.add_argument("--json", help="write the rows here")
    ap.add_argument("--verbose", action="store_true", help="print each run's memory plan too")
    a = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        models = {"compact": "filaments", "paper": str(paper_model(tmp / "paper.pt"))}
        steps = 2 * a.window + 20
        print(f"{'arch':8s}{'field':>7s}{'stride':>7s}{'conf':>6s}{'measured':>10s}{'estimate':>10s}"
              f"{'error':>8s}")
        for arch, size, stride, conf in (CASES_QUICK if a.quick else CASES_FULL):
            csv = tmp / f"t{size}.csv"
            if not csv.exists():
                table(csv, size, steps)
            r = measure(models[arch], csv, tmp / "out.tif", size, stride, conf, a.window)
            err = (r["estimated_mib"] / r["measured_mib"] - 1) if r["estimated_mib"] else float("nan")
            print(f"{arch:8s}{size:>5d}²{stride:>7d}{'on' if conf else 'off':>6s}"
                  f"{r['measured_mib']:>8.0f}MB{r['estimated_mib'] or 0:>8.0f}MB{100 * err:>7.0f}%"
                  + (f"   {r['report']}" if a.verbose else ""), flush=True)
            rows.append(dict(arch=arch, size=size, stride=stride, confidence=conf,
                             measured_mib=r["measured_mib"], estimated_mib=r["estimated_mib"],
                             report=r["report"]))
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
