"""The ``dblink`` command line: a thin shell over the Python API (docs/ARCHITECTURE.md has the
contract). Each subcommand is two small functions — its arguments (``_args_NAME``) and its handler
(``_cmd_NAME``) — registered in :data:`COMMANDS`; the reconstruction options come from
:mod:`dblink.options`.

Exit codes: 0 success; 2 usage or input error (one line on stderr); 130 interrupted (Ctrl-C);
143 terminated (SIGTERM), 129 hung up (SIGHUP). An interrupted or failed run leaves no partial
output file behind.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import re
import signal
import sys
import threading

from . import __version__
from .errors import DBlinkError, one_line, out_of_memory


def _args_train(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group()
    src.add_argument("--preset", choices=["filaments", "mitochondria"], help="a bundled training config")
    src.add_argument("--config", help="a training config (JSON)")
    p.add_argument("-o", "--output", required=True, help="run folder (checkpoint, log, config)")
    p.add_argument("--resume", action="store_true", help="continue the run in the folder")
    p.add_argument("--steps", type=int, help="override the number of training iterations")
    p.add_argument("--max-minutes", type=float, help="stop (and checkpoint) after this wall time")
    p.add_argument("--workers", type=int, help="data-simulation worker processes")
    p.add_argument("--init", metavar="MODEL",
                   help="start from these weights (bundled model name, model file or checkpoint)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps (default: auto)")
    p.add_argument("--progress", default="bar", choices=["bar", "json", "none"])


def _cmd_train(a: argparse.Namespace) -> int:
    from .train import load_config, train

    overrides = {}
    if a.steps:
        overrides["steps"] = a.steps
    if a.max_minutes is not None:
        overrides["max_minutes"] = a.max_minutes
    if a.workers is not None:
        overrides["num_workers"] = a.workers
    if a.init:
        overrides["init"] = a.init
    cfg = None if a.resume else load_config(a.preset, a.config, overrides)
    best = train(cfg, a.output, resume=a.resume, device=a.device, progress=a.progress)
    print(json.dumps({"event": "done", "run": a.output, "best": best}))
    return 0


class Terminated(BaseException):
    """Raised in the main thread on SIGTERM or SIGHUP (a closed terminal), so that
    ``finally``/cleanup code (temporary output files) runs as for Ctrl-C. A BaseException, so
    ``except Exception`` does not swallow it."""

    def __init__(self, signum: int = signal.SIGTERM) -> None:
        super().__init__(signum)
        self.signum = int(signum)
        self.name = signal.Signals(signum).name


def _on_signal(signum: int, frame: object) -> None:
    raise Terminated(signum)


def _warn_json(msg: str) -> None:
    from .progress import emit
    emit({"event": "warning", "message": msg})


def _args_reconstruct(p: argparse.ArgumentParser) -> None:
    from . import options

    p.add_argument("table", help="localization table: ThunderSTORM CSV (x/y in nm, µm or px; a plain "
                                 "frame,x,y CSV is nm), Picasso/DECODE/SMAP HDF5 or CSV, ShareLoc .smlm, "
                                 "any CSV with --columns; or a map stack (TIFF T x H x W)")
    p.add_argument("-o", "--output", required=True, help="output hyperstack (.tif)")
    options.add_arguments(p)  # every reconstruction option, from dblink.options
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.add_argument("--timings", action="store_true",
                   help="print where the time went (read, model, render, network, write) and the "
                        "memory plan (estimated peak, tiles, windows per call)")
    p.add_argument("--progress", default="bar", choices=["bar", "json", "none"],
                   help="progress bar, JSON lines on stdout (for scripts and Fiji), or quiet")


def _cmd_reconstruct(a: argparse.Namespace) -> int:
    from .options import from_args
    from .pipeline import format_timings, reconstruct
    from .progress import emit
    from .sinks import TiffSink

    kw = {"warn": _warn_json} if a.progress == "json" else {}
    run = reconstruct(a.table, TiffSink(a.output, overwrite=a.overwrite), from_args(a),
                      progress=a.progress, **kw)
    T, H, W = run.shape
    if a.progress == "json":
        summary = {"event": "done", "output": str(a.output), "steps": T, "height": H, "width": W,
                   "seconds": round(run.seconds, 2), "device": run.device, "model": run.model.name}
        if a.timings:
            summary["timings"] = {k: round(v, 3) for k, v in run.timings.items()}
            from .memory import peak_rss
            summary["memory"] = run.job.memory_report()
            summary["peak_rss_bytes"] = peak_rss()
        emit(summary)
        return 0
    print(f"wrote {a.output}: {T} time points of {W} x {H} px at {run.params['pixel_size_nm']:g} nm "
          f"({run.params['frames_per_step']} raw frames each), model {run.model.name}, "
          f"{run.seconds:.1f} s on {run.device}", file=sys.stderr)
    if a.timings:
        print(format_timings(run.timings), file=sys.stderr)
        from .memory import peak_rss
        peak = peak_rss()
        measured = f"; measured peak {peak / 2**20:.0f} MiB" if peak else ""
        print(run.job.memory_report() + measured, file=sys.stderr)
    return 0


def _args_batch(p: argparse.ArgumentParser) -> None:
    from . import options
    from .batch import SUMMARY_NAME, TABLE_SUFFIXES

    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help=f"tables, folders (their {', '.join(TABLE_SUFFIXES)} files) or globs "
                        f"(quoted; ** is recursive)")
    p.add_argument("-o", "--output", required=True, metavar="OUT_DIR",
                   help="output folder: one hyperstack OUT_DIR/NAME.tif per input")
    options.add_arguments(p)  # every reconstruction option, as for reconstruct
    p.add_argument("--workers", type=int, metavar="N",
                   help="Dask worker processes of an embedded local cluster; 0 = one file after "
                        "another in this process (default: one per GPU, else one per core)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="run on an existing Dask cluster, e.g. tcp://host:8786 (README: SLURM)")
    p.add_argument("--overwrite", action="store_true",
                   help="redo inputs whose output exists (default: skip them, so a stopped run resumes)")
    p.add_argument("--summary", metavar="CSV", help=f"summary table (default: OUT_DIR/{SUMMARY_NAME})")
    p.add_argument("--macro-options", metavar="TEXT",
                   help="options as Fiji macro keys, e.g. \"model=filaments stride=auto workers=2\" "
                        "(for macros/dblink_batch.ijm; flags given as well take precedence)")
    p.add_argument("--progress", default="bar", choices=["bar", "json", "none"],
                   help="bars over files and steps, JSON lines on stdout, or quiet")


def _cmd_batch(a: argparse.Namespace) -> int:
    from .batch import macro_options, run_batch
    from .options import ReconstructOptions, from_args

    try:
        opts = from_args(a)
        if a.macro_options:  # the Fiji macro's keys; flags given as well take precedence
            base, keys = macro_options(a.macro_options)
            opts = ReconstructOptions.make(base, **opts.changed())
            a.workers = a.workers if a.workers is not None else keys.get("workers")
            a.scheduler = a.scheduler or keys.get("scheduler")
            a.overwrite = a.overwrite or keys.get("overwrite", False)
        if a.scheduler is not None and a.workers is not None:
            raise DBlinkError("give --workers (an embedded cluster) or --scheduler (an existing one), not both")
        warn = _warn_json if a.progress == "json" else (lambda m: print(f"dblink: warning: {m}", file=sys.stderr))
        res = run_batch(a.inputs, a.output, opts, workers=a.workers, scheduler=a.scheduler,
                        overwrite=a.overwrite, progress=a.progress, summary=a.summary, warn=warn)
    except DBlinkError as exc:
        if a.progress == "json":  # where only stdout is read (an ImageJ macro's exec)
            from .progress import emit
            emit({"event": "error", "message": one_line(str(exc))})
        raise
    n, done, skipped, failed = len(res.rows), res.count("done"), res.count("skipped"), res.count("failed")
    if a.progress == "json":
        from .progress import emit
        emit({"event": "done", "files": n, "written": done, "skipped": skipped, "failed": failed,
              "summary": str(res.summary), "seconds": round(res.seconds, 2), "where": res.where})
    else:
        print(f"dblink batch: {done} written, {skipped} skipped (done before), {failed} failed, of "
              f"{n} in {res.seconds:.1f} s on {res.where}; summary {res.summary}", file=sys.stderr)
    if failed:
        raise DBlinkError(f"{failed} of {n} inputs failed (reasons in {res.summary})")
    return 0


def _args_simulate(p: argparse.ArgumentParser) -> None:
    p.add_argument("sample", choices=["filaments", "mitochondria"])
    p.add_argument("-o", "--output", required=True, help="output folder (locs.csv, gt.tif, sim.json)")
    p.add_argument("--size", type=int, default=64, help="field size in render pixels (default 64)")
    p.add_argument("--pixel-size", type=float, default=40.0, metavar="NM", help="render pixel in nm (default 40)")
    p.add_argument("--steps", type=int, default=100, help="time points (default 100)")
    p.add_argument("--frames-per-step", type=int, default=10, help="raw frames per time point (default 10)")
    p.add_argument("--structures", type=int, default=4, help="filaments or mitochondria in the field (default 4)")
    p.add_argument("--density", type=float, default=0.3, help="localizations per µm² per raw frame (default 0.3)")
    p.add_argument("--jitter", type=float, default=20.0, metavar="NM", help="localization precision (default 20 nm)")
    p.add_argument("--false-fraction", type=float, default=0.05, help="share of false localizations (default 0.05)")
    p.add_argument("--drift", type=float, default=200.0, metavar="NM", help="total drift (default 200 nm)")
    p.add_argument("--rotation", type=float, default=15.0, metavar="DEG", help="total rotation (default 15°)")
    p.add_argument("--deform", type=float, default=40.0, metavar="NM", help="bending amplitude (default 40 nm)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--domain", choices=["ours", "paper", "camera"], default="ours",
                   help="simulator: dblink's own, the original DBlink statistics, or camera frames "
                        "localized by a real fitter (default ours)")


#: largest simulated field (render px) and ground truth (voxels) `dblink simulate` accepts
SIM_MAX_SIZE = 4096
SIM_MAX_VOXELS = 2e9


def _cmd_simulate(a: argparse.Namespace) -> int:
    from .evaluate import write_sim
    from .simulate import SimConfig, simulate_movie

    import math
    from pathlib import Path

    from .files import check_output_dir, path_errors

    for name, v in (("--size", a.size), ("--steps", a.steps), ("--frames-per-step", a.frames_per_step)):
        if v < 1:
            raise DBlinkError(f"{name} must be >= 1, got {v}")
    if a.size > SIM_MAX_SIZE or a.size * a.size * a.steps > SIM_MAX_VOXELS:
        raise DBlinkError(f"--size {a.size} with --steps {a.steps} is too large to simulate (at most "
                          f"{SIM_MAX_SIZE} px and {SIM_MAX_VOXELS:.0e} ground-truth voxels)")
    for name, v, lo, hi in (("--pixel-size", a.pixel_size, 1.0, 1e4), ("--density", a.density, 0.0, 100.0),
                            ("--false-fraction", a.false_fraction, 0.0, 0.99),
                            ("--jitter", a.jitter, 0.0, 1e4), ("--drift", a.drift, -1e7, 1e7),
                            ("--rotation", a.rotation, -1e5, 1e5), ("--deform", a.deform, 0.0, 1e5)):
        if not (math.isfinite(v) and lo <= v <= hi):
            raise DBlinkError(f"{name} must be a number from {lo:g} to {hi:g}, got {v}")
    if a.structures < 0 or a.structures > 1000:
        raise DBlinkError(f"--structures must be from 0 to 1000, got {a.structures}")
    if a.seed < 0:
        raise DBlinkError(f"--seed must be a whole number of 0 or more, got {a.seed}")
    out = Path(a.output)
    if out.exists() and not out.is_dir():
        raise DBlinkError(f"{out}: exists and is a file, not a folder; give a folder for the output")
    path_errors(lambda p: Path(p).mkdir(parents=True, exist_ok=True))(out)  # folders as needed
    check_output_dir(out)
    cfg = SimConfig(sample=a.sample, height_px=a.size, width_px=a.size, pixel_size=a.pixel_size,
                    frames_per_step=a.frames_per_step, n_steps=a.steps, n_structures=a.structures,
                    density=a.density, jitter_nm=a.jitter, false_fraction=a.false_fraction,
                    drift_nm=a.drift, rotation_deg=a.rotation, deform_nm=a.deform,
                    domain=a.domain)
    sim = simulate_movie(cfg, a.seed)
    folder = write_sim(sim, a.output)
    print(f"wrote {folder}/locs.csv ({len(sim.locs)} localizations, {cfg.n_frames} raw frames), "
          f"{folder}/gt.tif ({cfg.n_steps} x {a.size} x {a.size}), {folder}/sim.json", file=sys.stderr)
    return 0


def _args_export(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", nargs="?", help="RUN_DIR/checkpoint.pt")
    p.add_argument("-o", "--output", help="model file (.pt)")
    p.add_argument("--bioimageio", metavar="OUT.zip", help="write a bioimage.io model package instead")
    p.add_argument("--model", default="filaments",
                   help="model packaged by --bioimageio: bundled name or .pt file (default: filaments)")
    p.add_argument("--name", help="model name in the metadata (default: the config's)")


def _cmd_export(a: argparse.Namespace) -> int:
    from .export import export_checkpoint, load_model

    if a.bioimageio:
        from .bioimage import build_package

        if a.checkpoint or a.output:
            raise DBlinkError("--bioimageio packages a model file (--model NAME|PATH); export a "
                              "checkpoint with 'dblink export CHECKPOINT -o MODEL.pt' first")
        out = build_package(a.model, a.bioimageio)
        print(f"wrote {out}: bioimage.io model package (RDF 0.5) of model {a.model}", file=sys.stderr)
        return 0
    if not a.checkpoint or not a.output:
        raise DBlinkError("export needs CHECKPOINT -o MODEL.pt, or --bioimageio OUT.zip [--model NAME|PATH]")
    path = export_checkpoint(a.checkpoint, a.output, name=a.name)
    m = load_model(path)
    print(f"wrote {path}: {m.meta['arch']} ({m.meta['parameters']} parameters), "
          f"{m.pixel_size:g} nm pixels, {m.frames_per_step} frames/step, window ±{m.window}",
          file=sys.stderr)
    return 0


#: the reconstruction options ``dblink evaluate`` takes (the rest come from the data folder)
EVAL_OPTIONS = ("window", "stride", "device", "batch", "precision", "tta")


def _args_evaluate(p: argparse.ArgumentParser) -> None:
    from . import options

    p.add_argument("--model", default="filaments", help="bundled model name or .pt file")
    src2 = p.add_mutually_exclusive_group()
    src2.add_argument("--data", help="folder of `dblink simulate` outputs")
    src2.add_argument("--preset", default="filaments", choices=["filaments", "filaments-fast", "mitochondria"],
                      help="simulate the held-out evaluation set (default: filaments)")
    p.add_argument("--n", type=int, default=4, help="movies in the preset set (default 4)")
    options.add_arguments(p, only=EVAL_OPTIONS)
    p.add_argument("--json", help="also write all scores to this JSON file")
    p.add_argument("--vary", action="append", metavar="NAME=V1,V2,...",
                   help="robustness table: re-simulate the preset set with one setting changed at a "
                        "time (density, jitter_nm, false_fraction, drift_nm, ..., or camera_pixel: "
                        "the table in camera pixels of that size); repeatable")
    p.add_argument("--pictures", metavar="DIR", help="write the first movie's panel PNG and GIF here")
    p.add_argument("--domains", action="store_true",
                   help="one row per simulator domain set (ours, paper, camera; static, slow, fast): "
                        "the model against the best classical baseline; --n movies per set")
    p.add_argument("--domain", choices=["ours", "paper", "camera"], help="--domains, one domain only")


def _cmd_evaluate(a: argparse.Namespace) -> int:
    import tempfile
    from pathlib import Path

    from .evaluate import evaluate_folder, format_table, make_eval_set, summarize
    from .export import load_model

    if a.n < 1 or a.n > 1000:
        raise DBlinkError(f"--n must be from 1 to 1000 movies, got {a.n}")
    if (a.domains or a.domain) and (a.data or a.vary or a.pictures):
        raise DBlinkError("--domains/--domain simulate their own sets: not with --data, --vary or "
                          "--pictures")
    model = load_model(a.model)
    if a.domains or a.domain:
        from .evaluate import domains_report

        table, rows = domains_report(model, a.domain, a.n, **_eval_options(a))
        print(f"model {model.name} ({model.path.name}), {a.n} movies per set{_mode_suffix(a)}; "
              f"best baseline = sum over ±5 or ±25 steps at its best binarization level:")
        print(table)
        if a.json:
            Path(a.json).write_text(json.dumps(rows, indent=1))
        return 0
    if a.vary:
        return _evaluate_vary(a, model)
    if a.data:
        folders = sorted(p.parent for p in Path(a.data).glob("**/sim.json"))
        if not folders:
            raise DBlinkError(f"{a.data}: no simulated data folders (sim.json) found")
        tmp = None
    else:
        tmp = tempfile.TemporaryDirectory(prefix="dblink-eval-")
        folders = make_eval_set(a.preset, tmp.name, a.n)
    rows = []
    for i, f in enumerate(folders):
        r = evaluate_folder(f, model, pictures=a.pictures if i == 0 else None, **_eval_options(a))
        rows.append(r)
        print(f"{f.name}: model F1 {r['model']['f1']:.3f}, baseline F1 {r['baseline']['f1']:.3f}, "
              f"{r['seconds'] / r['steps']:.3f} s per output frame", file=sys.stderr)
    summary = summarize(rows)
    print(f"model {model.name} ({model.path.name}) on {len(rows)} movies "
          f"({'data ' + str(a.data) if a.data else 'preset ' + a.preset}), window ±"
          f"{_eval_options(a)['window'] or model.window}{_mode_suffix(a)}:")
    print(format_table(summary))
    if a.json:
        Path(a.json).write_text(json.dumps({"summary": summary, "movies": rows}, indent=1))
    if a.pictures:
        print(f"pictures of {folders[0].name}: {Path(a.pictures) / (folders[0].name + '_panel.png')}, "
              f"{Path(a.pictures) / (folders[0].name + '_movie.gif')}", file=sys.stderr)
    if tmp is not None:
        tmp.cleanup()
    return 0


def _eval_options(a: argparse.Namespace) -> dict:
    """The inference options of ``dblink evaluate`` (as ``evaluate_folder`` takes them)."""
    from .options import from_args

    o = from_args(a)
    return {name: getattr(o, name) for name in EVAL_OPTIONS}


def _mode_suffix(a: argparse.Namespace) -> str:
    """``, stride 8, bf16, tta 8`` for the non-default settings of a run's header line."""
    o = _eval_options(a)
    text = f", stride {o['stride']}"
    if o["precision"] != "fp32":
        text += f", {o['precision']}"
    if o["tta"] != 1:
        text += f", tta {o['tta']}"
    return text


def _evaluate_vary(a: argparse.Namespace, model) -> int:
    """``evaluate --vary``: the preset set with one setting changed at a time (robustness table)."""
    import tempfile
    from pathlib import Path

    from .evaluate import evaluate_folder, format_vary_table, make_eval_set, parse_vary, summarize

    if a.data or a.pictures:
        raise DBlinkError("--vary works on a --preset set (not with --data or --pictures)")
    table = []
    for name, values in parse_vary(a.vary):
        for v in values:
            with tempfile.TemporaryDirectory(prefix="dblink-vary-") as tmp:
                folders = make_eval_set(a.preset, tmp, a.n, {name: v})
                rows = [evaluate_folder(f, model, **_eval_options(a)) for f in folders]
            table.append({"setting": name, "value": v, "summary": summarize(rows), "movies": rows})
            m = table[-1]["summary"]["model"]
            print(f"{name}={v:g}: model F1 {m['f1']:.3f}, fidelity {m['fidelity']:.3f}, "
                  f"hallucination {m['hallucination'] * 100:.2f} %", file=sys.stderr)
    print(f"model {model.name} ({model.path.name}), preset {a.preset} ({a.n} movies per row, one "
          f"setting changed at a time), window ±{_eval_options(a)['window'] or model.window}"
          f"{_mode_suffix(a)}:")
    print(format_vary_table(table))
    if a.json:
        Path(a.json).write_text(json.dumps(table, indent=1))
    return 0


def _args_demo(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", default="demo_out", help="output folder (default demo_out)")
    p.add_argument("--model", default="filaments")
    p.add_argument("--device", default="auto")
    p.add_argument("--stride", type=int, default=1)


def _cmd_demo(a: argparse.Namespace) -> int:
    from .demo import run_demo

    m = run_demo(a.output, model=a.model, device=a.device, stride=a.stride)
    mm, bb = m["model"], m["baseline"]
    print(f"""
dblink demo: {m['steps']} time points of {m['field_px'][1]} x {m['field_px'][0]} px, {m['localizations']} localizations
               F1 (±1 px)  F1 at best level  fidelity  hallucination
  dblink          {mm['f1']:.3f}        {mm['f1_best']:.3f}          {mm['fidelity']:.3f}     {mm['hallucination'] * 100:.2f} %
  sum ±W steps    {bb['f1']:.3f}        {bb['f1_best']:.3f}          {bb['fidelity']:.3f}     {bb['hallucination'] * 100:.2f} %
  (paper binarization: each frame scaled to 0-255, structure > 100; "best level" tries 10-250)
  inference {m['seconds_inference']} s ({m['seconds_per_output_frame']} s per output frame), total {m['seconds_total']} s
files:""")
    for k, v in m["files"].items():
        print(f"  {k:13s} {v}")
    return 0


def _args_models(p: argparse.ArgumentParser) -> None:
    pass


def _cmd_models(a: argparse.Namespace) -> int:
    from .export import list_models

    models = list_models()
    if not models:
        print("no bundled models found (looked in $DBLINK_MODELS and the repository's models/)")
    for m in models:
        v = m.meta.get("validation", {})
        print(f"{m.name:14s} {m.path}  arch={m.meta.get('arch')} pixel={m.pixel_size:g} nm "
              f"frames/step={m.frames_per_step} window=±{m.window} "
              f"params={m.meta.get('parameters')} val F1={v.get('f1', float('nan')):.3f}")
    return 0


def _args_fiji(p: argparse.ArgumentParser) -> None:
    where = p.add_mutually_exclusive_group()
    where.add_argument("--fiji", metavar="DIR", help="a Fiji.app folder (started through PyImageJ)")
    where.add_argument("--ij-jar", metavar="PATH", help="an ImageJ 1.x jar (default: /usr/share/java/ij.jar)")
    p.add_argument("--headless", action="store_true", help="no window (needs --macro)")
    p.add_argument("--macro", metavar="FILE", help="run this ImageJ macro, then exit")
    p.add_argument("--args", metavar="STR", help="argument string for the macro (getArgument())")


def _cmd_fiji(a: argparse.Namespace) -> int:
    from .imagej import fiji_main

    if a.args and not a.macro:
        raise DBlinkError("--args needs --macro FILE")
    if a.ij_jar:
        from .files import check_ij_jar
        check_ij_jar(a.ij_jar)
    return fiji_main(a.fiji, a.ij_jar, a.headless, a.macro, a.args or "")


def _args_bench(p: argparse.ArgumentParser) -> None:
    p.add_argument("--arch", default="paper", choices=["paper", "compact"])
    p.add_argument("--size", type=int, default=128, help="field in pixels (default 128)")
    p.add_argument("--steps", type=int, default=60, help="time points (default 60)")
    p.add_argument("--window", type=int, default=25)
    p.add_argument("--stride", default="1,4,8", help="engine strides to time (default 1,4,8)")
    p.add_argument("--device", default="auto")
    p.add_argument("--batch", type=int, help="windows per network call (default: 4 on CPUs, "
                                             "from the free memory on a GPU)")
    p.add_argument("--precision", default="fp32",
                   help="engine precisions to time, comma-separated: fp32, bf16, fp16 (default fp32)")
    p.add_argument("--hidden", type=int, help="hidden channels of the architecture (default: its own)")
    p.add_argument("--ref-frames", type=int, default=4,
                   help="output frames the reference computes, spread over the movie (default 4)")
    p.add_argument("--confidence", action="store_true", help="include the confidence estimates")
    p.add_argument("--end-to-end", action="store_true",
                   help="also run `dblink reconstruct` per stride as users run it (a new process, "
                        "default options: confidence on, automatic tiles), timed start to exit")
    p.add_argument("--json", help="also write the rows to this JSON file")


def _cmd_bench(a: argparse.Namespace) -> int:
    from .bench import format_rows, run_bench

    try:
        strides = tuple(int(k) for k in a.stride.split(","))
    except ValueError:
        raise DBlinkError(f"--stride: expected integers separated by commas, got {a.stride!r}") from None
    precisions = tuple(p.strip() for p in a.precision.split(","))
    rows = run_bench(a.arch, a.size, a.steps, a.window, strides, a.device, a.batch, a.ref_frames,
                     a.confidence, precisions=precisions, hidden=a.hidden,
                     end_to_end=a.end_to_end)
    print(format_rows(rows))
    if a.json:
        from pathlib import Path
        Path(a.json).write_text(json.dumps(rows, indent=1))
    return 0


def _args_suggest(p: argparse.ArgumentParser) -> None:
    from . import options

    p.add_argument("table", help="a localization table (ThunderSTORM, Picasso, DECODE, SMAP, .smlm "
                                 "or any CSV with --columns)")
    p.add_argument("--model", metavar="NAME|FILE",
                   help="keep this model (default: chosen from the structure's shape)")
    options.add_arguments(p, only=("camera_pixel", "columns"))  # as for reconstruct
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"],
                   help="where the network will run (the stride depends on it)")
    p.add_argument("--json", action="store_true", help="the measures and the suggestion as JSON")


def _cmd_suggest(a: argparse.Namespace) -> int:
    from .formats import read_table
    from .options import from_args
    from .suggest import suggest

    opts = from_args(a, skip=("model", "device"))  # suggest's own --model and --device
    notes: list[str] = []
    locs = read_table(a.table, opts.camera_pixel, warn=notes.append, columns=opts.columns)
    sug = suggest(locs, model=a.model, device=a.device)
    if a.json:  # strict JSON: a measure that never changes within the movie (inf) is "inf"
        measures = {k: "inf" if isinstance(v, float) and math.isinf(v) else v
                    for k, v in sug.measures.to_dict().items()}
        print(json.dumps({"options": sug.options, "reasons": sug.reasons, "measures": measures,
                          "notes": notes + sug.notes}, allow_nan=False))
    else:
        for n in notes:
            print(f"dblink: note: {one_line(n)}", file=sys.stderr)
        print(sug.report())
    return 0


def _args_preview(p: argparse.ArgumentParser) -> None:
    p.add_argument("hyperstack", help="a TIFF written by dblink reconstruct")
    p.add_argument("-o", "--output", help="output prefix (default: next to the TIFF)")


def _cmd_preview(a: argparse.Namespace) -> int:
    from .files import input_file
    from .pictures import preview

    input_file(a.hyperstack, "hyperstack")
    notes: list[str] = []
    for p in preview(a.hyperstack, a.output, say=notes.append):
        print(f"wrote {p}", file=sys.stderr)
    for line in notes:
        print(line, file=sys.stderr)
    return 0


def _args_import_weights(p: argparse.ArgumentParser) -> None:
    p.add_argument("state_dict", help="the original weights file (e.g. LSTM_model)")
    p.add_argument("-o", "--output", required=True, help="model file to write (.pt)")
    p.add_argument("--pixel-size", type=float, required=True, metavar="NM",
                    help="render pixel size the weights were trained for (nm)")
    p.add_argument("--frames-per-step", type=int, required=True, metavar="S",
                    help="raw frames per step the weights were trained for")
    p.add_argument("--window", type=int, default=25, help="half-width in steps (default 25)")
    p.add_argument("--name", help="model name (default: the file name)")


def _cmd_import_weights(a: argparse.Namespace) -> int:
    from .export import import_original, load_model

    path = import_original(a.state_dict, a.output, a.pixel_size, a.frames_per_step, a.window, a.name)
    m = load_model(path)
    print(f"wrote {path}: arch=paper {m.meta['hparams']}, {m.pixel_size:g} nm pixels, "
          f"{m.frames_per_step} frames/step, window ±{m.window}", file=sys.stderr)
    return 0


def _parse_frames(text: str | None) -> tuple[int | None, int | None]:
    if not text:
        return (None, None)
    try:
        a, b = text.split("-", 1)
        first, last = (int(a) if a.strip() else None), (int(b) if b.strip() else None)
    except ValueError:
        raise DBlinkError(f"--frames must be FIRST-LAST raw frames (1-based), got '{text}'") from None
    if (first is not None and first < 1) or (first is not None and last is not None and last < first):
        raise DBlinkError(f"--frames must be FIRST-LAST with 1 <= FIRST <= LAST, got '{text}'")
    return first, last


def _args_resolution(p: argparse.ArgumentParser) -> None:
    p.add_argument("table", nargs="?", help="ThunderSTORM CSV (for FRC)")
    p.add_argument("--image", metavar="TIF", help="a hyperstack written by dblink reconstruct (decorrelation)")
    p.add_argument("--over-time", metavar="TIF",
                   help="a hyperstack: decorrelation resolution of every time point, as "
                        "PREFIX_resolution_over_time.csv and .png")
    p.add_argument("--halves", metavar="TABLE",
                   help="with --over-time: also the FRC per time point of two reconstructions from "
                        "alternating halves of this table (the hyperstack's own; two more runs)")
    p.add_argument("--model", metavar="NAME|FILE",
                   help="with --halves: the model (default: the hyperstack's, by name)")
    p.add_argument("--frame", type=int, metavar="K", help="time point of --image, 1-based (default: the middle)")
    p.add_argument("--channel", type=int, default=1, metavar="C", help="channel of --image (default 1)")
    p.add_argument("--pixel-size", type=float, metavar="NM",
                    help="FRC render pixel (default 10 nm); for --image: overrides the calibration")
    p.add_argument("--roi", metavar="X0,Y0,W,H", help="region in nm (default: the data's bounding box)")
    p.add_argument("--camera-pixel", type=float, metavar="NM", help="camera pixel size in nm (for px tables)")
    p.add_argument("--frames", metavar="FIRST-LAST", help="raw frames summed (1-based, inclusive; default all)")
    p.add_argument("--block-frames", type=int, metavar="N",
                    help="raw frames per block of the split (default: the range cut into 20 blocks)")
    p.add_argument("-o", "--output", metavar="PREFIX",
                    help="plot prefix: PREFIX_frc.png / PREFIX_decorrelation.png (default: next to the input)")


def _resolution_over_time(a: argparse.Namespace) -> int:
    """``dblink resolution --over-time TIF [--halves TABLE]``: CSV + plot per time point."""
    from pathlib import Path

    from . import resolution as R
    from .files import input_file

    if a.table is not None or a.image is not None:
        raise DBlinkError("give one of a localization table (FRC), --image TIF or --over-time TIF")
    for name in ("frame", "roi", "frames", "block_frames"):
        if getattr(a, name) is not None:
            raise DBlinkError(f"--{name.replace('_', '-')} does not apply to --over-time")
    if a.pixel_size is not None and not (0 < a.pixel_size < float("inf")):
        raise DBlinkError(f"--pixel-size must be a positive number of nm, got {a.pixel_size}")
    src = Path(a.over_time)
    for path in (a.over_time, a.halves):
        if path is not None:
            input_file(path, "hyperstack")
    prefix = Path(a.output) if a.output else src.with_suffix("")
    png = R.check_output_prefix(prefix, "_resolution_over_time.png")
    csv_path = R.check_output_prefix(prefix, "_resolution_over_time.csv")
    video, px, interval, params = R.read_video(src, a.channel, a.pixel_size)
    if a.halves and not all(k in params for k in ("model", "pixel_size_nm", "frames_per_step",
                                                  "window", "roi_nm")):
        raise DBlinkError(f"{src}: no dblink parameters in its Info; --halves needs a hyperstack "
                          f"written by dblink reconstruct")
    res = R.decorrelation_over_time(video, px, interval)
    if a.halves:
        if a.pixel_size is not None or a.channel != 1:
            raise DBlinkError("--halves compares reconstructions: it takes neither --pixel-size nor --channel")
        h1, h2, info = R.halves_over_time(a.halves, params, a.model, camera_pixel=a.camera_pixel)
        frc, limited, frc_notes = R.frc_over_time(h1, h2, px)
        T = len(res.steps)
        res.frc_nm, res.frc_at_limit = frc[:T], limited[:T]
        frc_notes = (frc_notes + [""] * T)[:T]
        res.notes = ["; ".join(x for x in (n, f) if x) for n, f in zip(res.notes, frc_notes)]
        res.info.update(info)
    elif a.model is not None or a.camera_pixel is not None:
        raise DBlinkError("--model and --camera-pixel apply to --halves")
    R.write_over_time_csv(res, csv_path)
    R.plot_over_time(res, png)
    print(f"wrote {csv_path}\nwrote {png}", file=sys.stderr)
    print(f"resolution over time ({px:g} nm pixels, {len(res.steps)} time points): {res.summary()}")
    return 0


def _cmd_resolution(a: argparse.Namespace) -> int:
    """``dblink resolution``: FRC of a table, decorrelation of an image, or both over time."""
    from pathlib import Path

    from . import resolution as R
    from .files import input_file

    if a.over_time is not None:
        return _resolution_over_time(a)
    for name in ("halves", "model"):
        if getattr(a, name) is not None:
            raise DBlinkError(f"--{name} applies to --over-time")
    if (a.table is None) == (a.image is None):
        raise DBlinkError("give either a localization table (FRC), --image TIF (decorrelation) or "
                          "--over-time TIF, not two")
    if a.pixel_size is not None and not (a.pixel_size > 0 and a.pixel_size < float("inf")):
        raise DBlinkError(f"--pixel-size must be a positive number of nm, got {a.pixel_size}")
    name = a.table if a.table is not None else a.image
    src = input_file(name, "table" if a.table is not None else "--image")
    prefix = Path(a.output) if a.output else src.with_suffix("")
    R.check_output_prefix(prefix, "_frc.png" if a.table is not None else "_decorrelation.png")
    if a.table is not None:
        return _resolution_frc(a, src, prefix)
    return _resolution_image(a, src, prefix)


def _resolution_frc(a: argparse.Namespace, src, prefix) -> int:
    """``dblink resolution TABLE``: FRC between halves of the localizations, and its plot."""
    from . import resolution as R
    from .render import Grid
    from .tables import read_localizations

    if a.frame is not None or a.channel != 1:
        raise DBlinkError("--frame and --channel apply to --image only")
    px = a.pixel_size if a.pixel_size is not None else R.FRC_PIXEL_NM
    locs = read_localizations(src, camera_pixel=a.camera_pixel)
    grid = Grid.parse_roi(a.roi, px) if a.roi else None
    res = R.frc_localizations(locs, px, grid, a.block_frames, _parse_frames(a.frames))
    if res.resolution_nm is None:  # no plot of a failed analysis is left behind
        raise DBlinkError(f"{src}: no FRC resolution: {res.note}")
    png = R.plot_frc(res, prefix.parent / f"{prefix.name}_frc.png")
    print(f"wrote {png}", file=sys.stderr)
    i = res.info
    print(f"FRC resolution: {res.resolution_nm:.1f} nm (threshold 1/7; {px:g} nm pixels, "
          f"{i['localizations'][0]} + {i['localizations'][1]} localizations in alternating blocks "
          f"of {i['block_frames']} frames, frames {i['frames'][0]}-{i['frames'][1]})")
    return 0


def _resolution_image(a: argparse.Namespace, src, prefix) -> int:
    """``dblink resolution --image TIF``: decorrelation of one frame of a hyperstack, and its plot."""
    from . import resolution as R

    for name in ("roi", "camera_pixel", "frames", "block_frames"):
        if getattr(a, name) is not None:
            raise DBlinkError(f"--{name.replace('_', '-')} applies to a localization table, not --image")
    data, meta = R.open_hyperstack(src, 8)
    T, C = data.shape[:2]
    k = a.frame if a.frame is not None else T // 2 + 1
    if not 1 <= k <= T:
        raise DBlinkError(f"--frame must be between 1 and {T} (time points of {src.name}), got {k}")
    if not 1 <= a.channel <= C:
        raise DBlinkError(f"--channel must be between 1 and {C}, got {a.channel}")
    px = R.calibrated_pixel_size(src, meta, a.pixel_size)
    res = R.decorrelation(data[k - 1, a.channel - 1], px)
    if res.resolution_nm is None:  # no plot of a failed analysis is left behind
        raise DBlinkError(f"{src}: time point {k}: {res.note}")
    png = R.plot_decorrelation(res, prefix.parent / f"{prefix.name}_decorrelation.png")
    print(f"wrote {png}", file=sys.stderr)
    print(f"decorrelation resolution: {res.resolution_nm:.1f} nm (k_c = {res.k_c:.3f} of Nyquist; "
          f"{px:g} nm pixels, time point {k} of {T}, channel {a.channel})")
    return 0


#: the subcommands: name → (arguments, handler, add_parser keywords)
COMMANDS = {
    "train": (_args_train, _cmd_train, dict(
        help="train a model on simulated movies",
        description="Train a DBlink network on movies simulated on the fly.")),
    "reconstruct": (_args_reconstruct, _cmd_reconstruct, dict(
        help="reconstruct a super-resolved video from a localization table",
        description="Render a ThunderSTORM table into localization maps and reconstruct a "
                    "super-resolved video (ImageJ hyperstack: reconstruction + confidence).")),
    "batch": (_args_batch, _cmd_batch, dict(
        help="reconstruct many tables (files, folders, globs) on Dask, resumable",
        description="One hyperstack per input table, with the options of reconstruct, on an "
                    "embedded Dask cluster, an existing one (--scheduler) or in this process "
                    "(--workers 0). Existing outputs are skipped, so a stopped run resumes; a "
                    "failing input is reported in the summary CSV and does not stop the others.")),
    "simulate": (_args_simulate, _cmd_simulate, dict(
        help="simulate a movie: ThunderSTORM-style CSV + ground truth",
        description="Simulate blinking localizations on moving structures.")),
    "export": (_args_export, _cmd_export, dict(
        help="export a training checkpoint as a TorchScript model file, or a model as a "
             "bioimage.io package",
        description="dblink export CHECKPOINT -o MODEL.pt: TorchScript model file with metadata. "
                    "dblink export --bioimageio OUT.zip [--model NAME|PATH]: bioimage.io model "
                    "package (RDF 0.5; needs the 'bioimageio' extra).")),
    "import-weights": (_args_import_weights, _cmd_import_weights, dict(
        help="convert original DBlink weights into a model file",
        description="Convert a state dict saved by the original DBlink code "
                    "(forward_net/reverse_net/conv_net keys) into an arch=paper model file.")),
    "evaluate": (_args_evaluate, _cmd_evaluate, dict(
        help="quality against simulated ground truth, beside the baseline")),
    "demo": (_args_demo, _cmd_demo, dict(
        help="simulate, reconstruct and show (the README's main job)")),
    "fiji": (_args_fiji, _cmd_fiji, dict(
        help="start Fiji or ImageJ with dblink running in-process",
        description="Start Fiji (PyImageJ) or plain ImageJ 1.x (JPype) with the DBlink plugin and "
                    "this Python registered as its runtime; show the UI or run a macro.")),
    "bench": (_args_bench, _cmd_bench, dict(
        help="speed: the original DBlink loop vs the engine's modes",
        description="Time the reference loop (the original algorithm) and the engine on the same "
                    "synthetic data and random weights; print s per output frame, speed-ups, peak "
                    "memory and exact mode's difference to the reference.")),
    "preview": (_args_preview, _cmd_preview, dict(
        help="time-colour-coded projection (PNG), GIF and low-confidence map of a hyperstack")),
    "resolution": (_args_resolution, _cmd_resolution, dict(
        help="FRC resolution of localizations, or decorrelation resolution of a reconstructed "
             "frame",
        description="FRC (Fourier ring correlation, threshold 1/7) between two halves of a "
                    "localization table split into alternating blocks of raw frames, or "
                    "decorrelation analysis (Descloux et al. 2019) of one frame of a hyperstack. "
                    "Prints the resolution in nm and writes a PNG plot.")),
    "models": (_args_models, _cmd_models, dict(
        help="list the bundled models")),
    "suggest": (_args_suggest, _cmd_suggest, dict(
        help="measure a table (density, precision, motion, shape) and propose frames per step, "
             "window, stride and model",
        description="Measure a localization table and propose reconstruction settings, with the "
                    "reasons; dblink reconstruct --auto uses them.")),
}


class _Parser(argparse.ArgumentParser):
    """argparse, with its usage errors on one line (a newline in an argument must not split it)."""

    def error(self, message: str):
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {one_line(message)}\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``dblink`` parser: one sub-parser per entry of :data:`COMMANDS`."""
    p = _Parser(prog="dblink", description="DBlink: super-resolved SMLM videos from "
                                "localization tables (ThunderSTORM CSV in, ImageJ hyperstack out).")
    p.add_argument("--version", action="version", version=f"dblink {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (add_args, func, kw) in COMMANDS.items():
        sp = sub.add_parser(name, **kw)
        add_args(sp)
        sp.set_defaults(func=func)
    return p


#: a value that looks like a negative number (or a list of them, e.g. a ROI): argparse would
#: take it for an option
_NEGATIVE_VALUE = re.compile(r"^-[0-9.][0-9.,eE+-]*$")


def _join_negative_values(argv: list[str]) -> list[str]:
    """``--roi -500,-500,2000,2000`` → ``--roi=-500,-500,2000,2000`` (argparse reads values that
    start with ``-`` as options)."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        tok = argv[i]
        if (tok.startswith("--") and "=" not in tok and i + 1 < len(argv)
                and _NEGATIVE_VALUE.match(argv[i + 1])):
            out.append(f"{tok}={argv[i + 1]}")
            i += 2
            continue
        out.append(tok)
        i += 1
    return out


class _CollectedLog(logging.Handler):
    """A library's log lines (tifffile's about a damaged TIFF: several per file, before dblink's own
    error), collected and said as one ``dblink: warning:`` line (:meth:`say`) instead. The logger
    stops propagating while at least one collector is open (several :func:`main` calls at once in
    one process share it; the last to close restores what the logger did before the first)."""

    _lock = threading.Lock()
    _open: dict[str, tuple[int, bool]] = {}  # logger name: (collectors open, propagate before them)

    def __init__(self, name: str) -> None:
        super().__init__(logging.WARNING)
        self.name_, self.lines = name, []
        self.logger = logging.getLogger(name)
        with self._lock:
            n, was = self._open.get(name, (0, self.logger.propagate))
            self._open[name] = (n + 1, was)
            self.logger.addHandler(self)
            self.logger.propagate = False

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())

    def say(self) -> None:
        if self.lines:
            n = len(self.lines)
            print(f"dblink: warning: {self.name_} reported {n} problem{'s' if n > 1 else ''} "
                  f"reading a file; the first: {one_line(self.lines[0])[:200]}", file=sys.stderr)
            self.lines.clear()

    def close(self) -> None:
        with self._lock:
            if self in self.logger.handlers:  # once (logging.shutdown closes handlers again)
                self.logger.removeHandler(self)
                n, was = self._open.pop(self.name_)
                if n > 1:
                    self._open[self.name_] = (n - 1, was)
                else:
                    self.logger.propagate = was
        super().close()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(_join_negative_values(list(sys.argv[1:] if argv is None else argv)))
    previous = {}
    for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if sig is None:
            continue
        try:
            previous[sig] = signal.signal(sig, _on_signal)
        except ValueError:  # not the main thread (e.g. called from a Java or worker thread)
            pass
    tiff_log = _CollectedLog("tifffile")
    try:
        return args.func(args)
    except DBlinkError as exc:
        tiff_log.say()
        print(f"dblink: error: {one_line(str(exc))}", file=sys.stderr)
        return 2
    except (MemoryError, RuntimeError) as exc:
        tiff_log.say()
        if not out_of_memory(exc):
            raise
        from .memory import available_memory

        avail = available_memory()
        what = (f" ({one_line(str(exc) or type(exc).__name__)[:160]}); this process may use about "
                f"{avail / 2**30:.1f} GiB more" if avail else "")
        print(f"dblink: error: out of memory{what}; give a smaller --max-memory (the job is then "
              f"split or refused up front), a smaller --roi or --tile 256", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dblink: interrupted", file=sys.stderr)
        return 130
    except Terminated as exc:
        print(f"dblink: terminated ({exc.name})", file=sys.stderr)
        return 128 + exc.signum
    finally:
        tiff_log.say()
        tiff_log.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    sys.exit(main())
