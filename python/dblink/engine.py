"""The runner of windowed inference: device, batching, precision, TTA, out-of-memory handling.

:func:`stream_infer` runs a DBlink network over the windows that :mod:`.windows` plans, in time
chunks (memory independent of the movie's length) and in tiles (:mod:`.tiling`); :func:`infer` is
the same on an in-memory video. The head decodes only the kept steps (and the confidence's
alternates), windows of equal shape run as one batch. The original algorithm, one full window per
output step, is :func:`dblink.bench.reference_loop`.

Precision: ``fp32`` (default) computes what the reference computes; ``bf16`` / ``fp16`` run the
network under ``torch.autocast`` (convolutions in 16 bits, outputs returned as float32) — about 2×
faster for the paper head on CPUs with AVX-512 BF16, faster on GPUs only for large fields (measured
with ``dblink bench``); ``dblink evaluate --precision`` measures the cost in accuracy. On CUDA, inputs go through pinned memory and ``batch=None``
picks the windows per call from the free GPU memory.

Test-time augmentation (``tta`` 4 or 8): each batch of windows also runs mirrored (4: left-right,
up-down, both) and transposed (8: the whole dihedral group), and the outputs, mapped back, are
averaged — 4× or 8× the network time for slightly better-placed (not thinner) lines
(measured with ``dblink evaluate --tta``: filament fidelity 0.895 → 0.911 at the same hallucination).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from itertools import islice
from typing import Callable, Iterator

import numpy as np
import torch

from . import options
from .errors import DBlinkError
from .memory import default_chunk
from .progress import Progress, ProgressSpec
from .tiling import DEFAULT_HALO, plan_tiles
from .windows import (Window, confidence_every_default, confidence_from, confidence_samples,
                      confidence_shift, deviation, interpolate, iter_batches, iter_windows)


PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
assert tuple(PRECISIONS) == options.PRECISIONS
CPU_BATCH = 4  # windows per call on CPUs (larger batches gain nothing on 2-16 cores)
TTA_CHOICES = options.TTA_CHOICES  # test-time augmentation: copies of each window averaged


def check_tta(tta: int) -> None:
    """Refuse a test-time augmentation count other than 1, 4 or 8 with one line (the options'
    own check: :class:`~.options.ReconstructOptions`)."""
    options.ReconstructOptions.make(tta=tta)


def dihedral(n: int) -> list[tuple[bool, tuple[int, ...]]]:
    """The first ``n`` (1, 4 or 8) symmetries of the square as (transpose, flipped axes): the
    identity, the three mirrors, then the same after transposing the field."""
    flips: list[tuple[int, ...]] = [(), (-1,), (-2,), (-2, -1)]
    return [(t, f) for t in (False, True) for f in flips][:n]


def augmented(module: Callable, x: torch.Tensor, pos: torch.Tensor, tta: int = 1) -> torch.Tensor:
    """``module(x, pos)`` averaged over :func:`dihedral` ``(tta)`` copies of the windows ``x``
    (B, T, H, W): each copy mirrored/transposed on the way in and mapped back on the way out."""
    if tta == 1:
        return module(x, pos).float()
    acc = None
    for transpose, flip in dihedral(tta):
        z = x.transpose(-2, -1) if transpose else x
        z = z.flip(flip) if flip else z
        y = module(z.contiguous(), pos).float()
        y = y.flip(flip) if flip else y
        y = y.transpose(-2, -1) if transpose else y
        acc = y if acc is None else acc + y
    return acc / tta


def check_precision(precision: str) -> None:
    """Refuse an unknown precision name with one line (the options' own check)."""
    options.ReconstructOptions.make(precision=precision)


def autocast(dev: torch.device, precision: str):
    """The autocast context of a precision name (``fp32``: a no-op)."""
    check_precision(precision)
    dtype = PRECISIONS[precision]
    if dtype is None:
        return torch.autocast(dev.type, enabled=False)
    return torch.autocast(dev.type, dtype=dtype)


def auto_batch(module: torch.nn.Module, dev: torch.device, n_in: int, H: int, W: int,
               n_decoded: int, precision: str = "fp32", cap: int = 64) -> int:
    """Windows per network call: :data:`CPU_BATCH` on CPUs; on CUDA as many as a third of the free
    GPU memory holds, from the peak memory of one window of ``n_in`` steps of H × W px with
    ``n_decoded`` decoded steps (measured by running it), at most ``cap``."""
    if dev.type != "cuda":
        return CPU_BATCH
    torch.cuda.synchronize(dev)
    torch.cuda.reset_peak_memory_stats(dev)
    base = torch.cuda.memory_allocated(dev)
    x = torch.zeros(1, n_in, H, W, device=dev)
    pos = torch.arange(n_decoded, device=dev)
    with torch.inference_mode(), autocast(dev, precision):
        module(x, pos)
    torch.cuda.synchronize(dev)
    per_window = max(1, torch.cuda.max_memory_allocated(dev) - base)
    free, _ = torch.cuda.mem_get_info(dev)
    # a third of the free memory: the allocator's fragmentation takes more than the measured peak
    return int(max(1, min(cap, free // 3 // per_window)))


def _is_oom(exc: BaseException) -> bool:
    """CUDA out of memory, also as raised from inside a TorchScript module (a RuntimeError)."""
    return isinstance(exc, torch.cuda.OutOfMemoryError) or "out of memory" in str(exc)


@dataclass(frozen=True)
class Crop:
    """How :meth:`_Runner.cropped` cuts windows down to the part of the field near their
    localizations: ``halo`` px of context (as tiles), box edges on multiples of ``align`` px from
    both field edges (CompactNet's half-resolution grid), and only where the network's work falls
    below ``gain`` of the whole field's."""

    halo: int
    align: int = 1
    gain: float = 0.7

    def box(self, x: torch.Tensor) -> tuple[tuple[int, int, int, int], tuple[int, int, int, int]] | None:
        """((Y0, Y1, X0, X1) to run, (y0, y1, x0, x1) to keep) for windows ``x`` (B, T, H, W) with
        localizations, or None where they fill the field."""
        H, W = x.shape[2], x.shape[3]
        m = x.amax(dim=(0, 1)) > 0
        rows = torch.nonzero(m.any(1)).flatten()
        cols = torch.nonzero(m.any(0)).flatten()
        if not len(rows):
            return None
        keep, run = [], []
        for lo, hi, n in ((int(rows[0]), int(rows[-1]) + 1, H), (int(cols[0]), int(cols[-1]) + 1, W)):
            k0, k1 = max(0, lo - self.halo), min(n, hi + self.halo)
            r0 = max(0, k0 - self.halo) // self.align * self.align
            r1 = n - max(0, n - k1 - self.halo) // self.align * self.align
            keep += [k0, k1]
            run += [r0, r1]
        if (run[1] - run[0]) * (run[3] - run[2]) >= H * W:
            return None
        return (run[0], run[1], run[2], run[3]), (keep[0], keep[1], keep[2], keep[3])


def _shrunk(n: int, margin: int) -> tuple[int, np.ndarray]:
    """A field side for an empty window's answer: (size, index into it for each of the ``n`` rows).
    Rows within ``margin`` of either edge keep their distance to it; the middle ones repeat two
    middle rows, keeping their parity (CompactNet's half-resolution grid); n − size is even."""
    idx = np.arange(n)
    if n <= 2 * margin + 2:
        return n, idx
    size = 2 * margin + 2 + (n - 2 * margin - 2) % 2
    out = idx.copy()
    mid = (idx >= margin) & (idx < n - margin)
    out[mid] = margin + (idx[mid] - margin) % 2
    out[idx >= n - margin] -= n - size
    return size, out


def _empty_field(x: torch.Tensor, crop: Crop | None) -> tuple[tuple[int, np.ndarray], ...]:
    """The rows and the columns (:func:`_shrunk`) of the field an empty window of ``x``'s shape is
    answered on: two halos next to each edge with ``crop``, the whole field without."""
    H, W = x.shape[2], x.shape[3]
    margin = 2 * crop.halo if crop is not None else max(H, W)
    return _shrunk(H, margin), _shrunk(W, margin)


def _shape_key(x: torch.Tensor, pos: torch.Tensor) -> tuple:
    """Windows of one shape decoding the same positions get the same empty-window answer."""
    return tuple(x.shape[1:]), tuple(pos.tolist())


class _Runner:
    """Runs the network on a batch of windows; on CUDA out-of-memory it halves the batch (for this
    and all later calls) instead of failing, down to one window."""

    def __init__(self, module: torch.nn.Module, dev: torch.device, precision: str,
                 tta: int = 1) -> None:
        self.module, self.dev, self.precision, self.tta = module, dev, precision, tta
        self.max_batch: int | None = None
        self.split_on_oom = dev.type == "cuda"
        self.seconds = 0.0  # in the network, transfers included
        self.skipped = 0  # windows without localizations, not run (see sparse)
        self.field_px = 0  # their pixels, and the pixels the network ran on (empty answers too)
        self.run_px = 0
        self._empty: dict = {}  # the network's answer to an empty window, per shape

    def __call__(self, x: torch.Tensor, pos: torch.Tensor) -> np.ndarray:
        tn = time.perf_counter()
        try:
            return self._run(x, pos)
        finally:
            self.seconds += time.perf_counter() - tn

    def sparse(self, x: torch.Tensor, pos: torch.Tensor, crop: Crop | None = None) -> np.ndarray:
        """As calling the runner, but windows without a single localization are not run: they get
        the network's answer to an empty window of their shape, computed once and reused (the
        same numbers, up to float rounding between batch sizes). Sparse fields and quiet stretches
        of a movie cost nothing. With ``crop``, the windows that hold localizations run on the part
        of the field near them only (see :meth:`cropped`)."""
        occupied = x.flatten(1).any(1).cpu().numpy()
        self.field_px += len(occupied) * x.shape[2] * x.shape[3]
        if occupied.all():
            return self.cropped(x, pos, crop)
        self.skipped += int((~occupied).sum())
        y = np.empty((x.shape[0], pos.shape[0], x.shape[2], x.shape[3]), dtype=np.float32)
        y[~occupied] = self.empty(x, pos, crop)
        if occupied.any():
            y[occupied] = self.cropped(x[torch.from_numpy(occupied).to(x.device)], pos, crop)
        return y

    def empty(self, x: torch.Tensor, pos: torch.Tensor, crop: Crop | None = None) -> np.ndarray:
        """The network's answer (P, H, W) to an empty window of ``x``'s shape, computed once. With
        ``crop``, from a field that keeps two halos next to each edge and two rows and columns of
        the middle (:func:`_shrunk`): an empty field's answer depends only on the distance to its
        edges, so the middle repeats (exact where two halos cover the receptive radius)."""
        key = _shape_key(x, pos)
        if key not in self._empty:
            (hs, rows), (ws, cols) = _empty_field(x, crop)
            small = self(torch.zeros((1, x.shape[1], hs, ws), dtype=x.dtype, device=x.device), pos)[0]
            self._empty[key] = small[:, rows[:, None], cols[None, :]]
            self.run_px += hs * ws
        return self._empty[key]

    def empty_cost(self, x: torch.Tensor, pos: torch.Tensor, crop: Crop) -> int:
        """Pixels :meth:`empty` would run for ``x`` (0 once computed)."""
        if _shape_key(x, pos) in self._empty:
            return 0
        (hs, _), (ws, _) = _empty_field(x, crop)
        return hs * ws

    def cropped(self, x: torch.Tensor, pos: torch.Tensor, crop: Crop | None) -> np.ndarray:
        """Windows ``x`` (B, T, H, W) that hold localizations, run on their bounding box grown by
        two halos (clipped to the field): the output there, up to one halo from the localizations,
        is the network's; farther away it is the network's answer to an empty window, which a pixel
        more than one halo from every localization gets in the field too (as a tile's core more
        than a halo from its edge: exact with the receptive radius as halo, within the tiling
        tolerance with :data:`~.tiling.DEFAULT_HALO`). Run whole where that saves too little."""
        B, _, H, W = x.shape
        box = crop.box(x) if crop is not None else None
        if box is not None:
            (Y0, Y1, X0, X1), core = box
            cost = B * (Y1 - Y0) * (X1 - X0) + self.empty_cost(x, pos, crop)
            if cost <= crop.gain * B * H * W:
                y = np.empty((B, pos.shape[0], H, W), dtype=np.float32)
                y[:] = self.empty(x, pos, crop)
                part = self(x[:, :, Y0:Y1, X0:X1], pos)
                (cy0, cy1, cx0, cx1) = core
                y[:, :, cy0:cy1, cx0:cx1] = part[:, :, cy0 - Y0:cy1 - Y0, cx0 - X0:cx1 - X0]
                self.run_px += B * (Y1 - Y0) * (X1 - X0)
                return y
        self.run_px += B * H * W
        return self(x, pos)

    def _run(self, x: torch.Tensor, pos: torch.Tensor) -> np.ndarray:
        n = x.shape[0] if self.max_batch is None else self.max_batch
        if n < x.shape[0]:
            return np.concatenate([self._run(x[i:i + n], pos) for i in range(0, x.shape[0], n)])
        if self.dev.type == "cuda" and x.device.type == "cpu":
            x = x.pin_memory()
        try:
            with torch.inference_mode(), autocast(self.dev, self.precision):
                x = x.to(self.dev, non_blocking=True)
                y = augmented(self.module, x, pos, self.tta)
            want = (x.shape[0], pos.shape[0], x.shape[2], x.shape[3])
            if tuple(y.shape) != want:  # never broadcast a wrong answer into the output
                raise DBlinkError(f"the model returned an output of shape {tuple(y.shape)} for "
                                  f"{x.shape[0]} window(s) of {x.shape[1]} steps of {x.shape[3]} "
                                  f"x {x.shape[2]} px with {pos.shape[0]} decoded step(s), "
                                  f"expected {want}: not a dblink network")
            return y.cpu().numpy()
        except RuntimeError as exc:
            if not (self.split_on_oom and _is_oom(exc)):
                raise
        torch.cuda.empty_cache()
        if x.shape[0] == 1:
            raise DBlinkError(f"out of GPU memory for a single window of {x.shape[1]} steps of "
                              f"{x.shape[3]} x {x.shape[2]} px; use --tile 256 (or smaller), "
                              f"--precision bf16 or --device cpu") from None
        self.max_batch = x.shape[0] // 2
        return self._run(x, pos)


def pick_device(device: str = "auto") -> torch.device:
    """``auto`` → CUDA if present, else Apple MPS, else CPU."""
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise DBlinkError("--device cuda: no CUDA GPU is visible to PyTorch "
                          f"(torch {torch.__version__}); use --device cpu or auto")
    if device not in ("cpu", "cuda", "mps"):
        raise DBlinkError(f"--device must be auto, cpu, cuda or mps, not {device!r}")
    return torch.device(device)


@dataclass
class Reconstruction:
    """Output of :func:`infer`: arrays (T, H, W) float32 and how they were made."""

    video: np.ndarray
    confidence: np.ndarray | None
    seconds: float
    device: str
    n_windows: int
    batch: int = 0


def _normalize_frames(y: torch.Tensor) -> torch.Tensor:
    """Per-frame min-max to [0, 1] over the last two axes (for unbounded model outputs)."""
    lo = y.amin(dim=(-2, -1), keepdim=True)
    hi = y.amax(dim=(-2, -1), keepdim=True)
    return (y - lo) / (hi - lo).clamp_min(1e-12)


#: a source of input steps: ``source(a, b)`` returns steps [a, b) as float32 (b − a, H, W)
StepSource = Callable[[int, int], np.ndarray]


def _normalize_np(y: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """As :func:`_normalize_frames`, with the frame's min and max given (float32)."""
    lo32, hi32 = np.float32(lo), np.float32(hi)
    return (y - lo32) / max(np.float32(hi32 - lo32), np.float32(1e-12))


def stream_infer(source: StepSource, shape: tuple[int, int, int], module: torch.nn.Module,
                 window: int, stride: int = 1, device: str = "auto", batch: int | None = None,
                 confidence: bool = True, normalize: bool = False, tile: int | None = None,
                 halo: int = DEFAULT_HALO, align: int = 1, chunk: int | None = None,
                 progress: ProgressSpec = "bar", stats: dict | None = None,
                 precision: str = "fp32", tta: int = 1, confidence_every: int | None = None,
                 crop: bool = True) -> Iterator[tuple[int, np.ndarray, np.ndarray | None]]:
    """Reconstruct a video (T, H, W) = ``shape`` read step ranges at a time from ``source``;
    yields ``(t, output (H, W), confidence (H, W) or None)`` for t = 0 … T − 1 in order.

    Memory does not grow with T: the movie runs in time chunks of about ``chunk`` output steps
    (whole batches of windows, each chunk reading its steps ± ``window`` of context), and an output
    step is yielded as soon as its confidence estimates (from windows keeping t ± δ) are in.
    ``tile`` (px) splits the field into tiles with ``halo`` px of context (see :mod:`.tiling`);
    ``align``: tile origins are multiples of it (2 for CompactNet). ``batch``: windows per network
    call (None: :func:`auto_batch`). ``precision``: ``fp32``, ``bf16`` or ``fp16`` (autocast).
    ``tta``: 1, or 4 / 8 augmented copies of each window averaged (see :func:`augmented`).
    ``confidence_every``: the confidence is measured every N steps and interpolated between
    (None: N = δ rounded to a multiple of the stride on CPUs, 1 on GPUs, where windows of one shape
    batch better; see :mod:`.windows`).
    ``crop``: windows whose localizations cover a small part of the field run on that part only
    (with ``halo`` px of context; :class:`Crop`); False runs every window on the whole field (tile).
    ``stats`` (optional) receives ``device``, ``batch``, ``n_windows``, ``n_tiles``, ``seconds``
    ``network_share`` (the share of the windows' pixels the network ran on, empty answers included)
    and the time spent reading steps from ``source`` (``source_s``) and in the network
    (``network_s``, transfers included; ``setup_s`` before: moving the model to the device, the
    automatic batch's trial run); the rest is assembly and confidence.
    """
    T, H, W = shape
    if T == 0:
        raise DBlinkError("the video has no steps")
    t_setup = time.perf_counter()
    dev = pick_device(device)
    check_precision(precision)
    check_tta(tta)
    module = module.to(dev).eval()
    tiles = plan_tiles(H, W, tile, halo, align)
    # on a GPU every step (its windows then batch uniformly; exact mode is launch-bound there)
    every = confidence_every or (1 if dev.type == "cuda" else confidence_every_default(window, stride))
    if every < 1:
        raise DBlinkError(f"--confidence-every must be >= 1 step, got {every}")
    if batch is None:
        batch = _auto_batch(module, dev, T, window, stride, confidence, every, tiles[0], precision)
    if batch < 1:
        raise DBlinkError(f"--batch must be >= 1, got {batch}")
    batches = iter_batches(iter_windows(T, window, stride, confidence, every), batch)
    delta = confidence_shift(window, stride)
    chunk = default_chunk(H, W, window, stride, confidence) if chunk is None else max(1, int(chunk))
    t0 = time.perf_counter()
    if stats is not None:
        stats.update(device=str(dev), batch=batch, n_windows=-(-T // stride), n_tiles=len(tiles),
                     source_s=0.0, network_s=0.0, setup_s=t0 - t_setup)
    run = _Runner(module, dev, precision, tta)
    cropper = Crop(halo, align) if crop else None
    reader = _ChunkReader(source, H, W, dev)
    outputs = _Outputs(T, every if confidence else None)
    with Progress(T, progress, desc="reconstruct") as bar:
        for group, last in _time_chunks(batches, chunk):
            a0 = min(w.start for bt in group for w in bt)
            x_chunk = reader(a0, max(w.stop for bt in group for w in bt))
            outputs.add(_estimate(run, x_chunk, a0, group, tiles, (H, W), normalize, dev, bar,
                                  cropper))
            # outputs whose alternates (from windows keeping t ± δ) are all in can go
            yield from outputs.release(T if last else max(w.keep[-1] for w in group[-1]) + 1 - delta)
        if bar.done < T:
            bar.update(T - bar.done)
    if stats is not None:
        stats.update(seconds=time.perf_counter() - t0, source_s=reader.seconds,
                     network_s=run.seconds, skipped_windows=run.skipped,
                     network_share=run.run_px / max(1, run.field_px))
        if run.max_batch is not None:
            stats["batch"] = run.max_batch


def _auto_batch(module: torch.nn.Module, dev: torch.device, T: int, window: int, stride: int,
                confidence: bool, every: int, tile, precision: str) -> int:
    """:func:`auto_batch` for the movie's largest window, the middle one (found by a walk of the
    window generator), on one tile."""
    w0 = next(islice(iter_windows(T, window, stride, confidence, every), -(-T // stride) // 2, None))
    return auto_batch(module, dev, w0.stop - w0.start, tile.Y1 - tile.Y0, tile.X1 - tile.X0,
                      len(w0.keep) + len(w0.alt), precision)


class _Outputs:
    """The kept outputs and the confidence samples' alternate estimates as the chunks bring them,
    released in step order once complete (with their confidence when ``every`` is given)."""

    def __init__(self, T: int, every: int | None) -> None:
        self.out: dict[int, np.ndarray] = {}  # kept outputs not yet released
        self.alts: dict[int, list[np.ndarray]] = {}  # the samples' alternate estimates
        self.samples = _Samples(T, every) if every is not None else None
        self.next_t = 0

    def add(self, est: dict) -> None:
        """One chunk's estimates: ``{(t, 0): kept output, (t, 1): alternate, ...}``."""
        for (t, kind), frame in est.items():
            if kind == 0:
                self.out[t] = frame
            else:
                self.alts.setdefault(t, []).append(frame)

    def release(self, final: int) -> Iterator[tuple[int, np.ndarray, np.ndarray | None]]:
        """``(t, output, confidence or None)`` for the steps before ``final`` that are complete."""
        if self.samples is None:
            while self.next_t < final:
                yield self.next_t, self.out.pop(self.next_t), None
                self.next_t += 1
            return
        self.samples.measure(final, self.out, self.alts)
        while self.next_t < final and self.samples.ready(self.next_t):
            t = self.next_t
            y = self.out.pop(t)
            yield t, y, self.samples.confidence(t, y.shape)
            self.next_t += 1


class _Samples:
    """The confidence's samples (every N-th step): their MSD maps as they come in, and the
    interpolated confidence of any step once the samples around it are measured."""

    def __init__(self, T: int, every: int) -> None:
        self.steps = confidence_samples(T, every)
        self.msd: dict[int, np.ndarray | None] = {}
        self.done = 0  # samples measured: self.steps[:done]

    def measure(self, final: int, out: dict, alts: dict) -> None:
        """Measure every sample before step ``final`` (its output and alternates are in)."""
        while self.done < len(self.steps) and self.steps[self.done] < final:
            s = self.steps[self.done]
            self.msd[s] = deviation(out[s], alts.pop(s, []))
            self.done += 1

    def _around(self, t: int) -> tuple[int, int]:
        """Indices of the samples at or before / at or after step ``t`` (−1 / len: none)."""
        st = self.steps
        if not len(st) or t < st[0]:
            return -1, 0
        i = min(len(st) - 1, (t - st[0]) // st.step)
        return i, i if st[i] == t else i + 1

    def ready(self, t: int) -> bool:
        """Whether step ``t``'s confidence can be computed (its next sample is measured)."""
        j = self._around(t)[1]
        return j < self.done or j >= len(self.steps)

    def confidence(self, t: int, shape: tuple[int, ...]) -> np.ndarray:
        i, j = self._around(t)
        st = self.steps
        before = (st[i], self.msd[st[i]]) if i >= 0 else None
        after = (st[j], self.msd[st[j]]) if j < len(st) else None
        for s in [s for s in self.msd if s < st[max(i, 0)]]:  # no longer needed
            del self.msd[s]
        return confidence_from(interpolate(t, before, after), shape)


def _time_chunks(batches: Iterator[list[Window]], chunk: int) -> Iterator[tuple[list, bool]]:
    """Consecutive batches grouped into time chunks of about ``chunk`` kept steps; yields
    (batches of the chunk, whether it is the last)."""
    pending = next(batches, None)
    while pending is not None:
        group, n_keep = [pending], sum(len(w.keep) for w in pending)
        pending = next(batches, None)
        while pending is not None and n_keep < chunk:
            n_keep += sum(len(w.keep) for w in pending)
            group.append(pending)
            pending = next(batches, None)
        yield group, pending is None


class _ChunkReader:
    """Input steps [a0, a1) of a time chunk, on the device. Chunks move forward: the steps a chunk
    shares with the previous one (its ±window context) are reused, only new ones are read."""

    def __init__(self, source: StepSource, H: int, W: int, dev: torch.device) -> None:
        self.source, self.H, self.W, self.dev = source, H, W, dev
        self.c0, self.cached = 0, torch.zeros((0, H, W))
        self.seconds = 0.0  # spent reading (rendering) and moving steps

    def __call__(self, a0: int, a1: int) -> torch.Tensor:
        ts = time.perf_counter()
        c0, cached = self.c0, self.cached
        keep = cached[a0 - c0:] if c0 <= a0 <= c0 + len(cached) else cached[:0]
        n0 = a0 + len(keep)
        new = torch.from_numpy(np.ascontiguousarray(self.source(n0, a1), dtype=np.float32)) \
            if a1 > n0 else torch.zeros((0, self.H, self.W))
        if self.dev.type == "cuda":
            new = new.pin_memory().to(self.dev, non_blocking=True)
        x = torch.cat([keep.to(new.device), new]) if len(keep) else new
        self.c0, self.cached = a0, x
        self.seconds += time.perf_counter() - ts
        return x


def _estimate(run: "_Runner", x_chunk: torch.Tensor, a0: int, group: list[list[Window]],
              tiles: list, shape: tuple[int, int], normalize: bool, dev: torch.device,
              bar: Progress, crop: Crop | None = None) -> dict[tuple[int, int], np.ndarray]:
    """The raw estimates of one time chunk, keyed (step, kind): kind 0 = kept, −1/+1 = alternate
    from a window placed later/earlier. With tiles, each frame is filled core by core."""
    H, W = shape
    est: dict[tuple[int, int], np.ndarray] = {}
    lohi: dict[tuple[int, int], list[float]] = {}
    for tl in tiles:
        x_tile = x_chunk[:, tl.Y0:tl.Y1, tl.X0:tl.X1]  # on the device: windows cut there
        cy, cx = tl.crop
        for bt in group:
            _, rel_keep, rel_alt = bt[0].signature
            pos = torch.tensor(rel_keep + rel_alt, dtype=torch.long, device=dev)
            y = run.sparse(torch.stack([x_tile[w.start - a0:w.stop - a0] for w in bt]), pos, crop)
            for j, w in enumerate(bt):
                keys = [(k, 0) for k in w.keep] + [(a, -1 if a < w.keep[0] else 1) for a in w.alt]
                for key, frame in zip(keys, y[j]):
                    if key not in est:
                        est[key] = np.empty((H, W), dtype=np.float32)
                        lohi[key] = [math.inf, -math.inf]
                    core = frame[cy, cx]
                    est[key][tl.y0:tl.y1, tl.x0:tl.x1] = core
                    if normalize:
                        lohi[key][0] = min(lohi[key][0], float(core.min()))
                        lohi[key][1] = max(lohi[key][1], float(core.max()))
                bar.advance(len(w.keep) / len(tiles))
    if normalize:
        est = {key: _normalize_np(frame, *lohi[key]) for key, frame in est.items()}
    return est


def infer(video: np.ndarray, module: torch.nn.Module, window: int, stride: int = 1,
          device: str = "auto", batch: int | None = None, confidence: bool = True,
          normalize: bool = False, progress: ProgressSpec = "bar", tile: int | None = None,
          halo: int = DEFAULT_HALO, align: int = 1, chunk: int | None = None,
          precision: str = "fp32", tta: int = 1,
          confidence_every: int | None = None, crop: bool = True) -> Reconstruction:
    """Reconstruct a localization-map video (T, H, W) with a DBlink network (in memory).

    Args:
        window: half-width W in steps; output t is computed from steps [t − W, t + W].
        stride: K kept central steps per window (1 = the paper's exact mode).
        batch: windows per network call (None: 4 on CPUs, from the free memory on CUDA).
        precision: ``fp32`` (exact), ``bf16`` or ``fp16`` (autocast; faster, less accurate).
        tta: test-time augmentation, 1 (off), 4 (mirrors) or 8 (mirrors and transposes).
        normalize: per-frame min-max of the output (models with unbounded outputs).
        progress: ``bar``, ``json`` or ``none``.
        tile, halo, align: split the field into tiles of ``tile`` px with ``halo`` px of context
            (see :func:`stream_infer`); None: no tiling.
        chunk: output steps per time chunk (default: by memory); the output does not depend on it.
        confidence_every: measure the confidence every N steps, interpolate between (None: δ).
        crop: run windows with few localizations on the part of the field near them (see
            :class:`Crop`); False: always the whole field (or tile).
    """
    video = np.asarray(video, dtype=np.float32)
    if video.ndim != 3:
        raise DBlinkError(f"expected a video (T, H, W), got shape {video.shape}")
    T, H, W = video.shape
    if T == 0:
        raise DBlinkError("the video has no steps")
    out = np.empty((T, H, W), dtype=np.float32)
    conf = np.empty((T, H, W), dtype=np.float32) if confidence else None
    stats: dict = {}
    for t, y, c in stream_infer(lambda a, b: video[a:b], video.shape, module, window, stride,
                                device, batch, confidence, normalize, tile, halo, align, chunk,
                                progress, stats, precision, tta, confidence_every, crop):
        out[t] = y
        if conf is not None:
            conf[t] = c
    return Reconstruction(video=out, confidence=conf, seconds=stats["seconds"],
                          device=stats["device"], n_windows=stats["n_windows"],
                          batch=stats["batch"])
