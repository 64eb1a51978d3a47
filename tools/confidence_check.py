"""Does the confidence channel mean something? Hallucination in low- vs high-confidence areas.

For held-out movies of each simulator domain (``dblink.evaluate.DOMAIN_SETS``), reconstruct with
the confidence channel — measured at every step (``--confidence-every 1``) and sampled (the
default) — binarize the reconstruction as the paper does (level 100 of 255), and split the
predicted structure pixels by confidence: the share of them that are false (no true pixel within
1 px) and the paper's hallucination (false pixels / background pixels) below and above each
threshold. Usage::

    .venv/bin/python tools/confidence_check.py [--n 1] [--stride 8] [--sets a,b,...] [--json F]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import tifffile

from dblink.evaluate import DOMAIN_SETS, make_domain_set
from dblink.export import load_model
from dblink.metrics import _dilate, binarize_paper
from dblink.pipeline import reconstruct_table

THRESHOLDS = (0.8, 0.9, 0.95)
DEFAULT_SETS = ("ours-filaments-slow", "ours-filaments-fast", "paper-filaments-slow",
                "paper-filaments-fast", "camera-filaments-slow", "ours-mitochondria")


def split(rec: np.ndarray, conf: np.ndarray, gt: np.ndarray, threshold: float) -> dict:
    """False-structure share and hallucination of the paper-binarized ``rec`` below/above
    ``threshold`` of confidence, and the share of predicted pixels below it."""
    pred = binarize_paper(rec)
    g = gt > 0.5
    false = pred & ~_dilate(g)
    out = {}
    for name, area in (("low", conf < threshold), ("high", conf >= threshold)):
        p = pred & area
        bg = (~g & area).sum()
        out[name] = {"predicted": int(p.sum()),
                     "false_share": float((false & area).sum() / p.sum()) if p.sum() else float("nan"),
                     "hallucination": float((pred & ~g & area).sum() / bg) if bg else float("nan")}
    out["low_share_of_predicted"] = out["low"]["predicted"] / max(1, pred.sum())
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="filaments")
    ap.add_argument("--n", type=int, default=1, help="movies per domain set (default 1)")
    ap.add_argument("--stride", type=int, default=8)
    ap.add_argument("--sets", default=",".join(DEFAULT_SETS))
    ap.add_argument("--json", help="write the rows here")
    a = ap.parse_args(argv)
    model = load_model(a.model)
    rows = []
    print(f"model {model.name}, stride {a.stride}, {a.n} movie(s) per set; paper binarization; "
          f"false = predicted structure pixel with no true pixel within 1 px")
    print(f"{'set':26s}{'sampling':>9s}{'thr':>6s}{'low: false':>12s}{'high: false':>13s}"
          f"{'low: halluc':>13s}{'high: halluc':>14s}{'low area':>10s}")
    with tempfile.TemporaryDirectory(prefix="dblink-confcheck-") as tmp:
        for name in a.sets.split(","):
            if name not in DOMAIN_SETS:
                ap.error(f"unknown set {name!r}")
            for every, label in ((1, "1"), (None, "default")):
                recs, confs, gts = [], [], []
                for folder in make_domain_set(name, Path(tmp) / label, a.n):
                    meta = json.loads((folder / "sim.json").read_text())
                    gt = tifffile.imread(folder / "gt.tif")
                    res = reconstruct_table(folder / "locs.csv", model,
                                            pixel_size=meta["pixel_size_nm"],
                                            camera_pixel=meta.get("camera_pixel_nm"),
                                            frames_per_step=meta["config"]["frames_per_step"],
                                            roi=tuple(meta["roi_nm"]), stride=a.stride,
                                            confidence_every=every, progress="none",
                                            warn=lambda m: None)
                    T = min(len(gt), len(res.reconstruction.video))
                    recs.append(res.reconstruction.video[:T])
                    confs.append(res.reconstruction.confidence[:T])
                    gts.append(gt[:T])
                rec, conf, gt = (np.concatenate(x) for x in (recs, confs, gts))
                for thr in THRESHOLDS:
                    s = split(rec, conf, gt, thr)
                    rows.append({"set": name, "confidence_every": every, "threshold": thr, **s})
                    print(f"{name:26s}{label:>9s}{thr:>6.2f}{100 * s['low']['false_share']:>11.1f}%"
                          f"{100 * s['high']['false_share']:>12.1f}%"
                          f"{100 * s['low']['hallucination']:>12.2f}%"
                          f"{100 * s['high']['hallucination']:>13.2f}%"
                          f"{100 * s['low_share_of_predicted']:>9.1f}%", flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
