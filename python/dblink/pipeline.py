"""The whole job as one call: table → render → windowed inference → hyperstack.

The CLI (``dblink reconstruct``), the demo and the Fiji bridge all call :func:`reconstruct_table`,
so every entry point gives the same result for the same options.
"""
from __future__ import annotations

import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

import numpy as np

from . import __version__
from .errors import DBlinkError
from .hyperstack import write_hyperstack
from .tables import Localizations, read_localizations
from .progress import ProgressSpec
from .render import (Grid, RenderResult, StepRenderer, default_max_memory, format_bytes,
                     n_steps_for, render, video_bytes)
from .tiling import DEFAULT_HALO, auto_tile, network_bytes_per_px, receptive_radius, tile_align

if TYPE_CHECKING:  # torch is imported only when a model is needed, so table errors come fast
    from .engine import Reconstruction
    from .export import LoadedModel

#: whole-video arrays alive at the peak of a run, in units of the float32 render video: the video,
#: the reconstruction, the written hyperstack (C channels) and, with confidence, its two running
#: sums, the result and about two temporaries of the confidence formula.
COPIES_PLAIN = 3
COPIES_CONFIDENCE = 10


def estimate_memory(n_steps: int, grid: Grid, confidence: bool = True) -> int:
    """Rough peak bytes of a reconstruction on ``grid`` over ``n_steps`` steps (whole-video arrays
    only; the network's own working memory is per window and much smaller)."""
    return video_bytes(n_steps, grid) * (COPIES_CONFIDENCE if confidence else COPIES_PLAIN)


def _stderr_warning(msg: str) -> None:
    print(f"dblink: warning: {msg}", file=sys.stderr)


@dataclass
class Result:
    """A finished reconstruction and everything needed to write or show it."""

    reconstruction: Reconstruction
    rendered: RenderResult
    model: LoadedModel
    params: dict
    warnings: list = field(default_factory=list)

    @property
    def channels(self) -> tuple[list[np.ndarray], list[str]]:
        """(arrays (T, H, W), names): reconstruction [+ confidence]."""
        arrs, names = [self.reconstruction.video], ["dblink"]
        if self.reconstruction.confidence is not None:
            arrs.append(np.nan_to_num(self.reconstruction.confidence, nan=0.0))
            names.append("confidence")
        return arrs, names

    def hyperstack(self) -> np.ndarray:
        """The output as one float32 array (T, C, Y, X), as written to the TIFF."""
        return np.stack(self.channels[0], axis=1).astype(np.float32)

    def write(self, path: str | Path, overwrite: bool = True, atomic: bool = True) -> None:
        """Write the calibrated ImageJ hyperstack (atomically unless ``atomic=False``, for a
        caller that already writes to a temporary name, see :func:`dblink.files.atomic_output`)."""
        arrs, names = self.channels
        g = self.rendered.grid
        write_hyperstack(path, arrs, names, g.pixel_size, self.rendered.frames_per_step,
                         exposure_s=self.params.get("exposure_s"), origin_nm=(g.x0, g.y0),
                         info=self.params, overwrite=overwrite, atomic=atomic)


@dataclass
class Written:
    """A reconstruction streamed to a file (:func:`reconstruct_to_file`)."""

    path: Path
    shape: tuple[int, int, int]  # (T, H, W)
    seconds: float
    device: str
    model: LoadedModel
    params: dict
    warnings: list = field(default_factory=list)
    #: wall seconds per stage: read (table), model (importing PyTorch, loading the model, moving it
    #: to the device: a fixed cost per run), render (steps), network,
    #: write (TIFF pages), other (windows, confidence, tiles), total
    timings: dict = field(default_factory=dict)


def format_timings(t: dict) -> str:
    """One line: seconds and share of the total per stage of :attr:`Written.timings`."""
    total = max(t.get("total", 0.0), 1e-9)
    parts = [f"{k} {t[k]:.2f} s ({100 * t[k] / total:.0f} %)"
             for k in ("read", "model", "render", "network", "write", "other") if k in t]
    return "timings: " + ", ".join(parts) + f"; total {t.get('total', 0.0):.2f} s"


@dataclass
class _Job:
    """Everything decided before inference: model, geometry, time, options, warnings."""

    locs: Localizations
    model: LoadedModel
    grid: Grid
    frames_per_step: int
    window: int
    n_steps: int
    limit: int
    tile: int | None
    halo: int
    align: int
    params: dict
    note: Callable[[str], None]
    warnings: list
    precision: str = "fp32"
    tta: int = 1
    read_s: float = 0.0
    load_s: float = 0.0

    def infer_kw(self, stride: int, device: str, batch: int | None, confidence: bool) -> dict:
        return dict(window=self.window, stride=stride, device=device, batch=batch,
                    confidence=confidence, normalize=self.model.normalize, tile=self.tile,
                    halo=self.halo, align=self.align, precision=self.precision,
                    tta=self.tta)

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


def _prepare(table: str | Path | Localizations, model: str | Path | LoadedModel,
             pixel_size: float | None, frames_per_step: int | None, roi: str | tuple | None,
             camera_pixel: float | None, window: int | None, stride: int, batch: int | None,
             confidence: bool, first_frame: int, exposure_s: float | None,
             warn: Callable[[str], None], max_memory: int | None, tile: int | None,
             precision: str = "fp32", tta: int = 1) -> _Job:
    warnings: list[str] = []
    t_read = time.perf_counter()

    def note(msg: str) -> None:
        warnings.append(msg)
        warn(msg)

    locs = table if isinstance(table, Localizations) else read_localizations(table, camera_pixel,
                                                                             warn=note)
    t_read = time.perf_counter() - t_read
    t_load = time.perf_counter()  # PyTorch's import and the model
    from .engine import CPU_BATCH, check_precision, check_tta
    from .export import LoadedModel, load_model  # torch: after the table is known to be readable

    lm = model if isinstance(model, LoadedModel) else load_model(model)
    t_load = time.perf_counter() - t_load
    px = float(pixel_size) if pixel_size is not None else lm.pixel_size
    S = frames_per_step if frames_per_step is not None else lm.frames_per_step
    W = int(window) if window is not None else lm.window
    if isinstance(S, float) and S.is_integer():
        S = int(S)
    if W < 0:
        raise DBlinkError(f"--window must be >= 0 steps, got {W}")
    if stride < 1:
        raise DBlinkError(f"--stride must be >= 1, got {stride}")
    if batch is not None and batch < 1:
        raise DBlinkError(f"--batch must be >= 1, got {batch}")
    check_precision(precision)
    check_tta(tta)
    if tile is not None and tile < 0:
        raise DBlinkError(f"--tile must be >= 0 px (0: no tiling), got {tile}")
    limit = default_max_memory() if max_memory is None else int(max_memory)
    if roi is None:
        grid = Grid.around(locs, px)
    elif isinstance(roi, str):
        grid = Grid.parse_roi(roi, px)
    else:
        grid = Grid(*map(float, roi), px)
    T = n_steps_for(locs, S, first_frame)
    arch, hp = lm.meta.get("arch"), lm.meta.get("hparams", {})
    halo = DEFAULT_HALO
    if arch in ("paper", "compact"):
        halo = min(DEFAULT_HALO, receptive_radius(arch, hp, min(T, 2 * W + 1)))
    H, Wd = grid.shape
    if tile is None and arch in ("paper", "compact"):  # automatic: tile a field too big for memory
        decoded = stride * (3 if confidence else 1)
        tile = auto_tile(H, Wd, network_bytes_per_px(arch, hp, W, batch or CPU_BATCH, decoded, stride),
                         limit // 4, halo)
    params = {
        "dblink_version": __version__, "source": str(locs.source), "model": lm.name,
        "model_file": lm.path.name, "model_version": lm.meta.get("dblink_version"),
        "pixel_size_nm": px, "frames_per_step": S, "first_frame": first_frame, "window": W,
        "stride": stride, "roi_nm": [grid.x0, grid.y0, grid.width, grid.height],
        "steps": T, "exposure_s": exposure_s,
    }
    if precision != "fp32":
        params["precision"] = precision
    if tta != 1:
        params["tta"] = tta
    if tile:
        params.update(tile_px=tile, halo_px=halo)
    return _Job(locs, lm, grid, S, W, T, limit, tile or None, halo, tile_align(arch), params,
                note, warnings, precision, tta, t_read, t_load)


def reconstruct_table(table: str | Path | Localizations, model: str | Path | LoadedModel = "filaments",
                      pixel_size: float | None = None, frames_per_step: int | None = None,
                      roi: str | tuple | None = None, camera_pixel: float | None = None,
                      window: int | None = None, stride: int = 1, device: str = "auto",
                      batch: int | None = None, confidence: bool = True, first_frame: int = 1,
                      exposure_s: float | None = None, progress: ProgressSpec = "bar",
                      warn: Callable[[str], None] = _stderr_warning,
                      max_memory: int | None = None, tile: int | None = None,
                      precision: str = "fp32", tta: int = 1) -> Result:
    """Reconstruct a super-resolved video from a localization table, in memory.

    Args:
        table: a ThunderSTORM CSV path, or a :class:`Localizations`.
        model: a bundled model name (``filaments``) or a model file path, or a loaded model.
        pixel_size: render pixel size in nm (default: the model's training value).
        frames_per_step: raw frames summed per output time point (default: the model's).
        roi: ``"X0,Y0,W,H"`` or a tuple, nm (default: the data's bounding box).
        camera_pixel: nm per camera pixel, needed for tables in px.
        window: half-width in steps (default: the model's); stride: kept steps per window.
        batch: windows per network call (default: 4 on CPUs, from the free memory on CUDA).
        precision: ``fp32`` (default), ``bf16`` or ``fp16`` (autocast, see :mod:`.engine`).
        tta: test-time augmentation: 1 (off), 4 or 8 mirrored/transposed copies averaged
            (4× / 8× the network time; see :func:`.engine.augmented`).
        exposure_s: seconds per raw frame, for the time calibration (optional).
        warn: called with each one-line warning (default: printed as ``dblink: warning: ...``).
        max_memory: bytes the whole-video arrays may take (default: half the available memory);
            a larger job is refused before anything is allocated.
        tile: tile size in render px for big fields (0: none; default: only when the network's
            working memory for the whole field would exceed a quarter of ``max_memory``).
    """
    job = _prepare(table, model, pixel_size, frames_per_step, roi, camera_pixel, window, stride,
                   batch, confidence, first_frame, exposure_s, warn, max_memory, tile, precision,
                   tta)
    from .engine import infer

    locs, grid, T = job.locs, job.grid, job.n_steps
    need = estimate_memory(T, grid, confidence)
    if need > job.limit:
        H, Wd = grid.shape
        raise DBlinkError(f"{locs.source}: the reconstruction would need about {format_bytes(need)} "
                          f"({T} steps of {Wd} x {H} pixels: {format_bytes(video_bytes(T, grid))} "
                          f"per float32 video, {need // video_bytes(T, grid)} videos at its peak), "
                          f"more than --max-memory {format_bytes(job.limit)}; use a smaller --roi, a "
                          f"larger --pixel-size, more --frames-per-step"
                          f"{', --no-confidence' if confidence else ''} or a larger --max-memory")
    rendered = render(locs, grid, job.frames_per_step, first_frame=first_frame, n_steps=T,
                      max_bytes=job.limit)
    job.check_counts(rendered.n_inside, rendered.n_outside_roi)
    rec = infer(rendered.video, job.model.module, progress=progress,
                **job.infer_kw(stride, device, batch, confidence))
    params = dict(job.params, device=rec.device, seconds=round(rec.seconds, 2))
    return Result(reconstruction=rec, rendered=rendered, model=job.model, params=params,
                  warnings=job.warnings)


def reconstruct_to_file(table: str | Path | Localizations, output: str | Path,
                        model: str | Path | LoadedModel = "filaments", *, stride: int = 1,
                        device: str = "auto", batch: int | None = None, confidence: bool = True,
                        first_frame: int = 1, progress: ProgressSpec = "bar",
                        warn: Callable[[str], None] = _stderr_warning, atomic: bool = True,
                        overwrite: bool = True, chunk: int | None = None, **options) -> Written:
    """As :func:`reconstruct_table` followed by :meth:`Result.write`, byte for byte the same file,
    but rendered, reconstructed and written in time chunks: memory does not grow with the movie's
    length. ``options``: ``pixel_size``, ``frames_per_step``, ``roi``, ``camera_pixel``,
    ``window``, ``exposure_s``, ``max_memory``, ``tile``, ``precision``, ``tta``; ``chunk``: output steps
    per chunk (default: about 1 GiB of chunk arrays, or less under ``max_memory``). The result's
    ``timings`` say where the time went."""
    t_start = time.perf_counter()
    job = _prepare(table, model, options.get("pixel_size"), options.get("frames_per_step"),
                   options.get("roi"), options.get("camera_pixel"), options.get("window"), stride,
                   batch, confidence, first_frame, options.get("exposure_s"), warn,
                   options.get("max_memory"), options.get("tile"),
                   options.get("precision", "fp32"), options.get("tta", 1))
    from .engine import default_chunk, stream_bytes, stream_infer
    from .hyperstack import write_hyperstack_stream

    T, (H, Wd) = job.n_steps, job.grid.shape
    n_channels = 2 if confidence else 1
    file_bytes = video_bytes(T, job.grid) * n_channels
    folder = Path(output).resolve().parent
    free = shutil.disk_usage(folder).free if folder.is_dir() else None
    if free is not None and file_bytes > free:  # memory is flat in T, the output file is not
        raise DBlinkError(f"{job.locs.source}: the output would need about {format_bytes(file_bytes)} "
                          f"({T} steps of {Wd} x {H} pixels: {format_bytes(video_bytes(T, job.grid))} "
                          f"per float32 video, {n_channels} channel(s)), more than the "
                          f"{format_bytes(free)} free in {folder}; use a smaller --roi, a larger "
                          f"--pixel-size or more --frames-per-step")
    need = stream_bytes(H, Wd, job.window, stride, stride, confidence)
    if need > job.limit:
        raise DBlinkError(f"{job.locs.source}: the reconstruction would need about "
                          f"{format_bytes(need)} ({2 * job.window + 1}-step windows of {Wd} x {H} "
                          f"pixels), more than --max-memory {format_bytes(job.limit)}; use a smaller "
                          f"--roi, a larger --pixel-size or a larger --max-memory")
    t_render = time.perf_counter()
    steps = StepRenderer(job.locs, job.grid, job.frames_per_step, first_frame, job.n_steps)
    t_render = time.perf_counter() - t_render
    job.check_counts(steps.n_inside, steps.n_outside_roi)
    if chunk is None:
        chunk = default_chunk(H, Wd, job.window, stride, confidence,
                              budget=min(1024 * 2**20, job.limit // 2))
    stats: dict = {}
    frames = stream_infer(steps, steps.shape, job.model.module, progress=progress, chunk=chunk,
                          stats=stats, **job.infer_kw(stride, device, batch, confidence))
    names = ["dblink", "confidence"] if confidence else ["dblink"]
    params = dict(job.params)
    produce = [0.0]  # seconds spent producing steps (inference); the rest of the writer's is writing

    def per_step() -> Iterator[list[np.ndarray]]:
        t = time.perf_counter()
        for _, y, c in frames:
            item = [y, np.nan_to_num(c, nan=0.0)] if confidence else [y]
            produce[0] += time.perf_counter() - t
            yield item
            t = time.perf_counter()
        produce[0] += time.perf_counter() - t
        # Info is rewritten after the last step: it gets the run's device and time, as in memory
        params.update(device=stats["device"], seconds=round(stats["seconds"], 2))

    g = job.grid
    t_write = time.perf_counter()
    write_hyperstack_stream(output, per_step(), (T, H, Wd), names, g.pixel_size, job.frames_per_step,
                            exposure_s=options.get("exposure_s"), origin_nm=(g.x0, g.y0),
                            info=params, overwrite=overwrite, atomic=atomic)
    t_end = time.perf_counter()
    timings = {"read": job.read_s, "model": job.load_s + stats["setup_s"],
               "render": t_render + stats["source_s"], "network": stats["network_s"],
               "write": (t_end - t_write) - produce[0], "total": t_end - t_start}
    timings["other"] = max(0.0, timings["total"] - sum(timings[k] for k in
                                                       ("read", "model", "render", "network",
                                                        "write")))
    return Written(path=Path(output), shape=(T, H, Wd), seconds=stats.get("seconds", 0.0),
                   device=stats["device"], model=job.model, params=params,
                   warnings=job.warnings, timings=timings)
