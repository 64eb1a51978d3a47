"""File formats: ThunderSTORM localization tables in, ImageJ hyperstacks out.

Coordinates are always returned in nm, frames 1-based as ThunderSTORM writes them.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from .errors import DBlinkError

#: nm per unit, for the units ThunderSTORM writes in its headers
LENGTH_UNITS = {"nm": 1.0, "um": 1000.0, "µm": 1000.0, "μm": 1000.0, "micron": 1000.0, "px": None}

_HEADER_RE = re.compile(r"^\s*([^\[\]]+?)\s*(?:\[\s*([^\]]*?)\s*\])?\s*$")


@dataclass
class Localizations:
    """A localization table: one row per localization.

    Attributes:
        frame: raw camera frame of each localization, 1-based (int64).
        x, y: position in nm from the top-left corner of the camera field (float64).
        uncertainty: lateral localization uncertainty in nm, or None when the table has none.
        source: where the table came from (a path, or a description).
        units: the unit each coordinate column had in the file (e.g. ``{"x": "nm"}``).
    """

    frame: np.ndarray
    x: np.ndarray
    y: np.ndarray
    uncertainty: np.ndarray | None = None
    source: str = ""
    units: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.frame.shape[0])

    @property
    def frame_range(self) -> tuple[int, int]:
        """First and last raw frame present (1-based)."""
        if len(self) == 0:
            return (1, 0)
        return int(self.frame.min()), int(self.frame.max())


def _parse_header(line: str) -> list[tuple[str, str | None]]:
    cols = []
    for raw in line.strip().lstrip("\ufeff").split(","):
        label = raw.strip().strip('"').strip("'").strip()
        m = _HEADER_RE.match(label)
        if not m:
            cols.append((label.lower(), None))
            continue
        name, unit = m.group(1).strip().lower(), m.group(2)
        cols.append((name, unit.strip() if unit is not None else None))
    return cols


def _to_nm(values: np.ndarray, unit: str | None, column: str, camera_pixel: float | None,
           path: str) -> np.ndarray:
    if unit is None:
        unit = "nm"  # plain frame,x,y tables are in nm (documented)
    u = unit.lower().replace("μ", "µ")
    if u not in LENGTH_UNITS:
        raise DBlinkError(f"{path}: column '{column} [{unit}]' has an unknown unit "
                          f"(expected nm, µm/um or px)")
    scale = LENGTH_UNITS[u]
    if scale is None:  # camera pixels
        if camera_pixel is None:
            raise DBlinkError(f"{path}: column '{column} [px]' is in camera pixels; "
                              f"give the camera pixel size with --camera-pixel NM")
        if not camera_pixel > 0:
            raise DBlinkError(f"--camera-pixel must be > 0 nm, got {camera_pixel}")
        scale = float(camera_pixel)
    return values * scale


def read_localizations(path: str | os.PathLike, camera_pixel: float | None = None) -> Localizations:
    """Read a ThunderSTORM CSV export (or a plain ``frame,x,y`` CSV in nm).

    Columns are found by header name and unit, in any order; quoted or unquoted labels; the ``id``,
    ``z``, ``sigma``, ``intensity``, ``chi2``, ``detections`` and unknown columns are ignored.
    ``x [px]`` needs ``camera_pixel`` (nm per camera pixel).

    Raises:
        DBlinkError: with a one-line message naming the file and what is wrong.
    """
    path = str(path)
    p = Path(path)
    if not p.is_file():
        raise DBlinkError(f"{path}: no such file")
    with open(p, "r", encoding="utf-8", errors="replace") as fh:
        header = fh.readline()
    if not header.strip():
        raise DBlinkError(f"{path}: empty file (expected a ThunderSTORM CSV header)")
    cols = _parse_header(header)
    names = [c[0] for c in cols]
    wanted = {}
    for key in ("frame", "x", "y"):
        if key not in names:
            raise DBlinkError(f"{path}: no '{key}' column in the header (found: "
                              f"{', '.join(n for n in names[:12])})")
        wanted[key] = names.index(key)
    unc_idx = None
    for key in ("uncertainty_xy", "uncertainty"):
        if key in names:
            unc_idx = names.index(key)
            break
    usecols = [wanted["frame"], wanted["x"], wanted["y"]] + ([unc_idx] if unc_idx is not None else [])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "input contained no data": handled below
            data = np.loadtxt(p, delimiter=",", skiprows=1, usecols=usecols, dtype=np.float64,
                              ndmin=2, encoding="utf-8", quotechar='"')
    except ValueError as exc:
        raise DBlinkError(f"{path}: cannot read the numeric columns ({exc})") from None
    if data.shape[0] == 0:
        raise DBlinkError(f"{path}: the table has a header but no localizations")
    frame_f = data[:, 0]
    bad = ~np.isfinite(data[:, :3]).all(axis=1)
    if bad.any():
        row = int(np.flatnonzero(bad)[0]) + 2
        raise DBlinkError(f"{path}: line {row}: frame/x/y is not a finite number")
    if (frame_f < 1).any() or (frame_f != np.round(frame_f)).any():
        row = int(np.flatnonzero((frame_f < 1) | (frame_f != np.round(frame_f)))[0]) + 2
        raise DBlinkError(f"{path}: line {row}: frame must be a whole number >= 1 "
                          f"(ThunderSTORM frames are 1-based)")
    units = {"x": cols[wanted["x"]][1] or "nm", "y": cols[wanted["y"]][1] or "nm"}
    x = _to_nm(data[:, 1], cols[wanted["x"]][1], "x", camera_pixel, path)
    y = _to_nm(data[:, 2], cols[wanted["y"]][1], "y", camera_pixel, path)
    unc = None
    if unc_idx is not None:
        unc = _to_nm(data[:, 3], cols[unc_idx][1], names[unc_idx], camera_pixel, path)
    return Localizations(frame=frame_f.astype(np.int64), x=x, y=y, uncertainty=unc,
                         source=path, units=units)


def write_localizations(path: str | os.PathLike, locs: Localizations) -> None:
    """Write a ThunderSTORM-style CSV (quoted header, ``id, frame, x [nm], y [nm], uncertainty [nm]``)."""
    n = len(locs)
    cols = [np.arange(1, n + 1), locs.frame, locs.x, locs.y]
    header = '"id","frame","x [nm]","y [nm]"'
    fmt = ["%d", "%d", "%.3f", "%.3f"]
    if locs.uncertainty is not None:
        cols.append(locs.uncertainty)
        header += ',"uncertainty [nm]"'
        fmt.append("%.3f")
    table = np.column_stack([np.asarray(c, dtype=np.float64) for c in cols])
    with atomic_output(path) as tmp:
        np.savetxt(tmp, table, delimiter=",", fmt=fmt, header=header, comments="")


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, overwrite: bool = True) -> Iterator[str]:
    """Yield a temporary path in the target folder; rename it to ``path`` only on success.

    On any exception (including KeyboardInterrupt) the temporary file is removed, so a file at
    ``path`` is always complete.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise DBlinkError(f"{path}: already exists (use --overwrite to replace it)")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise DBlinkError(f"{path}: the output folder {folder} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=folder)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; outputs get the usual permissions
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_hyperstack(path: str | os.PathLike, channels: list[np.ndarray], channel_names: list[str],
                     pixel_size_nm: float, frames_per_step: int, exposure_s: float | None = None,
                     origin_nm: tuple[float, float] = (0.0, 0.0), info: dict | None = None,
                     overwrite: bool = True) -> None:
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
    """
    import tifffile

    data = np.stack([np.asarray(c, dtype=np.float32) for c in channels], axis=1)  # T, C, Y, X
    T, C = data.shape[:2]
    px_um = pixel_size_nm / 1000.0
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
    ranges = []
    for c in range(C):
        lo, hi = float(np.nanmin(data[:, c])), float(np.nanmax(data[:, c]))
        ranges += [lo, hi if hi > lo else lo + 1.0]
    meta["Ranges"] = tuple(ranges)
    with atomic_output(path, overwrite=overwrite) as tmp:
        tifffile.imwrite(tmp, data, imagej=True, resolution=(1.0 / px_um, 1.0 / px_um),
                         metadata=meta)


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
