"""``dblink bench``: speed of the engine against the original DBlink loop, on the same data and weights.

The reference loop (``engine.reference_loop``) runs, for every output step, the whole network on the
±W window and decodes every step of it, keeping the centre — the original algorithm. It is timed on
a few output steps (it is slow by design) and reported per output frame; each engine mode runs on the
whole movie. Exact mode's output is compared with the reference on the steps both computed.
"""
from __future__ import annotations

import resource
import sys
import time

import numpy as np
import torch

from .engine import infer, pick_device, reference_loop
from .model import build_model, count_parameters


def _peak_rss_mb() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 1024.0 if sys.platform != "darwin" else r / 2**20


def synthetic_video(steps: int, size: int, seed: int = 0) -> np.ndarray:
    """Sparse localization counts (about 0.3 per µm² per raw frame at 40 nm, 10 frames/step)."""
    rng = np.random.default_rng(seed)
    return rng.poisson(0.005, size=(steps, size, size)).astype(np.float32)


def run_bench(arch: str = "paper", size: int = 128, steps: int = 60, window: int = 25,
              strides: tuple[int, ...] = (1, 4, 8), device: str = "auto", batch: int = 4,
              ref_frames: int = 2, confidence: bool = False, seed: int = 0) -> list[dict]:
    """Time the reference loop and the engine; returns one row per mode."""
    torch.manual_seed(seed)
    dev = pick_device(device)
    net = build_model(arch).eval().to(dev)
    scripted = torch.jit.script(net)
    video = synthetic_video(steps, size, seed)
    rows = []
    # the reference on a few centre steps (full windows), timed per output frame
    centre = steps // 2
    ref_idx = list(range(centre, min(steps, centre + ref_frames)))
    x = torch.from_numpy(video)
    t0 = time.perf_counter()
    ref = {}
    with torch.inference_mode():
        for t in ref_idx:
            s0, s1 = max(0, t - window), min(steps, t + window + 1)
            y = net(x[s0:s1][None].to(dev))[0]
            ref[t] = y[t - s0].float().cpu().numpy()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    ref_s = (time.perf_counter() - t0) / len(ref_idx)
    rows.append({"mode": "reference loop", "s_per_frame": ref_s, "frames_per_s": 1 / ref_s,
                 "speedup": 1.0, "peak_rss_mb": _peak_rss_mb(), "max_abs_diff": 0.0})
    for k in strides:
        infer(video[: min(steps, 2 * window + 2)], scripted, window, k, str(dev), batch,
              confidence, progress="none")  # warm-up
        rec = infer(video, scripted, window, k, str(dev), batch, confidence, progress="none")
        s = rec.seconds / steps
        diff = max(float(np.abs(rec.video[t] - ref[t]).max()) for t in ref_idx) if k == 1 else None
        rows.append({"mode": f"engine stride {k}" + (" (exact)" if k == 1 else ""),
                     "s_per_frame": s, "frames_per_s": 1 / s, "speedup": ref_s / s,
                     "peak_rss_mb": _peak_rss_mb(), "max_abs_diff": diff})
    meta = {"arch": arch, "parameters": count_parameters(net), "size": size, "steps": steps,
            "window": window, "device": str(dev), "batch": batch, "threads": torch.get_num_threads(),
            "confidence": confidence}
    return [dict(r, **meta) for r in rows]


def format_rows(rows: list[dict]) -> str:
    m = rows[0]
    head = (f"dblink bench: arch={m['arch']} ({m['parameters']:,} parameters), {m['size']}x{m['size']} px, "
            f"{m['steps']} steps, window ±{m['window']}, device {m['device']} ({m['threads']} threads), "
            f"batch {m['batch']}, confidence {'on' if m['confidence'] else 'off'}")
    lines = [head, f"{'mode':24s}{'s/frame':>10s}{'frames/s':>10s}{'speed-up':>10s}{'peak RSS':>11s}{'max|diff|':>11s}"]
    for r in rows:
        d = "" if r["max_abs_diff"] is None else f"{r['max_abs_diff']:.1e}"
        lines.append(f"{r['mode']:24s}{r['s_per_frame']:10.3f}{r['frames_per_s']:10.2f}"
                     f"{r['speedup']:9.1f}x{r['peak_rss_mb']:9.0f}MB{d:>11s}")
    return "\n".join(lines)
