"""Judge ``dblink suggest`` on simulated movies of known density and speed (issue 16).

For each scenario a movie is simulated with its ground truth at 5 raw frames per step; every
setting of a small grid (model × frames per step × window) is reconstructed (stride 16, as fast
as a CPU allows; the README measures the same F1 at strides 1-16) and scored against the ground truth at that finest time resolution (an output step of S
frames stands for each of its S/5 ground-truth steps). Then ``dblink.suggest.suggest`` runs on the
table alone, and the F1 of its settings is compared with the best of the grid.

    .venv/bin/python tools/suggest_sweep.py -o suggest_sweep.json          # ~20 min on 2 cores
    .venv/bin/python tools/suggest_sweep.py --seed 19 --lean -o s19.json   # ~3 min on one core
    .venv/bin/python tools/suggest_sweep.py --table suggest_sweep.json     # the table again
    .venv/bin/python tools/suggest_sweep.py --motion-check                 # motion vs truth, ~1 min
    .venv/bin/python tools/suggest_sweep.py --library python/dblink/suggest_library.json s23.json ...
    .venv/bin/python tools/suggest_sweep.py --fill s63.json ...     # score proposals a grid lacks
    .venv/bin/python tools/suggest_sweep.py --remeasure s63.json ...  # measures added since a run
    .venv/bin/python tools/suggest_sweep.py -o s63.json --seed 63 --grid-only --both --only fil-d0.3-fast
                                                        # both models' whole grids for one kind

Rerunning on an existing file scores only the grid points it lacks and proposes again (so a
changed rule is judged against the stored grid in seconds); ``--grid-only`` leaves the proposal out
(to run a held-out seed's grid before its rule is final). Torch uses ``OMP_NUM_THREADS`` threads
(default 2).

The README's table is this script's output.
"""
from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

FINE = 5  # raw frames per ground-truth step
SCENARIOS = {
    # name: (sample, density per µm² of field per raw frame, drift nm, rotation °, deform nm)
    "fil-d0.3-slow": ("filaments", 0.3, 200.0, 15.0, 40.0),
    "fil-d0.1-slow": ("filaments", 0.1, 200.0, 15.0, 40.0),
    "fil-d0.05-slow": ("filaments", 0.05, 200.0, 15.0, 40.0),
    "fil-d1.0-slow": ("filaments", 1.0, 200.0, 15.0, 40.0),
    "fil-d0.3-fast": ("filaments", 0.3, 1500.0, 60.0, 150.0),
    "fil-d0.1-fast": ("filaments", 0.1, 1500.0, 60.0, 150.0),
    "fil-d0.3-vfast": ("filaments", 0.3, 4000.0, 120.0, 300.0),
    "mito-d0.6-slow": ("mitochondria", 0.6, 200.0, 15.0, 40.0),
    # added 2026-12-02 (library seeds 23-62 run again for these two only)
    "mito-d0.2-slow": ("mitochondria", 0.2, 200.0, 15.0, 40.0),
    "mito-d0.6-fast": ("mitochondria", 0.6, 1500.0, 60.0, 150.0),
}
MODELS = ("filaments", "mitochondria")
STEPS = (5, 10, 20)
WINDOWS = (10, 25)
#: the whole grid for both models on these; the others: the filament model's grid and the
#: mitochondria model at its training settings (S = 10, W = 25)
BOTH_MODELS = ("fil-d0.3-slow", "mito-d0.6-slow")
STRIDE = 16


def simulate(name: str, size: int, frames: int, seed: int):
    from dblink.simulate import SimConfig, simulate_movie

    sample, density, drift, rot, deform = SCENARIOS[name]
    cfg = SimConfig(sample=sample, height_px=size, width_px=size, frames_per_step=FINE,
                    n_steps=frames // FINE, n_structures=4 if sample == "filaments" else 3,
                    density=density, drift_nm=drift, rotation_deg=rot, deform_nm=deform)
    return simulate_movie(cfg, seed)


def score(sim, model, S: int, W: int) -> dict:
    from dblink.metrics import evaluate_video
    from dblink.pipeline import reconstruct_table

    g = sim.grid
    res = reconstruct_table(sim.locs, model, pixel_size=g.pixel_size, frames_per_step=S,
                            roi=(g.x0, g.y0, g.width, g.height), window=W, stride=STRIDE,
                            confidence=False, progress="none", warn=lambda m: None, device="cpu")
    video = np.repeat(res.reconstruction.video, S // FINE, axis=0)
    T = min(video.shape[0], sim.gt.shape[0])
    out = evaluate_video(video[:T], sim.gt[:T])
    return {"f1": out["f1"], "fidelity": out["fidelity"], "hallucination": out["hallucination"]}


def grid_keys(name: str, lean: bool = False, both: bool = False) -> list[tuple[str, int, int]]:
    """(model, S, W) of the grid of one scenario (``lean``: the model of the sample only, with
    the other at its training settings; ``both``: both models' whole grids)."""
    own = "mitochondria" if SCENARIOS[name][0] == "mitochondria" else "filaments"
    other = "filaments" if own == "mitochondria" else "mitochondria"
    keys = list(itertools.product([own], STEPS, WINDOWS))
    if both or (name in BOTH_MODELS and not lean):
        keys += list(itertools.product([other], STEPS, WINDOWS))
    else:
        keys.append((other, 10, 25))
    return keys


def run(out: Path, size: int, frames: int, seed: int, names: list[str], grid_only: bool,
        lean: bool = False, both: bool = False) -> dict:
    from dblink.export import load_model
    from dblink.suggest import setting_key

    models = {m: load_model(m) for m in MODELS}
    results = json.loads(out.read_text()) if out.exists() else {}
    for name in names:
        t0 = time.time()
        sim = simulate(name, size, frames, seed)
        row = results.get(name, {"grid": {}})
        results[name] = row
        for m, S, W in grid_keys(name, lean, both):
            key = setting_key(m, S, W)
            if key not in row["grid"]:
                row["grid"][key] = score(sim, models[m], S, W)
                out.write_text(json.dumps(results, indent=1))
        row["localizations"] = len(sim.locs)
        row["seed"] = seed
        if grid_only:
            from dblink.suggest import measure
            row["measures"] = measure(sim.locs).to_dict()
            out.write_text(json.dumps(results, indent=1))
            print(f"{name}: {time.time() - t0:.0f} s", file=sys.stderr)
            continue
        from dblink.suggest import suggest
        sug = suggest(sim.locs, device="cpu")
        o = sug.options
        key = setting_key(o["model"], o["frames_per_step"], o["window"])
        if key not in row["grid"]:
            row["grid"][key] = score(sim, models[o["model"]], o["frames_per_step"], o["window"])
        row["suggested"] = key
        row["measures"] = sug.measures.to_dict()
        row["localizations"] = len(sim.locs)
        results[name] = row
        out.write_text(json.dumps(results, indent=1))
        print(f"{name}: {time.time() - t0:.0f} s", file=sys.stderr)
    return results


def table(results: dict) -> str:
    lines = ["| movie | density on structure (/µm²/frame) | structure changes by half within (frames) | "
             "suggested | F1 suggested | best of grid | F1 best | gap |",
             "|---|---:|---:|---|---:|---|---:|---:|"]
    gaps = []
    for name, row in results.items():
        if "suggested" not in row:  # a scenario still running
            continue
        grid = {k: v for k, v in row["grid"].items()}
        best = max(grid, key=lambda k: grid[k]["f1"])
        s = row["suggested"]
        gap = grid[best]["f1"] - grid[s]["f1"]
        gaps.append(gap)
        m = row["measures"]
        tau = m["motion_frames"]
        tau = "—" if tau is None or tau == float("inf") else f"{tau:.0f}"
        lines.append(f"| {name} | {m['density_structure']:.2f} | {tau} | {s} | "
                     f"{grid[s]['f1']:.3f} | {best} | {grid[best]['f1']:.3f} | {gap:.3f} |")
    lines.append(f"\nlargest gap {max(gaps):.3f}; suggestion within 0.01 of the best in "
                 f"{sum(g <= 0.01 for g in gaps)} of {len(gaps)} movies")
    return "\n".join(lines)


def _measured(features: tuple[str, ...]) -> tuple[str, ...]:
    """The stored measures a library movie needs: the library's ``features`` and the count (a
    sweep file measured before one was added: ``--remeasure``)."""
    return tuple(dict.fromkeys(("localizations", *features)))


def _features(text: str | None) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """``--features NAME=WEIGHT,...`` (default: dblink.suggest's ``FEATURE_MEASURES`` and
    ``FEATURE_WEIGHTS``) as (names, weights)."""
    from dblink.suggest import _FEATURE, FEATURE_MEASURES, FEATURE_WEIGHTS

    if not text:
        return tuple(FEATURE_MEASURES), tuple(FEATURE_WEIGHTS)
    try:
        pairs = [item.split("=") for item in text.split(",")]
        names, weights = tuple(n.strip() for n, _ in pairs), tuple(float(w) for _, w in pairs)
    except ValueError:
        raise SystemExit(f"--features {text}: expected NAME=WEIGHT,NAME=WEIGHT,...") from None
    if not all(math.isfinite(w) and w >= 0 for w in weights):
        raise SystemExit(f"--features {text}: weights are numbers of 0 or more")
    unknown = [n for n in names if n not in _FEATURE]
    if unknown or len(set(names)) != len(names):
        raise SystemExit(f"--features: unknown or repeated {', '.join(unknown) or 'name'}; known: "
                         f"{', '.join(_FEATURE)}")
    return names, weights


def _frames(v: float | None) -> float | None:
    """A stored frame count as the library keeps it: 0.1 frame, None for never or not measured."""
    return None if v is None or not np.isfinite(v) else round(v, 1)


def _library_movies(files: list[Path], size: int, frames: int, both: bool = False,
                    features: tuple[str, ...] | None = None) -> list[dict]:
    from dblink.suggest import measure, setting_key

    features = _features(None)[0] if features is None else features

    movies = []
    for f in files:
        for name, row in json.loads(Path(f).read_text()).items():
            if "seed" not in row:
                raise SystemExit(f"{f}: {name} has no seed; run this script's grid on it again")
            m = row.get("measures")
            if not m or any(k not in m for k in _measured(features)):
                m = measure(simulate(name, size, frames, row["seed"]).locs).to_dict()
            # the scenario's lean grid, or with ``both`` both models' whole grids where the movie
            # has them: settings --fill scored on some movies would give them a grid of their own
            # (dblink.suggest groups the nearest movies by grid)
            keep = {setting_key(*k) for k in grid_keys(name, both=True)}
            if not (both and keep <= set(row["grid"])):
                keep = {setting_key(*k) for k in grid_keys(name, lean=True)}
            movies.append({"movie": name, "seed": row["seed"], "localizations": m["localizations"],
                           "density_structure": round(m["density_structure"], 4),
                           "motion_frames": _frames(m["motion_frames"]),
                           "filled_share": round(m["filled_share"], 4),
                           "filled_share_short": round(m["filled_share_short"], 4),
                           "pair_frames": _frames(m["pair_frames"]),
                           # measures added since v10, stored only in libraries that read them
                           **({"linearity": None if m["linearity"] is None else round(m["linearity"], 4)}
                              if "linearity" in features else {}),
                           "f1": {k: round(v["f1"], 4) for k, v in row["grid"].items() if k in keep}})
    return movies


def build_library(files: list[Path], out: Path, size: int, frames: int, both: bool = False,
                  features: str | None = None) -> str:
    """``--library``: the movies of sweep files (their measures and grid F1) as the library that
    :func:`dblink.suggest.suggest` reads its choice from, with the bundled models' SHA-256 (the
    library is used only with those model files). ``features``: ``--features`` (default:
    dblink.suggest's)."""
    from dblink.modelmeta import resolve_model
    from dblink.suggest import NEIGHBOURS, file_sha256

    names, weights = _features(features)
    movies = _library_movies(files, size, frames, both, names)
    lib = {"about": "simulated movies (tools/suggest_sweep.py) with their measures and the F1 of "
                    "each setting; dblink suggest proposes what did best on the movies most like "
                    "the table (README: Parameters from the data)",
           "made_with": "tools/suggest_sweep.py --library OUT " + ("--both " if both else "")
                        + (f"--features {features} " if features else "")
                        + " ".join(str(f) for f in files),
           "movie": {"size_px": size, "pixel_nm": 40.0, "frames": frames, "stride": STRIDE,
                     "truth_every_frames": FINE},
           "models": {mname: file_sha256(resolve_model(mname)) for mname in MODELS},
           "neighbours": NEIGHBOURS, "features": list(names),
           "feature_weights": list(weights),
           "movies": movies}
    out.write_text(json.dumps(lib, indent=None, separators=(",", ":")) + "\n")
    return f"{out}: {len(movies)} movies from {len(files)} sweep files"


def _proposals(row: dict, library: Path | None) -> tuple[str | None, str]:
    """The library's (None: no choice) and the rules' settings for a sweep file's movie, proposed
    from its stored measures."""
    import dataclasses

    from dblink.suggest import Measures, from_library, from_rules, setting_key

    missing = [k.name for k in dataclasses.fields(Measures) if k.name not in row["measures"]]
    if missing:
        raise SystemExit(f"a movie of seed {row['seed']} has no stored {', '.join(missing)}: its "
                         f"sweep file was measured before; run this script with --remeasure on it")
    kw = {k.name: row["measures"][k.name] for k in dataclasses.fields(Measures)}
    kw["frames"] = tuple(kw["frames"])
    m = Measures(**kw)
    c = from_library(m, path=library)
    lib_key = None if c is None else setting_key(c["model"], c["frames_per_step"], c["window"])
    mod, S, W = from_rules(m)
    return lib_key, setting_key(mod, S, W)


def remeasure(files: list[Path], size: int = 64, frames: int = 1000) -> str:
    """``--remeasure``: measure each movie of the sweep files again (simulated again from its seed)
    and add the measures it lacks (one added since the file was run). The stored measures are kept
    (earlier rounds were read from them); those the new measure gives otherwise (beyond 1e-6
    relative: summing in another order moves ``motion_frames`` by about 1e-7) are counted."""
    from dblink.suggest import measure

    n = changed = added = 0
    for f in files:
        res = json.loads(Path(f).read_text())
        for name, row in res.items():
            new = json.loads(json.dumps(measure(simulate(name, size, frames, row["seed"]).locs).to_dict()))
            old = row.get("measures") or {}
            changed += any(not _same(old[k], new.get(k)) for k in old)
            added += any(k not in old for k in new)
            row["measures"] = {**new, **old}
            n += 1
        Path(f).write_text(json.dumps(res, indent=1))
    return (f"{n} movies measured again in {len(files)} sweep files; {added} had measures added; "
            f"{changed} had other stored measures (kept)")


def _same(a, b) -> bool:
    """Two stored measures alike to 1e-6 relative (numbers) or equal (anything else)."""
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return a == b or math.isclose(a, b, rel_tol=1e-6)
    return a == b


def _each_with_library(files: list[Path], library: Path | None, cross: bool, size: int,
                       frames: int, both: bool = False, features: str | None = None):
    """Each sweep file with the library its movies are proposed for from: ``library``, or with
    ``cross`` one built from the other files' movies (leave one seed out), all built before the
    first file is yielded (so that ``--fill`` proposes from the files as they were given);
    ``features``: theirs (``--features``)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        libraries = [library] * len(files)
        if cross:  # a file of its own for each library (dblink.suggest caches libraries by path)
            for i, f in enumerate(files):
                libraries[i] = Path(tmp) / f"library-{i}.json"
                build_library([o for o in files if o != f], libraries[i], size, frames, both,
                              features)
        yield from zip(files, libraries)


def fill(files: list[Path], library: Path | None, cross: bool = False, size: int = 64,
         frames: int = 1000, both: bool = False, features: str | None = None) -> str:
    """``--fill``: score on each movie of the sweep files the library's and the rules' settings
    (proposed from its stored measures; ``cross``: by a library of the other files' movies) that
    its grid lacks, so that ``--summary`` judges every movie (the movie is simulated again from
    its seed)."""
    from dblink.export import load_model
    from dblink.suggest import parse_setting

    models: dict = {}
    n = 0
    for f, lib in _each_with_library(files, library, cross, size, frames, both, features):
        res = json.loads(Path(f).read_text())
        for name, row in res.items():
            missing = sorted({k for k in _proposals(row, lib) if k and k not in row["grid"]})
            if not missing:
                continue
            sim = simulate(name, size, frames, row["seed"])
            for key in missing:
                mname, S, W = parse_setting(key)
                models.setdefault(mname, load_model(mname))
                row["grid"][key] = score(sim, models[mname], S, W)
                n += 1
            Path(f).write_text(json.dumps(res, indent=1))
    return f"{n} settings scored on {len(files)} sweep files"


def summary(files: list[Path], library: Path | None, cross: bool = False, size: int = 64,
            frames: int = 1000, both: bool = False, features: str | None = None) -> str:
    """``--summary``: over the movies of sweep files, how far from each movie's best grid setting
    the library's choice (re-proposed from the stored measures) and the density and motion rules
    land, per scenario and in all. ``cross``: each file's movies are proposed for by a library of
    the other files' movies (leave one seed out), not by ``library`` (``both``: libraries that keep
    both models' whole grids, ``--both``); ``size`` and ``frames`` re-simulate a movie whose
    measures a sweep file lacks; ``features``: the cross libraries' (``--features``)."""
    grids: dict[str, list] = {}  # per scenario: each movie's grid F1 and the two choices
    for f, lib in _each_with_library(files, library, cross, size, frames, both, features):
        for name, row in json.loads(Path(f).read_text()).items():
            g = {k: v["f1"] for k, v in row["grid"].items()}
            grids.setdefault(name, []).append((g, *_proposals(row, lib)))
    # each movie's gap to its own best, of the two choices (nan: a setting not in its grid)
    per = {name: [tuple(max(g.values()) - g[k] if k in g else float("nan") for k in (lk, rk))
                  for g, lk, rk in rows] for name, rows in grids.items()}
    bests: dict[str, dict] = {}  # how often each setting was a movie's best
    for name, rows in grids.items():
        for g, _, _ in rows:
            key = max(g, key=g.get)
            bests.setdefault(name, {})[key] = bests.get(name, {}).get(key, 0) + 1
    lines = ["| movie | movies | library: within 0.01 | mean gap | largest | rules: within 0.01 | "
             "mean gap | largest |", "|---|---:|---:|---:|---:|---:|---:|---:|"]

    def stats(v: np.ndarray) -> str:
        ok = v[np.isfinite(v)]
        miss = "" if ok.size == v.size else f" ({v.size - ok.size} not in the grid)"
        return f"{int((ok <= 0.01).sum())}{miss} | {ok.mean():.3f} | {ok.max():.3f}"

    for name, v in list(per.items()) + [("all", sum(per.values(), []))]:
        a = np.array(v, dtype=float)
        lines.append(f"| {name} | {len(a)} | {stats(a[:, 0])} | {stats(a[:, 1])} |")
    lib = ("each file's from the other files (leave one out)" if cross else
           library or "the bundled library")
    lines.append(f"\n{len(files)} sweep files; library: {lib}\n\n| movie | best grid setting: "
                 f"how many movies |\n|---|---|")
    for name, b in bests.items():
        lines.append(f"| {name} | " + ", ".join(f"{k} {v}" for k, v in sorted(b.items(), key=lambda kv: -kv[1]))
                     + " |")
    lines.append("\n" + per_kind(grids))
    return "\n".join(lines)


def per_kind(grids: dict[str, list]) -> str:
    """Per kind of movie (scenario): the mean F1 of the library's and the rules' choices against
    that of the best single grid setting for the kind (the setting a sweep over these movies picks,
    in hindsight) and against the mean of each movie's own best. ``grids``: per scenario, a list of
    (grid F1 by setting, library's setting, rules' setting)."""
    lines = ["| movie | movies | best single setting (a sweep over these movies) | its mean F1 | "
             "library: mean F1 | minus the sweep's (± s.e.) | rules: mean F1 | minus the sweep's | "
             "each movie's own best | the sweep's setting within 0.01 of it |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    worst, sweep_hits = [], 0
    for name, rows in grids.items():
        common = set.intersection(*(set(g) for g, _, _ in rows))
        mean = {k: float(np.mean([g[k] for g, _, _ in rows])) for k in common}
        sweep = max(sorted(mean), key=mean.get)
        cells = []
        for i in (1, 2):
            f = np.array([r[0].get(r[i], np.nan) if r[i] else np.nan for r in rows])
            ok = np.isfinite(f)
            miss = "" if ok.all() else f" ({int((~ok).sum())} not in the grid)"
            d = f[ok] - np.array([g[sweep] for g, _, _ in rows])[ok]  # paired, per movie
            se = d.std(ddof=1) / np.sqrt(d.size) if d.size > 1 else float("nan")
            cells += [f"{f[ok].mean():.3f}{miss}", f"{f[ok].mean() - mean[sweep]:+.3f} ± {se:.3f}"]
            if i == 1:
                worst.append(f[ok].mean() - mean[sweep])
        own = np.mean([max(g.values()) for g, _, _ in rows])
        hits = sum(max(g.values()) - g[sweep] <= 0.01 for g, _, _ in rows)
        sweep_hits += hits
        lines.append(f"| {name} | {len(rows)} | {sweep} | {mean[sweep]:.3f} | {' | '.join(cells)} | "
                     f"{own:.3f} | {hits} |")
    lines.append(f"\nlibrary minus the sweep's best single setting: worst kind {min(worst):+.3f}, "
                 f"{sum(w >= -0.01 for w in worst)} of {len(worst)} kinds within 0.01; the sweep's "
                 f"setting (chosen knowing each movie's kind) is within 0.01 of each movie's own best "
                 f"on {sweep_hits} of {sum(len(r) for r in grids.values())} movies")
    return "\n".join(lines)


def true_half_life(gt: np.ndarray, fine: int = FINE) -> float:
    """Raw frames within which the ground truth's structure changes by half at 80 nm: the first lag
    at which ground-truth frames blurred by 2 px correlate below 0.5 (mean over the movie), else
    the exponential decay through the correlation at half the movie's length."""
    from scipy import ndimage

    from dblink.suggest import _corr

    g = np.stack([ndimage.gaussian_filter(f.astype(np.float64), 2.0) for f in gt])
    T = len(g)
    c = 1.0
    for lag in range(1, T // 2 + 1):
        c = float(np.mean([_corr(g[t], g[t + lag]) for t in range(0, T - lag, 2)]))
        if c < 0.5:
            return float(lag * fine)
    return float("inf") if c >= 1 else (T // 2) * fine * np.log(0.5) / np.log(max(c, 1e-9))


def motion_check(seeds: list[int], size: int, frames: int) -> str:
    """``--motion-check``: the measured ``motion_frames`` and ``pair_frames`` against the ground
    truth's half-life (:func:`true_half_life`) on every filament scenario of each seed (no
    reconstruction)."""
    from dblink.suggest import measure

    rows = []
    for seed in seeds:
        for name in SCENARIOS:
            if SCENARIOS[name][0] != "filaments":
                continue
            sim = simulate(name, size, frames, seed)
            m = measure(sim.locs)
            rows.append((name, seed, len(sim.locs), true_half_life(sim.gt), m.motion_frames,
                         m.pair_frames))
    cap = lambda v: min(max(v if v is not None else 5000.0, 1.0), 5000.0)  # noqa: E731
    fmt = lambda v: "∞" if v is None or v >= 5000 else f"{v:.0f}"  # noqa: E731
    lt = np.log([cap(r[3]) for r in rows])
    lines = ["| movie | localizations | true half-life (frames) per seed | motion_frames | median factor "
             "off | over 2x off | pair_frames | median factor off | over 2x off |",
             "|---|---:|---|---|---:|---:|---|---:|---:|"]
    for name in dict.fromkeys(r[0] for r in rows):
        sel = [r for r in rows if r[0] == name]
        cells = [name, f"{np.mean([r[2] for r in sel]):.0f}", " ".join(fmt(r[3]) for r in sel)]
        for col in (4, 5):
            off = np.abs(np.log([cap(r[col]) / cap(r[3]) for r in sel]))
            cells += [" ".join(fmt(r[col]) for r in sel), f"{np.exp(np.median(off)):.2f}",
                      f"{np.mean(off > np.log(2)):.0%}"]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append(f"\n{len(rows)} movies (seeds {seeds[0]}–{seeds[-1]}, values capped at 5,000 frames):")
    for col, what in ((4, "motion_frames"), (5, "pair_frames")):
        lm = np.log([cap(r[col]) for r in rows])
        rms = np.sqrt(np.mean((lt - lm) ** 2))
        lines.append(f"{what}: rms log error {rms:.2f} (a factor {np.exp(rms):.1f}), mean "
                     f"{np.mean(lm - lt):+.2f}; same side of 200 frames in "
                     f"{np.mean((lt >= np.log(200)) == (lm >= np.log(200))):.0%}, of 400 frames in "
                     f"{np.mean((lt >= np.log(400)) == (lm >= np.log(400))):.0%}")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-o", "--output", default="suggest_sweep.json")
    p.add_argument("--table", help="print the table of an earlier run and exit")
    p.add_argument("--size", type=int, default=64, help="field in 40 nm pixels (default 64)")
    p.add_argument("--frames", type=int, default=1000, help="raw frames (default 1000)")
    p.add_argument("--seed", type=int, default=16)
    p.add_argument("--only", nargs="*", default=list(SCENARIOS))
    p.add_argument("--grid-only", action="store_true", help="only the grid (no suggestion)")
    p.add_argument("--motion-check", nargs="*", type=int, metavar="SEED",
                   help="compare the measured motion with the ground truth's on the filament "
                        "scenarios of these seeds (no reconstruction) and exit")
    p.add_argument("--lean", action="store_true",
                   help="each sample's own model's grid only (the other model at S=10, W=25)")
    p.add_argument("--both", action="store_true",
                   help="both models' whole grids for the scenarios run (--only); with --library: "
                        "keep a movie's whole both-model grid where it has one (else its lean grid); with "
                        "--cross: so do the leave-one-out libraries")
    p.add_argument("--library", metavar="OUT.json", help="write the movies of the sweep files given "
                   "after it (their measures and grid F1) as dblink suggest's library, and exit")
    p.add_argument("--summary", action="store_true", help="how far the library's choice and the "
                   "rules land from each movie's best, over the sweep files given (with --use-library "
                   "LIB: that library instead of the bundled one), and exit")
    p.add_argument("--use-library", metavar="LIB.json", help="the library --summary (--fill) "
                   "proposes from")
    p.add_argument("--fill", action="store_true", help="score the library's and the rules' "
                   "proposals that the grids of the sweep files given lack (so that --summary "
                   "judges every movie), and exit")
    p.add_argument("--remeasure", action="store_true", help="measure the movies of the sweep files "
                   "given again (a measure added since they were run), and exit")
    p.add_argument("--features", metavar="NAME=W,...", help="with --library or --cross: the "
                   "measures the library reads and their weights (default: dblink.suggest's "
                   "FEATURE_MEASURES and FEATURE_WEIGHTS)")
    p.add_argument("--cross", action="store_true", help="with --summary or --fill: each file's "
                   "movies get a library of the other files' movies (leave one seed out)")
    p.add_argument("files", nargs="*", help="sweep files (with --library, --summary or --fill)")
    a = p.parse_args()
    if a.library:
        if not a.files:
            p.error("--library OUT.json needs sweep files")
        print(build_library([Path(f) for f in a.files], Path(a.library), a.size, a.frames, a.both,
                            a.features))
        return 0
    if a.remeasure:
        print(remeasure([Path(f) for f in a.files], a.size, a.frames))
        return 0
    if a.fill:
        import torch
        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
        print(fill([Path(f) for f in a.files], Path(a.use_library) if a.use_library else None,
                   a.cross, a.size, a.frames, a.both, a.features))
        return 0
    if a.summary:
        print(summary([Path(f) for f in a.files], Path(a.use_library) if a.use_library else None,
                      a.cross, a.size, a.frames, a.both, a.features))
        return 0
    if a.table:
        print(table(json.loads(Path(a.table).read_text())))
        return 0
    if a.motion_check is not None:
        print(motion_check(a.motion_check or list(range(100, 112)), a.size, a.frames))
        return 0
    import torch
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    res = run(Path(a.output), a.size, a.frames, a.seed, a.only, a.grid_only, a.lean, a.both)
    if not a.grid_only:
        print(table(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
