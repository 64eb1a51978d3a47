"""Where the shipped filament model's pixel errors lie, relative to the true filament.

Re-simulates the held-out `--preset filaments` movies (same seeds as `dblink evaluate`) a second
time with a 5 nm ground-truth grid (the same movie: the simulator's random draws do not depend on
the grid), reconstructs the 40 nm movie in exact mode, binarizes it as the paper does (level 100)
and asks, for each error:

* a missed structure pixel (true, not marked): how much filament passes through it (5 nm
  sub-pixels touched; 8 = a straight crossing of the 40 nm pixel, 1-2 = a corner clipped by a few nm);
* a hallucinated pixel (marked, not true): how far the filament passes from the pixel's edge (nm).

usage: PYTHONPATH=python python tools/analysis/filament_errors.py [N_MOVIES] [TTA]
"""
from __future__ import annotations

import sys
from dataclasses import replace

import numpy as np
from scipy import ndimage

from dblink.evaluate import EVAL_SEED, EVAL_SETS
from dblink.export import load_model
from dblink.metrics import binarize_paper, scores
from dblink.pipeline import reconstruct_table
from dblink.simulate import simulate_movie

FINE = 8  # 40 nm / 5 nm


def main(n: int = 4, tta: int = 1) -> None:
    cfg = EVAL_SETS["filaments"]
    fine_cfg = replace(cfg, pixel_size=cfg.pixel_size / FINE, height_px=cfg.height_px * FINE,
                       width_px=cfg.width_px * FINE)
    model = load_model("filaments")
    missed_len, all_len, false_dist, all_scores = [], [], [], []
    for i in range(n):
        sim = simulate_movie(cfg, [EVAL_SEED, i])
        fine = simulate_movie(fine_cfg, [EVAL_SEED, i])
        assert np.array_equal(sim.locs.x, fine.locs.x), "the fine grid changed the movie"
        g = sim.gt > 0.5
        T, H, W = g.shape
        f = fine.gt > 0.5
        touched = f.reshape(T, H, FINE, W, FINE).sum(axis=(2, 4))
        assert np.array_equal(touched > 0, g), "coarse and fine ground truth disagree"
        res = reconstruct_table(sim.locs, model, roi=(0.0, 0.0, sim.grid.width, sim.grid.height),
                                confidence=False, progress="none", warn=lambda m: None, tta=tta)
        p = binarize_paper(res.reconstruction.video[:T])
        all_scores.append(scores(p, g))
        # distance (nm) from each 5 nm sub-pixel to the filament, then per 40 nm pixel its minimum
        dist = np.stack([ndimage.distance_transform_edt(~f[t]) for t in range(T)]) * fine_cfg.pixel_size
        pix_dist = dist.reshape(T, H, FINE, W, FINE).min(axis=(2, 4))
        missed_len.append(touched[g & ~p])
        all_len.append(touched[g])
        false_dist.append(pix_dist[p & ~g])
        print(f"movie {i}: fidelity {all_scores[-1]['fidelity']:.3f}, hallucination "
              f"{all_scores[-1]['hallucination'] * 100:.2f} %", file=sys.stderr, flush=True)
    missed, every, false = map(np.concatenate, (missed_len, all_len, false_dist))
    n_gt, n_missed, n_false = len(every), len(missed), len(false)
    print(f"shipped filament model, --preset filaments, {n} movies, exact mode, tta {tta}: "
          f"fidelity {np.mean([s['fidelity'] for s in all_scores]):.3f}, hallucination "
          f"{np.mean([s['hallucination'] for s in all_scores]) * 100:.2f} %")
    print(f"structure pixels {n_gt}, missed {n_missed} ({n_missed / n_gt:.1%}), "
          f"hallucinated {n_false} ({n_false / n_gt:.1%} of the structure pixel count)")
    print("\nmissed structure pixels by filament inside them (5 nm sub-pixels touched):")
    print("| sub-pixels touched | share of all structure pixels | share of missed | missed rate |")
    print("| --- | ---: | ---: | ---: |")
    for lo, hi in ((1, 2), (3, 4), (5, 8), (9, 64)):
        a = ((every >= lo) & (every <= hi)).sum()
        m = ((missed >= lo) & (missed <= hi)).sum()
        print(f"| {lo}-{hi} | {a / n_gt:.1%} | {m / max(n_missed, 1):.1%} | {m / max(a, 1):.1%} |")
    print("\nhallucinated pixels by distance from the pixel's edge to the filament:")
    print("| distance | share of hallucinated | cumulative |")
    print("| --- | ---: | ---: |")
    edges = (0, 5, 10, 20, 40, 80, np.inf)
    for lo, hi in zip(edges[:-1], edges[1:]):
        s = ((false > lo) & (false <= hi)).sum() if lo else (false <= hi).sum()
        print(f"| {'≤' if not lo else '>' + str(lo) + ' and ≤'} {hi:g} nm | {s / max(n_false, 1):.1%} | "
              f"{(false <= hi).sum() / max(n_false, 1):.1%} |")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
