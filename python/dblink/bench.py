"""``dblink bench``: speed of the engine against the original DBlink loop, on the same data and weights.

The reference loop (:func:`reference_loop`) runs, for every output step, the
whole network on the ±W window and decodes every step of it, keeping the centre — the original
algorithm, in the default memory layout as the original code. It is timed on a few output steps
spread evenly over the movie (edge windows, which are shorter, included; it is slow by design) and
reported per output frame; each engine mode runs on the whole movie. With ``end_to_end`` each
stride also runs as users run it: ``dblink reconstruct`` in a new process on the same data written
as a localization table, with the default options (confidence on, automatic tiles and batch), timed
from the process's start to its exit (importing PyTorch, loading the model, reading the table,
writing the TIFF included), its peak memory measured by the operating system.
Exact mode's output is compared with the reference on the steps both computed: the maximum
absolute difference, and that difference relative to the reference's largest |value|.
With ``--precision bf16`` (or fp16) the engine runs under autocast; its exact-mode difference is
then the precision's error (the reference always runs in float32).
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from .engine import _normalize_frames, check_precision, infer, pick_device
from .errors import DBlinkError
from .memory import peak_rss
from .model import build_model, count_parameters, model_hparams, set_cpu_fast


def reference_loop(video: np.ndarray, module: torch.nn.Module, window: int,
                   normalize: bool = False) -> np.ndarray:
    """The original DBlink algorithm, kept as the reference for tests and ``dblink bench``.

    For each output step t: run the whole network on the clipped window [t − W, t + W], decode every
    step of the window, keep the one at t. Slow by design.
    """
    T = video.shape[0]
    x_all = torch.from_numpy(np.asarray(video, dtype=np.float32))
    out = np.zeros(video.shape, dtype=np.float32)
    module = module.eval()
    with torch.inference_mode():
        for t in range(T):
            start, stop = max(0, t - window), min(T, t + window + 1)
            y = module(x_all[start:stop][None])[0]
            if normalize:
                y = _normalize_frames(y)
            out[t] = y[t - start].numpy()
    return out


def _peak_mb(dev: torch.device) -> float:
    """Peak memory in MB: the process's resident set on CPUs, allocated GPU memory on CUDA."""
    if dev.type == "cuda":
        return torch.cuda.max_memory_allocated(dev) / 2**20
    return (peak_rss() or 0) / 2**20


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def synthetic_video(steps: int, size: int, seed: int = 0) -> np.ndarray:
    """Sparse localization counts (about 0.3 per µm² per raw frame at 40 nm, 10 frames/step), at
    least one in the last step (so that the movie written as a table has all its steps)."""
    rng = np.random.default_rng(seed)
    video = rng.poisson(0.005, size=(steps, size, size)).astype(np.float32)
    video[-1, size // 2, size // 2] += 1
    return video


def run_bench(arch: str = "paper", size: int = 128, steps: int = 60, window: int = 25,
              strides: tuple[int, ...] = (1, 4, 8), device: str = "auto", batch: int | None = None,
              ref_frames: int = 4, confidence: bool = False, seed: int = 0,
              precisions: tuple[str, ...] = ("fp32",), hidden: int | None = None,
              end_to_end: bool = False) -> list[dict]:
    """Time the reference loop and the engine (each stride × precision), and with ``end_to_end``
    the command line on the same data (each stride); one row per mode."""
    for p in precisions:
        check_precision(p)
    if size < 8 or steps < 1 or window < 0 or ref_frames < 0 or min(strides) < 1:
        raise DBlinkError("bench: --size >= 8, --steps >= 1, --window >= 0, --ref-frames >= 0 "
                          "and strides >= 1 are needed")
    torch.manual_seed(seed)
    dev = pick_device(device)
    net = build_model(arch, **({"hidden": hidden} if hidden else {})).eval().to(dev)
    scripted = torch.jit.script(net)
    set_cpu_fast(net, False)  # the reference runs as the original code did
    video = synthetic_video(steps, size, seed)
    rows = []
    # the reference on a few steps spread over the movie (edge windows too), per output frame
    ref_idx = sorted({min(steps - 1, int((i + 0.5) * steps / ref_frames))
                      for i in range(ref_frames)})
    x = torch.from_numpy(video)
    ref = {}
    with torch.inference_mode():
        if ref_idx:  # warm-up (CUDA context, cuDNN plans): not timed
            net(x[:2][None].to(dev))
        _sync(dev)
        t0 = time.perf_counter()
        for t in ref_idx:
            s0, s1 = max(0, t - window), min(steps, t + window + 1)
            y = net(x[s0:s1][None].to(dev))[0]
            ref[t] = y[t - s0].float().cpu().numpy()
    _sync(dev)
    ref_s = (time.perf_counter() - t0) / len(ref_idx) if ref_idx else None
    if ref_s is not None:  # --ref-frames 0: no reference (it may not fit a big field's memory)
        rows.append({"mode": "reference loop", "s_per_frame": ref_s, "frames_per_s": 1 / ref_s,
                     "speedup": 1.0, "peak_mb": _peak_mb(dev), "max_abs_diff": 0.0,
                     "rel_diff": 0.0, "batch": 1, "precision": "fp32"})
    scale = max([float(np.abs(r).max()) for r in ref.values()] + [0.0]) or 1.0
    for p in precisions:
        for k in strides:
            infer(video[: min(steps, 2 * window + 2)], scripted, window, k, str(dev), batch,
                  confidence, progress="none", precision=p)  # warm-up
            _sync(dev)
            if dev.type == "cuda":
                torch.cuda.reset_peak_memory_stats(dev)
            rec = infer(video, scripted, window, k, str(dev), batch, confidence, progress="none",
                        precision=p)
            s = rec.seconds / steps
            diff = (max(float(np.abs(rec.video[t] - ref[t]).max()) for t in ref_idx)
                    if k == 1 and ref_idx else None)
            rows.append({"mode": f"engine stride {k}" + (" (exact)" if k == 1 else "")
                         + ("" if p == "fp32" else f" {p}"),
                         "s_per_frame": s, "frames_per_s": 1 / s,
                         "speedup": None if ref_s is None else ref_s / s,
                         "peak_mb": _peak_mb(dev), "max_abs_diff": diff,
                         "rel_diff": None if diff is None else diff / scale,
                         "batch": rec.batch, "precision": p})
    if end_to_end:
        hp = model_hparams(arch, **({"hidden": hidden} if hidden else {}))
        rows += _end_to_end(scripted, arch, hp, video, window, strides, device, ref, ref_s, scale)
    meta = {"arch": arch, "parameters": count_parameters(net), "size": size, "steps": steps,
            "window": window, "device": str(dev), "threads": torch.get_num_threads(),
            "confidence": confidence, "gpu": torch.cuda.get_device_name(dev) if dev.type == "cuda"
            else None}
    return [dict(r, **meta) for r in rows]


def video_table(video: np.ndarray, path: Path, pixel_size: float = 40.0, frames_per_step: int = 10,
                seed: int = 0) -> Path:
    """Write a localization table (ThunderSTORM CSV, nm) that renders back to ``video`` (counts per
    step and pixel): each count becomes one localization at a random place inside its pixel, in a
    random raw frame of its step."""
    rng = np.random.default_rng(seed)
    t, r, c = np.nonzero(video)
    n = video[t, r, c].astype(np.int64)
    t, r, c = (np.repeat(a, n) for a in (t, r, c))
    frame = t * frames_per_step + 1 + rng.integers(0, frames_per_step, len(t))
    x = (c + rng.uniform(0.05, 0.95, len(c))) * pixel_size
    y = (r + rng.uniform(0.05, 0.95, len(r))) * pixel_size
    order = np.argsort(frame, kind="stable")
    with open(path, "w") as fh:
        fh.write('"id","frame","x [nm]","y [nm]"\n')
        for i, j in enumerate(order):
            fh.write(f"{i + 1},{frame[j]},{x[j]:.2f},{y[j]:.2f}\n")
    return path


def _end_to_end(scripted: torch.nn.Module, arch: str, hparams: dict, video: np.ndarray, window: int,
                strides: tuple[int, ...], device: str, ref: dict, ref_s: float | None,
                scale: float) -> list[dict]:
    """``dblink reconstruct`` in a child process per stride, default options (confidence on,
    automatic tiles and batch): wall seconds from start to exit, peak RSS, difference to the
    reference (exact mode)."""
    import tifffile

    from .export import save_model

    T, H, W = video.shape
    rows = []
    with tempfile.TemporaryDirectory(prefix="dblink-bench-") as tmp:
        tmp = Path(tmp)
        model = tmp / "bench.pt"
        save_model(scripted, model, {"name": f"bench-{arch}", "arch": arch,
                                     "hparams": hparams, "pixel_size_nm": 40.0,
                                     "frames_per_step": 10, "window": window,
                                     "output": "probability"})  # as the engine rows: no
        # per-frame normalization (a paper model file says "unbounded" and dblink normalizes it)
        table = video_table(video, tmp / "locs.csv")
        for k in strides:
            out = tmp / f"stride{k}.tif"
            cmd = [sys.executable, "-m", "dblink.cli", "reconstruct", str(table), "-o", str(out),
                   "--model", str(model), "--roi", f"0,0,{W * 40},{H * 40}", "--stride", str(k),
                   "--device", device, "--progress", "none", "--timings"]
            t0 = time.perf_counter()
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            text = proc.stdout.read()
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - t0
            if status != 0:
                raise DBlinkError(f"bench: dblink reconstruct failed: {text.strip()[-500:]}")
            got = tifffile.imread(out)  # (T, C, H, W)
            diff = (max(float(np.abs(got[t, 0] - ref[t]).max()) for t in ref)
                    if k == 1 and ref else None)
            s = wall / T
            rows.append({"mode": f"CLI end to end stride {k}" + (" (exact)" if k == 1 else ""),
                         "s_per_frame": s, "frames_per_s": 1 / s,
                         "speedup": None if ref_s is None else ref_s / s,
                         "peak_mb": _child_peak_mb(text, usage), "max_abs_diff": diff,
                         "rel_diff": None if diff is None else diff / scale,
                         "batch": "auto", "precision": "fp32"})
    return rows


def _child_peak_mb(text: str, usage) -> float:
    """The child's own peak memory (MB) as its ``--timings`` line reports it (``ru_maxrss`` of a
    child also counts the memory it inherited from this process before exec)."""
    import re

    m = re.search(r"measured peak ([0-9.]+) MiB", text)
    return float(m.group(1)) if m else usage.ru_maxrss / 1024


def format_rows(rows: list[dict]) -> str:
    m = rows[0]
    dev = m["device"] + (f" = {m['gpu']}" if m.get("gpu") else f" ({m['threads']} threads)")
    head = (f"dblink bench: arch={m['arch']} ({m['parameters']:,} parameters), {m['size']}x{m['size']} px, "
            f"{m['steps']} steps, window ±{m['window']}, device {dev}, "
            f"confidence {'on' if m['confidence'] else 'off'}")
    lines = [head, f"{'mode':30s}{'batch':>6s}{'s/frame':>10s}{'frames/s':>10s}{'speed-up':>10s}"
                   f"{'peak mem':>11s}{'max|diff|':>11s}{'relative':>10s}"]
    for r in rows:
        d = "" if r["max_abs_diff"] is None else f"{r['max_abs_diff']:.1e}"
        rel = "" if r.get("rel_diff") is None else f"{r['rel_diff']:.1e}"
        up = "" if r["speedup"] is None else f"{r['speedup']:9.1f}x"
        lines.append(f"{r['mode']:30s}{r.get('batch', ''):>6}{r['s_per_frame']:10.4f}"
                     f"{r['frames_per_s']:10.2f}{up:>10s}{r['peak_mb']:9.0f}MB"
                     f"{d:>11s}{rel:>10s}")
    return "\n".join(lines)
