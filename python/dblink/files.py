"""Safe output files: written under a temporary name, renamed only when complete.

The promises, as tested in ``tests/test_outputs.py`` and ``tests/test_robust_cli.py``:

* an output path that cannot be written (a missing folder, a folder, a folder you may not write to,
  a read-only filesystem) is one :class:`DBlinkError` line before any work;
* the output appears complete or not at all: it is written to ``.NAME.PID-HOST.RANDOM.part`` in the
  target folder and renamed at the end; on any exception (Ctrl-C and SIGTERM included) the
  temporary file is removed;
* without ``overwrite``, a file that appeared at the target during the run is kept: the final step
  links the temporary file to the target (``link`` fails if the target exists) instead of renaming
  over it; where hard links are unsupported, ``renameat2(RENAME_NOREPLACE)`` is used, and only where
  neither exists a check just before the rename;
* temporary files left by runs that were killed (SIGKILL, a power cut) are removed when a new run
  writes into the same folder: those whose process is gone (same host), or older than a week.
"""
from __future__ import annotations

import contextlib
import errno
import os
import re
import socket
import tempfile
import time
import zlib
from pathlib import Path
from typing import Iterator

from .errors import DBlinkError

#: a temporary output of a run whose process cannot be checked is stale after this many seconds
STALE_AFTER_S = 7 * 24 * 3600
#: legacy temporary names (no pid) are stale after this many seconds
LEGACY_STALE_AFTER_S = 24 * 3600

_PART_RE = re.compile(r"^\..+\.(\d+)-([0-9a-f]{4})\.[A-Za-z0-9_]+\.part$")
_LEGACY_PART_RE = re.compile(r"^\..+\.(tif|tiff|pt|csv|zip|json|png|gif)\.[a-z0-9_]{8}\.part$",
                             re.IGNORECASE)
_NO_LINK = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV, errno.EMLINK, errno.ENOSYS,
            errno.EINVAL}


def shown(path: str | os.PathLike) -> str:
    """A path for a one-line message: as given, or its two ends when it is absurdly long."""
    text = str(path)
    return text if len(text) <= 300 else f"{text[:150]}...{text[-100:]} ({len(text)} characters)"


def path_errors(fn):
    """Decorator: an OSError that escapes ``fn`` (a name too long, a path through a file, an I/O
    error) becomes one DBlinkError line naming ``fn``'s first argument, the path."""
    import functools

    @functools.wraps(fn)
    def wrapper(path, *args, **kwargs):
        try:
            return fn(path, *args, **kwargs)
        except OSError as exc:
            why = exc.strerror or str(exc) or type(exc).__name__
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                why = "the disk is full"
            name = getattr(exc, "filename", None)
            if not name or str(name).endswith(".part"):  # a temporary output: name the argument
                name = path
            raise DBlinkError(f"{shown(name)}: {why}") from None
    return wrapper


@path_errors
def input_file(path: str | os.PathLike, what: str = "file") -> Path:
    """``path`` as a Path when it names an existing regular file, else one DBlinkError line: an
    empty name (which Path would read as the current folder), no such file, not a file."""
    if not str(path).strip():
        raise DBlinkError(f"the {what} name is empty")
    p = Path(path)
    if not p.exists():
        raise DBlinkError(f"{shown(path)}: no such file")
    if not p.is_file():
        raise DBlinkError(f"{shown(path)}: not a file")
    return p


def _host_tag() -> str:
    return f"{zlib.crc32(socket.gethostname().encode()) & 0xFFFF:04x}"


def _why(exc: OSError) -> str:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return "the disk is full"
    if exc.errno == errno.EROFS:
        return "read-only filesystem"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    return exc.strerror or type(exc).__name__


@path_errors
def check_output_path(path: str | os.PathLike, overwrite: bool = True,
                      suffixes: tuple[str, ...] | None = None, what: str = "output") -> Path:
    """Check, before any work, that a file can be written at ``path``; one line if not.

    Refuses: a name without one of ``suffixes`` (lower-case, e.g. ``(".tif", ".tiff")``), an
    existing folder, an existing file without ``overwrite``, a missing folder, a parent that is not
    a folder, and a folder this process may not write into (permissions or a read-only filesystem).
    """
    p = Path(path)
    if str(path) == "" or p.name in ("", ".", ".."):
        raise DBlinkError(f"{str(path)!r}: the {what} must be a file name")
    if suffixes and p.suffix.lower() not in suffixes:
        raise DBlinkError(f"{p}: the {what} must be a {' or '.join(suffixes)} file")
    if p.is_dir():
        raise DBlinkError(f"{p}: is a folder; the {what} must be a file name")
    if (p.exists() or p.is_symlink()) and not overwrite:
        raise DBlinkError(f"{p}: already exists (use --overwrite to replace it)")
    folder = p.parent if str(p.parent) else Path(".")
    if not folder.exists():
        raise DBlinkError(f"{p}: the output folder {folder} does not exist")
    if not folder.is_dir():
        raise DBlinkError(f"{p}: {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        ro = False
        with contextlib.suppress(OSError):
            ro = bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
        raise DBlinkError(f"{p}: cannot write into the folder {folder} "
                          f"({'read-only filesystem' if ro else 'permission denied'})")
    return p


@path_errors
def check_output_folder(folder: str | os.PathLike, what: str = "output folder") -> Path:
    """Check that ``folder`` exists, is a folder and can be written into (for prefixes: ``-o
    DIR/name`` writes ``DIR/name_*.png``)."""
    d = Path(folder) if str(folder) else Path(".")
    if not d.exists():
        raise DBlinkError(f"{d}: the {what} does not exist")
    if not d.is_dir():
        raise DBlinkError(f"{d}: the {what} is not a folder")
    if not os.access(d, os.W_OK | os.X_OK):
        raise DBlinkError(f"{d}: cannot write into the {what} (permission denied)")
    return d


@path_errors
def check_output_dir(path: str | os.PathLike, what: str = "output folder") -> Path:
    """Check, before any work, a folder that a command will create or fill (``simulate -o DIR``,
    ``demo -o DIR``, ``train -o RUN_DIR``): refuses an existing file at ``path``, a missing parent
    folder, and a place this process may not write to; one DBlinkError line each."""
    p = Path(path)
    if str(path) == "":
        raise DBlinkError(f"the {what} must be a folder name")
    if p.exists() and not p.is_dir():
        raise DBlinkError(f"{p}: exists and is a file, not a folder; give a folder for the {what}")
    if p.is_dir():
        return check_output_folder(p, what)
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise DBlinkError(f"{p}: the folder {parent} does not exist")
    check_output_folder(parent, "folder")
    return p


def clean_stale_parts(folder: str | os.PathLike, now: float | None = None) -> list[str]:
    """Remove temporary outputs of dead runs in ``folder``; returns the names removed.

    A ``.NAME.PID-HOST.RANDOM.part`` file is stale when HOST is this host and process PID is gone,
    or when it is older than :data:`STALE_AFTER_S`; a legacy ``.NAME.XXXXXXXX.part`` (no pid) when
    older than :data:`LEGACY_STALE_AFTER_S`. Errors are ignored: cleaning is a courtesy."""
    now = time.time() if now is None else now
    host = _host_tag()
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for e in entries:
        name = e.name
        if not (name.startswith(".") and name.endswith(".part")):
            continue
        try:
            if not e.is_file(follow_symlinks=False):
                continue
            age = now - e.stat(follow_symlinks=False).st_mtime
        except OSError:
            continue
        m = _PART_RE.match(name)
        stale = False
        if m:
            pid, tag = int(m.group(1)), m.group(2)
            if age > STALE_AFTER_S:
                stale = True
            elif tag == host and pid != os.getpid():
                stale = not _pid_alive(pid)
        elif _LEGACY_PART_RE.match(name):
            stale = age > LEGACY_STALE_AFTER_S
        if stale:
            with contextlib.suppress(OSError):
                os.unlink(e.path)
                removed.append(name)
    return removed


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return True  # never guess about odd names
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True
    return True


def _rename_noreplace(src: str, dst: str) -> bool:
    """``renameat2(src, dst, RENAME_NOREPLACE)``; False where the system has no such call."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    AT_FDCWD, RENAME_NOREPLACE = -100, 1
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if fn(AT_FDCWD, os.fsencode(src), AT_FDCWD, os.fsencode(dst), RENAME_NOREPLACE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), dst)


def _publish(tmp: str, path: Path, overwrite: bool) -> None:
    """Move the complete temporary file to ``path``; without ``overwrite`` never replace a file
    that appeared there meanwhile."""
    if path.is_dir():
        raise DBlinkError(f"{path}: a folder appeared at the output path during the run; "
                          f"nothing was written")
    if overwrite:
        os.replace(tmp, path)
        return
    appeared = DBlinkError(f"{path}: a file appeared at the output path during the run; it was "
                           f"kept, nothing was written (use --overwrite to replace it)")
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise appeared from None
    except OSError as exc:
        if exc.errno not in _NO_LINK:
            raise
    else:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        return
    try:  # no hard links here (e.g. some FUSE, SMB or FAT filesystems)
        if _rename_noreplace(tmp, str(path)):
            return
    except FileExistsError:
        raise appeared from None
    except OSError as exc:
        if exc.errno == errno.EEXIST:
            raise appeared from None
        if exc.errno not in _NO_LINK:
            raise
    if path.exists() or path.is_symlink():
        raise appeared
    os.rename(tmp, path)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, overwrite: bool = True) -> Iterator[str]:
    """Yield a temporary path in the target folder; move it to ``path`` only on success.

    On any exception (including KeyboardInterrupt) the temporary file is removed, so a file at
    ``path`` is always complete. Without ``overwrite``, an existing file is refused before and at the
    final step (see the module docstring). Stale temporary files of dead runs in the folder are
    removed first.
    """
    path = check_output_path(path, overwrite)
    folder = path.parent if str(path.parent) else Path(".")
    clean_stale_parts(folder)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}-{_host_tag()}.", suffix=".part",
                                   dir=folder)
    except OSError as exc:
        raise DBlinkError(f"{path}: cannot write into the folder {folder} ({_why(exc)}); "
                          f"nothing was written") from None
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    with contextlib.suppress(OSError):
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; outputs get the usual permissions
    try:
        yield tmp
        _publish(tmp, path, overwrite)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@path_errors
def check_ij_jar(path: str | os.PathLike) -> Path:
    """Check that ``path`` is an ImageJ 1.x jar (a zip holding ``ij/ImageJ.class``) before starting
    a JVM with it; one DBlinkError line if not (for ``dblink fiji --ij-jar``)."""
    import zipfile

    p = Path(path)
    if not p.exists():
        raise DBlinkError(f"{p}: no such file (--ij-jar needs an ImageJ 1.x jar, e.g. "
                          f"/usr/share/java/ij.jar)")
    if not p.is_file():
        raise DBlinkError(f"{p}: not a file (--ij-jar needs an ImageJ 1.x jar)")
    try:
        with zipfile.ZipFile(p) as zf:
            names = set(zf.namelist())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError):
        raise DBlinkError(f"{p}: not a jar file (--ij-jar needs an ImageJ 1.x jar)") from None
    if "ij/ImageJ.class" not in names and "ij/IJ.class" not in names:
        raise DBlinkError(f"{p}: a jar without ImageJ 1.x in it (no ij/ImageJ.class); "
                          f"--ij-jar needs an ImageJ 1.x jar such as ij.jar")
    return p
