"""Quality of a model against simulated ground truth, beside the classical baseline.

A data folder is what ``dblink simulate`` writes: ``locs.csv`` (ThunderSTORM-style), ``gt.tif``
(ground truth, T × H × W on the render grid) and ``sim.json`` (the settings, seed and grid).
The table is read back from the CSV, so the whole user path (read → render → infer) is measured.
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import tifffile

from .errors import DBlinkError
from .export import LoadedModel
from .files import atomic_output
from .tables import write_localizations
from .metrics import baseline, best_baseline, evaluate_video
from .pictures import comparison
from .pipeline import reconstruct_table
from .simulate import SimConfig, SimResult, simulate_movie

#: paper-like evaluation conditions (issue 2/3): 40 nm pixels, 10 frames/step, ~0.3 locs/µm²/frame,
#: ~20 nm jitter, slow drift and rotation. Seeds of the evaluation stream are disjoint from training.
EVAL_SETS = {
    "filaments": SimConfig(sample="filaments", height_px=96, width_px=96, n_steps=120,
                           n_structures=4, density=0.3, jitter_nm=20.0, false_fraction=0.05,
                           drift_nm=200.0, rotation_deg=15.0, deform_nm=40.0),
    # fast motion: several pixels of drift within ±25 steps, large rotation, strong bending
    "filaments-fast": SimConfig(sample="filaments", height_px=96, width_px=96, n_steps=120,
                                n_structures=4, density=0.3, jitter_nm=20.0, false_fraction=0.05,
                                drift_nm=1500.0, rotation_deg=60.0, deform_nm=150.0),
    # mitochondria-like: filled tubules and blobs that wander, elongate, split and fuse
    "mitochondria": SimConfig(sample="mitochondria", height_px=96, width_px=96, n_steps=120,
                              n_structures=5, density=0.6, jitter_nm=20.0, false_fraction=0.05,
                              drift_nm=200.0, rotation_deg=15.0, deform_nm=40.0),
}
EVAL_SEED = 20260001

_D = dict(height_px=64, width_px=64, n_steps=100)
_SLOW = dict(drift_nm=200.0, rotation_deg=15.0, deform_nm=40.0)
_FAST = dict(drift_nm=1500.0, rotation_deg=60.0, deform_nm=150.0)
_STATIC = dict(drift_nm=0.0, rotation_deg=0.0, deform_nm=0.0)
#: issue 12: held-out sets per simulator domain (64 × 64 px, 100 steps = 1,000 raw frames).
#: ``paper-*-slow`` uses the original simulator's speeds (±0.002 px and 0.0002° per raw frame at
#: 40 nm: up to 80 nm and 0.2° over the movie); ``paper-filaments-fast`` ten times those;
#: ``paper-mitochondria`` the original's ±0.05 px per raw frame (up to 2 µm, objects stop at the edge).
DOMAIN_SETS = {
    "ours-filaments-static": SimConfig(sample="filaments", n_structures=4, density=0.3, **_D, **_STATIC),
    "ours-filaments-slow": SimConfig(sample="filaments", n_structures=4, density=0.3, **_D, **_SLOW),
    "ours-filaments-fast": SimConfig(sample="filaments", n_structures=4, density=0.3, **_D, **_FAST),
    "ours-filaments-wide": SimConfig(sample="filaments", n_structures=4, density=0.3, width_nm=60.0,
                                     label_spacing_nm=20.0, drift_residual_nm=10.0, **_D, **_SLOW),
    "paper-filaments-slow": SimConfig(domain="paper", sample="filaments", n_structures=6,
                                      emitter_fraction=0.002, drift_nm=80.0, rotation_deg=0.2, **_D),
    "paper-filaments-fast": SimConfig(domain="paper", sample="filaments", n_structures=6,
                                      emitter_fraction=0.002, drift_nm=800.0, rotation_deg=2.0, **_D),
    "camera-filaments-static": SimConfig(domain="camera", sample="filaments", n_structures=4,
                                         density=0.5, camera="emccd", photons=1500.0,
                                         background=40.0, width_nm=50.0, **_D, **_STATIC),
    "camera-filaments-slow": SimConfig(domain="camera", sample="filaments", n_structures=4,
                                       density=0.5, camera="scmos", photons=1000.0, background=60.0,
                                       camera_pixel_nm=130.0, width_nm=50.0, **_D, **_SLOW),
    "camera-filaments-fast": SimConfig(domain="camera", sample="filaments", n_structures=4,
                                       density=0.5, camera="emccd", photons=2000.0, background=40.0,
                                       width_nm=50.0, **_D, **_FAST),
    "ours-mitochondria": SimConfig(sample="mitochondria", n_structures=4, density=0.6, **_D, **_SLOW),
    "paper-mitochondria": SimConfig(domain="paper", sample="mitochondria", n_structures=4,
                                    emitter_fraction=0.002, drift_nm=2000.0, **_D),
    "camera-mitochondria": SimConfig(domain="camera", sample="mitochondria", n_structures=4,
                                     density=0.6, camera="scmos", photons=1500.0, background=50.0,
                                     **_D, **_SLOW),
}


def write_sim(sim: SimResult, folder: str | Path, camera_pixel: float | None = None) -> Path:
    """Write a simulated movie as ``locs.csv`` + ``gt.tif`` + ``sim.json`` into ``folder``
    (with ``camera_pixel``, nm: the table in camera pixels, as an uncalibrated ThunderSTORM run)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_localizations(folder / "locs.csv", sim.locs, camera_pixel)
    g = sim.grid
    with atomic_output(folder / "gt.tif") as tmp:
        tifffile.imwrite(tmp, sim.gt.astype(np.float32), imagej=True,
                         resolution=(1000.0 / g.pixel_size,) * 2,
                         metadata={"axes": "TYX", "unit": "micron",
                                   "finterval": float(sim.config.frames_per_step), "tunit": "frame"})
    meta = {"config": sim.config.to_dict(), "seed": sim.seed,
            "roi_nm": [g.x0, g.y0, g.width, g.height], "pixel_size_nm": g.pixel_size,
            "localizations": len(sim.locs), "camera_pixel_nm": camera_pixel}
    (folder / "sim.json").write_text(json.dumps(meta, indent=1))
    return folder


def evaluate_folder(folder: str | Path, model: LoadedModel, window: int | None = None,
                    stride: int = 1, device: str = "auto", batch: int | None = None,
                    progress: str = "none", pictures: str | Path | None = None,
                    precision: str = "fp32", tta: int = 1) -> dict:
    """Scores of the model and of the baseline on one simulated data folder; with ``pictures`` (a
    folder) also its panel PNG and GIF, named after the data folder (confidence included)."""
    folder = Path(folder)
    try:
        meta = json.loads((folder / "sim.json").read_text())
        gt = tifffile.imread(folder / "gt.tif")
    except OSError as exc:
        raise DBlinkError(f"{folder}: not a simulated data folder ({exc})") from None
    cfg = meta["config"]
    res = reconstruct_table(folder / "locs.csv", model, pixel_size=meta["pixel_size_nm"],
                            camera_pixel=meta.get("camera_pixel_nm"),
                            frames_per_step=cfg["frames_per_step"], roi=tuple(meta["roi_nm"]),
                            window=window, stride=stride, device=device, batch=batch,
                            confidence=pictures is not None, progress=progress, warn=lambda m: None,
                            precision=precision, tta=tta)
    T = min(gt.shape[0], res.reconstruction.video.shape[0])
    W = res.params["window"]
    rec, base = res.reconstruction.video[:T], baseline(res.rendered.video, W)[:T]
    if pictures is not None:
        Path(pictures).mkdir(parents=True, exist_ok=True)
        conf = res.reconstruction.confidence
        comparison(pictures, res.rendered.video[:T], base, rec, gt[:T],
                   None if conf is None else conf[:T], W, prefix=f"{folder.name}_")
    return {"model": evaluate_video(rec, gt[:T], best_level=True),
            "baseline": evaluate_video(base, gt[:T], best_level=True),
            "baseline_best": best_baseline(res.rendered.video[:T], gt[:T]),
            "seconds": res.reconstruction.seconds, "steps": T}


#: simulation settings that ``dblink evaluate --vary`` may change (numbers only)
VARY_AXES = tuple(f for f, v in SimConfig().to_dict().items() if isinstance(v, (int, float))
                  and f not in ("height_px", "width_px", "pixel_size", "frames_per_step", "n_steps"))


#: what ``--vary`` may change besides the simulation settings: the table's unit (camera pixels)
TABLE_AXES = ("camera_pixel",)


def make_eval_set(name: str, folder: str | Path, n: int = 4, overrides: dict | None = None) -> list[Path]:
    """Simulate the evaluation set ``name`` (``n`` movies, evaluation seeds) into ``folder``;
    ``overrides`` change :class:`SimConfig` fields (e.g. ``density``, ``jitter_nm``) or write the
    table in camera pixels (``camera_pixel``, nm). The same seeds are used whatever the overrides,
    so a row of a robustness table differs from the preset only in the overridden setting."""
    if name not in EVAL_SETS:
        raise DBlinkError(f"unknown evaluation set {name!r} (choose from {', '.join(EVAL_SETS)})")
    overrides = dict(overrides or {})
    camera_pixel = overrides.pop("camera_pixel", None)
    try:
        cfg = replace(EVAL_SETS[name], **overrides)
    except TypeError:
        raise DBlinkError(f"--vary: unknown setting among {', '.join(overrides)} (choose from "
                          f"{', '.join(list(VARY_AXES) + list(TABLE_AXES))})") from None
    out = []
    for i in range(n):
        out.append(write_sim(simulate_movie(cfg, [EVAL_SEED, i]), Path(folder) / f"{name}-{i:02d}",
                             camera_pixel))
    return out


def parse_vary(specs: list[str]) -> list[tuple[str, list[float]]]:
    """``["density=0.15,0.6", ...]`` → ``[("density", [0.15, 0.6]), ...]``, checked."""
    out = []
    for spec in specs:
        name, _, values = spec.partition("=")
        name = name.strip().replace("-", "_")
        if name not in VARY_AXES + TABLE_AXES:
            raise DBlinkError(f"--vary {spec!r}: unknown setting {name!r} (choose from "
                              f"{', '.join(VARY_AXES + TABLE_AXES)})")
        try:
            vals = [float(v) for v in values.split(",") if v.strip()]
        except ValueError:
            raise DBlinkError(f"--vary {spec!r}: expected NAME=V1,V2,... with numbers") from None
        if not vals or any(v < 0 for v in vals) or (name == "camera_pixel" and 0 in vals):
            raise DBlinkError(f"--vary {spec!r}: expected NAME=V1,V2,... with numbers >= 0"
                              f"{' (> 0 for camera_pixel)' if name == 'camera_pixel' else ''}")
        if isinstance(SimConfig().to_dict().get(name), int):  # n_structures, noise_per_frame
            vals = [int(v) for v in vals]
        out.append((name, vals))
    return out


def format_vary_table(rows: list[dict]) -> str:
    """Rows of (setting, value, summary) as a Markdown table: model vs baseline."""
    lines = ["| setting | value | dblink F1 | fidelity | hallucination | baseline F1 | baseline F1 (best level) |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        m, b = r["summary"]["model"], r["summary"]["baseline"]
        lines.append(f"| {r['setting']} | {r['value']:g} | {m['f1']:.3f} | {m['fidelity']:.3f} | "
                     f"{m['hallucination'] * 100:.2f} % | {b['f1']:.3f} | {b['f1_best']:.3f} |")
    return "\n".join(lines)


def summarize(rows: list[dict]) -> dict:
    """Mean of each score over folders, for the model and the baseline."""
    out = {}
    for who in ("model", "baseline"):
        keys = rows[0][who].keys()
        out[who] = {k: float(np.mean([r[who][k] for r in rows])) for k in keys}
    return out


def format_table(summary: dict) -> str:
    """The summary as a text table (hallucination in %; f1_best = F1 at the best binarization level)."""
    cols = ["fidelity", "hallucination", "precision", "recall", "f1", "f1_best"]
    lines = [f"{'':10s}" + "".join(f"{c:>15s}" for c in cols)]
    for who in ("model", "baseline"):
        vals = summary[who]
        cells = [f"{vals['hallucination'] * 100:14.2f}%" if c == "hallucination" else f"{vals[c]:15.3f}"
                 for c in cols if c in vals]
        lines.append(f"{who:10s}" + "".join(cells))
    return "\n".join(lines)


def domain_sets_for(sample: str, domain: str | None = None) -> list[str]:
    """The names of the domain sets of one sample type (filaments or mitochondria), all domains
    or only ``domain`` (ours, paper, camera)."""
    if domain is not None and domain not in {c.domain for c in DOMAIN_SETS.values()}:
        raise DBlinkError(f"unknown domain {domain!r} (choose from ours, paper, camera)")
    return [k for k, c in DOMAIN_SETS.items()
            if c.sample == sample and (domain is None or c.domain == domain)]


def domains_report(model: LoadedModel, domain: str | None = None, n: int = 2, **options
                   ) -> tuple[str, list[dict]]:
    """``dblink evaluate --domains`` / ``--domain D``: the model on every domain set of its sample
    type (simulated into a temporary folder); returns the Markdown table and the rows."""
    import tempfile

    sample = model.meta.get("sample", "filaments")
    names = domain_sets_for(sample if sample in ("filaments", "mitochondria") else "filaments",
                            domain)
    with tempfile.TemporaryDirectory(prefix="dblink-domains-") as tmp:
        rows = evaluate_domains(model, names, tmp, n=n, **options)
    return format_domain_table(rows), rows


def make_domain_set(name: str, folder: str | Path, n: int = 2, first: int = 100) -> list[Path]:
    """Simulate ``n`` movies of the domain set ``name`` (evaluation seeds) into ``folder``;
    ``first`` is the first movie's index (the reported tables use 100 on; another range, e.g.
    200 on, gives movies for choosing between candidates that the reported tables never saw)."""
    if name not in DOMAIN_SETS:
        raise DBlinkError(f"unknown domain set {name!r} (choose from {', '.join(DOMAIN_SETS)})")
    return [write_sim(simulate_movie(DOMAIN_SETS[name], [EVAL_SEED, first + i]),
                      Path(folder) / f"{name}-{i:02d}") for i in range(n)]


def evaluate_domains(model: LoadedModel, names: list[str], folder: str | Path, n: int = 2,
                     first: int = 100, **options) -> list[dict]:
    """One row per domain set: the model's and the best classical baseline's mean scores over
    ``n`` movies from index ``first`` (:func:`make_domain_set`; ``options`` as
    :func:`evaluate_folder` takes them)."""
    rows = []
    for name in names:
        per = [evaluate_folder(f, model, **options)
               for f in make_domain_set(name, folder, n, first)]
        mean = (lambda who, k: float(np.mean([r[who][k] for r in per])))
        rows.append({
            "set": name, "n": n,
            "model": {k: mean("model", k) for k in ("fidelity", "hallucination", "f1", "f1_best")},
            "baseline": {k: mean("baseline_best", k) for k in ("fidelity", "hallucination", "f1")},
            "baseline_windows": [r["baseline_best"]["window"] for r in per],
            # per movie, for paired comparisons of two models on the same seeds
            "movies_f1": [float(r["model"]["f1"]) for r in per],
            "movies_baseline_f1": [float(r["baseline_best"]["f1"]) for r in per],
            "seconds": float(sum(r["seconds"] for r in per)),
        })
    return rows


def format_domain_table(rows: list[dict]) -> str:
    """Domain rows as a Markdown table: model (paper level) against the best classical baseline
    (sum over ±5 or ±25 steps at its best binarization level)."""
    lines = ["| set | dblink F1 | fidelity | hallucination | best baseline F1 | its fidelity | "
             "its hallucination | F1 − baseline |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        m, b = r["model"], r["baseline"]
        lines.append(f"| {r['set']} | {m['f1']:.3f} | {m['fidelity']:.3f} | "
                     f"{m['hallucination'] * 100:.2f} % | {b['f1']:.3f} | {b['fidelity']:.3f} | "
                     f"{b['hallucination'] * 100:.2f} % | {m['f1'] - b['f1']:+.3f} |")
    return "\n".join(lines)
