"""Render localizations into a video of super-resolved localization maps.

Geometry (DESIGN.md): a grid is ``roi = (x0, y0, width, height)`` in nm plus a pixel size in nm.
Pixel (r, c) covers x in [x0 + c*p, x0 + (c+1)*p) and y in [y0 + r*p, y0 + (r+1)*p);
W = ceil(width / p), H = ceil(height / p). Step k (0-based) sums raw frames
f0 + k*S ... f0 + (k+1)*S - 1 (frames are 1-based).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import DBlinkError
from .io import Localizations

#: refuse render grids larger than this many pixels per frame (a 40 µm field at 10 nm is 1.6e7)
MAX_PIXELS_PER_FRAME = 64_000_000


@dataclass(frozen=True)
class Grid:
    """A render grid: ROI origin and size in nm, pixel size in nm."""

    x0: float
    y0: float
    width: float
    height: float
    pixel_size: float

    def __post_init__(self) -> None:
        if not (self.pixel_size > 0 and math.isfinite(self.pixel_size)):
            raise DBlinkError(f"pixel size must be a positive number of nm, got {self.pixel_size}")
        if not (self.width > 0 and self.height > 0):
            raise DBlinkError(f"ROI width and height must be > 0 nm, got {self.width} x {self.height}")
        if not all(math.isfinite(v) for v in (self.x0, self.y0, self.width, self.height)):
            raise DBlinkError("ROI values must be finite numbers of nm")
        if self.shape[0] * self.shape[1] > MAX_PIXELS_PER_FRAME:
            raise DBlinkError(f"render grid of {self.shape[1]} x {self.shape[0]} pixels is too large "
                              f"(ROI {self.width:.0f} x {self.height:.0f} nm at {self.pixel_size} nm); "
                              f"choose a smaller --roi or a larger --pixel-size")

    @property
    def shape(self) -> tuple[int, int]:
        """(H, W) in render pixels."""
        return (math.ceil(self.height / self.pixel_size - 1e-9),
                math.ceil(self.width / self.pixel_size - 1e-9))

    @classmethod
    def around(cls, locs: Localizations, pixel_size: float) -> "Grid":
        """The bounding box of the localizations, snapped outward to whole render pixels."""
        if len(locs) == 0:
            raise DBlinkError(f"{locs.source}: no localizations to render")
        if not pixel_size > 0:
            raise DBlinkError(f"pixel size must be a positive number of nm, got {pixel_size}")
        x0 = math.floor(float(locs.x.min()) / pixel_size) * pixel_size
        y0 = math.floor(float(locs.y.min()) / pixel_size) * pixel_size
        x1 = (math.floor(float(locs.x.max()) / pixel_size) + 1) * pixel_size
        y1 = (math.floor(float(locs.y.max()) / pixel_size) + 1) * pixel_size
        return cls(x0, y0, x1 - x0, y1 - y0, pixel_size)

    @classmethod
    def parse_roi(cls, text: str, pixel_size: float) -> "Grid":
        """Parse ``X0,Y0,W,H`` (nm)."""
        try:
            x0, y0, w, h = (float(v) for v in text.split(","))
        except ValueError:
            raise DBlinkError(f"--roi must be X0,Y0,WIDTH,HEIGHT in nm, got '{text}'") from None
        return cls(x0, y0, w, h, pixel_size)


@dataclass
class RenderResult:
    """A rendered localization-map video and what was left out."""

    video: np.ndarray  # float32 (T, H, W): localization counts per render pixel and step
    grid: Grid
    frames_per_step: int
    first_frame: int
    n_inside: int
    n_outside_roi: int
    n_outside_time: int


def n_steps_for(locs: Localizations, frames_per_step: int, first_frame: int = 1) -> int:
    """Number of whole or partial steps from ``first_frame`` to the last frame of the table."""
    last = locs.frame_range[1]
    return max(0, (last - first_frame) // frames_per_step + 1)


def render(locs: Localizations, grid: Grid, frames_per_step: int, first_frame: int = 1,
           n_steps: int | None = None) -> RenderResult:
    """Count localizations per render pixel and per step of ``frames_per_step`` raw frames.

    Localizations outside the ROI or before ``first_frame`` / after the last step are dropped
    and counted in the result.
    """
    if frames_per_step < 1:
        raise DBlinkError(f"frames per step must be >= 1, got {frames_per_step}")
    if first_frame < 1:
        raise DBlinkError(f"first frame must be >= 1 (frames are 1-based), got {first_frame}")
    if n_steps is None:
        n_steps = n_steps_for(locs, frames_per_step, first_frame)
    H, W = grid.shape
    if n_steps * H * W * 4 > 48 * 2**30:
        raise DBlinkError(f"the rendered video would need {n_steps * H * W * 4 / 2**30:.1f} GiB "
                          f"({n_steps} steps of {W} x {H} pixels); use a smaller ROI, a larger "
                          f"pixel size or more frames per step")
    c = np.floor((locs.x - grid.x0) / grid.pixel_size)
    r = np.floor((locs.y - grid.y0) / grid.pixel_size)
    k = (locs.frame - first_frame) // frames_per_step
    in_roi = (c >= 0) & (c < W) & (r >= 0) & (r < H)
    in_time = (locs.frame >= first_frame) & (k < n_steps)
    keep = in_roi & in_time
    idx = (k[keep] * H + r[keep].astype(np.int64)) * W + c[keep].astype(np.int64)
    counts = np.bincount(idx, minlength=n_steps * H * W).astype(np.float32)
    return RenderResult(video=counts.reshape(n_steps, H, W), grid=grid,
                        frames_per_step=frames_per_step, first_frame=first_frame,
                        n_inside=int(keep.sum()), n_outside_roi=int((~in_roi & in_time).sum()),
                        n_outside_time=int((~in_time).sum()))
