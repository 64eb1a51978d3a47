"""ImageJ hyperstack TIFFs: the calibrated output of a reconstruction (written whole or streamed
step by step), and reading them back."""
from __future__ import annotations

import json
import math
import os
from typing import Iterable, Iterator

import numpy as np

from .files import atomic_output


def _hyperstack_meta(T: int, channel_names: list[str], pixel_size_nm: float, frames_per_step: int,
                     exposure_s: float | None, origin_nm: tuple[float, float], info: dict | None,
                     ranges: list[float]) -> dict:
    """ImageJ metadata of a dblink hyperstack (see :func:`write_hyperstack`)."""
    C = len(channel_names)
    meta: dict = {"axes": "TCYX", "unit": "micron", "mode": "grayscale"}
    if exposure_s:
        meta["finterval"] = frames_per_step * exposure_s
        meta["tunit"] = "sec"
    else:
        meta["finterval"] = float(frames_per_step)
        meta["tunit"] = "frame"
    meta["xorigin"] = -origin_nm[0] / pixel_size_nm
    meta["yorigin"] = -origin_nm[1] / pixel_size_nm
    meta["Labels"] = [f"{channel_names[c]} t={t + 1}" for t in range(T) for c in range(C)]
    info = dict(info or {})
    info["channels"] = list(channel_names)
    meta["Info"] = "dblink=" + json.dumps(info, sort_keys=True)
    out = []
    for lo, hi in zip(ranges[0::2], ranges[1::2]):
        out += [lo, hi if hi > lo else lo + 1.0]
    meta["Ranges"] = tuple(out)
    return meta


def write_hyperstack(path: str | os.PathLike, channels: list[np.ndarray], channel_names: list[str],
                     pixel_size_nm: float, frames_per_step: int, exposure_s: float | None = None,
                     origin_nm: tuple[float, float] = (0.0, 0.0), info: dict | None = None,
                     overwrite: bool = True, atomic: bool = True) -> None:
    """Write an ImageJ hyperstack TIFF (float32, axes TCYX), calibrated.

    Args:
        channels: arrays of shape (T, H, W), one per channel (e.g. reconstruction, confidence).
        channel_names: one name per channel (stored as slice labels and in ``Info``).
        pixel_size_nm: render pixel size; stored as µm per pixel with unit ``micron``.
        frames_per_step: raw frames summed per time point; the frame interval is
            ``frames_per_step * exposure_s`` seconds, or ``frames_per_step`` raw frames when the
            exposure is unknown.
        origin_nm: (x0, y0) of the render grid in the camera field, so ImageJ shows camera coordinates.
        info: run parameters, written as JSON into the ImageJ ``Info`` property.
        atomic: write to a temporary name and rename on success (:func:`atomic_output`); False
            writes ``path`` directly, for callers that already hold a temporary name.
    """
    import tifffile

    data = np.stack([np.asarray(c, dtype=np.float32) for c in channels], axis=1)  # T, C, Y, X
    T, C = data.shape[:2]
    px_um = pixel_size_nm / 1000.0
    ranges = []
    for c in range(C):
        ranges += [float(np.nanmin(data[:, c])), float(np.nanmax(data[:, c]))]
    meta = _hyperstack_meta(T, channel_names, pixel_size_nm, frames_per_step, exposure_s,
                            origin_nm, info, ranges)
    if not atomic:
        tifffile.imwrite(path, data, imagej=True, resolution=(1.0 / px_um, 1.0 / px_um),
                         metadata=meta)
        return
    with atomic_output(path, overwrite=overwrite) as tmp:
        tifffile.imwrite(tmp, data, imagej=True, resolution=(1.0 / px_um, 1.0 / px_um),
                         metadata=meta)


#: image data size above which the stream writer reserves room for its final ImageJ metadata
RESERVE_ABOVE_BYTES = 2**32 - 2**26


def write_hyperstack_stream(path: str | os.PathLike, steps: Iterable[list[np.ndarray]],
                            shape: tuple[int, int, int], channel_names: list[str],
                            pixel_size_nm: float, frames_per_step: int,
                            exposure_s: float | None = None,
                            origin_nm: tuple[float, float] = (0.0, 0.0), info: dict | None = None,
                            overwrite: bool = True, atomic: bool = True) -> None:
    """As :func:`write_hyperstack`, byte for byte, from an iterable that yields each time step's
    channel frames (H, W) in order: memory does not grow with the number of steps ``shape[0]``.

    The display ranges (ImageJ ``Ranges``) are known only at the end: the file is written with
    placeholders, then its ImageJ metadata is rewritten (:func:`_patch_ijmetadata`). ``info`` is
    read again after the last step, so the caller may add to it meanwhile (e.g. the run's time).
    """
    import tifffile

    T, H, W = shape
    C = len(channel_names)
    px_um = pixel_size_nm / 1000.0
    lo, hi = [math.inf] * C, [-math.inf] * C

    def pages() -> Iterator[np.ndarray]:
        n = 0
        for frames in steps:
            if len(frames) != C:
                raise ValueError(f"expected {C} channel frames per step, got {len(frames)}")
            for c, f in enumerate(frames):
                f = np.asarray(f, dtype=np.float32)
                with np.errstate(invalid="ignore"):
                    lo[c], hi[c] = min(lo[c], float(np.nanmin(f))), max(hi[c], float(np.nanmax(f)))
                yield f
            n += 1
        if n != T:
            raise ValueError(f"expected {T} steps, got {n}")

    # past 4 GB a classic TIFF cannot point at metadata appended at its end: reserve room in place
    reserve = T * C * H * W * 4 > RESERVE_ABOVE_BYTES

    def write(target: str | os.PathLike) -> None:
        meta = _hyperstack_meta(T, channel_names, pixel_size_nm, frames_per_step, exposure_s,
                                origin_nm, info, [0.0, 1.0] * C)
        if reserve and "Info" in meta:
            meta["Info"] = meta["Info"] + " " * 4096
        with tifffile.TiffWriter(target, imagej=True) as tw:
            tw.write(pages(), shape=(T, C, H, W), dtype="float32",
                     resolution=(1.0 / px_um, 1.0 / px_um), metadata=meta)
        ranges = [v for pair in zip(lo, hi) for v in pair]
        _patch_ijmetadata(target, _hyperstack_meta(T, channel_names, pixel_size_nm, frames_per_step,
                                                   exposure_s, origin_nm, info, ranges),
                          pad=reserve)

    if not atomic:
        write(path)
        return
    with atomic_output(path, overwrite=overwrite) as tmp:
        write(tmp)


def _patch_ijmetadata(path: str | os.PathLike, meta: dict, pad: bool = False) -> None:
    """Replace the ImageJ metadata (tags 50838/50839) of the first page of a classic TIFF with
    ``meta``'s: in place when it has the same size, else appended at the end of the file with the
    tag entries pointed at it. With ``pad``, a shorter ``Info`` is padded with spaces to the old
    size, so that it is written in place (needed past 4 GB, where nothing can be appended)."""
    import struct

    import tifffile

    with tifffile.TiffFile(path) as tif:
        if tif.is_bigtiff:
            raise ValueError("BigTIFF ImageJ metadata cannot be patched")
        bo = tif.byteorder
        tags = tif.pages[0].tags
        counts_tag, data_tag = tags["IJMetadataByteCounts"], tags["IJMetadata"]
        c_off, c_n = counts_tag.valueoffset, counts_tag.count
        d_entry, d_off, d_n = data_tag.offset, data_tag.valueoffset, data_tag.count
    (_, _, n_data, data, _), (_, _, n_counts, counts, _) = tifffile.imagej_metadata_tag(meta, bo)
    if pad and "Info" in meta and len(data) < d_n and (d_n - len(data)) % 2 == 0:  # UTF-16: 2 bytes per character
        meta = dict(meta, Info=meta["Info"] + " " * ((d_n - len(data)) // 2))
        (_, _, n_data, data, _), (_, _, n_counts, counts, _) = tifffile.imagej_metadata_tag(meta, bo)
    if n_counts != c_n:
        raise ValueError("the ImageJ metadata changed its number of entries")
    with open(path, "r+b") as fh:
        fh.seek(c_off)
        fh.write(counts if isinstance(counts, bytes) else struct.pack(f"{bo}{n_counts}I", *counts))
        if len(data) == d_n:
            fh.seek(d_off)
            fh.write(data)
            return
        end = fh.seek(0, os.SEEK_END)
        end += end % 2  # TIFF values start on a word boundary
        fh.seek(end)
        fh.write(data)
        fh.seek(d_entry + 4)  # classic IFD entry: tag (2), type (2), count (4), offset (4)
        fh.write(struct.pack(f"{bo}II", len(data), end))


def read_hyperstack(path: str | os.PathLike) -> tuple[np.ndarray, dict]:
    """Read a hyperstack written by :func:`write_hyperstack`: (data[T, C, Y, X], metadata)."""
    import tifffile

    with tifffile.TiffFile(path) as tif:
        data = tif.asarray()
        meta = dict(tif.imagej_metadata or {})
        xres = tif.pages[0].tags["XResolution"].value
        meta["pixel_size_um"] = xres[1] / xres[0]
    if data.ndim == 3:  # a single channel or single frame collapses an axis; restore TCYX
        data = data[:, None] if meta.get("channels", 1) == 1 else data[None]
    info = meta.get("Info", "")
    if isinstance(info, str) and info.startswith("dblink="):
        meta["dblink"] = json.loads(info[len("dblink="):])
    return data, meta
