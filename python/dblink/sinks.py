"""Where a reconstruction goes: a TIFF file, in-memory arrays, or (in :mod:`.imagej`) an ImagePlus.

The reconstruction core (:func:`dblink.pipeline.reconstruct`) produces one output step at a time
— the channel frames (H, W) of step t, in order — and hands the stream to a sink. A sink says how
many whole output steps it keeps in memory (counted in the job's memory budget), checks its
target before any work (:meth:`Sink.check`), then consumes the stream.
"""
from __future__ import annotations

import errno
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from .errors import DBlinkError
from .files import atomic_output, check_output_path
from .hyperstack import write_hyperstack_stream
from .memory import format_bytes


@dataclass
class Layout:
    """What a hyperstack is: its shape and calibration (docs/ARCHITECTURE.md, "Output hyperstack")."""

    shape: tuple[int, int, int]  # (T, H, W)
    channel_names: list[str]
    pixel_size_nm: float
    frames_per_step: int
    exposure_s: float | None = None
    origin_nm: tuple[float, float] = (0.0, 0.0)
    #: run parameters for ImageJ's Info; read again after the last step (device, seconds added)
    info: dict = field(default_factory=dict)

    @property
    def frame_interval(self) -> tuple[float, str]:
        """(interval, unit): S × exposure seconds, or S raw frames when the exposure is unknown."""
        if self.exposure_s:
            return self.frames_per_step * self.exposure_s, "sec"
        return float(self.frames_per_step), "frame"


class Sink:
    """Base class: override :meth:`consume` (or, for a step-by-step sink, :meth:`put`)."""

    #: True when the sink keeps every output step in memory (counted in ``--max-memory``)
    holds_steps = False

    def check_target(self) -> None:
        """Refuse a target that cannot take any result, before reading anything (default: no)."""

    def check(self, layout: Layout) -> None:
        """Refuse a target that cannot take this result, before inference (default: nothing)."""

    def consume(self, steps: Iterable[list[np.ndarray]], layout: Layout) -> None:
        """Take the output steps (each a list of channel frames (H, W)), in order."""
        self.begin(layout)
        for t, frames in enumerate(steps):
            self.put(t, frames)
        self.end(layout)

    def begin(self, layout: Layout) -> None:  # step-by-step sinks
        pass

    def put(self, t: int, frames: list[np.ndarray]) -> None:
        raise NotImplementedError

    def end(self, layout: Layout) -> None:
        pass


class ArraySink(Sink):
    """Keeps the result in memory: ``video`` and ``confidence`` (T, H, W) float32 (None without)."""

    holds_steps = True

    def __init__(self) -> None:
        self.video: np.ndarray | None = None
        self.confidence: np.ndarray | None = None

    def begin(self, layout: Layout) -> None:
        self.video = np.empty(layout.shape, dtype=np.float32)
        if len(layout.channel_names) > 1:
            self.confidence = np.empty(layout.shape, dtype=np.float32)

    def put(self, t: int, frames: list[np.ndarray]) -> None:
        self.video[t] = frames[0]
        if self.confidence is not None:
            self.confidence[t] = frames[1]


class TiffSink(Sink):
    """Streams the calibrated ImageJ hyperstack to ``path`` (memory flat in the number of steps),
    under a temporary name renamed only when complete; an existing file is kept unless
    ``overwrite``. ``also``: a step-by-step sink fed the same steps (e.g. an ImagePlus)."""

    def __init__(self, path: str | Path, overwrite: bool = False, also: Sink | None = None) -> None:
        self.path, self.overwrite, self.also = Path(path), overwrite, also
        self.holds_steps = bool(also and also.holds_steps)

    def check_target(self) -> None:
        check_output_path(self.path, self.overwrite, suffixes=(".tif", ".tiff"))

    def check(self, layout: Layout) -> None:
        self.check_target()  # again: the table and model took time
        out = self.path
        folder = out.parent if str(out.parent) else Path(".")
        T, H, W = layout.shape
        need = 4 * T * H * W * len(layout.channel_names)
        free = shutil.disk_usage(folder).free
        if need > free:  # memory is flat in T, the output file is not
            raise DBlinkError(f"{out}: the output would need about {format_bytes(need)} ({T} steps "
                              f"of {W} x {H} pixels, {len(layout.channel_names)} channel(s)), "
                              f"more than the {format_bytes(free)} free in {folder}; use a smaller "
                              f"--roi, a larger --pixel-size or more --frames-per-step")
        if self.also is not None:
            self.also.check(layout)

    def consume(self, steps: Iterable[list[np.ndarray]], layout: Layout) -> None:
        if self.also is not None:
            steps = self._tap(steps, layout)
        try:
            with atomic_output(self.path, overwrite=self.overwrite) as tmp:
                write_hyperstack_stream(tmp, steps, layout.shape, layout.channel_names,
                                        layout.pixel_size_nm, layout.frames_per_step,
                                        exposure_s=layout.exposure_s, origin_nm=layout.origin_nm,
                                        info=layout.info, atomic=False)
        except OSError as exc:
            if exc.errno is None or isinstance(exc, DBlinkError):
                raise
            why = "the disk is full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else \
                (exc.strerror or str(exc))
            raise DBlinkError(f"{self.path}: cannot write the output ({why}); nothing was "
                              f"written") from None

    def _tap(self, steps: Iterable[list[np.ndarray]], layout: Layout) -> Iterator[list[np.ndarray]]:
        self.also.begin(layout)
        for t, frames in enumerate(steps):
            self.also.put(t, frames)
            yield frames
        self.also.end(layout)
