"""Issue 13, items 5 and 7: output paths (unwritable folders, folders as -o, a file that appears at
the target during the run, stale temporary files of killed runs) and the subcommands other than
reconstruct (preview, resolution, check_ij_jar), each class ending in one line and exit code 2."""
import errno
import os
import signal
import subprocess
import sys
import time
import zipfile

import numpy as np
import tifffile
import pytest

from conftest import ROOT
import dblink.files as F
from dblink.cli import main
from dblink.errors import DBlinkError
from dblink.files import atomic_output, check_ij_jar, check_output_path


def parts(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


def one_error_line(capsys, *needles):
    err = [ln for ln in capsys.readouterr().err.strip().splitlines()
           if not ln.startswith("dblink: warning:")]
    assert len(err) == 1, err
    assert err[0].startswith("dblink: error:"), err
    for n in needles:
        assert n in err[0], err[0]
    return err[0]


# ------------------------------------------------------------------ atomic_output: before the work

@pytest.mark.parametrize("overwrite", [False, True])
def test_a_folder_as_output_is_refused_up_front(tmp_path, overwrite):
    (tmp_path / "out.tif").mkdir()
    with pytest.raises(DBlinkError, match="is a folder"):
        with atomic_output(tmp_path / "out.tif", overwrite=overwrite):
            pytest.fail("the work started")


@pytest.mark.parametrize("errno_,why", [(errno.EROFS, "read-only filesystem"),
                                        (errno.EACCES, "permission denied"),
                                        (errno.ENOSPC, "the disk is full")])
def test_the_temporary_file_cannot_be_created(tmp_path, monkeypatch, errno_, why):
    def refuse(*a, **k):
        raise OSError(errno_, os.strerror(errno_), str(tmp_path))
    monkeypatch.setattr(F.tempfile, "mkstemp", refuse)
    with pytest.raises(DBlinkError) as info:
        with atomic_output(tmp_path / "out.tif"):
            pytest.fail("the work started")
    msg = str(info.value)
    assert "\n" not in msg and why in msg and "cannot write into the folder" in msg


def test_a_folder_you_may_not_write_to(tmp_path, monkeypatch):
    monkeypatch.setattr(F.os, "access", lambda *a, **k: False)
    with pytest.raises(DBlinkError, match="cannot write into the folder .*permission denied"):
        check_output_path(tmp_path / "out.tif")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_a_read_only_folder_for_real(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(DBlinkError, match="cannot write into the folder"):
            check_output_path(ro / "out.tif")
    finally:
        ro.chmod(0o700)


@pytest.mark.parametrize("name,needle", [("missing/out.tif", "does not exist"),
                                         ("afile/out.tif", "is not a folder"),
                                         ("", "must be a file name"),
                                         ("out.png", "must be a .tif or .tiff file")])
def test_bad_output_names(tmp_path, name, needle):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(DBlinkError, match=needle):
        check_output_path(str(tmp_path / name) if name else "", suffixes=(".tif", ".tiff"))


# ------------------------------------------------------------------ atomic_output: at the end

def _write_then(path, overwrite, intruder: bytes | None, make_dir=False):
    with atomic_output(path, overwrite=overwrite) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(b"new output")
        if make_dir:
            path.mkdir()
        elif intruder is not None:  # another run (or the user) writes the target meanwhile
            path.write_bytes(intruder)


@pytest.mark.parametrize("link", ["hardlink", "renameat2", "check"])
def test_a_file_that_appears_during_the_run_is_kept(tmp_path, monkeypatch, link):
    if link != "hardlink":
        def no_link(*a, **k):
            raise OSError(errno.EPERM, "Operation not permitted")
        monkeypatch.setattr(F.os, "link", no_link)
    if link == "check":
        monkeypatch.setattr(F, "_rename_noreplace", lambda *a: False)
    out = tmp_path / "out.tif"
    with pytest.raises(DBlinkError) as info:
        _write_then(out, False, b"precious")
    assert "appeared at the output path during the run" in str(info.value)
    assert out.read_bytes() == b"precious"
    assert parts(tmp_path) == []


@pytest.mark.parametrize("link", ["hardlink", "renameat2", "check"])
def test_without_an_intruder_the_output_is_published(tmp_path, monkeypatch, link):
    if link != "hardlink":
        monkeypatch.setattr(F.os, "link", lambda *a, **k: (_ for _ in ()).throw(OSError(errno.EXDEV, "x")))
    if link == "check":
        monkeypatch.setattr(F, "_rename_noreplace", lambda *a: False)
    out = tmp_path / "out.tif"
    _write_then(out, False, None)
    assert out.read_bytes() == b"new output" and parts(tmp_path) == []


def test_with_overwrite_the_intruder_is_replaced(tmp_path):
    out = tmp_path / "out.tif"
    _write_then(out, True, b"old")
    assert out.read_bytes() == b"new output" and parts(tmp_path) == []


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_folder_that_appears_during_the_run(tmp_path, overwrite):
    out = tmp_path / "out.tif"
    with pytest.raises(DBlinkError, match="a folder appeared"):
        _write_then(out, overwrite, None, make_dir=True)
    assert out.is_dir() and parts(tmp_path) == []


def test_two_runs_second_finisher_keeps_the_first_output(tmp_path):
    out = tmp_path / "out.tif"
    ctx1 = atomic_output(out, overwrite=False)
    tmp1 = ctx1.__enter__()
    with atomic_output(out, overwrite=False) as tmp2:
        open(tmp2, "wb").write(b"second")
    open(tmp1, "wb").write(b"first")
    with pytest.raises(DBlinkError, match="appeared"):
        ctx1.__exit__(None, None, None)
    assert out.read_bytes() == b"second" and parts(tmp_path) == []


# ------------------------------------------------------------------ stale temporary files

def _dead_pid():
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_stale_parts_of_dead_runs_are_removed(tmp_path):
    host = F._host_tag()
    other = f"{(int(host, 16) + 1) % 0x10000:04x}"
    old = time.time() - 8 * 24 * 3600
    names = {
        f".out.tif.{_dead_pid()}-{host}.abcd1234.part": True,        # dead process, this host
        f".out.tif.{os.getppid()}-{host}.abcd1234.part": False,      # a live process
        f".out.tif.{_dead_pid()}-{other}.abcd1234.part": False,      # another host: cannot tell
        f".old.tif.{_dead_pid()}-{other}.abcd1234.part": True,       # ... unless a week old
        ".legacy.tif.k2j3h4g5.part": False,                           # legacy name, recent
        ".legacy2.tif.k2j3h4g5.part": True,                           # legacy name, two days old
        ".download.part": False,                                     # not ours
        "visible.tif.part": False,                                   # not ours
    }
    for name in names:
        (tmp_path / name).write_bytes(b"partial")
    os.utime(tmp_path / [n for n in names if n.startswith(".old.tif")][0], (old, old))
    two_days = time.time() - 2 * 24 * 3600
    os.utime(tmp_path / ".legacy2.tif.k2j3h4g5.part", (two_days, two_days))
    with atomic_output(tmp_path / "new.tif") as tmp:
        open(tmp, "wb").write(b"x")
    left = {p.name for p in tmp_path.iterdir()}
    for name, stale in names.items():
        assert (name not in left) == stale, name
    assert "new.tif" in left


def test_a_killed_run_leaves_a_part_that_the_next_run_removes(tmp_path):
    code = f"""
import os, signal
from dblink.files import atomic_output
with atomic_output({str(tmp_path / 'out.tif')!r}) as tmp:
    open(tmp, 'wb').write(b'half')
    os.kill(os.getpid(), signal.SIGKILL)
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True)
    assert r.returncode == -signal.SIGKILL
    assert len(parts(tmp_path)) == 1
    with atomic_output(tmp_path / "other.tif") as tmp:
        open(tmp, "wb").write(b"x")
    assert parts(tmp_path) == [] and not (tmp_path / "out.tif").exists()


# ------------------------------------------------------------------ reconstruct's output (through the CLI)

def _table(path):
    rng = np.random.default_rng(0)
    cols = np.column_stack([rng.integers(1, 41, 300), rng.uniform(0, 1280, 300), rng.uniform(0, 1280, 300)])
    np.savetxt(path, cols, fmt=["%d", "%.2f", "%.2f"], delimiter=",", header="frame,x [nm],y [nm]",
               comments="")
    return path


@pytest.mark.parametrize("extra", [[], ["--overwrite"]])
def test_reconstruct_into_a_folder_fails_before_the_work(tmp_path, tiny_model_file, capsys,
                                                         monkeypatch, extra):
    import dblink.engine
    for name in ("infer", "stream_infer"):
        if hasattr(dblink.engine, name):
            monkeypatch.setattr(dblink.engine, name, lambda *a, **k: pytest.fail("reached the network"))
    (tmp_path / "out.tif").mkdir()
    assert main(["reconstruct", str(_table(tmp_path / "t.csv")), "-o", str(tmp_path / "out.tif"),
                 "--model", str(tiny_model_file), "--progress", "none", *extra]) == 2
    one_error_line(capsys, "out.tif")
    assert (tmp_path / "out.tif").is_dir() and parts(tmp_path) == []


def test_reconstruct_into_an_unwritable_folder(tmp_path, tiny_model_file, capsys, monkeypatch):
    def refuse(*a, **k):
        raise OSError(errno.EROFS, "Read-only file system")
    monkeypatch.setattr(F.tempfile, "mkstemp", refuse)
    assert main(["reconstruct", str(_table(tmp_path / "t.csv")), "-o", str(tmp_path / "out.tif"),
                 "--model", str(tiny_model_file), "--progress", "none"]) == 2
    one_error_line(capsys, "read-only filesystem")


# ------------------------------------------------------------------ preview

def _tifs(tmp_path):
    import tifffile

    tifffile.imwrite(tmp_path / "2d.tif", np.zeros((16, 16), np.float32))
    tifffile.imwrite(tmp_path / "5d.tif", np.zeros((2, 2, 2, 16, 16), np.float32), imagej=True)
    tifffile.imwrite(tmp_path / "rgb.tif", np.zeros((16, 16, 3), np.uint8))
    (tmp_path / "empty.tif").write_bytes(b"")
    (tmp_path / "csv.tif").write_text("frame,x [nm],y [nm]\n1,2,3\n")
    (tmp_path / "garbage.tif").write_bytes(b"II*\x00" + bytes(range(256)) * 4)
    (tmp_path / "garbage2.tif").write_bytes(b"MM\x00*" + b"\xff" * 64)
    tifffile.imwrite(tmp_path / "ok.tif", np.random.default_rng(0).random((4, 2, 16, 16), np.float32),
                     imagej=True, metadata={"axes": "TCYX"})


@pytest.mark.parametrize("name,needle", [
    ("2d.tif", "a single 2-D image"), ("5d.tif", "5 dimensions"), ("rgb.tif", "axes YXS"),
    ("empty.tif", "empty file"),
    ("csv.tif", "not a TIFF file"), ("garbage.tif", "2d"), ("garbage2.tif", "2d"),
    ("missing.tif", "no such file"), ("adir.tif", "2d"),
])
def test_preview_of_bad_tiffs(tmp_path, capsys, name, needle):
    _tifs(tmp_path)
    (tmp_path / "adir.tif").mkdir()
    assert main(["preview", str(tmp_path / name), "-o", str(tmp_path / "p")]) == 2
    line = one_error_line(capsys, name)
    if needle != "2d":
        assert needle in line
    assert not list(tmp_path.glob("p*"))


@pytest.mark.parametrize("argv,needle", [
    (["suggest", ""], "the table name is empty"), (["preview", " "], "the hyperstack name is empty"),
    (["reconstruct", "", "-o", "{tmp}/o.tif"], "the table name is empty"),
    (["resolution", ""], "the table name is empty"),
    (["resolution", "--over-time", ""], "the hyperstack name is empty"),
    (["resolution", "--image", ""], "the --image name is empty"),
])
def test_an_empty_file_name_is_named_as_such(tmp_path, capsys, argv, needle):
    """An empty name is not read as the current folder (": not a file")."""
    assert main([a.format(tmp=tmp_path) for a in argv]) == 2
    assert one_error_line(capsys, needle)
    assert not list(tmp_path.iterdir())


def test_a_damaged_tiff_gives_one_warning_and_one_error_line(tmp_path, capsys):
    """tifffile logs several lines about a damaged TIFF; dblink says them as one warning line."""
    tifffile.imwrite(tmp_path / "ok.tif", np.zeros((5, 8, 8), np.float32), imagej=True)
    (tmp_path / "cut.tif").write_bytes((tmp_path / "ok.tif").read_bytes()[:300])
    assert main(["preview", str(tmp_path / "cut.tif"), "-o", str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert all(ln.startswith("dblink: ") for ln in err), err
    assert len([ln for ln in err if ln.startswith("dblink: error:")]) == 1, err
    assert len([ln for ln in err if ln.startswith("dblink: warning: tifffile reported")]) == 1, err


def test_collected_log_lines_restore_the_logger_whatever_the_order():
    """Two dblink.cli.main calls at once in one process (two threads) each collect tifffile's log;
    closing them in either order leaves the logger propagating as it did before."""
    import logging

    from dblink.cli import _CollectedLog

    log = logging.getLogger("tifffile")
    assert log.propagate
    for order in ((0, 1), (1, 0)):
        a, b = _CollectedLog("tifffile"), _CollectedLog("tifffile")
        assert not log.propagate
        log.warning("damaged")
        assert a.lines == b.lines == ["damaged"]
        first, second = (a, b)[order[0]], (a, b)[order[1]]
        first.close()
        assert not log.propagate and first not in log.handlers
        second.close()
        second.close()  # again, as logging.shutdown does: no change
        assert log.propagate and second not in log.handlers


def test_preview_too_large_is_refused_before_reading(tmp_path, capsys, monkeypatch):
    import dblink.pictures as P
    _tifs(tmp_path)
    monkeypatch.setattr(P, "MAX_PREVIEW_PIXELS", 1000)
    assert main(["preview", str(tmp_path / "ok.tif")]) == 2
    one_error_line(capsys, "too large for a preview")


@pytest.mark.parametrize("out,needle", [("missing/p", "does not exist"), ("afile/p", "is not a folder")])
def test_preview_output_folder_checked_first(tmp_path, capsys, out, needle):
    _tifs(tmp_path)
    (tmp_path / "afile").write_text("x")
    assert main(["preview", str(tmp_path / "ok.tif"), "-o", str(tmp_path / out)]) == 2
    one_error_line(capsys, needle)


def test_preview_into_an_existing_folder_and_a_prefix(tmp_path, capsys):
    _tifs(tmp_path)
    (tmp_path / "pics").mkdir()
    assert main(["preview", str(tmp_path / "ok.tif"), "-o", str(tmp_path / "pics")]) == 0
    assert sorted(p.name for p in (tmp_path / "pics").iterdir()) == [
        "ok.gif", "ok_confidence.png", "ok_timecolor.png"]
    assert main(["preview", str(tmp_path / "ok.tif"), "-o", str(tmp_path / "pics" / "x")]) == 0
    assert (tmp_path / "pics" / "x_timecolor.png").is_file() and parts(tmp_path / "pics") == []


# ------------------------------------------------------------------ resolution

def test_resolution_plot_into_a_missing_folder(tmp_path, capsys):
    _tifs(tmp_path)
    import tifffile
    img = np.random.default_rng(1).random((3, 64, 64), np.float32)
    tifffile.imwrite(tmp_path / "rec.tif", img, imagej=True, resolution=(25.0, 25.0),
                     metadata={"axes": "TYX", "unit": "micron"})
    assert main(["resolution", "--image", str(tmp_path / "rec.tif"), "-o",
                 str(tmp_path / "missing" / "r")]) == 2
    one_error_line(capsys, "does not exist")
    assert not (tmp_path / "missing").exists()


def test_resolution_plot_into_a_folder_named_like_the_png(tmp_path, capsys):
    _tifs(tmp_path)
    import tifffile
    img = np.random.default_rng(1).random((3, 64, 64), np.float32)
    tifffile.imwrite(tmp_path / "rec.tif", img, imagej=True, resolution=(25.0, 25.0),
                     metadata={"axes": "TYX", "unit": "micron"})
    (tmp_path / "r_decorrelation.png").mkdir()
    assert main(["resolution", "--image", str(tmp_path / "rec.tif"), "-o", str(tmp_path / "r")]) == 2
    one_error_line(capsys, "is a folder")


def test_plots_are_written_atomically(tmp_path):
    from dblink.pictures import line_plot
    p = line_plot(tmp_path / "a.png", [([0, 1, 2], [1, 0, 1], (0, 0, 0))])
    assert p.read_bytes()[:4] == b"\x89PNG" and parts(tmp_path) == []
    with pytest.raises(DBlinkError, match="does not exist"):
        line_plot(tmp_path / "no" / "a.png", [([0, 1], [1, 0], (0, 0, 0))])


# ------------------------------------------------------------------ check_ij_jar (for dblink fiji --ij-jar)

def test_check_ij_jar(tmp_path):
    (tmp_path / "notajar.jar").write_text("hello")
    with zipfile.ZipFile(tmp_path / "other.jar", "w") as z:
        z.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\n")
    with zipfile.ZipFile(tmp_path / "ij.jar", "w") as z:
        z.writestr("ij/ImageJ.class", b"\xca\xfe\xba\xbe")
    (tmp_path / "dir.jar").mkdir()
    for name, needle in [("notajar.jar", "not a jar file"), ("other.jar", "no ij/ImageJ.class"),
                         ("missing.jar", "no such file"), ("dir.jar", "not a file")]:
        with pytest.raises(DBlinkError, match=needle) as info:
            check_ij_jar(tmp_path / name)
        assert "\n" not in str(info.value)
    assert check_ij_jar(tmp_path / "ij.jar") == tmp_path / "ij.jar"
    if os.path.isfile("/usr/share/java/ij.jar"):
        check_ij_jar("/usr/share/java/ij.jar")


def test_check_output_dir(tmp_path):
    from dblink.files import check_output_dir
    (tmp_path / "afile").write_text("x")
    for name, needle in [("afile", "exists and is a file"), ("missing/sub", "does not exist")]:
        with pytest.raises(DBlinkError, match=needle):
            check_output_dir(tmp_path / name)
    assert check_output_dir(tmp_path / "new") == tmp_path / "new"
    assert check_output_dir(tmp_path) == tmp_path


def test_resolution_check_output_prefix(tmp_path):
    from dblink.resolution import check_output_prefix
    (tmp_path / "r_frc.png").mkdir()
    for prefix, needle in [(tmp_path / "missing" / "r", "does not exist"), (tmp_path / "r", "is a folder")]:
        with pytest.raises(DBlinkError, match=needle):
            check_output_prefix(prefix, "_frc.png")
    assert check_output_prefix(tmp_path / "s", "_frc.png") == tmp_path / "s_frc.png"


LONG = "x" * 5000


@pytest.mark.parametrize("argv", [
    ["reconstruct", LONG, "-o", "o.tif"],
    ["reconstruct", LONG + ".csv", "-o", "o.tif"],
    ["export", LONG, "-o", "m.pt"],
    ["import-weights", LONG, "-o", "m.pt", "--pixel-size", "1", "--frames-per-step", "1"],
    ["preview", "ok.tif", "-o", LONG],
    ["preview", "ok.tif", "-o", "sub/" + LONG],
])
def test_names_too_long_for_the_filesystem(tmp_path, capsys, monkeypatch, argv):
    _tifs(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    line = one_error_line(capsys)
    assert "characters)" in line or "too long" in line, line[:300]
    assert len(line) < 1000


def test_functions_name_the_path_on_os_errors(tmp_path):
    from dblink.export import load_model
    from dblink.pictures import read_video
    from dblink.tables import read_localizations
    (tmp_path / "afile").write_text("x")
    for fn in (read_localizations, read_video, load_model, check_output_path, check_ij_jar):
        with pytest.raises(DBlinkError) as info:
            fn(str(tmp_path / LONG) + ".pt")
        assert "\n" not in str(info.value) and "characters)" in str(info.value), fn


@pytest.mark.parametrize("exc", [MemoryError(), RuntimeError("[enforce fail at alloc_cpu.cpp:127] "
                                 "DefaultCPUAllocator: can't allocate memory: you tried to allocate "
                                 "2111782400 bytes"), RuntimeError("something else")])
def test_an_allocation_that_fails_is_one_line(monkeypatch, capsys, exc):
    import dblink.cli as cli

    def boom(args):
        raise exc

    monkeypatch.setitem(cli.COMMANDS, "models", (cli.COMMANDS["models"][0], boom, cli.COMMANDS["models"][2]))
    if "something else" in str(exc):  # a bug is not dressed up as a memory problem
        with pytest.raises(RuntimeError, match="something else"):
            main(["models"])
        return
    assert main(["models"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("dblink: error: out of memory") and "--max-memory" in err[0]


@pytest.mark.parametrize("exc", [MemoryError(), RuntimeError("[enforce fail at alloc_cpu.cpp:127] "
                                 "DefaultCPUAllocator: can't allocate memory: you tried to allocate "
                                 "2111782400 bytes"), RuntimeError("\n\nsomething else\nmore")])
def test_batch_reports_a_failed_allocation_as_out_of_memory(monkeypatch, tmp_path, exc):
    """``dblink batch`` says "out of memory" for the same failures the CLI does (PyTorch's CPU
    allocator too), and any other failure as its type and first non-blank line."""
    import dblink.pipeline
    from dblink.batch import run_one
    from dblink.options import ReconstructOptions

    def boom(*a, **k):
        raise exc

    monkeypatch.setattr(dblink.pipeline, "reconstruct", boom)
    row = run_one(str(tmp_path / "t.csv"), str(tmp_path / "t.tif"), ReconstructOptions(model="filaments"))
    assert row["status"] == "failed" and "\n" not in row["message"]
    if "something else" in str(exc):
        assert row["message"] == "RuntimeError: something else"
    else:
        assert row["message"].startswith("out of memory (") and "--max-memory" in row["message"]


def test_the_memory_default_respects_the_process_limit():
    """Under ``ulimit -v`` (or a container's memory limit) the default --max-memory is half of what
    the process may still allocate, so a job is refused up front rather than failing half way."""
    code = ("import resource; resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30)); "
            "from dblink.memory import available_memory, default_max_memory; "
            "print(available_memory(), default_max_memory())")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(ROOT / "python")})
    assert r.returncode == 0, r.stderr
    avail, default = map(int, r.stdout.split())
    assert 0 < avail <= 3 * 2**30 and default <= 1.5 * 2**30


def test_an_allocation_failing_half_way_leaves_no_output(tmp_path, tiny_model_file, monkeypatch, capsys):
    """PyTorch's CPU allocator failing during inference: one line, exit 2, and neither the output
    nor a temporary file is left behind."""
    import dblink.engine as E

    assert main(["simulate", "filaments", "-o", str(tmp_path / "s"), "--size", "32", "--steps",
                 "30"]) == 0
    calls = []

    def fail(self, x, pos):
        calls.append(1)
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't "
                           "allocate memory: you tried to allocate 2111782400 bytes")

    monkeypatch.setattr(E._Runner, "_run", fail)
    capsys.readouterr()
    out = tmp_path / "o.tif"
    assert main(["reconstruct", str(tmp_path / "s" / "locs.csv"), "-o", str(out), "--model",
                 str(tiny_model_file), "--progress", "none"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert calls and err[-1].startswith("dblink: error: out of memory"), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s", "tiny.pt"]  # no o.tif, no o.tif.part
