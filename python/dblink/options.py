"""The options of a reconstruction: each one defined once, here.

:class:`ReconstructOptions` is the single definition of every option of the main job — its type,
unit, range, default, help text, command-line flag and Fiji macro key. The command line
(``dblink reconstruct``, ``dblink batch``) builds its arguments from it (:func:`add_arguments`),
the Python API takes its field names as keywords (:meth:`ReconstructOptions.make`), and the Fiji
bridge reads macro keys through it (:meth:`ReconstructOptions.from_macro`); a test checks the Java
plugin's key list against :func:`macro_keys`. An unknown option is an error, never ignored.

Adding an option: one field below (with :func:`option`), plus the code that uses it.
"""
from __future__ import annotations

import argparse
import difflib
import math
from dataclasses import dataclass, field, fields, replace
from typing import Any, Callable, Iterable, Mapping

from .errors import DBlinkError

DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("fp32", "bf16", "fp16")
TTA_CHOICES = (1, 4, 8)


def option(default: Any, help: str, *, kind: type = str, flag: str | None = None,
           macro: str | None = "", metavar: str | None = None, choices: tuple | None = None,
           check: Callable[[Any], str | None] | None = None,
           parse: Callable[[str], Any] | None = None, default_help: str | None = None,
           zero_default: bool = False) -> Any:
    """A dataclass field carrying its command-line and macro spelling.

    Args:
        kind: the Python type of a value (int, float, str, bool, or a parsed type via ``parse``).
        flag: the command-line flag (default: ``--`` + the name with dashes).
        macro: the Fiji macro key (default: the name; None: not a macro option).
        check: returns what is wrong with a (parsed) value, or None when it is fine.
        parse: turns the text of a flag or macro value into a value (default: ``kind``).
        default_help: how the default is described in the help (default: its value).
        zero_default: a macro value 0 means the default (as the Fiji dialog's number fields say).
    """
    return field(default=default, metadata=dict(help=help, kind=kind, flag=flag, macro=macro,
                                                metavar=metavar, choices=choices, check=check,
                                                parse=parse, default_help=default_help,
                                                zero_default=zero_default))


# ----------------------------------------------------------------------------- value checks
def _positive(v: float) -> str | None:
    return None if (v > 0 and math.isfinite(v)) else "must be a positive, finite number"


#: the largest raw frame number an option accepts (frames are int64 in the tables)
MAX_FRAME = 10**12


def _at_least(n: int, most: int) -> Callable[[int], str | None]:
    """A whole number from ``n`` to ``most`` (beyond which no job makes sense, and arithmetic on it
    would overflow)."""
    return lambda v: (f"must be >= {n}" if v < n else f"must be <= {most:,}" if v > most else None)


def _one_of(choices: tuple) -> Callable[[Any], str | None]:
    return lambda v: None if v in choices else f"must be one of {', '.join(map(str, choices))}"


def parse_roi(text: str) -> tuple[float, float, float, float]:
    """``X0,Y0,W,H`` in nm → a tuple of four floats (finite; W, H > 0)."""
    try:
        x0, y0, w, h = (float(v) for v in str(text).split(","))
    except ValueError:
        raise ValueError(f"must be X0,Y0,WIDTH,HEIGHT in nm, got '{text}'") from None
    return (x0, y0, w, h)


def _check_roi(roi: tuple) -> str | None:
    if len(roi) != 4:
        return "must be four numbers X0,Y0,WIDTH,HEIGHT in nm"
    if not all(math.isfinite(float(v)) for v in roi):
        return "values must be finite numbers of nm"
    if not (roi[2] > 0 and roi[3] > 0):
        return "width and height must be > 0 nm"
    return None


def parse_memory(text: str) -> int:
    """A memory size: bytes (``1e9``) or with a unit, ``512M``, ``8G``, ``1.5GiB`` (K/M/G/T are
    powers of 1024, as ``free -h`` shows them, with or without ``i`` and ``B``)."""
    from .memory import parse_size
    return parse_size(str(text))


def _check_memory(v: int) -> str | None:
    return None if 1 <= v <= 2**60 else "must be between 1 byte and 1 EiB"


def _check_columns(v: str) -> str | None:
    from .formats import parse_columns
    try:
        parse_columns(v)
    except DBlinkError as exc:
        return str(exc).removeprefix("--columns").lstrip(":").strip()
    return None


def _int(text: str) -> int:
    v = float(text)
    if not v.is_integer():
        raise ValueError(f"must be a whole number, got '{text}'")
    return int(v)


# ----------------------------------------------------------------------------- the options
@dataclass(frozen=True)
class ReconstructOptions:
    """Every option of a reconstruction (units in the help; None: decided from the model/data)."""

    model: str = option("filaments", "bundled model name (dblink models) or a .pt model file",
                        metavar="NAME|FILE")
    auto: bool = option(False, "choose model, frames per step, window and stride from the data "
                        "(as dblink suggest) where they are left at their defaults", kind=bool)
    pixel_size: float | None = option(None, "render pixel size in nm (for a map stack: its pixel "
                                      "size, else from the TIFF calibration)", kind=float,
                                      metavar="NM", check=_positive, zero_default=True,
                                      default_help="the model's")
    frames_per_step: int | None = option(None, "raw frames summed per output time point", kind=int,
                                         metavar="S", check=_at_least(1, 1_000_000),
                                         zero_default=True, default_help="the model's")
    roi: tuple | None = option(None, "region in nm, camera coordinates (ThunderSTORM's)",
                               kind=tuple, metavar="X0,Y0,W,H", check=_check_roi, parse=parse_roi,
                               default_help="the data's bounding box")
    camera_pixel: float | None = option(None, "camera pixel size in nm (needed for tables in px)",
                                        kind=float, metavar="NM", check=_positive,
                                        zero_default=True, default_help="none")
    columns: str | None = option(None, "a CSV of any other tool: its frame, x, y (and uncertainty) "
                                 "columns, unit and first frame, e.g. frame=Frame,x=X,y=Y,unit=px,"
                                 "base=0", metavar="SPEC", check=_check_columns,
                                 default_help="found by the file's format")
    first_frame: int = option(1, "first raw frame of step 0 (1-based)", kind=int, metavar="F",
                              check=_at_least(1, MAX_FRAME))
    last_frame: int | None = option(None, "last raw frame used (1-based); later ones are left out",
                                    kind=int, metavar="F", check=_at_least(1, MAX_FRAME),
                                    zero_default=True, default_help="the table's last")
    window: int | None = option(None, "half-width in steps: output t is computed from steps "
                                "t-W ... t+W (clipped at the ends)", kind=int, metavar="W",
                                check=_at_least(0, 10_000), zero_default=True, default_help="the model's")
    stride: int = option(1, "central steps kept per window (1 = the paper's exact mode; K: about "
                         "K times faster)", kind=int, metavar="K", check=_at_least(1, 1_000_000))
    exposure: float | None = option(None, "seconds per raw frame, for the time calibration",
                                    kind=float, metavar="SEC", check=_positive,
                                    zero_default=True, default_help="frames as the unit")
    confidence: bool = option(True, "skip the confidence channel (faster)", kind=bool,
                              flag="--no-confidence", macro="skip_confidence")
    confidence_every: int | None = option(None, "measure the confidence every N steps and "
                                          "interpolate it in time between (1: every step; the "
                                          "network then decodes 3 steps per output step instead "
                                          "of 1 + 2/N)", kind=int, metavar="N",
                                          check=_at_least(1, 1_000_000), zero_default=True,
                                          default_help="the confidence's own time scale, "
                                          "max(K, W/2) steps rounded to a multiple of K, on "
                                          "CPUs; 1 on GPUs")
    device: str = option("auto", "where the network runs (auto: CUDA if present)",
                         choices=DEVICES, check=_one_of(DEVICES))
    batch: int | None = option(None, "windows per network call", kind=int, metavar="N",
                               check=_at_least(1, 100_000),
                               zero_default=True, default_help="4 on CPUs, from the free memory on a GPU")
    precision: str = option("fp32", "numeric precision of the network: fp32 (exact) or bf16/fp16 "
                            "autocast (faster on GPUs and AVX-512-BF16 CPUs)", choices=PRECISIONS,
                            check=_one_of(PRECISIONS))
    tta: int = option(1, "test-time augmentation: average 4 mirrored or 8 mirrored and transposed "
                      "copies of each window (4x / 8x the network time); 1 = off", kind=int,
                      choices=TTA_CHOICES, check=_one_of(TTA_CHOICES))
    tile: int | None = option(None, "split the field into tiles of PX render pixels (+ a halo of "
                              "context) to bound memory; 0 = never", kind=int, metavar="PX",
                              check=_at_least(0, 1_000_000), default_help="only when the field does not fit")
    max_memory: int | None = option(None, "refuse jobs that would need more memory than this, "
                                    "e.g. 8G or 512M", kind=int, metavar="SIZE",
                                    check=_check_memory, parse=parse_memory,
                                    default_help="half the available memory (within `ulimit -v` and a container's limit)")

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            meta = f.metadata
            kind = meta["kind"]
            if isinstance(value, str) and kind is not str:  # text, as on a command line
                value = _parse(f, value)
                object.__setattr__(self, f.name, value)
            if kind is bool:
                ok = isinstance(value, bool)
            elif kind is int:
                ok = isinstance(value, int) and not isinstance(value, bool)
                if not ok and isinstance(value, float) and value.is_integer():
                    object.__setattr__(self, f.name, int(value))
                    value, ok = int(value), True
            elif kind is float:
                ok = isinstance(value, (int, float)) and not isinstance(value, bool)
                if ok:
                    object.__setattr__(self, f.name, float(value))
                    value = float(value)
            elif kind is tuple:
                ok = isinstance(value, (tuple, list))
                if ok:
                    try:
                        value = tuple(float(v) for v in value)
                    except (TypeError, ValueError):
                        ok = False
                    else:
                        object.__setattr__(self, f.name, value)
            else:
                ok = isinstance(value, kind)
            if not ok:
                raise DBlinkError(f"{_flag(f)} must be {_kind_name(kind)}, got {value!r}")
            why = meta["check"](value) if meta["check"] else None
            if why:
                raise DBlinkError(f"{_flag(f)} {why}, got {_show(value)}")

    @classmethod
    def make(cls, options: "ReconstructOptions | None" = None, **kw: Any) -> "ReconstructOptions":
        """``options`` (or the defaults) with the keyword arguments replaced; an unknown keyword
        is an error that names the closest option."""
        names = [f.name for f in fields(cls)]
        for key in kw:
            if key not in names:
                close = difflib.get_close_matches(key, names, n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                raise DBlinkError(f"unknown option {key!r}{hint}; options: {', '.join(names)}")
        return replace(options, **kw) if options is not None else cls(**kw)

    @classmethod
    def from_strings(cls, values: Mapping[str, str | None]) -> "ReconstructOptions":
        """Options from text values keyed by field name (None or "" = the default)."""
        kw = {}
        by_name = {f.name: f for f in fields(cls)}
        for key, text in values.items():
            if key not in by_name:
                cls.make(**{key: None})  # raises: unknown option
            if text is None or text == "":
                continue
            kw[key] = _parse(by_name[key], text)
        return cls.make(**kw)

    @classmethod
    def from_macro(cls, values: Mapping[str, str]) -> "ReconstructOptions":
        """Options from Fiji macro keys (as the plugin records them; booleans present as "true",
        numbers 0 meaning "the default" where the default is decided from the model or data)."""
        by_key = {_macro(f): f for f in fields(cls) if _macro(f)}
        kw: dict[str, Any] = {}
        for key, text in values.items():
            if key not in by_key:
                close = difflib.get_close_matches(key, list(by_key), n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                raise DBlinkError(f"unknown macro key {key!r}{hint}")
            f = by_key[key]
            text = str(text).strip()
            if f.metadata["kind"] is bool:
                on = text.lower() in ("true", "1", "yes", "on")
                kw[f.name] = (not on) if f.name == "confidence" else on
                continue
            if not text or (f.metadata["zero_default"] and _is_zero(text)):
                continue
            kw[f.name] = _parse(f, text)
        return cls.make(**kw)

    def changed(self) -> dict:
        """The options that differ from their defaults, by field name."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if getattr(self, f.name) != f.default}


def _is_zero(text: str) -> bool:
    try:
        return float(text) == 0
    except ValueError:
        return False


def _flag(f) -> str:
    return f.metadata["flag"] or "--" + f.name.replace("_", "-")


def _macro(f) -> str | None:
    m = f.metadata["macro"]
    return f.name if m == "" else m


def _kind_name(kind: type) -> str:
    return {int: "a whole number", float: "a number", bool: "true or false",
            tuple: "X0,Y0,WIDTH,HEIGHT in nm", str: "text"}.get(kind, kind.__name__)


def _show(value: Any) -> str:
    return ",".join(f"{v:g}" for v in value) if isinstance(value, tuple) else f"{value!r}"


def _parse(f, text: str) -> Any:
    meta = f.metadata
    parse = meta["parse"] or {int: _int, float: float, str: str}.get(meta["kind"], str)
    try:
        return parse(str(text).strip())
    except (ValueError, OverflowError) as exc:
        why = str(exc) if meta["parse"] or "whole number" in str(exc) else \
            f"must be {_kind_name(meta['kind'])}, got '{text}'"
        raise DBlinkError(f"{_flag(f)} {why}") from None


# ----------------------------------------------------------------------------- generated views
def option_fields() -> tuple:
    """The dataclass fields of :class:`ReconstructOptions` (with their metadata)."""
    return fields(ReconstructOptions)


def macro_keys() -> dict[str, str]:
    """Fiji macro key → option name, for every option that has one."""
    return {_macro(f): f.name for f in fields(ReconstructOptions) if _macro(f)}


def cli_flags() -> dict[str, str]:
    """Command-line flag → option name."""
    return {_flag(f): f.name for f in fields(ReconstructOptions)}


def add_arguments(parser: argparse.ArgumentParser, skip: Iterable[str] = (),
                  only: Iterable[str] | None = None) -> None:
    """Add every option (except ``skip``; or ``only`` those) to an argparse parser. Values stay
    text; read them back with :func:`from_args`, which parses and checks them with one-line
    errors."""
    only = set(only) if only is not None else None
    for f in fields(ReconstructOptions):
        if f.name in skip or (only is not None and f.name not in only):
            continue
        meta = f.metadata
        default = meta["default_help"] or (f.default if f.default is not None else "none")
        if meta["kind"] is bool:
            parser.add_argument(_flag(f), dest=f.name, action="store_const", const=not f.default,
                                default=None, help=meta["help"])
            continue
        choices = tuple(str(c) for c in meta["choices"]) if meta["choices"] else None
        parser.add_argument(_flag(f), dest=f.name, default=None, metavar=meta["metavar"],
                            choices=choices, help=f"{meta['help']} (default: {default})")


def from_args(ns: argparse.Namespace, skip: Iterable[str] = ()) -> ReconstructOptions:
    """The options given on a command line built by :func:`add_arguments`."""
    kw = {}
    for f in fields(ReconstructOptions):
        if f.name in skip or not hasattr(ns, f.name):
            continue
        value = getattr(ns, f.name)
        if value is None:
            continue
        kw[f.name] = value if f.metadata["kind"] is bool else _parse(f, value)
    return ReconstructOptions.make(**kw)


def markdown_table() -> str:
    """The options as a Markdown table (flag, macro key, meaning, default), for the docs."""
    rows = ["| flag | macro key | meaning | default |", "|---|---|---|---|"]
    for f in fields(ReconstructOptions):
        meta = f.metadata
        flag = _flag(f) + (f" {meta['metavar']}" if meta["metavar"] else "")
        if meta["choices"]:
            flag = _flag(f) + " " + "\\|".join(map(str, meta["choices"]))
        default = meta["default_help"] or (f.default if f.default is not None else "none")
        if meta["kind"] is bool:
            default = "off"
        flag = flag.replace("\\|", "|").replace("|", "\\|")
        rows.append(f"| `{flag}` | `{_macro(f) or '—'}` | {meta['help']} | {default} |")
    return "\n".join(rows)
