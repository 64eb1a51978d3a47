"""The whole job as one call: table → render → windowed inference → hyperstack.

The CLI (``dblink reconstruct``), the demo and the Fiji bridge all call :func:`reconstruct_table`,
so every entry point gives the same result for the same options.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from . import __version__
from .errors import DBlinkError
from .io import Localizations, read_localizations, write_hyperstack
from .progress import ProgressSpec
from .render import (Grid, RenderResult, default_max_memory, format_bytes, n_steps_for, render,
                     video_bytes)

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
        caller that already writes to a temporary name, see :func:`dblink.io.atomic_output`)."""
        arrs, names = self.channels
        g = self.rendered.grid
        write_hyperstack(path, arrs, names, g.pixel_size, self.rendered.frames_per_step,
                         exposure_s=self.params.get("exposure_s"), origin_nm=(g.x0, g.y0),
                         info=self.params, overwrite=overwrite, atomic=atomic)


def reconstruct_table(table: str | Path | Localizations, model: str | Path | LoadedModel = "filaments",
                      pixel_size: float | None = None, frames_per_step: int | None = None,
                      roi: str | tuple | None = None, camera_pixel: float | None = None,
                      window: int | None = None, stride: int = 1, device: str = "auto",
                      batch: int = 4, confidence: bool = True, first_frame: int = 1,
                      exposure_s: float | None = None, progress: ProgressSpec = "bar",
                      warn: Callable[[str], None] = _stderr_warning,
                      max_memory: int | None = None) -> Result:
    """Reconstruct a super-resolved video from a localization table.

    Args:
        table: a ThunderSTORM CSV path, or a :class:`Localizations`.
        model: a bundled model name (``filaments``) or a model file path, or a loaded model.
        pixel_size: render pixel size in nm (default: the model's training value).
        frames_per_step: raw frames summed per output time point (default: the model's).
        roi: ``"X0,Y0,W,H"`` or a tuple, nm (default: the data's bounding box).
        camera_pixel: nm per camera pixel, needed for tables in px.
        window: half-width in steps (default: the model's); stride: kept steps per window.
        exposure_s: seconds per raw frame, for the time calibration (optional).
        warn: called with each one-line warning (default: printed as ``dblink: warning: ...``).
        max_memory: bytes the whole-video arrays may take (default: half the available memory);
            a larger job is refused before anything is allocated.
    """
    warnings: list[str] = []

    def note(msg: str) -> None:
        warnings.append(msg)
        warn(msg)

    locs = table if isinstance(table, Localizations) else read_localizations(table, camera_pixel,
                                                                             warn=note)
    from .engine import infer  # torch: imported after the table is known to be readable
    from .export import LoadedModel, load_model

    lm = model if isinstance(model, LoadedModel) else load_model(model)
    px = float(pixel_size) if pixel_size is not None else lm.pixel_size
    S = frames_per_step if frames_per_step is not None else lm.frames_per_step
    W = int(window) if window is not None else lm.window
    if isinstance(S, float) and S.is_integer():
        S = int(S)
    if W < 0:
        raise DBlinkError(f"--window must be >= 0 steps, got {W}")
    if stride < 1:
        raise DBlinkError(f"--stride must be >= 1, got {stride}")
    if batch < 1:
        raise DBlinkError(f"--batch must be >= 1, got {batch}")
    limit = default_max_memory() if max_memory is None else int(max_memory)

    if roi is None:
        grid = Grid.around(locs, px)
    elif isinstance(roi, str):
        grid = Grid.parse_roi(roi, px)
    else:
        grid = Grid(*map(float, roi), px)
    T = n_steps_for(locs, S, first_frame)
    need = estimate_memory(T, grid, confidence)
    if need > limit:
        H, Wd = grid.shape
        raise DBlinkError(f"{locs.source}: the reconstruction would need about {format_bytes(need)} "
                          f"({T} steps of {Wd} x {H} pixels: {format_bytes(video_bytes(T, grid))} "
                          f"per float32 video, {need // video_bytes(T, grid)} videos at its peak), "
                          f"more than --max-memory {format_bytes(limit)}; use a smaller --roi, a "
                          f"larger --pixel-size, more --frames-per-step"
                          f"{', --no-confidence' if confidence else ''} or a larger --max-memory")
    rendered = render(locs, grid, S, first_frame=first_frame, n_steps=T, max_bytes=limit)
    T, H, Wd = rendered.video.shape
    if rendered.n_inside == 0:
        raise DBlinkError(f"{locs.source}: no localizations inside the ROI "
                          f"({grid.x0:.0f}, {grid.y0:.0f}, {grid.width:.0f} x {grid.height:.0f} nm)")
    if rendered.n_outside_roi:
        note(f"{rendered.n_outside_roi} of {len(locs)} localizations lie outside the ROI and were left out")
    if px != lm.pixel_size:
        note(f"render pixel {px:g} nm differs from the model's training pixel {lm.pixel_size:g} nm")
    if S != lm.frames_per_step:
        note(f"{S} frames per step differs from the model's training value {lm.frames_per_step}")
    if 2 * W + 1 > T:
        note(f"the window (±{W} steps) is longer than the movie ({T} steps); windows are clipped")
    area_um2 = grid.width * grid.height / 1e6
    density = rendered.n_inside / (area_um2 * T * S)
    rng = lm.meta.get("density_range_per_um2_per_frame")
    if rng and not (0.5 * rng[0] <= density <= 2.0 * rng[1]):
        note(f"localization density {density:.3g} per µm² per raw frame is outside the model's "
             f"training range {rng[0]:g}–{rng[1]:g}; expect artefacts")
    rec = infer(rendered.video, lm.module, W, stride=stride, device=device, batch=batch,
                confidence=confidence, normalize=lm.normalize, progress=progress)
    params = {
        "dblink_version": __version__, "source": str(locs.source), "model": lm.name,
        "model_file": lm.path.name, "model_version": lm.meta.get("dblink_version"),
        "pixel_size_nm": px, "frames_per_step": S, "first_frame": first_frame, "window": W,
        "stride": stride, "roi_nm": [grid.x0, grid.y0, grid.width, grid.height],
        "steps": T, "localizations_used": rendered.n_inside,
        "localizations_outside_roi": rendered.n_outside_roi, "device": rec.device,
        "exposure_s": exposure_s, "seconds": round(rec.seconds, 2),
    }
    return Result(reconstruction=rec, rendered=rendered, model=lm, params=params, warnings=warnings)
