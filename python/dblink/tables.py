"""Localization tables: ThunderSTORM-style CSV in (and out, for simulations).

Coordinates are always returned in nm, frames 1-based as ThunderSTORM writes them.
"""
from __future__ import annotations

import csv
import io
import math
import os
import re
import warnings
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np

from .errors import DBlinkError, first_line
from .files import atomic_output, input_file, path_errors

#: nm per unit, for the units ThunderSTORM writes in its headers
LENGTH_UNITS = {"nm": 1.0, "um": 1000.0, "µm": 1000.0, "μm": 1000.0, "micron": 1000.0, "px": None}

_HEADER_RE = re.compile(r"^\s*([^\[\]]+?)\s*(?:\[\s*([^\]]*?)\s*\])?\s*$")

#: delimiters accepted between columns (the one used by the header is taken)
DELIMITERS = (",", ";", "\t")
#: bytes of text parsed per block (bounds the reader's working memory beyond the result arrays)
BLOCK_BYTES = 16 * 2**20
#: rows allocated before the first block is parsed (the columns grow by doubling from there)
INITIAL_ROWS = 2**20
#: frames above this are refused (float64 holds whole numbers exactly only up to 2**53)
MAX_FRAME = 2**53
_MAX_HEADER_BYTES = 2**20
#: a line longer than this is refused (bounds the memory of a file without line breaks)
MAX_LINE_BYTES = 2**20
#: the csv module's limit on one field (``csv.field_size_limit()``, not changed: it is global)
_CSV_FIELD_LIMIT = 131_072
_BARE_CR = re.compile(rb"\r(?!\n)")
_SPACE_LINE = re.compile(rb"(?m)^[ \t\f\v]+(?=\r?$)")
_USED = ("frame", "x", "y", "uncertainty_xy", "uncertainty")


@dataclass(frozen=True)
class ColumnSpec:
    """Which columns of a CSV are frame, x, y (and uncertainty), in which unit, from which frame.

    The default is ThunderSTORM's: columns named ``frame``, ``x``, ``y`` (``uncertainty_xy`` or
    ``uncertainty``), units from the headers' brackets, frames 1-based. Other tools' CSV exports
    (DECODE, SMAP, any table through ``--columns``) are read with their own spec.

    Attributes:
        frame, x, y: header names (case-insensitive; the name without its ``[unit]``, or the whole
            label).
        uncertainty: names tried in turn for the lateral uncertainty column (none found: no
            uncertainty).
        unit: the unit of x, y and the uncertainty (``nm``, ``um``/``µm``, ``px``) when the headers
            carry none; None: from the headers, plain columns are nm.
        frame_base: the number of the first raw frame in the file (0 or 1); frames are returned
            1-based.
        skip_comments: leading lines starting with ``#`` come before the header (DECODE's).
        name: the format's name, for messages.
    """

    frame: str = "frame"
    x: str = "x"
    y: str = "y"
    uncertainty: tuple = ("uncertainty_xy", "uncertainty")
    unit: str | None = None
    frame_base: int = 1
    skip_comments: bool = False
    name: str = "ThunderSTORM"


THUNDERSTORM = ColumnSpec()


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


class _RowError(ValueError):
    """A line the csv module cannot split (the reason, without file or line number)."""


def _split_fields(line: str, delimiter: str) -> list[str]:
    """One CSV line split into fields, quotes removed (``"x [nm]"`` → ``x [nm]``).

    Raises _RowError (never ``_csv.Error``) for a bare CR inside the line or a field over the csv
    module's limit of 131,072 characters."""
    if "\r" in line.rstrip("\r") or "\n" in line.rstrip("\r\n"):
        raise _RowError("a bare CR inside the line (classic-Mac line endings mixed in?); save the "
                        "table with LF or CRLF line endings")
    try:
        return next(csv.reader([line], delimiter=delimiter, quotechar='"', skipinitialspace=True), [])
    except csv.Error as exc:
        if "field limit" in str(exc):
            raise _RowError(f"a field longer than {_CSV_FIELD_LIMIT:,} characters; not a "
                            f"localization table") from None
        raise _RowError(f"cannot split the line into fields ({exc})") from None


def _fields(path: str, lineno: int, text: str, delimiter: str) -> list[str]:
    """:func:`_split_fields`, with a one-line DBlinkError naming the file and line."""
    try:
        return _split_fields(text, delimiter)
    except _RowError as exc:
        raise DBlinkError(f"{path}: line {lineno}: {exc}") from None


def _check_lines(path: str, block: bytes, first_line: int) -> None:
    """Refuse a bare CR inside the data and lines longer than :data:`MAX_LINE_BYTES`."""
    m = _BARE_CR.search(block)
    if m:
        lineno = first_line + block.count(b"\n", 0, m.start())
        raise DBlinkError(f"{path}: line {lineno}: a bare CR inside the line (lines end with a bare "
                          f"CR, classic Mac, from here on?); save the table with LF or CRLF line endings")
    if len(block) > MAX_LINE_BYTES:
        # a line longer than MAX_LINE_BYTES holds a whole aligned window of half that size: look
        # for windows without a line break, then measure the line around them (no per-line arrays)
        half = MAX_LINE_BYTES // 2
        for start in range(0, len(block), half):
            if block.find(b"\n", start, start + half) >= 0 or start + half > len(block):
                continue
            begin = block.rfind(b"\n", 0, start) + 1
            end = block.find(b"\n", start)
            end = len(block) if end < 0 else end
            if end - begin > MAX_LINE_BYTES:
                lineno = first_line + block.count(b"\n", 0, begin)
                raise DBlinkError(f"{path}: line {lineno} is longer than "
                                  f"{MAX_LINE_BYTES // 2**20} MiB; not a localization table row")


def _parse_header(line: str, delimiter: str = ",") -> list[tuple[str, str | None]]:
    """Header labels as (lower-case name, unit or None): ``"x [nm]"`` → ``("x", "nm")``."""
    cols = []
    for raw in _split_fields(line.strip().lstrip("\ufeff"), delimiter):
        label = raw.strip().strip('"').strip("'").strip()
        m = _HEADER_RE.match(label)
        if not m:
            cols.append((label.lower(), None))
            continue
        name, unit = m.group(1).strip().lower(), m.group(2)
        cols.append((name, unit.strip() if unit is not None else None))
    return cols


def _label(col: tuple[str, str | None]) -> str:
    return f"{col[0]} [{col[1]}]" if col[1] is not None else col[0]


def _unit_scale(unit: str | None, column: str, camera_pixel: float | None, path: str,
                header_line: int = 1) -> float:
    """nm per unit of a coordinate column (``None``: a plain column, taken as nm)."""
    if unit is None:
        return 1.0  # plain frame,x,y tables are in nm (documented)
    u = unit.lower().replace("μ", "µ")
    if u not in LENGTH_UNITS:
        raise DBlinkError(f"{path}: line {header_line}: column '{column} [{unit}]' has an unknown "
                          f"unit (expected nm, µm/um or px)")
    scale = LENGTH_UNITS[u]
    if scale is None:  # camera pixels
        if camera_pixel is None:
            raise DBlinkError(f"{path}: line {header_line}: column '{column} [{unit}]' is in camera "
                              f"pixels; give the camera pixel size with --camera-pixel NM")
        if not (camera_pixel > 0 and math.isfinite(camera_pixel)):
            raise DBlinkError(f"--camera-pixel must be a positive number of nm, got {camera_pixel}")
        scale = float(camera_pixel)
    return scale


def _check_text(path: str, head: bytes) -> None:
    """Refuse files that are not text tables, with a hint at what they are."""
    magic = {b"PK\x03\x04": "a zip archive (an Excel .xlsx?); export the table as CSV",
             b"\x1f\x8b": "gzip-compressed; decompress it first",
             b"II*\x00": "a TIFF image, not a localization table",
             b"MM\x00*": "a TIFF image, not a localization table",
             b"\x89PNG": "a PNG image, not a localization table",
             b"\x93NUMPY": "a NumPy .npy file, not a CSV table"}
    for m, what in magic.items():
        if head.startswith(m):
            raise DBlinkError(f"{path}: the file is {what}")
    sample = head[:256]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or (
            len(sample) >= 8 and (not sample[1::2].strip(b"\x00") or not sample[0::2].strip(b"\x00"))):
        raise DBlinkError(f"{path}: the file is UTF-16 text; save the table as UTF-8 (or ASCII) CSV")
    ctrl = sum(1 for b in head if b < 32 and b not in (9, 10, 12, 13))
    if b"\x00" in head or ctrl > max(2, len(head) // 100):
        raise DBlinkError(f"{path}: the file is binary, not a CSV text table")


def _choose_delimiter(header: str) -> tuple[str, list[tuple[str, str | None]]]:
    """The delimiter of the header line and its parsed columns (ambiguity is an error)."""
    counts = {d: header.count(d) for d in DELIMITERS}
    present = [d for d in DELIMITERS if counts[d]]
    if not present:
        return ",", _parse_header(header, ",")
    parsed = {d: _parse_header(header, d) for d in present}
    good = [d for d in present if {"frame", "x", "y"} <= {c[0] for c in parsed[d]}]
    if len(good) == 1:
        return good[0], parsed[good[0]]
    best = max(good or present, key=lambda d: counts[d])
    return best, parsed[best]


def _data_lines(block: bytes, first_line: int) -> Iterator[tuple[int, str]]:
    """(line number, text) of the non-blank, non-comment lines of a block (as loadtxt counts rows)."""
    for i, raw in enumerate(block.decode("latin-1").split("\n")):
        text = raw.rstrip("\r")
        s = text.strip()
        if s and not s.startswith("#"):
            yield first_line + i, text


def _explain_block(path: str, block: bytes, first_line: int, delimiter: str,
                   usecols: list[int], labels: list[str], n_header: int) -> str | None:
    """Find the first line of ``block`` that numpy could not parse and say what is wrong with it."""
    for lineno, text in _data_lines(block, first_line):
        try:
            fields = _split_fields(text, delimiter)
        except _RowError as exc:
            return f"{path}: line {lineno}: {exc}"
        for idx, label in zip(usecols, labels):
            if idx >= len(fields):
                return (f"{path}: line {lineno}: only {len(fields)} of {n_header} columns, "
                        f"no value for '{label}' (column {idx + 1})")
            value = fields[idx].strip()
            try:
                float(value)
            except ValueError:
                hint = ""
                if re.fullmatch(r"[-+]?\d+,\d*", value):
                    hint = " (a decimal comma? write numbers with a decimal point)"
                shown = value if len(value) <= 40 else value[:37] + "..."
                return (f"{path}: line {lineno}, column {idx + 1} ('{label}'): "
                        f"{shown!r} is not a number{hint}")
    return None


def _row_line(block: bytes, first_line: int, row: int) -> tuple[int, str]:
    """Line number and text of data row ``row`` (0-based) of a block."""
    for i, (lineno, text) in enumerate(_data_lines(block, first_line)):
        if i == row:
            return lineno, text
    return first_line, ""  # not reached for a row loadtxt returned


@dataclass(frozen=True)
class _Header:
    """A table's header line: its delimiter, its columns as (name, unit), its line number (1-based)
    and the byte offset of the first data line."""

    delimiter: str
    cols: list
    line: int
    data_start: int


@dataclass(frozen=True)
class _Columns:
    """The columns read from a table and how: their indices (frame, x, y[, uncertainty]), labels
    (for messages), nm per unit of x, y and the uncertainty, the units as read, the frame base and
    the format's name (for messages)."""

    usecols: list
    labels: list
    scales: tuple
    units: dict
    base: int
    name: str

    @property
    def has_uncertainty(self) -> bool:
        return len(self.usecols) > 3


def _line_too_long(path: str, lineno: int) -> DBlinkError:
    return DBlinkError(f"{path}: line {lineno} is longer than {MAX_LINE_BYTES // 2**20} MiB; "
                       f"not a localization table row")


def _open_table(path: str):
    """The file opened for binary reading, or a one-line error (missing, a folder, unreadable)."""
    p = input_file(path, "table")
    try:
        return open(p, "rb")
    except OSError as exc:
        raise DBlinkError(f"{path}: cannot open ({exc.strerror})") from None


def _read_header(path: str, fh, spec: ColumnSpec) -> _Header:
    """Find and parse the header line: after a UTF-8 byte-order mark and (``spec.skip_comments``)
    leading ``#`` lines; the file must be text, the header a line of UTF-8 or Latin-1."""
    head = fh.read(_MAX_HEADER_BYTES)
    bom = 3 if head.startswith(b"\xef\xbb\xbf") else 0
    head = head[bom:]
    if not head.strip():
        raise DBlinkError(f"{path}: empty file (expected a ThunderSTORM CSV header)")
    _check_text(path, head[:8192])
    pos, hl = 0, 1  # where the header starts; its line number
    while spec.skip_comments:
        eol = head.find(b"\n", pos)
        if eol < 0 or not head[pos:eol].lstrip().startswith(b"#"):
            break
        pos, hl = eol + 1, hl + 1
    nl = head.find(b"\n", pos)
    if nl < 0 and len(head) == _MAX_HEADER_BYTES:
        raise DBlinkError(f"{path}: line {hl} is longer than {_MAX_HEADER_BYTES // 2**20} MiB; "
                          f"not a CSV table")
    header_bytes = head[pos:nl] if nl >= 0 else head[pos:]
    if b"\r" in header_bytes.rstrip(b"\r"):
        raise DBlinkError(f"{path}: lines end with a bare CR (classic Mac); save the table "
                          f"with LF or CRLF line endings")
    try:
        header = header_bytes.decode("utf-8")
    except UnicodeDecodeError:
        header = header_bytes.decode("latin-1")  # e.g. 'x [µm]' written by a Latin-1 tool
    header = header.rstrip("\r\n")
    if not header.strip():
        raise DBlinkError(f"{path}: line {hl} is empty (expected a {spec.name} CSV header)")
    try:
        delimiter, cols = _choose_delimiter(header)
    except _RowError as exc:
        raise DBlinkError(f"{path}: line {hl}: {exc}") from None
    return _Header(delimiter, cols, hl, bom + (nl + 1 if nl >= 0 else len(head)))


def _choose_columns(path: str, header: _Header, spec: ColumnSpec,
                    camera_pixel: float | None) -> _Columns:
    """The frame, x, y (and uncertainty) columns named by ``spec``, each found once, and their
    units in nm (a column in px needs ``camera_pixel``)."""
    cols, hl = header.cols, header.line

    def where(key: str) -> list[int]:
        k = key.strip().lower()
        return [i for i, c in enumerate(cols) if c[0] == k or _label(c).lower() == k]

    roles = {"frame": spec.frame, "x": spec.x, "y": spec.y}
    for key in [*roles.values(), *spec.uncertainty]:
        at = where(key)
        if len(at) > 1:
            raise DBlinkError(f"{path}: line {hl}: {len(at)} columns are named '{key}' "
                              f"({', '.join(repr(_label(cols[i])) for i in at)}, columns "
                              f"{', '.join(str(i + 1) for i in at)}); keep only one")
    wanted = {}
    for role, key in roles.items():
        if not where(key):
            found = ", ".join(repr(_label(c)) for c in cols[:12]) + (", ..." if len(cols) > 12 else "")
            what = f"'{key}'" if key == role else f"'{key}' ({role})"
            raise DBlinkError(f"{path}: line {hl}: no {what} column in the header (found: {found})")
        wanted[role] = where(key)[0]
    unc_idx = next((where(k)[0] for k in spec.uncertainty if where(k)), None)
    usecols = [wanted["frame"], wanted["x"], wanted["y"]] + ([unc_idx] if unc_idx is not None else [])

    def unit_of(i: int) -> str | None:
        return cols[i][1] if cols[i][1] is not None else spec.unit

    def scale(i: int) -> float:
        return _unit_scale(unit_of(i), cols[i][0], camera_pixel, path, hl)

    scales = (scale(wanted["x"]), scale(wanted["y"]), scale(unc_idx) if unc_idx is not None else 1.0)
    units = {"x": unit_of(wanted["x"]) or "nm", "y": unit_of(wanted["y"]) or "nm"}
    return _Columns(usecols, [_label(cols[i]) for i in usecols], scales, units,
                    int(spec.frame_base), spec.name)


def _count_lines(path: str, fh, header: _Header) -> int:
    """1 + the line breaks after the header (an upper bound on the rows), counted in a fast pass
    over the bytes; a line longer than :data:`MAX_LINE_BYTES` is refused here, before parsing."""
    fh.seek(header.data_start)
    lines = 1
    run = 0  # bytes since the last line break
    while True:
        chunk = fh.read(BLOCK_BYTES)
        if not chunk:
            break
        last_nl = chunk.rfind(b"\n")
        run = run + len(chunk) if last_nl < 0 else len(chunk) - last_nl - 1
        lines += chunk.count(b"\n")
        if run > MAX_LINE_BYTES:
            raise _line_too_long(path, header.line + lines)
    fh.seek(header.data_start)
    return lines


class _BlockReader:
    """Parses a table's data lines, block by block of :data:`BLOCK_BYTES`, into columns that start
    at :data:`INITIAL_ROWS` rows and grow by doubling (capped by the lines left): the working memory
    is at most twice the result arrays plus the block in hand, whatever the file holds."""

    def __init__(self, path: str, header: _Header, columns: _Columns, lines_left: int) -> None:
        self.path, self.delimiter, self.n_header = path, header.delimiter, len(header.cols)
        self.c = columns
        self.lines_left = lines_left  # an upper bound on the rows: blank and comment lines count too
        capacity = min(lines_left, INITIAL_ROWS)  # grown as rows arrive: memory follows the rows read
        self.frame = np.empty(capacity, dtype=np.int64)
        self.x = np.empty(capacity, dtype=np.float64)
        self.y = np.empty(capacity, dtype=np.float64)
        self.unc = np.empty(capacity, dtype=np.float64) if columns.has_uncertainty else None
        self.n = 0  # rows read
        self.line = header.line + 1  # number of the first line of the next block
        self.last_fields = self.n_header  # fields on the last data line parsed

    def read(self, fh) -> str | None:
        """Parse the rest of ``fh``; returns the warning for a last line cut short, or None."""
        leftover = b""
        while True:
            chunk = fh.read(BLOCK_BYTES)
            if not chunk:
                break
            buf = leftover + chunk
            cut = buf.rfind(b"\n")
            if cut < 0:
                leftover = buf
            else:
                block, leftover = buf[:cut + 1], buf[cut + 1:]
                self._parse(block)
                self._note_fields(block)
            if len(leftover) > MAX_LINE_BYTES:  # never hold a line without end in memory
                raise _line_too_long(self.path, self.line)
        return self._last_line(leftover) if leftover.strip() else None

    def result(self) -> Localizations:
        """The rows read, in arrays of their own length."""
        n = self.n
        if n == 0:
            raise DBlinkError(f"{self.path}: the table has a header but no localizations")
        frame, x, y, unc = self.frame, self.x, self.y, self.unc
        if n < len(frame):
            frame, x, y = frame[:n].copy(), x[:n].copy(), y[:n].copy()
            unc = unc[:n].copy() if unc is not None else None
        return Localizations(frame=frame, x=x, y=y, uncertainty=unc, source=self.path,
                             units=dict(self.c.units))

    # -- one block
    def _parse(self, block: bytes) -> None:
        """Parse whole lines: check them, convert to nm and 1-based frames, append."""
        _check_lines(self.path, block, self.line)
        data = self._load(block)
        frame = self._frames(block, data[:, 0])
        sx, sy, su = self.c.scales
        with np.errstate(over="ignore"):
            xs, ys = data[:, 1] * sx, data[:, 2] * sy
        self._check_finite(block, xs, ys)
        self._append(frame, xs, ys, data[:, 3] * su if self.unc is not None else None)
        self.line += block.count(b"\n")

    def _loadtxt(self, text: bytes) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "input contained no data"
            return np.loadtxt(io.BytesIO(text), delimiter=self.delimiter, usecols=self.c.usecols,
                              dtype=np.float64, ndmin=2, encoding="latin-1", quotechar='"')

    def _load(self, block: bytes) -> np.ndarray:
        """The block's used columns as float64 (rows × 3 or 4); a line numpy cannot read is
        explained (line, column, value)."""
        try:
            try:
                return self._loadtxt(block)
            except ValueError:
                if not _SPACE_LINE.search(block):
                    raise
                # lines of spaces are blank lines too: make them comments, in place (same
                # length, line numbers unchanged, no list of pieces as re.sub would build)
                marked = bytearray(block)
                for m in _SPACE_LINE.finditer(block):
                    marked[m.start():m.end()] = b"#" * (m.end() - m.start())
                return self._loadtxt(bytes(marked))
        except ValueError as exc:
            msg = _explain_block(self.path, block, self.line, self.delimiter, self.c.usecols,
                                 self.c.labels, self.n_header)
            last = self.line + block.count(b"\n") - 1
            raise DBlinkError(msg or f"{self.path}: lines {self.line}-{last}: cannot read the numeric "
                              f"columns ({first_line(exc, 160)})") from None

    def _value(self, block: bytes, row: int, k: int) -> tuple[int, str]:
        """Line number and text of used column ``k`` in data row ``row`` of a block."""
        lineno, text = _row_line(block, self.line, row)
        return lineno, _fields(self.path, lineno, text, self.delimiter)[self.c.usecols[k]].strip()

    def _frames(self, block: bytes, f: np.ndarray) -> np.ndarray:
        """The frame column checked (whole numbers from the base to 2^53) and made 1-based."""
        base = self.c.base
        bad = ~((f >= base) & (f <= MAX_FRAME) & (f == np.floor(f)))
        if bad.any():
            lineno, value = self._value(block, int(np.flatnonzero(bad)[0]), 0)
            raise DBlinkError(f"{self.path}: line {lineno}, column {self.c.usecols[0] + 1} "
                              f"('{self.c.labels[0]}'): frame {value!r} is not a whole number from "
                              f"{base} to 2^53 ({self.c.name} frames are {base}-based)")
        return f + (1 - base) if base != 1 else f

    def _check_finite(self, block: bytes, xs: np.ndarray, ys: np.ndarray) -> None:
        bad = ~(np.isfinite(xs) & np.isfinite(ys))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            k = 1 if not np.isfinite(xs[i]) else 2
            lineno, value = self._value(block, i, k)
            raise DBlinkError(f"{self.path}: line {lineno}, column {self.c.usecols[k] + 1} "
                              f"('{self.c.labels[k]}'): {value!r} is not a finite coordinate")

    def _append(self, frame, xs, ys, unc) -> None:
        n, m = self.n, len(frame)
        if n + m > len(self.frame):
            self._grow(n + m)
        self.frame[n:n + m] = frame
        self.x[n:n + m] = xs
        self.y[n:n + m] = ys
        if unc is not None:
            self.unc[n:n + m] = unc
        self.n = n + m

    def _grow(self, need: int) -> None:
        """Room for ``need`` rows: double the columns (at least ``need``, at most the lines left)."""
        n = self.n
        capacity = min(max(need, 2 * len(self.frame)), max(need, self.lines_left))

        def grown(a: np.ndarray) -> np.ndarray:
            return np.concatenate([a[:n], np.empty(capacity - n, a.dtype)])

        self.frame, self.x, self.y = grown(self.frame), grown(self.x), grown(self.y)
        if self.unc is not None:
            self.unc = grown(self.unc)

    def _note_fields(self, block: bytes) -> None:
        """Remember how many fields the block's last data line has (to judge a cut last line)."""
        tail = block[block.rfind(b"\n", 0, len(block) - 1) + 1:].strip()
        if tail and not tail.startswith(b"#"):
            self.last_fields = len(_fields(self.path, self.line - 1, tail.decode("latin-1"),
                                           self.delimiter))

    def _last_line(self, leftover: bytes) -> str | None:
        """The last line, without a newline: parsed when complete, else the warning to give."""
        _check_lines(self.path, leftover, self.line)
        text = leftover.decode("latin-1").rstrip("\r")
        fields = _fields(self.path, self.line, text, self.delimiter)
        complete = len(fields) >= min(self.last_fields, self.n_header) and all(
            i < len(fields) and _is_number(fields[i]) for i in self.c.usecols)
        if complete:
            self._parse(leftover + b"\n")
            return None
        shown = text if len(text) <= 40 else text[:37] + "..."
        return (f"{self.path}: line {self.line}: the last line {shown!r} is incomplete (the file "
                f"looks truncated); read the {self.n} complete rows before it")


@path_errors
def read_localizations(path: str | os.PathLike, camera_pixel: float | None = None,
                       warn: Callable[[str], None] | None = None, *,
                       spec: ColumnSpec = THUNDERSTORM) -> Localizations:
    """Read a ThunderSTORM CSV export (or a plain ``frame,x,y`` CSV in nm).

    Columns are found by header name and unit, in any order; quoted or unquoted labels; the ``id``,
    ``z``, ``sigma``, ``intensity``, ``chi2``, ``detections`` and unknown columns are ignored.
    ``x [px]`` needs ``camera_pixel`` (nm per camera pixel); ``x [µm]``/``x [um]`` are converted to nm.
    Accepted without fuss: ``,``, ``;`` or tab delimiters (the header's), CRLF line endings, a UTF-8
    byte-order mark, a Latin-1 encoded header (``µ`` as byte 0xB5), blank lines. A last line cut
    short (the file ends without a newline inside a row) is left out with a warning.

    The text is parsed in blocks of :data:`BLOCK_BYTES` into columns that grow by doubling, so the
    working memory is at most twice the result arrays plus one block, whatever the file holds (blank
    lines, comments); a line longer than :data:`MAX_LINE_BYTES` is refused without being held whole.

    The steps: :func:`_read_header` (delimiter, column labels and units), :func:`_choose_columns`
    (which columns, their scale to nm), :func:`_count_lines` (an upper bound on the rows), then
    :class:`_BlockReader` parses the data.

    Args:
        path: the CSV file.
        camera_pixel: nm per camera pixel, needed for tables in ``px``.
        warn: called with a one-line message for things worth knowing (a truncated last line);
            default: :func:`warnings.warn`.
        spec: which columns to read, their unit and frame base (default: ThunderSTORM's names;
            :mod:`dblink.formats` passes DECODE's, SMAP's and ``--columns``).

    Raises:
        DBlinkError: with a one-line message naming the file, the line (and column) and what is wrong.
    """
    path = str(path)
    if warn is None:
        def warn(msg: str) -> None:
            warnings.warn(msg, UserWarning, stacklevel=3)
    with _open_table(path) as fh:
        header = _read_header(path, fh, spec)
        columns = _choose_columns(path, header, spec, camera_pixel)
        reader = _BlockReader(path, header, columns, _count_lines(path, fh, header))
        truncated = reader.read(fh)
    if truncated:
        warn(truncated)
    return reader.result()


def _is_number(text: str) -> bool:
    try:
        float(text.strip())
    except ValueError:
        return False
    return True


def write_localizations(path: str | os.PathLike, locs: Localizations,
                        camera_pixel: float | None = None) -> None:
    """Write a ThunderSTORM-style CSV (quoted header, ``id, frame, x [nm], y [nm], uncertainty [nm]``);
    with ``camera_pixel`` (nm) x and y are written in camera pixels (``x [px]``), as ThunderSTORM
    does without a camera calibration."""
    n = len(locs)
    if camera_pixel:
        cols = [np.arange(1, n + 1), locs.frame, locs.x / camera_pixel, locs.y / camera_pixel]
        header = '"id","frame","x [px]","y [px]"'
        fmt = ["%d", "%d", "%.5f", "%.5f"]
    else:
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
