"""Every common localization format in: detected by content and extension, units checked and stated.

:func:`read_input` is what ``dblink reconstruct``, ``dblink suggest`` and the Fiji plugin call for
a path. It returns a :class:`~.tables.Localizations` (nm, 1-based frames) for tables, or a
:class:`MapStack` for a stack of localization maps (which bypasses rendering: its frames are
summed into steps and handed straight to the engine).

| format | recognised by | coordinates | frames |
|---|---|---|---|
| ThunderSTORM CSV | any other text table | header units (``x [nm]``, ``[µm]``, ``[px]``), plain = nm | 1-based |
| Picasso HDF5 | HDF5 with a ``locs`` table (+ ``.yaml`` beside it) | camera px × the yaml's ``Pixelsize`` or ``--camera-pixel`` | 0-based |
| DECODE HDF5 | HDF5 with ``data/xyz`` and ``data/frame_ix`` | ``meta`` ``xy_unit`` (px × ``px_size``, or nm) | 0-based |
| DECODE CSV | first line ``# DECODE EmitterSet`` | as DECODE HDF5 (from the third line's JSON) | 0-based |
| SMAP HDF5 / ``_sml.mat`` (v7.3) | HDF5 with ``saveloc/loc`` | ``xnm``, ``ynm`` (nm) | 1-based |
| SMAP CSV | header with ``xnm`` and ``ynm`` | nm | 1-based |
| ShareLoc ``.smlm`` | zip with ``manifest.json`` | manifest ``units`` (nm default, ``um``, ``px``) | as stored (0 → 0-based) |
| any CSV | ``--columns frame=F,x=X,y=Y[,uncertainty=U][,unit=nm\\|um\\|px][,base=0\\|1]`` | ``unit`` or header units | ``base`` (default 1) |
| map stack (TIFF T×H×W) | ``.tif``/``.tiff`` or TIFF bytes | pixel size from the TIFF calibration or ``--pixel-size`` | one map per raw frame |

HDF5 needs the optional ``h5py`` (``pip install "dblink[hdf5]"``); without it an HDF5 file is
refused with one line that says so. Every refusal is one :class:`~.errors.DBlinkError` line.
"""
from __future__ import annotations

import json
import math
import os
import re
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np

from .errors import DBlinkError, first_line
from .files import input_file, path_errors
from .tables import ColumnSpec, Localizations, read_localizations

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
ZIP_MAGIC = b"PK\x03\x04"
TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
TIFF_EXTENSIONS = (".tif", ".tiff")
#: a .smlm manifest larger than this is refused (it is a small JSON text)
MAX_MANIFEST_BYTES = 4 * 2**20

DECODE_CSV_FIRST_LINE = "# DECODE EmitterSet"
SMAP_CSV = ColumnSpec(frame="frame", x="xnm", y="ynm", uncertainty=("locprecnm",), unit="nm",
                      frame_base=1, name="SMAP")

NM_PER = {"nm": 1.0, "um": 1000.0, "µm": 1000.0, "μm": 1000.0, "micron": 1000.0,
          "microns": 1000.0, "mm": 1e6, "angstrom": 0.1}


def _warn_default(msg: str) -> None:
    import warnings
    warnings.warn(msg, UserWarning, stacklevel=3)


# ----------------------------------------------------------------------------- detection
def detect(path: str | os.PathLike) -> str:
    """The format of a file: ``thunderstorm``, ``decode-csv``, ``smap-csv``, ``hdf5`` (Picasso,
    DECODE or SMAP: told apart by :func:`read_hdf5`), ``smlm``, ``zip`` (not ``.smlm``) or
    ``maps`` (a TIFF), from its first bytes and its extension."""
    p = Path(path)
    with open(p, "rb") as fh:
        head = fh.read(1024)
    ext = p.suffix.lower()
    if head.startswith(HDF5_MAGIC) or head[512:520] == HDF5_MAGIC:
        return "hdf5"
    if head.startswith(TIFF_MAGICS):
        return "maps"
    if head.startswith(ZIP_MAGIC):
        return "smlm" if ext == ".smlm" or _has_manifest(p) else "zip"
    if ext == ".mat":
        raise DBlinkError(f"{path}: a MATLAB .mat file older than v7.3 (not HDF5); save SMAP's "
                          f"localizations as _sml.mat with -v7.3, or export them as CSV")
    if ext in (".hdf5", ".h5", ".smlm") or ext in TIFF_EXTENSIONS:
        # the extension promises a binary format the bytes do not hold
        want = {".hdf5": "an HDF5 file", ".h5": "an HDF5 file",
                ".smlm": "a zip archive (.smlm)"}.get(ext, "a TIFF")
        raise DBlinkError(f"{path}: the extension says {want.split(' ', 1)[1]}, but the file is "
                          f"not {want}{' (it is empty)' if not head else ''}")
    text = head.lstrip(b"\xef\xbb\xbf").decode("latin-1")
    first = text.split("\n", 1)[0].strip()
    if first.startswith(DECODE_CSV_FIRST_LINE):
        return "decode-csv"
    header = {c.strip().strip('"').strip().lower() for c in re.split(r"[,;\t]", first)}
    if {"xnm", "ynm"} <= header:
        return "smap-csv"
    return "thunderstorm"


def _has_manifest(p: Path) -> bool:
    try:
        with zipfile.ZipFile(p) as zf:
            return "manifest.json" in zf.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return False


# ----------------------------------------------------------------------------- entry point
@path_errors
def read_input(path: str | os.PathLike, camera_pixel: float | None = None,
               warn: Callable[[str], None] | None = None, columns: str | None = None,
               pixel_size: float | None = None) -> "Localizations | MapStack":
    """Read any supported localization file (see the module docstring).

    Args:
        path: the file.
        camera_pixel: nm per camera pixel, for tables in camera pixels (overrides a pixel size
            stored with the file, e.g. Picasso's yaml; a difference is reported).
        warn: receives one-line notes (units assumed, columns ignored, frames shifted).
        columns: a ``--columns`` spec for a CSV of any other tool (see :func:`parse_columns`).
        pixel_size: for a map stack, its pixel size in nm (overrides the TIFF calibration).

    Raises:
        DBlinkError: one line naming the file and what is wrong.
    """
    warn = warn or _warn_default
    p = input_file(path, "table")
    kind = detect(p)
    if columns:
        if kind in ("hdf5", "smlm", "zip", "maps"):
            raise DBlinkError(f"{path}: --columns is for CSV tables; this file is "
                              f"{_KIND_NAMES[kind]}")
        return read_localizations(p, camera_pixel, warn=warn, spec=parse_columns(columns))
    if kind == "thunderstorm":
        return read_localizations(p, camera_pixel, warn=warn)
    if kind == "smap-csv":
        warn(f"{path}: SMAP CSV (frame, xnm, ynm in nm, frames 1-based)")
        return read_localizations(p, camera_pixel, warn=warn, spec=SMAP_CSV)
    if kind == "decode-csv":
        return read_decode_csv(p, camera_pixel, warn)
    if kind == "hdf5":
        return read_hdf5(p, camera_pixel, warn)
    if kind == "smlm":
        return read_smlm(p, camera_pixel, warn)
    if kind == "zip":
        raise DBlinkError(f"{path}: a zip archive without manifest.json is not a ShareLoc .smlm "
                          f"file (an Excel .xlsx? export the table as CSV)")
    return MapStack.open(p, pixel_size, warn)


_KIND_NAMES = {"hdf5": "HDF5", "smlm": "a ShareLoc .smlm archive", "zip": "a zip archive",
               "maps": "a TIFF (a map stack)"}


def read_table(path: str | os.PathLike, camera_pixel: float | None = None,
               warn: Callable[[str], None] | None = None,
               columns: str | None = None) -> Localizations:
    """:func:`read_input` for a localization table (a map stack is refused: it has no
    localizations to measure)."""
    got = read_input(path, camera_pixel, warn, columns)
    if isinstance(got, MapStack):
        raise DBlinkError(f"{path}: a map stack (TIFF), not a localization table")
    return got


# ----------------------------------------------------------------------------- --columns
_COLUMN_KEYS = ("frame", "x", "y", "uncertainty", "unit", "base")


def parse_columns(text: str) -> ColumnSpec:
    """``frame=F,x=X,y=Y[,uncertainty=U][,unit=nm|um|px][,base=0|1]`` → a :class:`ColumnSpec`.

    Names are header names (without or with their ``[unit]``), case-insensitive. ``unit`` is the
    unit of x, y and the uncertainty when the headers carry none (default nm); ``base`` the number
    of the first raw frame (default 1)."""
    spec: dict = {}
    for part in str(text).split(","):
        if not part.strip():
            continue
        key, eq, value = part.partition("=")
        key, value = key.strip().lower(), value.strip()
        if not eq or not value:
            raise DBlinkError(f"--columns: '{part.strip()}' is not KEY=NAME (e.g. "
                              f"frame=Frame,x=X_nm,y=Y_nm)")
        if key not in _COLUMN_KEYS:
            raise DBlinkError(f"--columns: unknown key '{key}' (keys: {', '.join(_COLUMN_KEYS)})")
        if key in spec:
            raise DBlinkError(f"--columns: '{key}' is given twice")
        spec[key] = value
    missing = [k for k in ("frame", "x", "y") if k not in spec]
    if missing:
        raise DBlinkError(f"--columns needs frame=, x= and y= (missing: {', '.join(missing)})")
    unit = spec.get("unit")
    if unit is not None:
        u = unit.lower().replace("μ", "µ")
        if u not in ("nm", "um", "µm", "micron", "px"):
            raise DBlinkError(f"--columns: unit must be nm, um or px, got '{unit}'")
        unit = u
    base = spec.get("base", "1")
    if base not in ("0", "1"):
        raise DBlinkError(f"--columns: base must be 0 or 1 (the first raw frame's number), got '{base}'")
    unc = (spec["uncertainty"],) if "uncertainty" in spec else ()
    return ColumnSpec(frame=spec["frame"], x=spec["x"], y=spec["y"], uncertainty=unc, unit=unit,
                      frame_base=int(base), name="--columns")


# ----------------------------------------------------------------------------- arrays → table
def _from_arrays(path: Path, fmt: str, frame, x, y, unc=None, base: int = 1,
                 units: dict | None = None) -> Localizations:
    """Checked :class:`Localizations` from columns read out of a binary file (``base``: the
    number the format gives the first raw frame)."""
    try:
        frame = np.asarray(frame, dtype=np.float64).reshape(-1)
        x = np.asarray(x, dtype=np.float64).reshape(-1)
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        unc = None if unc is None else np.asarray(unc, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise DBlinkError(f"{path}: {fmt}: a column is not numeric ({exc})") from None
    n = frame.size
    if n == 0:
        raise DBlinkError(f"{path}: {fmt}: the file holds no localizations")
    if x.size != n or y.size != n or (unc is not None and unc.size != n):
        raise DBlinkError(f"{path}: {fmt}: the columns differ in length (frame {n}, x {x.size}, "
                          f"y {y.size}{'' if unc is None else f', uncertainty {unc.size}'})")
    bad = ~((frame >= base) & (frame <= 2**53) & (frame == np.floor(frame)))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DBlinkError(f"{path}: {fmt}: localization {i + 1}: frame {float(frame[i]):g} is not a whole "
                          f"number from {base} ({fmt} frames are {base}-based)")
    bad = ~(np.isfinite(x) & np.isfinite(y))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DBlinkError(f"{path}: {fmt}: localization {i + 1}: position ({float(x[i]):g}, {float(y[i]):g}) "
                          f"is not finite")
    if unc is not None and not np.isfinite(unc).any():
        unc = None
    return Localizations(frame=(frame + (1 - base)).astype(np.int64), x=x, y=y, uncertainty=unc,
                         source=str(path), units=units or {"x": "nm", "y": "nm"})


def _camera_pixel(path: Path, fmt: str, stored: float | None, given: float | None, where: str,
                  warn: Callable[[str], None]) -> float:
    """nm per camera pixel: ``--camera-pixel`` if given (a different stored value is reported),
    else the file's; neither: a one-line error."""
    if stored is not None and not (isinstance(stored, (int, float)) and math.isfinite(stored)
                                   and stored > 0):
        raise DBlinkError(f"{path}: {fmt}: the pixel size in {where} is {stored!r}, not a positive "
                          f"number of nm; give it with --camera-pixel NM")
    if given is not None:
        if stored is not None and abs(float(stored) - given) > 1e-6 * given:
            warn(f"{path}: --camera-pixel {given:g} nm used; {where} says {float(stored):g} nm")
        return float(given)
    if stored is None:
        raise DBlinkError(f"{path}: {fmt}: positions are in camera pixels and {where} gives no "
                          f"pixel size; give it with --camera-pixel NM")
    return float(stored)


# ----------------------------------------------------------------------------- DECODE CSV
def read_decode_csv(path: Path, camera_pixel: float | None,
                    warn: Callable[[str], None]) -> Localizations:
    """A DECODE emitter CSV (``EmitterSet.save(...csv)``): three comment lines (``# DECODE
    EmitterSet``, DECODE's version JSON, the emitters' metadata JSON with ``xy_unit`` and
    ``px_size``), then columns ``x, y, z, phot, frame_ix, ...`` (``x_sig``: the uncertainty);
    frames 0-based."""
    with open(path, "rb") as fh:
        lines = [fh.readline(MAX_MANIFEST_BYTES).decode("utf-8", "replace") for _ in range(3)]
    meta: dict = {}
    try:
        meta = json.loads(lines[2].strip().lstrip("#").strip()) if lines[2].startswith("#") else {}
    except json.JSONDecodeError:
        meta = {}
    if not isinstance(meta, dict):
        meta = {}
    unit = meta.get("xy_unit")
    if unit is None:
        raise DBlinkError(f"{path}: DECODE CSV: line 3 holds no emitter metadata with 'xy_unit' "
                          f"(px or nm); the file is not as DECODE writes it")
    if unit not in ("px", "nm"):
        raise DBlinkError(f"{path}: DECODE CSV: xy_unit '{unit}' is not px or nm")
    px = None
    if unit == "px":
        size = meta.get("px_size")
        stored = _px_size(size)
        if stored is not None and stored[0] != stored[1]:
            raise DBlinkError(f"{path}: DECODE CSV: non-square camera pixels ({stored[0]:g} x "
                              f"{stored[1]:g} nm) are not supported")
        px = _camera_pixel(path, "DECODE CSV", None if stored is None else stored[0], camera_pixel,
                           "its px_size", warn)
    warn(f"{path}: DECODE CSV (x, y in {unit}{f' x {px:g} nm' if px else ''}, frame_ix 0-based)")
    spec = ColumnSpec(frame="frame_ix", x="x", y="y", uncertainty=("x_sig",), unit=unit,
                      frame_base=0, skip_comments=True, name="DECODE")
    return read_localizations(path, px, warn=warn, spec=spec)


def _px_size(value) -> tuple[float, float] | None:
    """DECODE's ``px_size`` ([x, y] nm, or one number) as two floats, or None."""
    if value is None:
        return None
    try:
        v = [float(a) for a in np.asarray(value, dtype=np.float64).reshape(-1)]
    except (TypeError, ValueError):
        return None
    if len(v) == 1:
        v = v * 2
    if len(v) != 2 or not all(math.isfinite(a) and a > 0 for a in v):
        return None
    return (v[0], v[1])


# ----------------------------------------------------------------------------- HDF5
def _h5py():
    try:
        import h5py
    except ImportError:
        raise DBlinkError("reading HDF5 files needs h5py, which is not installed: "
                          "pip install \"dblink[hdf5]\" (or pip install h5py)") from None
    return h5py


def read_hdf5(path: Path, camera_pixel: float | None, warn: Callable[[str], None]) -> Localizations:
    """A Picasso, DECODE or SMAP HDF5 file, told apart by its contents."""
    h5py = _h5py()
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise DBlinkError(f"{path}: not a readable HDF5 file ({first_line(exc)})") from None
    with f:
        try:
            if "locs" in f:
                return _read_picasso(path, f, camera_pixel, warn)
            if "data" in f and isinstance(f["data"], h5py.Group) and "xyz" in f["data"]:
                return _read_decode_h5(path, f, camera_pixel, warn)
            if "saveloc" in f:
                return _read_smap_h5(path, f, warn)
        except (KeyError, ValueError, TypeError, OSError) as exc:
            raise DBlinkError(f"{path}: cannot read the HDF5 localizations "
                              f"({type(exc).__name__}: {first_line(exc)})") from None
        keys = ", ".join(list(f.keys())[:8]) or "nothing"
        raise DBlinkError(f"{path}: an HDF5 file, but not Picasso ('locs'), DECODE ('data/xyz') or "
                          f"SMAP ('saveloc/loc') localizations (it holds: {keys})")


def _read_picasso(path: Path, f, camera_pixel: float | None,
                  warn: Callable[[str], None]) -> Localizations:
    """Picasso (``picasso.io.save_locs``): a table ``locs`` with fields ``frame`` (0-based),
    ``x``, ``y`` (camera pixels), ``lpx``, ``lpy`` (precision, px); the camera pixel size is the
    ``Pixelsize`` (nm) of the ``.yaml`` written beside it."""
    locs = f["locs"]
    names = locs.dtype.names or ()
    missing = [k for k in ("frame", "x", "y") if k not in names]
    if missing:
        raise DBlinkError(f"{path}: Picasso: the 'locs' table has no {', '.join(missing)} field "
                          f"(fields: {', '.join(names) or 'none'})")
    stored, where = _picasso_pixel(path, warn)
    px = _camera_pixel(path, "Picasso", stored, camera_pixel, where, warn)
    data = locs[()]
    unc = None
    if "lpx" in names and "lpy" in names:
        unc = 0.5 * (np.asarray(data["lpx"], np.float64) + np.asarray(data["lpy"], np.float64)) * px
    warn(f"{path}: Picasso HDF5 (x, y in camera pixels x {px:g} nm, frames 0-based)")
    return _from_arrays(path, "Picasso", data["frame"], np.asarray(data["x"], np.float64) * px,
                        np.asarray(data["y"], np.float64) * px, unc, base=0,
                        units={"x": "px", "y": "px"})


def _picasso_pixel(path: Path, warn: Callable[[str], None]) -> tuple[float | None, str]:
    """The ``Pixelsize`` of the Picasso ``.yaml`` beside ``path`` (None when there is none)."""
    yml = path.with_suffix(".yaml")
    where = f"{yml.name} (Pixelsize)"
    if not yml.is_file():
        return None, f"no {yml.name} beside it"
    text = yml.read_text(encoding="utf-8", errors="replace")
    docs = []
    try:
        import yaml
        docs = [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]
    except ImportError:  # Picasso's yaml is "key: value" documents: read those lines
        docs = [dict(m.groups() for m in re.finditer(r"(?m)^(\w[\w .]*?):\s*(.+?)\s*$", text))]
    except Exception as exc:  # noqa: BLE001 - any YAML syntax error
        raise DBlinkError(f"{yml}: not readable YAML ({first_line(exc, 100)})") from None
    for d in docs:
        for key in ("Pixelsize", "pixelsize", "Pixel size"):
            if key in d:
                try:
                    return float(d[key]), where
                except (TypeError, ValueError):
                    return d[key], where  # reported by _camera_pixel
    return None, f"{yml.name} (no Pixelsize in it)"


def _read_decode_h5(path: Path, f, camera_pixel: float | None,
                    warn: Callable[[str], None]) -> Localizations:
    """DECODE (``EmitterSet.save(...h5)``): ``data/xyz`` (N × 3), ``data/frame_ix`` (0-based),
    ``data/xyz_sig`` (uncertainty, may be empty); ``meta`` attributes ``xy_unit`` (px or nm) and
    ``px_size`` ([x, y] nm)."""
    d = f["data"]
    meta = dict(f["meta"].attrs) if "meta" in f else {}
    unit = meta.get("xy_unit")
    if isinstance(unit, bytes):
        unit = unit.decode()
    if unit not in ("px", "nm"):
        raise DBlinkError(f"{path}: DECODE: meta attribute xy_unit is {unit!r}, not px or nm")
    if "frame_ix" not in d:
        raise DBlinkError(f"{path}: DECODE: no data/frame_ix")
    xyz = d["xyz"]
    if xyz.shape is None or len(xyz.shape) != 2 or xyz.shape[1] < 2:
        raise DBlinkError(f"{path}: DECODE: data/xyz has shape {xyz.shape}, not N x 3")
    xyz = xyz[()]
    sx = sy = 1.0
    if unit == "px":
        stored = _px_size(meta.get("px_size"))
        sx = _camera_pixel(path, "DECODE", None if stored is None else stored[0], camera_pixel,
                           "its meta px_size", warn)
        sy = sx if (stored is None or camera_pixel is not None) else stored[1]
    unc = None
    if "xyz_sig" in d and d["xyz_sig"].shape is not None and len(d["xyz_sig"].shape) == 2:
        sig = d["xyz_sig"][()]
        unc = 0.5 * (sig[:, 0] * sx + sig[:, 1] * sy)
    warn(f"{path}: DECODE HDF5 (x, y in {unit}{f' x {sx:g} nm' if unit == 'px' else ''}, "
         f"frame_ix 0-based)")
    return _from_arrays(path, "DECODE", d["frame_ix"][()], xyz[:, 0] * sx, xyz[:, 1] * sy, unc,
                        base=0, units={"x": unit, "y": unit})


def _read_smap_h5(path: Path, f, warn: Callable[[str], None]) -> Localizations:
    """SMAP (``_sml.mat`` saved as MATLAB v7.3, i.e. HDF5): ``saveloc/loc/frame`` (1-based),
    ``xnm``, ``ynm``, ``locprecnm`` (each 1 × N or N × 1)."""
    loc = f["saveloc"]["loc"] if "loc" in f["saveloc"] else None
    if loc is None:
        raise DBlinkError(f"{path}: SMAP: no saveloc/loc group")
    missing = [k for k in ("frame", "xnm", "ynm") if k not in loc]
    if missing:
        raise DBlinkError(f"{path}: SMAP: saveloc/loc has no {', '.join(missing)}")
    unc = loc["locprecnm"][()] if "locprecnm" in loc else None
    warn(f"{path}: SMAP HDF5 (xnm, ynm in nm, frames 1-based)")
    return _from_arrays(path, "SMAP", loc["frame"][()], loc["xnm"][()], loc["ynm"][()], unc, base=1)


# ----------------------------------------------------------------------------- ShareLoc .smlm
_SMLM_DTYPES = {"uint8": "<u1", "uint16": "<u2", "uint32": "<u4", "uint64": "<u8", "int8": "<i1",
                "int16": "<i2", "int32": "<i4", "int64": "<i8", "float32": "<f4", "float64": "<f8"}


def read_smlm(path: Path, camera_pixel: float | None, warn: Callable[[str], None]) -> Localizations:
    """A ShareLoc ``.smlm`` file (format 0.2): a zip with ``manifest.json`` that describes binary
    tables (``headers``, ``dtype``, ``shape``, ``units``; rows of packed little-endian values).
    The first table is read; ``x``, ``y`` and ``frame`` are needed; ``z`` is left out (2-D)."""
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DBlinkError(f"{path}: not a readable .smlm (zip) file ({exc})") from None
    with zf:
        manifest = _smlm_manifest(path, zf)
        fi, fmt = _smlm_table(path, manifest, warn)
        try:
            rows = int(fi.get("rows"))
        except (TypeError, ValueError):
            raise DBlinkError(f"{path}: the .smlm manifest gives no row count") from None
        rec = _smlm_record(path, fmt)
        data = _smlm_rows(path, zf, fi, rec, rows)
    names = list(rec.names)
    offsets = fi.get("offset") if isinstance(fi.get("offset"), dict) else {}

    def col(name: str) -> np.ndarray:
        v = np.asarray(data[name], dtype=np.float64)
        try:
            return v + float(offsets.get(name, 0) or 0)
        except (TypeError, ValueError):
            raise DBlinkError(f"{path}: .smlm offset of '{name}' is not a number") from None

    unit_of = dict(zip(names, fmt.get("units") or [""] * len(names)))
    scale = {c: _smlm_scale(path, c, unit_of.get(c), camera_pixel, warn) for c in ("x", "y")}
    frame = col("frame")
    base = 1
    if frame.size and frame.min() == 0:
        base = 0
        warn(f"{path}: the .smlm frames start at 0: taken as 0-based")
    if "z" in names and np.ptp(col("z")) > 0:
        warn(f"{path}: the .smlm table has z; dblink is 2-D and uses x and y only")
    unc = None
    for c in ("x_precision", "uncertainty", "uncertainty_xy"):
        if c in names:
            u = str(unit_of.get(c) or unit_of.get("x") or "nm").lower()
            unc = col(c) * (scale["x"] if u in ("px", "pixel") else NM_PER.get(u, 1.0))
            break
    warn(f"{path}: ShareLoc .smlm (x, y in {unit_of.get('x') or 'nm'}, frames {base}-based)")
    return _from_arrays(path, ".smlm", frame, col("x") * scale["x"], col("y") * scale["y"], unc,
                        base=base, units={"x": str(unit_of.get("x") or "nm"),
                                          "y": str(unit_of.get("y") or "nm")})


def _smlm_manifest(path: Path, zf: zipfile.ZipFile) -> dict:
    """The archive's ``manifest.json`` (at most :data:`MAX_MANIFEST_BYTES`), format version 0.x."""
    try:
        info = zf.getinfo("manifest.json")
    except KeyError:
        raise DBlinkError(f"{path}: no manifest.json in the .smlm archive") from None
    if info.file_size > MAX_MANIFEST_BYTES:
        raise DBlinkError(f"{path}: manifest.json is {info.file_size:,} bytes, not a manifest")
    try:
        manifest = json.loads(zf.read(info).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, zipfile.BadZipFile, OSError) as exc:
        raise DBlinkError(f"{path}: manifest.json is not valid JSON ({first_line(exc, 100)})") from None
    if not isinstance(manifest, dict):
        raise DBlinkError(f"{path}: manifest.json is not a JSON object")
    version = str(manifest.get("format_version", "?"))
    if not version.startswith("0."):
        raise DBlinkError(f"{path}: .smlm format_version {version} is not supported (0.x)")
    return manifest


def _smlm_table(path: Path, manifest: dict, warn: Callable[[str], None]) -> tuple[dict, dict]:
    """The manifest's first table (file entry) and its binary format, whose ``headers``,
    ``dtype``, ``shape`` and ``units`` lists have one entry per column."""
    files = manifest.get("files") if isinstance(manifest.get("files"), list) else []
    tables = [fi for fi in files if isinstance(fi, dict) and fi.get("type") == "table"]
    if not tables:
        raise DBlinkError(f"{path}: the .smlm manifest lists no localization table")
    if len(tables) > 1:
        warn(f"{path}: {len(tables)} tables in the .smlm file; the first "
             f"({tables[0].get('name')}, channel {tables[0].get('channel', '?')}) is used")
    fi = tables[0]
    formats = manifest.get("formats") if isinstance(manifest.get("formats"), dict) else {}
    fmt = formats.get(fi.get("format"))
    if not isinstance(fmt, dict):
        raise DBlinkError(f"{path}: the .smlm manifest has no format '{fi.get('format')}'")
    if fmt.get("mode") != "binary":
        raise DBlinkError(f"{path}: .smlm table mode '{fmt.get('mode')}' is not supported "
                          f"(binary)")
    headers, dtypes = fmt.get("headers") or [], fmt.get("dtype") or []
    shapes = fmt.get("shape") or [1] * len(headers)
    units = fmt.get("units") or [""] * len(headers)
    if not (len(headers) == len(dtypes) == len(shapes) == len(units)) or not headers:
        raise DBlinkError(f"{path}: the .smlm format's headers, dtype, shape and units differ in "
                          f"length")
    return fi, fmt


def _smlm_record(path: Path, fmt: dict) -> np.dtype:
    """The NumPy record type of one row (packed, little-endian); ``x``, ``y`` and ``frame`` needed."""
    headers = fmt.get("headers") or []
    fields = []
    for h, dt, sh in zip(headers, fmt.get("dtype") or [], fmt.get("shape") or [1] * len(headers)):
        if dt not in _SMLM_DTYPES:
            raise DBlinkError(f"{path}: .smlm column '{h}' has an unknown dtype '{dt}'")
        shape = tuple(sh) if isinstance(sh, list) else ()
        if not isinstance(sh, list) and sh != 1:
            raise DBlinkError(f"{path}: .smlm column '{h}' has shape {sh!r}")
        fields.append((str(h), _SMLM_DTYPES[dt], shape) if shape else (str(h), _SMLM_DTYPES[dt]))
    try:
        rec = np.dtype(fields)
    except (TypeError, ValueError) as exc:
        raise DBlinkError(f"{path}: .smlm columns cannot be laid out ({exc})") from None
    names = list(rec.names)
    for need in ("x", "y", "frame"):
        if need not in names:
            raise DBlinkError(f"{path}: the .smlm table has no '{need}' column "
                              f"(columns: {', '.join(names[:12])})")
    return rec


def _smlm_rows(path: Path, zf: zipfile.ZipFile, fi: dict, rec: np.dtype, rows: int) -> np.ndarray:
    """The table's ``rows`` records, read from its archive member (whose size must match)."""
    try:
        member = zf.getinfo(str(fi.get("name")))
    except KeyError:
        raise DBlinkError(f"{path}: the .smlm table {fi.get('name')!r} is not in the archive") from None
    if rows < 1 or member.file_size != rows * rec.itemsize:
        raise DBlinkError(f"{path}: the .smlm table {member.filename} holds {member.file_size:,} "
                          f"bytes, not {rows:,} rows of {rec.itemsize} bytes")
    try:
        return np.frombuffer(zf.read(member), dtype=rec, count=rows)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise DBlinkError(f"{path}: cannot read the .smlm table ({first_line(exc, 100)})") from None


def _smlm_scale(path: Path, column: str, unit, camera_pixel: float | None,
                warn: Callable[[str], None]) -> float:
    """nm per unit of a coordinate column (no unit: nm; px needs the camera pixel size)."""
    u = str(unit or "nm").lower()
    if u in ("px", "pixel", "pixels"):
        return _camera_pixel(path, ".smlm", None, camera_pixel, "its manifest", warn)
    if u in NM_PER:
        return NM_PER[u]
    raise DBlinkError(f"{path}: .smlm column '{column}' has unit '{unit}' (expected nm, um or px)")


# ----------------------------------------------------------------------------- map stacks
@dataclass
class MapStack:
    """A stack of localization maps (TIFF, T × H × W; e.g. Deep-STORM's output): one map per raw
    frame, on a grid of ``pixel_size`` nm whose top-left corner is ``origin`` (nm, camera
    coordinates). It bypasses rendering: :meth:`steps` sums ``frames_per_step`` maps into a step.

    Attributes:
        source: the file.
        pixel_size: nm per map pixel (from the TIFF calibration, or given).
        n_frames, height, width: the stack's shape.
        origin: (x0, y0) in nm.
        total: the sum of all map values (localizations, when the maps hold counts).
        calibration: where the pixel size came from, for the report.
    """

    source: str
    pixel_size: float
    n_frames: int
    height: int
    width: int
    origin: tuple = (0.0, 0.0)
    total: float = 0.0
    calibration: str = ""
    _array: object = None
    last: int | None = None

    @property
    def frame_range(self) -> tuple[int, int]:
        """First and last raw frame (1-based), as :attr:`Localizations.frame_range`."""
        return (1, self.n_frames if self.last is None else min(self.last, self.n_frames))

    def __len__(self) -> int:
        return self.frame_range[1]

    def until(self, last_frame: int) -> "MapStack":
        """The stack up to raw frame ``last_frame`` (``--last-frame``)."""
        return replace(self, last=int(last_frame))

    def grid(self, pixel_size: float | None = None):
        """The stack's own render grid (:class:`~.render.Grid`)."""
        from .render import Grid
        p = self.pixel_size
        return Grid(self.origin[0], self.origin[1], self.width * p, self.height * p, p)

    def frames(self, a: int, b: int) -> np.ndarray:
        """Raw frames [a, b) (0-based) as float32 (b − a, H, W)."""
        return np.asarray(self._array[a:b], dtype=np.float32)

    def steps(self, grid, frames_per_step: int, first_frame: int = 1,
              n_steps: int | None = None) -> "MapSteps":
        """A step source for the engine on ``grid`` (a ROI of the stack at its pixel size)."""
        return MapSteps(self, grid, frames_per_step, first_frame, n_steps)

    @classmethod
    def open(cls, path: str | os.PathLike, pixel_size: float | None = None,
             warn: Callable[[str], None] | None = None) -> "MapStack":
        """Open a TIFF map stack (memory-mapped when uncompressed) and check it: 3-D after
        dropping axes of length 1, at least 2 frames, finite values ≥ 0, a pixel size."""
        warn = warn or _warn_default
        path = Path(path)
        shape, unit_px, origin_px = _tiff_layout(path)
        dims = [s for s in shape if s != 1]
        if len(dims) == 2:
            raise DBlinkError(f"{path}: a single 2-D image ({dims[1]} x {dims[0]} px); a map stack "
                              f"has one localization map per raw frame (T x H x W)")
        if len(dims) != 3:
            raise DBlinkError(f"{path}: a TIFF of shape {' x '.join(map(str, shape))}; a map stack "
                              f"is T x H x W (one channel, one map per raw frame)")
        T, H, W = dims
        if pixel_size is not None:
            px, how = float(pixel_size), "--pixel-size"
            if unit_px is not None and abs(unit_px - px) > 1e-6 * px:
                warn(f"{path}: --pixel-size {px:g} nm used; the TIFF calibration says {unit_px:g} nm")
        elif unit_px is not None:
            px, how = unit_px, "the TIFF calibration"
        else:
            raise DBlinkError(f"{path}: the TIFF has no pixel size in nm or µm (uncalibrated); "
                              f"give the maps' pixel size with --pixel-size NM")
        arr = _tiff_pixels(path, T, H, W)
        total = _checked_total(path, arr)
        warn(f"{path}: map stack of {T} frames of {W} x {H} px at {px:g} nm ({how}); one map per "
             f"raw frame, summed into steps without rendering")
        # ImageJ's origin (pixels): the camera coordinate of pixel (0, 0)'s corner is -origin x px
        origin = tuple(-v * px if math.isfinite(v) else 0.0 for v in origin_px)
        return cls(source=str(path), pixel_size=px, n_frames=T, height=H, width=W,
                   origin=(origin[0] + 0.0, origin[1] + 0.0), total=total, calibration=how,
                   _array=arr)


def _tiff_layout(path: Path) -> tuple[tuple, float | None, tuple[float, float]]:
    """A TIFF's first series: its shape, pixel size in nm (None: uncalibrated) and ImageJ origin
    (pixels)."""
    import tifffile

    try:
        tif = tifffile.TiffFile(path)
    except Exception as exc:  # noqa: BLE001 - tifffile raises many types for a bad file
        raise DBlinkError(f"{path}: not a readable TIFF ({first_line(exc)})") from None
    with tif:
        try:
            shape = tuple(int(s) for s in tif.series[0].shape)
            ij = tif.imagej_metadata or {}
            return (shape, _tiff_pixel_size(tif),
                    (float(ij.get("xorigin", 0.0)), float(ij.get("yorigin", 0.0))))
        except Exception as exc:  # noqa: BLE001
            raise DBlinkError(f"{path}: cannot read the TIFF's layout ({first_line(exc)})") from None


def _tiff_pixels(path: Path, T: int, H: int, W: int) -> np.ndarray:
    """The stack as a T x H x W array of numbers: memory-mapped when uncompressed, else read."""
    import tifffile

    try:
        arr = tifffile.memmap(path, mode="r")
    except Exception:  # noqa: BLE001 - compressed or tiled: read it whole
        try:
            arr = tifffile.imread(path)
        except Exception as exc:  # noqa: BLE001
            raise DBlinkError(f"{path}: cannot read the TIFF's pixels ({first_line(exc)})") from None
    arr = np.asarray(arr).reshape(T, H, W) if arr.size == T * H * W else None
    if arr is None:
        raise DBlinkError(f"{path}: the TIFF's pixels do not match its shape")
    if not (np.issubdtype(arr.dtype, np.number) and not np.issubdtype(arr.dtype, np.complexfloating)):
        raise DBlinkError(f"{path}: the TIFF holds {arr.dtype} pixels, not numbers")
    return arr


def _checked_total(path: Path, arr: np.ndarray) -> float:
    """The sum of all maps, each frame checked finite and >= 0 (in chunks: a memory map is not
    read whole); an all-zero stack is refused."""
    total = 0.0
    for a in range(0, arr.shape[0], 256):
        block = np.asarray(arr[a:a + 256], dtype=np.float64)
        if not np.isfinite(block).all():
            t = a + int(np.flatnonzero(~np.isfinite(block).reshape(block.shape[0], -1).all(1))[0])
            raise DBlinkError(f"{path}: frame {t + 1} holds NaN or infinite values")
        if (block < 0).any():
            t = a + int(np.flatnonzero((block < 0).reshape(block.shape[0], -1).any(1))[0])
            raise DBlinkError(f"{path}: frame {t + 1} holds negative values; localization maps "
                              f"are counts or probabilities (>= 0)")
        total += float(block.sum())
    if total <= 0:
        raise DBlinkError(f"{path}: every map is zero: no localizations")
    return total


def _tiff_pixel_size(tif) -> float | None:
    """nm per pixel from an ImageJ TIFF's calibration (``unit`` micron/µm/um/nm and XResolution),
    or None when uncalibrated."""
    ij = tif.imagej_metadata or {}
    unit = str(ij.get("unit", "")).strip().lower().replace("\\u00b5", "µ").replace("μ", "µ")
    scale = {"micron": 1000.0, "microns": 1000.0, "µm": 1000.0, "um": 1000.0, "nm": 1.0,
             "nanometer": 1.0, "nanometers": 1.0}.get(unit)
    tags = tif.pages[0].tags
    if scale is None:
        ru = tags.get("ResolutionUnit")
        if ru is None or int(ru.value) != 3:  # 3: centimetre; inch (2) is not a microscope's
            return None
        scale = 1e7
    xr = tags.get("XResolution")
    if xr is None:
        return None
    num, den = xr.value if isinstance(xr.value, tuple) else (xr.value, 1)
    if not num or not den:
        return None
    px = float(den) / float(num) * scale
    return px if math.isfinite(px) and px > 0 else None


class MapSteps:
    """Steps of a :class:`MapStack` on a grid (a step source for :func:`~.engine.stream_infer`,
    with the counts :class:`~.render.StepRenderer` reports)."""

    def __init__(self, stack: MapStack, grid, frames_per_step: int, first_frame: int = 1,
                 n_steps: int | None = None) -> None:
        p = stack.pixel_size
        if abs(grid.pixel_size - p) > 1e-6 * p:
            raise DBlinkError(f"{stack.source}: a map stack is used at its own pixel size "
                              f"({p:g} nm), not {grid.pixel_size:g} nm")
        self.stack, self.grid = stack, grid
        self.frames_per_step, self.first_frame = int(frames_per_step), int(first_frame)
        last = stack.frame_range[1]
        self.n_steps = (max(0, (last - first_frame) // frames_per_step + 1)
                        if n_steps is None else int(n_steps))
        H, W = grid.shape
        self.c0 = int(round((grid.x0 - stack.origin[0]) / p))
        self.r0 = int(round((grid.y0 - stack.origin[1]) / p))
        self.H, self.W = H, W
        # the ROI's share of the stack's total (the maps' "localizations" inside it)
        inside = stack.total
        if (self.c0, self.r0, H, W) != (0, 0, stack.height, stack.width) or stack.last is not None:
            inside = sum(float(self._window(a, min(a + 256, last)).sum(dtype=np.float64))
                         for a in range(0, last, 256))
        full = (self.c0, self.r0, H, W) == (0, 0, stack.height, stack.width)
        self.n_inside = int(round(inside))
        self.n_outside_roi = 0 if full else int(round(stack.total - inside))
        self.n_outside_time = 0

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.n_steps, self.H, self.W)

    def _window(self, a: int, b: int) -> np.ndarray:
        """Raw frames [a, b) (0-based) cut to the grid (zeros outside the stack)."""
        s = self.stack
        out = np.zeros((max(0, b - a), self.H, self.W), dtype=np.float32)
        r0, c0 = self.r0, self.c0
        rs, re_ = max(0, r0), min(s.height, r0 + self.H)
        cs, ce = max(0, c0), min(s.width, c0 + self.W)
        if rs < re_ and cs < ce and b > a:
            out[:, rs - r0:re_ - r0, cs - c0:ce - c0] = s._array[a:b, rs:re_, cs:ce]
        return out

    def __call__(self, a: int, b: int) -> np.ndarray:
        """Steps [a, b) as float32 (b − a, H, W): each the sum of its raw frames' maps."""
        S = self.frames_per_step
        last = self.stack.frame_range[1]
        out = np.zeros((b - a, self.H, self.W), dtype=np.float32)
        for k in range(a, b):
            f0 = self.first_frame - 1 + k * S  # 0-based first raw frame of step k
            f1 = min(f0 + S, last)
            if f1 > f0:
                out[k - a] = self._window(f0, f1).sum(axis=0)
        return out
