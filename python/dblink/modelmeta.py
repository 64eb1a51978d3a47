"""One schema for a model file's metadata (``dblink.json``): types and ranges of every field.

Used when a model file is loaded (:func:`dblink.export.load_model`), written (``save_model``,
``export_checkpoint``, ``import_original``) and packaged for bioimage.io, so that a model file that
loads is one that every part of dblink can use. A field of the wrong type or out of range is one
:class:`~dblink.errors.DBlinkError` line naming the file and the field.

Fields (all others are kept as they are, but must be JSON):

========================  =============================================================  ========
field                     type and range                                                  needed
========================  =============================================================  ========
format_version            whole number >= 1 (newer than :data:`FORMAT_VERSION`: refused)  no (1)
name                      text, 1-200 characters                                          no
arch                      ``paper`` or ``compact``                                        no
hparams                   object; keys of the arch (see :data:`ARCHITECTURES`)            no
pixel_size_nm             number, 0 < p <= 1e5                                            yes
frames_per_step           whole number, 1 ... 1e6                                         yes
window                    whole number, 0 ... 10000                                       no (25)
output                    ``probability`` or ``unbounded``                                no
sample                    text                                                            no
density_range_per_um2_per_frame  null or [low, high], 0 <= low <= high, finite           no
parameters                whole number >= 0                                               no
dblink_version            text                                                            no
validation                object of numbers (or null)                                     no
training, imported_from   object                                                          no
========================  =============================================================  ========
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import DBlinkError, first_line
from .files import path_errors

#: metadata format version written into every model file; readers refuse newer majors
FORMAT_VERSION = 1
META_FILE = "dblink.json"
#: a dblink.json larger than this is refused without being inflated
MAX_META_BYTES = 2**20
#: a model file whose zip entries would inflate to more than this is refused
MAX_MODEL_BYTES = 2**30
#: a zip directory (one record per entry) larger than this is refused before it is parsed
MAX_ZIP_DIRECTORY_BYTES = 16 * 2**20

OUTPUTS = ("probability", "unbounded")
#: hyper-parameters of each architecture: (kind, low, high)
_INT = "int"
_HPARAMS = {
    "paper": {"hidden": (_INT, 1, 512), "layers": (_INT, 1, 16), "kernel": (_INT, 1, 31),
              "head": ("intlist", 1, 4096), "head_kernel": (_INT, 1, 31), "log_input": ("bool",),
              "out_activation": ("choice", ("none", "sigmoid"))},
    "compact": {"hidden": (_INT, 1, 512), "layers": (_INT, 1, 16), "kernel": (_INT, 1, 31),
                "encoder": (_INT, 1, 1024), "decoder": (_INT, 1, 1024), "skip": (_INT, 1, 1024),
                "log_input": ("bool",), "out_activation": ("choice", ("none", "sigmoid"))},
}
ARCHES = tuple(_HPARAMS)
#: each architecture's hyper-parameters and their defaults (:mod:`dblink.model` builds the networks)
ARCHITECTURES = {
    "paper": dict(hidden=4, layers=2, kernel=5, head=[128, 256, 64], head_kernel=5,
                  log_input=False, out_activation="none"),
    "compact": dict(hidden=24, layers=1, kernel=3, encoder=16, decoder=16, skip=8,
                    log_input=True, out_activation="sigmoid", mean_input=False, mean_scale=51.0,
                    local_mean=0),
}


def input_channels(mean_input: bool, local_mean: int) -> int:
    """Input channels per step of the compact network: the step's map, plus the window mean
    (``mean_input``), plus the local mean (``local_mean`` > 0)."""
    return 1 + int(bool(mean_input)) + int(int(local_mean) > 0)


def _spec(arch: str) -> dict:
    """The hyper-parameters ``arch`` takes: the ranges above, and for keys added to
    :data:`ARCHITECTURES` later, a check by the type of their default value."""
    spec = dict(_HPARAMS[arch])
    for key, default in ARCHITECTURES.get(arch, {}).items():
        if key in spec:
            continue
        if isinstance(default, bool):
            spec[key] = ("bool",)
        elif isinstance(default, int):
            spec[key] = (_INT, 0, 4096)
        elif isinstance(default, float):
            spec[key] = ("float", -1e6, 1e6)
        elif isinstance(default, str):
            spec[key] = ("text",)
        elif isinstance(default, (list, tuple)):
            spec[key] = ("intlist", 0, 4096)
        else:
            spec[key] = ("any",)
    return spec


class _Bad(Exception):
    pass


def _describe(v: Any) -> str:
    if isinstance(v, bool):
        return f"the boolean {str(v).lower()}"
    if isinstance(v, str):
        shown = v if len(v) <= 30 else v[:27] + "..."
        return f"the text {shown!r}"
    if isinstance(v, list):
        return f"a list of {len(v)}"
    if isinstance(v, dict):
        return "an object"
    if v is None:
        return "null"
    r = repr(v)
    return r if len(r) <= 30 else r[:27] + "..."


def _number(v: Any, field: str, low: float | None = None, high: float | None = None,
            low_open: bool = False) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise _Bad(f"'{field}' must be a number, got {_describe(v)}")
    try:
        f = float(v)
    except OverflowError:  # an int beyond floats
        f = math.inf
    if not math.isfinite(f):
        raise _Bad(f"'{field}' must be a finite number, got {_describe(v)}")
    if low is not None and (f < low or (low_open and f == low)):
        raise _Bad(f"'{field}' must be {'>' if low_open else '>='} {low:g}, got {_describe(v)}")
    if high is not None and f > high:
        raise _Bad(f"'{field}' must be <= {high:g}, got {_describe(v)}")
    return f


def _whole(v: Any, field: str, low: int, high: int) -> int:
    f = _number(v, field)
    if f != math.floor(f):
        raise _Bad(f"'{field}' must be a whole number, got {_describe(v)}")
    if not low <= f <= high:
        raise _Bad(f"'{field}' must be a whole number from {low} to {high}, got {_describe(v)}")
    return int(f)


def _text(v: Any, field: str, max_len: int = 200) -> str:
    if not isinstance(v, str):
        raise _Bad(f"'{field}' must be text, got {_describe(v)}")
    if not v or len(v) > max_len:
        raise _Bad(f"'{field}' must be 1 to {max_len} characters, got {len(v)}")
    return v


def _object(v: Any, field: str) -> dict:
    if not isinstance(v, dict):
        raise _Bad(f"'{field}' must be an object, got {_describe(v)}")
    return v


def check_hparams(arch: str, hp: Any, field: str = "hparams") -> dict:
    """Check the hyper-parameters of ``arch`` (a known architecture); returns them unchanged."""
    hp = _object(hp, field)
    spec = _spec(arch)
    for key, value in hp.items():
        if key not in spec:
            raise _Bad(f"'{field}' has an unknown key {str(key)[:40]!r} for arch {arch!r} "
                       f"(known: {', '.join(spec)})")
        kind = spec[key]
        name = f"{field}.{key}"
        if kind[0] == _INT:
            _whole(value, name, kind[1], kind[2])
        elif kind[0] == "intlist":
            if not isinstance(value, list) or not 1 <= len(value) <= 16:
                raise _Bad(f"'{name}' must be a list of 1 to 16 whole numbers, got {_describe(value)}")
            for i, x in enumerate(value):
                _whole(x, f"{name}[{i}]", kind[1], kind[2])
        elif kind[0] == "bool":
            if not isinstance(value, bool):
                raise _Bad(f"'{name}' must be true or false, got {_describe(value)}")
        elif kind[0] == "float":
            _number(value, name, kind[1], kind[2])
        elif kind[0] == "text":
            _text(value, name)
        elif kind[0] == "choice":
            if value not in kind[1]:
                raise _Bad(f"'{name}' must be one of {', '.join(kind[1])}, got {_describe(value)}")
    return hp


def _check(meta: Any) -> dict:
    meta = _object(meta, "the metadata")
    out = dict(meta)
    if "format_version" in meta:
        _whole(meta["format_version"], "format_version", 1, 2**31)
    for key in ("pixel_size_nm", "frames_per_step"):
        if key not in meta:
            raise _Bad(f"lacks {key!r}")
    out["pixel_size_nm"] = _number(meta["pixel_size_nm"], "pixel_size_nm", 0.0, 1e5, low_open=True)
    out["frames_per_step"] = _whole(meta["frames_per_step"], "frames_per_step", 1, 10**6)
    if "window" in meta:
        out["window"] = _whole(meta["window"], "window", 0, 10_000)
    if "name" in meta:
        _text(meta["name"], "name")
    for key in ("sample", "dblink_version"):
        if key in meta and meta[key] is not None:
            _text(meta[key], key)
    if "output" in meta and meta["output"] not in OUTPUTS:
        raise _Bad(f"'output' must be one of {', '.join(OUTPUTS)}, got {_describe(meta['output'])}")
    arch = meta.get("arch")
    if arch is not None:
        if arch not in ARCHES:
            raise _Bad(f"'arch' must be one of {', '.join(ARCHES)}, got {_describe(arch)}")
        if meta.get("hparams") is not None:
            check_hparams(arch, meta["hparams"])
    elif meta.get("hparams") is not None:
        _object(meta["hparams"], "hparams")
    rng = meta.get("density_range_per_um2_per_frame")
    if rng is not None:
        if not isinstance(rng, list) or len(rng) != 2:
            raise _Bad(f"'density_range_per_um2_per_frame' must be [low, high], got {_describe(rng)}")
        lo = _number(rng[0], "density_range_per_um2_per_frame[0]", 0.0)
        hi = _number(rng[1], "density_range_per_um2_per_frame[1]", 0.0)
        if lo > hi:
            raise _Bad(f"'density_range_per_um2_per_frame' must be [low, high] with low <= high, "
                       f"got [{lo:g}, {hi:g}]")
    if "parameters" in meta and meta["parameters"] is not None:
        _whole(meta["parameters"], "parameters", 0, 2**53)
    if meta.get("validation") is not None:
        for k, v in _object(meta["validation"], "validation").items():
            if v is not None:
                _number(v, f"validation.{k}")
    for key in ("training", "imported_from"):
        if meta.get(key) is not None:
            _object(meta[key], key)
    return out


def validate(meta: Any, where: str) -> dict:
    """Check metadata against the schema; returns a copy with numbers normalized (``10.0`` frames
    per step → 10). Raises DBlinkError ``"<where>: model metadata: 'window' must be ..."``."""
    try:
        return _check(meta)
    except _Bad as exc:
        raise DBlinkError(f"{where}: model metadata: {exc}") from None


def parse(text: str | bytes, where: str) -> dict:
    """Parse ``dblink.json`` text (at most :data:`MAX_META_BYTES`) and validate it."""
    if len(text) > MAX_META_BYTES:
        raise DBlinkError(f"{where}: {META_FILE} is larger than {MAX_META_BYTES // 2**20} MiB; "
                          f"not a dblink model file")
    try:
        meta = json.loads(text)
    except (ValueError, RecursionError, UnicodeDecodeError):
        raise DBlinkError(f"{where}: unreadable dblink metadata ({META_FILE} is not JSON)") from None
    return validate(meta, where)


def dumps(meta: dict, where: str) -> str:
    """Validate and serialize metadata for a model file (strict JSON: no NaN)."""
    validate(meta, where)
    try:
        text = json.dumps(meta, indent=1, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise DBlinkError(f"{where}: model metadata is not plain JSON ({exc})") from None
    if len(text.encode()) > MAX_META_BYTES:
        raise DBlinkError(f"{where}: model metadata is larger than {MAX_META_BYTES // 2**20} MiB")
    return text


def _central_directory_size(path: str) -> int | None:
    """The size of a zip file's central directory from its end record (zip64 included), read
    before ``zipfile`` builds one object per entry; None where there is no end record."""
    import struct

    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, 2)
            start = max(0, size - (22 + 65535))
            fh.seek(start)
            tail = fh.read()
            i = tail.rfind(b"PK\x05\x06")
            if i < 0 or len(tail) - i < 22:
                return None
            cd = struct.unpack("<I", tail[i + 12:i + 16])[0]
            if cd != 0xFFFFFFFF or i < 20 or tail[i - 20:i - 16] != b"PK\x06\x07":
                return cd
            off = struct.unpack("<Q", tail[i - 12:i - 4])[0]  # the zip64 end record's offset
            if off + 56 > size:
                return None
            fh.seek(off)
            rec = fh.read(56)
            if rec[:4] != b"PK\x06\x06":
                return None
            return struct.unpack("<Q", rec[40:48])[0]
    except (OSError, struct.error):
        return None


#: what reading a broken zip can raise (besides zipfile.BadZipFile)
_ZIP_ERRORS = (OSError, ValueError, EOFError, NotImplementedError)


def _not_torchscript(where: str, exc: BaseException) -> DBlinkError:
    first = first_line(exc)
    return DBlinkError(f"{where}: not a TorchScript model file ({first})")


def _is_meta(name: str) -> bool:
    """Whether a zip entry is the model's ``dblink.json`` (``<archive>/extra/dblink.json``)."""
    return name.endswith("/extra/" + META_FILE) or name == "extra/" + META_FILE


def check_zip(path: str, where: str | None = None) -> str | None:
    """Look at a model file's zip directory before PyTorch reads it: it must be a zip archive whose
    ``dblink.json`` (if any) and total inflated size are bounded, so that a small file cannot make
    the loader inflate gigabytes. Returns the name of the ``dblink.json`` entry (None: none)."""
    import zipfile

    where = where or path
    cd_size = _central_directory_size(path)
    if cd_size is not None and cd_size > MAX_ZIP_DIRECTORY_BYTES:
        raise DBlinkError(f"{where}: the zip directory alone is {cd_size / 2**20:.0f} MiB; "
                          f"not a dblink model file")
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, *_ZIP_ERRORS) as exc:
        raise _not_torchscript(where, exc) from None
    total, meta = 0, None
    for info in infos:
        total += info.file_size
        if _is_meta(info.filename):
            meta = info.filename
            if info.file_size > MAX_META_BYTES:
                raise DBlinkError(f"{where}: {META_FILE} would inflate to {info.file_size} bytes "
                                  f"(more than {MAX_META_BYTES // 2**20} MiB); not a dblink model file")
    if total > MAX_MODEL_BYTES:
        raise DBlinkError(f"{where}: the model file would inflate to {total / 2**30:.1f} GiB "
                          f"(more than {MAX_MODEL_BYTES // 2**30} GiB); not a dblink model file")
    return meta


def probe(module: Any, where: str) -> None:
    """Run tiny forward passes and check that the module is a dblink network, as the engine and the
    bioimage.io package call it: ``forward(x, positions)`` on a 1 x 3 x 8 x 8 input with positions [1]
    and on a 1 x 5 x 12 x 16 input with positions [0, 4] returns finite (B, len(positions), H, W)
    tensors, and ``forward(x)`` returns (B, T, H, W)."""
    import torch

    cases = []
    for T, H, W, pos in ((3, 8, 8, [1]), (5, 12, 16, [0, 4]), (3, 8, 8, None)):
        x = torch.zeros(1, T, H, W)
        x[0, T // 2, H // 2, W // 2 - 1] = 1.0
        cases.append((x, None if pos is None else torch.tensor(pos),
                      (1, T if pos is None else len(pos), H, W)))
    for x, pos, expected in cases:
        call = (f"forward(x{', positions' if pos is not None else ''}) on a "
                f"{' x '.join(map(str, x.shape))} input"
                + (f" with positions {pos.tolist()}" if pos is not None else ""))
        try:
            with torch.no_grad():
                y = module(x, pos) if pos is not None else module(x)
        except Exception as exc:  # noqa: BLE001 - any failure: not a network dblink can run
            first = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
            raise DBlinkError(f"{where}: not a dblink network: {call} failed ({first[:160]})") from None
        if not isinstance(y, torch.Tensor):
            raise DBlinkError(f"{where}: not a dblink network: {call} returned {type(y).__name__}, "
                              f"not a tensor")
        if tuple(y.shape) != expected:
            raise DBlinkError(f"{where}: not a dblink network: {call} returned shape "
                              f"{tuple(y.shape)}, expected {expected}")
        if not y.is_floating_point() or not bool(torch.isfinite(y).all()):
            raise DBlinkError(f"{where}: not a dblink network: {call} returned "
                              f"{'non-finite values' if y.is_floating_point() else y.dtype}")


def models_dirs() -> list[Path]:
    """Where bundled models are looked up: $DBLINK_MODELS (os.pathsep-separated), then the
    repository's ``models/`` folder."""
    dirs = [Path(p) for p in os.environ.get("DBLINK_MODELS", "").split(os.pathsep) if p]
    dirs.append(Path(__file__).resolve().parents[2] / "models")
    return dirs


@dataclass
class LoadedModel:
    """A TorchScript network with its metadata (``module`` is None for a header read without
    PyTorch, :func:`read_header`; :func:`dblink.export.load_model` loads the network)."""

    module: Any  # torch.jit.ScriptModule
    meta: dict
    path: Path

    @property
    def name(self) -> str:
        return self.meta.get("name", self.path.stem)

    @property
    def window(self) -> int:
        return int(self.meta.get("window", 25))

    @property
    def pixel_size(self) -> float:
        return float(self.meta["pixel_size_nm"])

    @property
    def frames_per_step(self) -> int:
        return int(self.meta["frames_per_step"])

    @property
    def normalize(self) -> bool:
        """Whether outputs are unbounded and need per-frame normalization to [0, 1]."""
        return self.meta.get("output", "probability") != "probability"


@path_errors
def resolve_model(name_or_path: str) -> Path:
    """A model path from a path, or from a bundled name (``filaments`` → ``dblink-filaments.pt``)."""
    p = Path(name_or_path)
    if p.suffix == ".pt" or os.sep in name_or_path:
        if not p.is_file():
            raise DBlinkError(f"{p}: no such model file")
        return p
    for d in models_dirs():
        for cand in (d / f"{name_or_path}.pt", d / f"dblink-{name_or_path}.pt"):
            if cand.is_file():
                return cand
    known = ", ".join(sorted(m.stem for d in models_dirs() if d.is_dir() for m in d.glob("*.pt")))
    raise DBlinkError(f"no model named {name_or_path!r} (bundled: {known or 'none'}); "
                      f"give a path to a .pt file")


def checked_meta(text: str | bytes, path: Path) -> dict:
    """A model file's ``dblink.json`` parsed, validated and of a format this dblink reads."""
    meta = parse(text, str(path))
    if int(meta.get("format_version", 1)) > FORMAT_VERSION:
        raise DBlinkError(f"{path}: made by a newer dblink (model format {meta['format_version']}, "
                          f"this dblink reads up to {FORMAT_VERSION}); upgrade dblink")
    return meta


@path_errors
def read_header(name_or_path: str | Path) -> LoadedModel:
    """A model file's metadata (by path or bundled name) read from its zip without PyTorch, checked
    as :func:`dblink.export.load_model` checks it; the network (``module``) is left unloaded, so
    that a job's geometry and memory are checked in a fraction of a second, before the import."""
    import zipfile

    path = resolve_model(str(name_or_path))
    name = check_zip(str(path))
    try:
        with zipfile.ZipFile(path) as zf:
            text = zf.read(name) if name is not None else b""
    except (zipfile.BadZipFile, *_ZIP_ERRORS) as exc:
        raise _not_torchscript(str(path), exc) from None
    if not text:
        raise DBlinkError(f"{path}: TorchScript file without dblink metadata ({META_FILE})")
    return LoadedModel(module=None, meta=checked_meta(text, path), path=path)
