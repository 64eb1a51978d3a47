"""The main job, one path for every entry point: table → render → windowed inference → sink.

:func:`reconstruct` is the reconstruction core. The command line writes a TIFF
(:class:`~.sinks.TiffSink`), the demo, ``evaluate`` and the Python API keep arrays
(:func:`reconstruct_table`, an :class:`~.sinks.ArraySink`), the Fiji bridge builds an ImagePlus
(:class:`dblink.imagej.ImagePlusSink`) — all through the same steps, options
(:class:`~.options.ReconstructOptions`) and memory model (:func:`~.memory.job_bytes`):

1. read the table, load the model, decide the grid, the steps and the tiles (:func:`prepare`);
2. refuse, before anything big is allocated, a job that does not fit ``--max-memory`` or the
   output's disk, or whose movie has an absurd number of steps;
3. render steps on demand (:class:`~.render.StepRenderer`), run the windows in time chunks
   (:func:`~.engine.stream_infer`) and hand each finished output step to the sink.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

import numpy as np

from . import __version__
from .errors import DBlinkError
from .hyperstack import write_hyperstack
from .memory import (MAX_STEPS, MemoryPlan, default_max_memory, format_bytes, plan_memory,
                     process_rss)
from .options import ReconstructOptions
from .progress import ProgressSpec
from .render import Grid, RenderResult, StepRenderer, n_steps_for, render
from .sinks import ArraySink, Layout, Sink, TiffSink
from .formats import MapStack, read_input
from .modelmeta import read_header
from .tables import Localizations, read_localizations  # noqa: F401 (the API's table reader)
from .tiling import DEFAULT_HALO, receptive_radius, sparse_tile, tile_align

if TYPE_CHECKING:  # torch is imported only when a model is needed, so table errors come fast
    from .engine import Reconstruction
    from .export import LoadedModel

def _stderr_warning(msg: str) -> None:
    print(f"dblink: warning: {msg}", file=sys.stderr)


@dataclass
class Job:
    """Everything decided before inference: model, geometry, time, options, warnings."""

    locs: Localizations
    model: LoadedModel
    options: ReconstructOptions
    grid: Grid
    frames_per_step: int
    window: int
    n_steps: int
    limit: int
    memory: MemoryPlan
    halo: int
    align: int
    params: dict
    note: Callable[[str], None]
    warnings: list
    read_s: float = 0.0
    load_s: float = 0.0
    #: this process's resident memory when the job was planned (bytes; None: unknown)
    base_rss: int | None = None

    @property
    def tile(self) -> int | None:
        return self.memory.tile

    def estimated_peak(self) -> int | None:
        """The run's expected peak resident memory (bytes): the process now plus the plan's."""
        return None if self.base_rss is None else self.base_rss + self.memory.total

    def memory_report(self) -> str:
        """One line: the memory plan (and what the tiles' halos cost)."""
        m, peak = self.memory, self.estimated_peak()
        parts = [f"estimated peak {peak / 2**20:.0f} MiB" if peak else "estimated use",
                 f"process {format_bytes(self.base_rss or 0)}", f"arrays {format_bytes(m.arrays)}",
                 f"network {format_bytes(m.network)} per call of up to {m.batch} window(s)"]
        if m.tile:
            parts.append(f"tiles of {m.tile} px with a {self.halo} px halo "
                         f"(+{100 * m.halo_cost:.0f} % pixels computed)")
        return "memory: " + ", ".join(parts) + f"; limit {format_bytes(self.limit)}"

    @property
    def channel_names(self) -> list[str]:
        return ["dblink", "confidence"] if self.options.confidence else ["dblink"]

    def layout(self) -> Layout:
        g = self.grid
        return Layout((self.n_steps, *g.shape), self.channel_names, g.pixel_size,
                      self.frames_per_step, self.options.exposure, (g.x0, g.y0), self.params)

    def infer_kw(self) -> dict:
        o = self.options
        return dict(window=self.window, stride=o.stride, device=o.device, batch=self.memory.batch,
                    confidence=o.confidence, normalize=self.model.normalize, tile=self.tile,
                    halo=self.halo, align=self.align, precision=o.precision, tta=o.tta,
                    confidence_every=o.confidence_every, crop=o.tile != 0)

    def check_counts(self, n_inside: int, n_outside_roi: int) -> None:
        """Refuse an empty ROI; warn about dropped localizations, settings and density."""
        locs, grid, lm, T, S = self.locs, self.grid, self.model, self.n_steps, self.frames_per_step
        px = grid.pixel_size
        if n_inside == 0:
            raise DBlinkError(f"{locs.source}: no localizations inside the ROI "
                              f"({grid.x0:.0f}, {grid.y0:.0f}, {grid.width:.0f} x {grid.height:.0f} nm)")
        if n_outside_roi:
            self.note(f"{n_outside_roi} of {len(locs)} localizations lie outside the ROI and were left out")
        if px != lm.pixel_size:
            self.note(f"render pixel {px:g} nm differs from the model's training pixel {lm.pixel_size:g} nm")
        if S != lm.frames_per_step:
            self.note(f"{S} frames per step differs from the model's training value {lm.frames_per_step}")
        if 2 * self.window + 1 > T:
            self.note(f"the window (±{self.window} steps) is longer than the movie ({T} steps); "
                      f"windows are clipped")
        area_um2 = grid.width * grid.height / 1e6
        density = n_inside / (area_um2 * T * S)
        rng = lm.meta.get("density_range_per_um2_per_frame")
        if rng and not (0.5 * rng[0] <= density <= 2.0 * rng[1]):
            self.note(f"localization density {density:.3g} per µm² per raw frame is outside the "
                      f"model's training range {rng[0]:g}–{rng[1]:g}; expect artefacts")
        self.params.update(localizations_used=n_inside, localizations_outside_roi=n_outside_roi)


def _frames_until(locs: Localizations, last_frame: int) -> Localizations:
    """The localizations of raw frames up to ``last_frame`` (the table itself when all are)."""
    if locs.frame_range[1] <= last_frame:
        return locs
    sel = locs.frame <= last_frame
    if not sel.any():
        raise DBlinkError(f"{locs.source}: no localizations up to --last-frame {last_frame} "
                          f"(the table starts at frame {locs.frame_range[0]})")
    unc = locs.uncertainty[sel] if locs.uncertainty is not None else None
    return Localizations(frame=locs.frame[sel], x=locs.x[sel], y=locs.y[sel], uncertainty=unc,
                         source=locs.source, units=locs.units)


#: fields of at least this many render pixels are checked for sparse tiling (256 x 256)
SPARSE_MIN_PIXELS = 256 * 256


def _occupancy(locs: Localizations, grid: Grid) -> np.ndarray:
    """(H, W) bool: render pixels where any localization falls during the movie."""
    H, W = grid.shape
    c = np.floor((locs.x - grid.x0) / grid.pixel_size)
    r = np.floor((locs.y - grid.y0) / grid.pixel_size)
    ok = (c >= 0) & (c < W) & (r >= 0) & (r < H)
    occ = np.zeros(H * W, dtype=bool)
    occ[r[ok].astype(np.int64) * W + c[ok].astype(np.int64)] = True
    return occ.reshape(H, W)


def _read(table: str | Path | Localizations | MapStack, o: ReconstructOptions,
          note: Callable[[str], None], model: LoadedModel | None):
    """The input (any format of :mod:`.formats`; a map stack bypasses rendering) cut at
    ``--last-frame``, and the options completed from the data with ``--auto``."""
    locs = table if isinstance(table, (Localizations, MapStack)) else read_input(
        table, o.camera_pixel, warn=note, columns=o.columns, pixel_size=o.pixel_size)
    if o.last_frame is not None:
        if o.last_frame < o.first_frame:
            raise DBlinkError(f"--last-frame {o.last_frame} is before --first-frame {o.first_frame}")
        locs = locs.until(o.last_frame) if isinstance(locs, MapStack) else _frames_until(locs, o.last_frame)
    if o.auto:  # issue 16: settings left at their defaults are chosen from the data
        from .suggest import apply_auto
        o = apply_auto(locs, o, note, keep_model=model.name if model is not None else None)
    return locs, o


def _count_steps(locs, o: ReconstructOptions, S: int) -> int:
    """Output steps of the movie, refusing none and absurdly many (:data:`~.memory.MAX_STEPS`)."""
    T = n_steps_for(locs, S, o.first_frame)
    if T == 0:
        raise DBlinkError(f"{locs.source}: no localizations from --first-frame {o.first_frame} on "
                          f"(the table ends at frame {locs.frame_range[1]})")
    if T > MAX_STEPS:
        first, last = o.first_frame, locs.frame_range[1]
        raise DBlinkError(f"{locs.source}: raw frames {first}–{last} make {T:,} steps of {S} "
                          f"frames, more than dblink handles ({MAX_STEPS:,}); check the table's "
                          f"frame column, or choose the frames with --first-frame/--last-frame "
                          f"(or more --frames-per-step)")
    return T


def _plan(locs, grid: Grid, lm: LoadedModel, o: ReconstructOptions, T: int, W: int, limit: int,
          held: bool, note: Callable[[str], None]) -> tuple[MemoryPlan, int]:
    """The memory plan (tiles, batch, chunks; :func:`~.memory.plan_memory`) and the tiles' halo;
    a sparse field is tiled so that empty tiles are skipped."""
    from .engine import CPU_BATCH, pick_device

    arch, hp = lm.meta.get("arch"), lm.meta.get("hparams", {})
    halo = DEFAULT_HALO
    if arch in ("paper", "compact"):
        halo = min(DEFAULT_HALO, receptive_radius(arch, hp, min(T, 2 * W + 1)))
    H, Wd = grid.shape
    on_host = pick_device(o.device).type == "cpu"  # on a GPU the network's memory is the GPU's
    plan = plan_memory(arch, hp, T, H, Wd, W, o.stride, o.confidence, limit, batch=o.batch,
                       every=o.confidence_every, tile=o.tile,
                       auto_batch=CPU_BATCH if on_host else 1, halo=halo,
                       held_steps=T if held else 0, network_on_host=on_host)
    if not on_host and o.batch is None:  # the engine measures the GPU's free memory
        plan = replace(plan, batch=None)
    if plan.tile is None and o.tile is None and H * Wd >= SPARSE_MIN_PIXELS and \
            isinstance(locs, Localizations):
        # a sparse field: tiles whose input never holds a localization are skipped for free
        tile, cost = sparse_tile(_occupancy(locs, grid), halo, tile_align(arch))
        if tile:
            plan = replace(plan, tile=tile)
            note(f"sparse field: tiles of {tile} px, {100 * cost:.0f} % of the field's pixels "
                 f"hold localizations (with their {halo} px halo); empty tiles are skipped")
    return plan, halo


def _params(locs, lm: LoadedModel, o: ReconstructOptions, grid: Grid, S: int, W: int, T: int,
            plan: MemoryPlan, halo: int) -> dict:
    """The run's parameters, as written into the hyperstack's Info."""
    params = {
        "dblink_version": __version__, "source": str(locs.source), "model": lm.name,
        "model_file": lm.path.name, "model_version": lm.meta.get("dblink_version"),
        "pixel_size_nm": grid.pixel_size, "frames_per_step": S, "first_frame": o.first_frame,
        "window": W, "stride": o.stride, "roi_nm": [grid.x0, grid.y0, grid.width, grid.height],
        "steps": T, "exposure_s": o.exposure,
    }
    if o.last_frame is not None:
        params["last_frame"] = o.last_frame
    if o.precision != "fp32":
        params["precision"] = o.precision
    if o.tta != 1:
        params["tta"] = o.tta
    if plan.tile:
        params.update(tile_px=plan.tile, halo_px=halo)
    return params


def prepare(table: str | Path | Localizations, options: ReconstructOptions,
            warn: Callable[[str], None] = _stderr_warning,
            model: LoadedModel | None = None, held: bool = False) -> Job:
    """Read the table and the model and decide the job's geometry, time, tiles, batch and time
    chunks (no video is allocated). ``model``: an already loaded model (else ``options.model``
    is loaded); ``held``: the sink keeps every output step in memory."""
    warnings: list[str] = []

    def note(msg: str) -> None:
        warnings.append(msg)
        warn(msg)

    t_read = time.perf_counter()
    locs, o = _read(table, options, note, model)
    t_read = time.perf_counter() - t_read
    # the model's metadata first (no PyTorch): the table's geometry is checked in a fraction of
    # a second, before the import
    lm = model if model is not None else read_header(o.model)
    px = o.pixel_size if o.pixel_size is not None else float(lm.pixel_size)
    if isinstance(locs, MapStack):
        px = locs.pixel_size  # the maps' own grid (TIFF calibration or --pixel-size)
    S = o.frames_per_step if o.frames_per_step is not None else int(lm.frames_per_step)
    W = o.window if o.window is not None else int(lm.window)
    limit = default_max_memory() if o.max_memory is None else o.max_memory
    grid = (Grid(*o.roi, px) if o.roi is not None else
            locs.grid() if isinstance(locs, MapStack) else Grid.around(locs, px))
    T = _count_steps(locs, o, S)
    t_load = time.perf_counter()  # PyTorch's import and the network
    if lm.module is None:
        from .export import load_model

        lm = load_model(lm.path)
    t_load = time.perf_counter() - t_load
    plan, halo = _plan(locs, grid, lm, o, T, W, limit, held, note)
    params = _params(locs, lm, o, grid, S, W, T, plan, halo)
    return Job(locs, lm, o, grid, S, W, T, limit, plan, halo, tile_align(lm.meta.get("arch")),
               params, note, warnings, t_read, t_load, process_rss())


@dataclass
class Run:
    """A finished reconstruction: what was made, how, and where the time went."""

    shape: tuple[int, int, int]  # (T, H, W)
    seconds: float  # inference
    device: str
    model: LoadedModel
    params: dict
    warnings: list = field(default_factory=list)
    #: wall seconds per stage: read (table), model (importing PyTorch, loading the model, moving it
    #: to the device), render (steps), network, write (the sink), other (windows, confidence,
    #: tiles), total; and network_share, the share of the windows' pixels the network ran on
    timings: dict = field(default_factory=dict)
    n_windows: int = 0
    batch: int = 0
    #: the job as prepared (table, model, grid, options)
    job: Job | None = field(default=None, repr=False)


def format_timings(t: dict) -> str:
    """One line: seconds and share of the total per stage of :attr:`Run.timings`."""
    total = max(t.get("total", 0.0), 1e-9)
    parts = [f"{k} {t[k]:.2f} s ({100 * t[k] / total:.0f} %)"
             for k in ("read", "model", "render", "network", "write", "other") if k in t]
    share = t.get("network_share", 1.0)
    ran = (f"; the network ran on {100 * share:.0f} % of the windows' pixels (sparse windows "
           f"cropped or skipped)") if share < 0.995 else ""
    return "timings: " + ", ".join(parts) + f"; total {t.get('total', 0.0):.2f} s" + ran


def reconstruct(table: str | Path | Localizations, sink: Sink,
                options: ReconstructOptions | None = None, *, progress: ProgressSpec = "bar",
                warn: Callable[[str], None] = _stderr_warning, chunk: int | None = None,
                loaded_model: LoadedModel | None = None, **kw) -> Run:
    """Reconstruct a super-resolved video from a localization table into ``sink``.

    Args:
        table: a ThunderSTORM CSV path, or a :class:`~.tables.Localizations`.
        sink: where the output steps go (:class:`~.sinks.TiffSink`, :class:`~.sinks.ArraySink`, ...).
        options: a :class:`~.options.ReconstructOptions`; keyword arguments (its field names,
            e.g. ``stride=8``) replace single options. An unknown keyword is an error.
        progress: ``bar``, ``json``, ``none`` or a callable ``(done, total)``.
        warn: called with each one-line warning (default: ``dblink: warning: ...`` on stderr).
        chunk: output steps per time chunk (default: about 1 GiB of chunk arrays, less under
            ``max_memory``); the output does not depend on it.
        loaded_model: an already loaded model, used instead of loading ``options.model``.
    """
    t_start = time.perf_counter()
    opts = ReconstructOptions.make(options, **kw)
    sink.check_target()
    job = prepare(table, opts, warn, loaded_model, held=sink.holds_steps)
    from .engine import stream_infer

    T, (H, Wd) = job.n_steps, job.grid.shape
    layout = job.layout()
    if job.memory.total > job.limit:
        held = " kept in memory" if sink.holds_steps else ""
        raise DBlinkError(f"{job.locs.source}: the reconstruction would need about "
                          f"{format_bytes(job.memory.total)} ({T} steps of {Wd} x {H} pixels{held}, "
                          f"{2 * job.window + 1}-step windows), more than --max-memory "
                          f"{format_bytes(job.limit)}; use a smaller --roi, a larger --pixel-size, "
                          f"more --frames-per-step or a larger --max-memory")
    sink.check(layout)
    t_render = time.perf_counter()
    steps = (job.locs.steps(job.grid, job.frames_per_step, opts.first_frame, T)
             if isinstance(job.locs, MapStack) else
             StepRenderer(job.locs, job.grid, job.frames_per_step, opts.first_frame, T))
    t_render = time.perf_counter() - t_render
    job.check_counts(steps.n_inside, steps.n_outside_roi)
    stats: dict = {}
    frames = stream_infer(steps, steps.shape, job.model.module, progress=progress,
                          chunk=job.memory.chunk if chunk is None else chunk, stats=stats,
                          **job.infer_kw())
    produce = [0.0]  # seconds spent producing steps (inference); the rest of the sink's is writing

    def per_step() -> Iterator[list[np.ndarray]]:
        t = time.perf_counter()
        for _, y, c in frames:
            item = [y, np.nan_to_num(c, nan=0.0)] if opts.confidence else [y]
            produce[0] += time.perf_counter() - t
            yield item
            t = time.perf_counter()
        produce[0] += time.perf_counter() - t
        # Info is rewritten after the last step: it gets the run's device and time
        job.params.update(device=stats["device"], seconds=round(stats["seconds"], 2))

    t_write = time.perf_counter()
    sink.consume(per_step(), layout)
    t_end = time.perf_counter()
    timings = {"read": job.read_s, "model": job.load_s + stats["setup_s"],
               "render": t_render + stats["source_s"], "network": stats["network_s"],
               "write": (t_end - t_write) - produce[0], "total": t_end - t_start}
    timings["other"] = max(0.0, timings["total"] - sum(timings[k] for k in
                                                       ("read", "model", "render", "network",
                                                        "write")))
    timings["network_share"] = stats.get("network_share", 1.0)
    return Run(shape=(T, H, Wd), seconds=stats.get("seconds", 0.0), device=stats["device"],
               model=job.model, params=job.params, warnings=job.warnings, timings=timings,
               n_windows=stats["n_windows"], batch=stats["batch"], job=job)


@dataclass
class Result:
    """A reconstruction kept in memory (:func:`reconstruct_table`)."""

    reconstruction: Reconstruction
    model: LoadedModel
    params: dict
    job: Job
    run: Run
    warnings: list = field(default_factory=list)

    @property
    def rendered(self) -> RenderResult:
        """The localization-map video (T, H, W) the network saw (rendered again on demand)."""
        j = self.job
        if isinstance(j.locs, MapStack):  # the maps' steps, as the engine got them
            src = j.locs.steps(j.grid, j.frames_per_step, j.options.first_frame, j.n_steps)
            return RenderResult(video=src(0, j.n_steps), grid=j.grid,
                                frames_per_step=j.frames_per_step,
                                first_frame=j.options.first_frame, n_inside=src.n_inside,
                                n_outside_roi=src.n_outside_roi, n_outside_time=0)
        return render(j.locs, j.grid, j.frames_per_step, first_frame=j.options.first_frame,
                      n_steps=j.n_steps, max_bytes=j.limit)

    @property
    def channels(self) -> tuple[list[np.ndarray], list[str]]:
        """(arrays (T, H, W), names): reconstruction [+ confidence]."""
        arrs, names = [self.reconstruction.video], ["dblink"]
        if self.reconstruction.confidence is not None:
            arrs.append(self.reconstruction.confidence)
            names.append("confidence")
        return arrs, names

    def hyperstack(self) -> np.ndarray:
        """The output as one float32 array (T, C, Y, X), as written to the TIFF."""
        return np.stack(self.channels[0], axis=1).astype(np.float32)

    def write(self, path: str | Path, overwrite: bool = True) -> None:
        """Write the calibrated ImageJ hyperstack (atomically), the same file the CLI writes."""
        arrs, names = self.channels
        lay = self.job.layout()
        write_hyperstack(path, arrs, names, lay.pixel_size_nm, lay.frames_per_step,
                         exposure_s=lay.exposure_s, origin_nm=lay.origin_nm, info=self.params,
                         overwrite=overwrite)


def _given_model(model: str | Path | LoadedModel, kw: dict) -> LoadedModel | None:
    """A loaded model is used as it is; a name or file becomes the ``model`` option."""
    from .export import LoadedModel

    if isinstance(model, LoadedModel):
        return model
    kw["model"] = str(model)
    return None


def reconstruct_table(table: str | Path | Localizations, model: str | Path | LoadedModel = "filaments",
                      options: ReconstructOptions | None = None, *, progress: ProgressSpec = "bar",
                      warn: Callable[[str], None] = _stderr_warning, chunk: int | None = None,
                      **kw) -> Result:
    """:func:`reconstruct` into memory: the video and confidence as arrays (a :class:`Result`).

    ``model``: a bundled model name, a model file, or a loaded model; ``options`` and keywords as
    in :func:`reconstruct` (e.g. ``roi="15000,20000,5000,5000"``, ``stride=8``). The whole result
    counts in ``max_memory``.
    """
    loaded = _given_model(model, kw)
    sink = ArraySink()
    run = reconstruct(table, sink, options, progress=progress, warn=warn, chunk=chunk,
                      loaded_model=loaded, **kw)
    from .engine import Reconstruction

    rec = Reconstruction(video=sink.video, confidence=sink.confidence, seconds=run.seconds,
                         device=run.device, n_windows=run.n_windows, batch=run.batch)
    return Result(reconstruction=rec, model=run.model, params=run.params, job=run.job, run=run,
                  warnings=run.warnings)


def reconstruct_to_file(table: str | Path | Localizations, output: str | Path,
                        model: str | Path | LoadedModel = "filaments",
                        options: ReconstructOptions | None = None, *, overwrite: bool = True,
                        progress: ProgressSpec = "bar",
                        warn: Callable[[str], None] = _stderr_warning, chunk: int | None = None,
                        **kw) -> Run:
    """:func:`reconstruct` into a TIFF file (streamed: memory does not grow with the movie)."""
    loaded = _given_model(model, kw)
    return reconstruct(table, TiffSink(output, overwrite=overwrite), options, progress=progress,
                       warn=warn, chunk=chunk, loaded_model=loaded, **kw)
