"""The README's main job: simulate a moving-filament movie, reconstruct it with the bundled model from
its ThunderSTORM-style CSV, and write the hyperstack, pictures and metrics into one folder."""
from __future__ import annotations

import json
import time
from pathlib import Path

from .evaluate import write_sim
from .metrics import baseline, evaluate_video
from .pictures import comparison
from .pipeline import reconstruct_table
from .simulate import SimConfig, simulate_movie

DEMO_CONFIG = SimConfig(sample="filaments", height_px=96, width_px=96, n_steps=150, n_structures=4,
                        density=0.3, jitter_nm=20.0, drift_nm=300.0, rotation_deg=20.0,
                        deform_nm=60.0)
DEMO_SEED = 7


def run_demo(out: str | Path = "demo_out", model: str = "filaments", device: str = "auto",
             stride: int = 1, progress: str = "bar") -> dict:
    """Run the demo; returns the metrics and the paths written."""
    t0 = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sim = simulate_movie(DEMO_CONFIG, DEMO_SEED)
    write_sim(sim, out)
    g = sim.grid
    res = reconstruct_table(out / "locs.csv", model, roi=(g.x0, g.y0, g.width, g.height),
                            stride=stride, device=device, progress=progress)
    res.write(out / "dblink.tif")
    rec = res.reconstruction.video
    base = baseline(res.rendered.video, res.params["window"])
    metrics = {"model": evaluate_video(rec, sim.gt, best_level=True),
               "baseline": evaluate_video(base, sim.gt, best_level=True),
               "seconds_inference": round(res.reconstruction.seconds, 1),
               "seconds_per_output_frame": round(res.reconstruction.seconds / rec.shape[0], 3),
               "seconds_total": round(time.perf_counter() - t0, 1),
               "steps": int(rec.shape[0]), "field_px": list(rec.shape[1:]),
               "localizations": len(sim.locs)}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    comparison(out, res.rendered.video, base, rec, sim.gt, res.reconstruction.confidence,
               res.params["window"])
    metrics["files"] = {k: str(out / v) for k, v in (
        ("locs", "locs.csv"), ("hyperstack", "dblink.tif"), ("ground_truth", "gt.tif"),
        ("panel", "panel.png"), ("animation", "movie.gif"), ("metrics", "metrics.json"))}
    return metrics
