"""The Fiji/ImageJ side, in real ImageJ 1.x (Debian's libij-java): the plugin jar, macro runs of the
menu command under Xvfb, the headless no-dialog path, the in-process JPype route, the subprocess
route, identical hyperstacks from both, ThunderSTORM's "Export results" (a stand-in command), the
recordable option keys, and readable errors."""
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tifffile

from conftest import ROOT, write_csv

# Debian's libij-java, or another ImageJ 1.x jar (e.g. Fiji's jars/ij-1.54f.jar)
IJ_JAR = Path(os.environ.get("DBLINK_IJ_JAR", "/usr/share/java/ij.jar"))
PY = sys.executable
pytestmark = [
    pytest.mark.skipif(not IJ_JAR.is_file(), reason=f"ImageJ 1.x not installed: no {IJ_JAR} (apt install libij-java, or set DBLINK_IJ_JAR)"),
    pytest.mark.skipif(shutil.which("javac") is None, reason="no JDK (javac) to build the plugin"),
]
needs_xvfb = pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="xvfb not installed")
SOURCE = ROOT / "fiji-plugin" / "src" / "main" / "java" / "dblink" / "DBlink_Reconstruct.java"


@pytest.fixture(scope="module")
def jar():
    from dblink.imagej import plugin_jar
    return plugin_jar(IJ_JAR, rebuild=True)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A small simulated table in a folder whose name has spaces and brackets, and the CLI's output."""
    d = tmp_path_factory.mktemp("fiji") / "my data [run 1]"
    d.mkdir()
    from dblink.cli import main
    assert main(["simulate", "filaments", "-o", str(d / "sim"), "--size", "24", "--steps", "12",
                 "--seed", "5"]) == 0
    table = d / "sim" / "locs.csv"
    # the plugin's default stride=auto: 8 on a CPU, exact (1) on a GPU
    from dblink.imagej import auto_stride
    assert main(["reconstruct", str(table), "-o", str(d / "cli.tif"), "--progress", "none",
                 "--stride", str(auto_stride("auto"))]) == 0
    return d, table


@pytest.fixture(scope="module")
def plugins_dir(jar, tmp_path_factory):
    """An ImageJ plugins folder with the DBlink jar and a stand-in for ThunderSTORM's commands."""
    root = tmp_path_factory.mktemp("ij")
    (root / "plugins").mkdir()
    shutil.copy(jar, root / "plugins" / jar.name)
    classes = root / "stub"
    classes.mkdir()
    subprocess.run(["javac", "--release", "8", "-nowarn", "-cp", str(IJ_JAR), "-d", str(classes),
                    str(ROOT / "tests" / "java" / "ThunderSTORM_Stub.java")], check=True,
                   capture_output=True)
    shutil.copy(ROOT / "tests" / "java" / "plugins.config", classes / "plugins.config")
    subprocess.run(["jar", "cf", str(root / "plugins" / "ThunderSTORM_Stub_.jar"), "-C", str(classes),
                    "."], check=True)
    return root


def ij_batch(plugins_dir, macro_text, tmp_path, *jvm_args, xvfb=True, arg=""):
    macro = tmp_path / "m.ijm"
    macro.write_text(macro_text)
    cmd = ["java", f"-Dplugins.dir={plugins_dir}", *jvm_args, "-cp", str(IJ_JAR), "ij.ImageJ",
           "-batch", str(macro)] + ([arg] if arg else [])
    if xvfb:
        cmd = ["xvfb-run", "-a"] + cmd
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180)


def session(check, raw=False, xvfb=False, **args):
    """One check of fiji_session.py in a fresh JVM; its JSON (and, with raw, its whole stdout,
    where headless ImageJ's Log goes)."""
    args.setdefault("ij_jar", str(IJ_JAR))
    out = subprocess.run((["xvfb-run", "-a"] if xvfb else []) +
                         [PY, str(ROOT / "tests" / "fiji_session.py"), check, json.dumps(args)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return (result, out.stdout) if raw else result


def errors(*runs):
    """Failing plugin runs (dicts of options and register) in one JVM: each one's return value
    and lastError."""
    return session("errors", runs=list(runs), headless=True)["runs"]


def test_jar_layout(jar):
    assert "_" in jar.name
    names = zipfile.ZipFile(jar).namelist()
    assert "plugins.config" in names and "dblink/DBlink_Reconstruct.class" in names
    config = zipfile.ZipFile(jar).read("plugins.config").decode()
    assert 'Plugins>DBlink, "DBlink Reconstruct..."' in config


@needs_xvfb
def test_menu_command_in_a_macro_subprocess_route(plugins_dir, data, tmp_path):
    d, table = data
    out = d / "from menu.tif"
    r = ij_batch(plugins_dir, f'run("DBlink Reconstruct...", "table=[{table}] save=[{out}] '
                 f'python=[{PY}]");\nprint("ERR=" + call("dblink.DBlink_Reconstruct.lastError"));',
                 tmp_path)
    assert "ERR=\n" in r.stdout + "\n" or r.stdout.strip().endswith("ERR="), r.stdout + r.stderr
    np.testing.assert_array_equal(tifffile.imread(out), tifffile.imread(d / "cli.tif"))


def test_headless_without_menus_or_dialog(plugins_dir, data, tmp_path, jar):
    d, table = data
    out = d / "headless.tif"
    macro = (f'print(call("dblink.DBlink_Reconstruct.macro", "table=[{table}] save=[{out}] python=[{PY}]"));\n'
             f'print(call("dblink.DBlink_Reconstruct.macro", "model=filaments"));')
    mfile = tmp_path / "h.ijm"
    mfile.write_text(macro)
    r = subprocess.run(["java", "-Djava.awt.headless=true", "-cp", f"{IJ_JAR}:{jar}", "ij.ImageJ",
                        "-batch", str(mfile)], capture_output=True, text=True, timeout=180)
    lines = r.stdout.strip().splitlines()
    assert "ok" in lines, r.stdout + r.stderr
    assert any(line.startswith("error: no table given") for line in lines)  # never a hung dialog
    np.testing.assert_array_equal(tifffile.imread(out), tifffile.imread(d / "cli.tif"))
    # no options at all, headless: one clear message instead of a dialog
    assert "no options given" in session("no_options", headless=True)["last_error"]


def test_both_runtimes_give_the_same_hyperstack_and_log_the_save(data, tmp_path):
    """The in-process and the subprocess route give the same calibrated hyperstack; save without
    show is not silent: each route logs the path, T x H x W and the time."""
    d, table = data
    out = tmp_path / "logged.tif"
    r, stdout = session("routes", raw=True, options=f"table=[{table}] save=[{out}]", headless=True)
    assert r["inprocess_error"] == "" and r["subprocess_error"] == ""
    a, b = r["images"]
    assert a == b  # title, C/Z/T, calibration, composite, metadata
    T, C, H, W = tifffile.imread(d / "cli.tif").shape
    assert a["dims"] == [W, H, C, 1, T] and a["unit"] == "micron"
    assert a["pixel_width"] == pytest.approx(0.04) and a["frame_interval"] == 10.0
    assert a["title"] == "DBlink of locs.csv" and a["info_has_model"]
    assert r["max_abs_diff"] == 0.0
    assert a["source"] == str(table)  # provenance: the table the localizations came from
    lines = [x for x in stdout.splitlines() if x.startswith(f"DBlink: wrote {out} ")]
    assert len(lines) == 2, stdout
    for line in lines:
        assert re.fullmatch(rf"DBlink: wrote {re.escape(str(out))} \({T} x {H} x {W} px \(T x H x W\), "
                            rf"{C} channels\) in [\d.]+ s", line), line
    # and the model check before the run, with the stride it chose
    assert stdout.count("DBlink: model filaments ready (40.0 nm pixels, 10 frames per step") == 2


def test_a_bad_model_fails_before_the_run(data):
    """The "model ready" check: a wrong model name fails in the preparation, in both routes."""
    d, table = data
    runs = errors(*[dict(options=f"table=[{table}] model=filamints python=[{PY}]", register=register)
                    for register in (True, False)])
    for r in runs:
        assert "no model named 'filamints'" in r["last_error"], r


def test_tta_and_paths_with_quotes_reach_both_runtimes(data, tmp_path):
    """``tta=4`` goes through the in-process route (macro_options) and the command line
    (--tta 4) alike; a table path with quotes, an apostrophe and brackets round-trips in both."""
    d, table = data
    odd = tmp_path / "it's \"quoted\" [x]"
    odd.mkdir()
    shutil.copy(table, odd / "locs.csv")
    r = session("routes", options=f"table=[{odd / 'locs.csv'}] model=filaments tta=4", headless=True)
    assert r["inprocess_error"] == "" and r["subprocess_error"] == ""
    assert r["max_abs_diff"] == 0.0 and r["images"][0]["info_has_model"]
    assert r["images"][0]["info_tta"] == 4 and r["images"][1]["info_tta"] == 4
    assert r["images"][0]["source"] == r["images"][1]["source"] == str(odd / "locs.csv")


def test_dblink_fiji_runs_the_batch_macro_in_process(data, tmp_path):
    d, table = data
    inp = tmp_path / "in put"
    inp.mkdir()
    shutil.copy(table, inp / "a.csv")
    write_csv(inp / "bad.csv", '"frame","x [furlong]","y [furlong]"', [(1, 2, 3)])
    out = tmp_path / "out [tif]"
    r = subprocess.run([PY, "-m", "dblink.cli", "fiji", "--headless", "--macro",
                        str(ROOT / "macros" / "dblink_batch_folder.ijm"), "--args",
                        f"input=[{inp}] output=[{out}] model=filaments"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "1 written, 1 failed" in r.stdout
    assert "bad.csv failed: error:" in r.stdout and "unknown unit" in r.stdout
    np.testing.assert_array_equal(tifffile.imread(out / "a.tif"), tifffile.imread(d / "cli.tif"))


@needs_xvfb
def test_after_thunderstorm_exports_the_results_table(plugins_dir, data, tmp_path):
    d, table = data
    out = d / "after ts.tif"
    macro = ROOT / "macros" / "dblink_after_thunderstorm.ijm"
    text = 'newImage("raw", "16-bit black", 32, 32, 5);\n' + macro.read_text()
    text += '\nprint("INFO=" + getMetadata("Info"));\n'
    r = ij_batch(plugins_dir, text, tmp_path, f"-Ddblink.test.csv={table}",
                 arg=f"save=[{out}] python=[{PY}]")
    assert "stub analysis" in r.stdout and "sigma=1.6" in r.stdout, r.stdout + r.stderr
    assert "stub camera" not in r.stdout  # no camera given: ThunderSTORM's own setup is left alone
    np.testing.assert_array_equal(tifffile.imread(out), tifffile.imread(d / "cli.tif"))
    # the exported table and ThunderSTORM's protocol are kept next to the output, and named
    kept = d / "after ts.thunderstorm.csv"
    assert kept.read_bytes() == table.read_bytes()
    assert (d / "after ts.thunderstorm-protocol.txt").is_file()
    # provenance in the hyperstack's Info: the analysed image and ThunderSTORM's settings
    assert f"dblink.source=ThunderSTORM results of raw (exported to {kept})" in r.stdout
    assert 'thunderstorm.protocol={ "version": "ThunderSTORM (stub)"' in r.stdout
    # the Log says what was written (save without show would otherwise be silent)
    assert re.search(rf"DBlink: wrote {re.escape(str(out))} \(12 x \d+ x \d+ px \(T x H x W\), 2 channels\) "
                     r"in [\d.]+ s", r.stdout), r.stdout
    assert "DBlink: model filaments ready" in r.stdout and "fast mode on a CPU" in r.stdout
    # no results table open: a clear message before ThunderSTORM's Export results is called
    r = ij_batch(plugins_dir, f'print(call("dblink.DBlink_Reconstruct.macro", "table=[ThunderSTORM results] python=[{PY}]"));',
                 tmp_path, f"-Ddblink.test.csv={table}")
    assert "no ThunderSTORM results table is open: run Plugins>ThunderSTORM>Run analysis" in r.stdout, \
        r.stdout + r.stderr
    assert "Exception" not in r.stdout + r.stderr


@needs_xvfb
def test_after_thunderstorm_opens_the_movie_and_takes_the_camera(plugins_dir, data, tmp_path):
    """The header's shell command: movie=[...] opens the raw movie (no image open), camera
    settings given as arguments go to ThunderSTORM's Camera setup, sigma to its fit."""
    d, table = data
    movie = tmp_path / "raw movie.tif"
    tifffile.imwrite(movie, np.zeros((5, 32, 32), np.uint16), imagej=True)
    out = tmp_path / "from shell.tif"
    macro = ROOT / "macros" / "dblink_after_thunderstorm.ijm"
    r = ij_batch(plugins_dir, macro.read_text(), tmp_path, f"-Ddblink.test.csv={table}",
                 arg=f"movie=[{movie}] pixelsize=107 photons2adu=0.5 offset=98.5 sigma=1.3 "
                     f"stride=4 save=[{out}] python=[{PY}]")
    assert "stub camera: pixelsize=107 photons2adu=0.5 offset=98.5 isemgain=false" in r.stdout, \
        r.stdout + r.stderr
    assert "sigma=1.3 " in r.stdout and "DBlink: wrote" in r.stdout
    assert '"stride": 4' in tifffile.TiffFile(out).imagej_metadata["Info"]
    # no movie and no image: one clear line, no dialog
    r = ij_batch(plugins_dir, macro.read_text(), tmp_path, arg=f"python=[{PY}]")
    assert "no raw SMLM movie: open one first, or give movie=" in r.stdout + r.stderr


def test_dialog_keys_are_the_macro_keys():
    """The dialog's labels give the keys ImageJ records (first word, lower case); they must be the
    keys the plugin parses and the macros use."""
    src = SOURCE.read_text()
    labels = re.findall(r'gd\.add(?:String|Numeric)Field\("([^"]+)"|gd\.addCheckbox\("([^"]+)"|'
                        r'gd\.addChoice\("([^"]+)"', src.split("Map<String, String> dialog()")[1]
                        .split("void settings()")[0])
    recorded = [next(x for x in m if x).split(" ")[0].lower() for m in labels]
    keys = re.search(r"KEYS = \{([^}]*)\}", src).group(1)
    keys = re.findall(r'"([a-z_]+)"', keys)
    assert recorded == [k for k in keys if k != "python"]
    for macro in (ROOT / "macros").glob("*.ijm"):
        for call in re.findall(r'DBlink Reconstruct\.\.\.", "([^"]*)"', macro.read_text()):
            for key in re.findall(r"(?:^| )([a-z_]+)(?==|\s|$)", call):
                assert key in keys, (macro.name, key)


def test_errors_reach_the_user_as_one_line(data, tmp_path):
    d, table = data
    bad = write_csv(tmp_path / "bad.csv", '"frame","x [furlong]","y [furlong]"', [(1, 2, 3)])
    other = shutil.which("python3", path="/usr/bin")
    runs = errors(dict(options=f"table=[{bad}]", register=True),
                  dict(options=f"table=[{table}] python=[/no/such/python]"),
                  dict(options="table=[/no/such.csv]"),
                  *([dict(options=f"table=[{table}] python=[{other}]")] if other else []))
    # a Python error through the in-process runtime
    r = runs[0]
    assert r["return"].startswith("error:") and "unknown unit" in r["last_error"]
    assert "\n" not in r["last_error"] and "Traceback" not in r["last_error"]
    # the subprocess route: no such Python, no such table, and a Python without dblink
    assert "cannot start Python" in runs[1]["last_error"]
    assert "table not found" in runs[2]["last_error"]
    if other:
        assert "dblink is not installed" in runs[3]["last_error"] or "exited with code" in runs[3]["last_error"]


def test_numpy_to_imageplus_conversion_is_exact():
    r = session("convert", headless=True)
    assert r["equal"] and r["dims"] == [256, 256, 1, 1, 1000]
    print(f"1000 x 256 x 256 float32 -> ImagePlus: {r['seconds']:.2f} s")


@pytest.fixture(scope="module")
def long_table(tmp_path_factory):
    """A movie that takes more than a minute to reconstruct exactly (stride 1)."""
    from dblink.cli import main
    d = tmp_path_factory.mktemp("long")
    assert main(["simulate", "filaments", "-o", str(d), "--size", "64", "--steps", "400"]) == 0
    return d / "locs.csv"


@pytest.mark.parametrize("register", [False, pytest.param(True, marks=pytest.mark.extra)],
                         ids=["subprocess", "in-process"])  # in-process: make test-extra
def test_escape_cancels_cleanly(tmp_path, long_table, register):
    out = tmp_path / "never.tif"
    r = session("cancel", options=f"table=[{long_table}] save=[{out}] stride=1",
                register=register, after_s=5.0, headless=True)
    assert r["last_error"] == "cancelled" and not r["image"]
    assert r["seconds"] < 40  # it stopped, it did not run to the end (~80 s)
    # the memory is given back: the Java heap is where it was before the run (the in-process
    # route held steps there), and the Python side is collected (and PyTorch's GPU cache emptied)
    assert r["heap_after_mb"] < r["heap_before_mb"] + 64, r
    assert not out.exists() and not list(tmp_path.glob("*.part"))


def _fake_python(tmp_path, name, body):
    script = tmp_path / name
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(0o755)
    return script


def test_version_mismatch_and_a_dying_subprocess_are_reported(data, tmp_path):
    d, table = data
    future = _fake_python(tmp_path, "future-python", 'echo "dblink 9.1.0"\n')
    dying = _fake_python(tmp_path, "dying-python",
                         f'case "$*" in *--version*|*dblink.imagej*) exec {PY} "$@";; esac\n'
                         'echo \'{"event": "progress", "step": 1, "total": 9, "eta_s": 3}\'\n'
                         'kill -9 $$\n')
    out = tmp_path / "dead.tif"
    runs = errors(dict(options=f"table=[{table}] python=[{future}]"),
                  dict(options=f"table=[{table}] python=[{dying}] save=[{out}]"))
    from dblink import __version__
    assert f"plugin is {__version__} but Python's dblink is 9.1.0" in runs[0]["last_error"]
    assert "stopped unexpectedly (killed by signal 9" in runs[1]["last_error"]
    assert not out.exists()


@pytest.mark.parametrize("empty", ["[]", pytest.param("", marks=pytest.mark.extra)])  # "": make test-extra
def test_a_recorded_dialog_line_replays_headless(data, tmp_path, jar, empty):
    """The line the dialog records (every field, zeros and empty strings included, as in the
    README) replays in headless ImageJ and gives the CLI's result."""
    d, table = data
    out = tmp_path / "replayed.tif"
    recorded = (f"table=[{table}] model=filaments pixel_size=0 frames_per_step=0 window=0 stride=auto "
                f"roi={empty} camera_pixel=0 device=auto precision=fp32 tta=1 exposure=0 save=[{out}] "
                f"python=[{PY}]")
    mfile = tmp_path / "r.ijm"
    mfile.write_text(f'print(call("dblink.DBlink_Reconstruct.macro", "{recorded}"));')
    r = subprocess.run(["java", "-Djava.awt.headless=true", "-cp", f"{IJ_JAR}:{jar}", "ij.ImageJ",
                        "-batch", str(mfile)], capture_output=True, text=True, timeout=180)
    assert r.stdout.strip().splitlines()[-1] == "ok", r.stdout + r.stderr
    np.testing.assert_array_equal(tifffile.imread(out), tifffile.imread(d / "cli.tif"))


@needs_xvfb
def test_the_dialog_reads_a_macro_line_as_headless_runs_parse_it(data, tmp_path):
    """Same options from the dialog (its fields filled by a macro, as when a recorded line is
    replayed with menus) and from a headless run's parser: every field, non-default values."""
    d, table = data
    line = (f"table=[{table}] model=mitochondria auto pixel_size=35 frames_per_step=12 window=9 "
            f"stride=4 roi=[100,200,3000,2000] camera_pixel=107 columns=[frame=f,x=X,y=Y,unit=px] "
            f"first_frame=3 last_frame=400 device=cpu batch=2 precision=bf16 tta=4 tile=0 "
            f"max_memory=2G exposure=0.02 skip_confidence confidence_every=3 "
            f"show save=[{tmp_path / 'x y.tif'}]")
    r = session("dialog", xvfb=True, headless=False, options=line)
    assert r["error"] is None and r["dialog"] is not None, r
    assert r["dialog"] == r["parsed"]
    recorded_keys = set(r["dialog"])
    src = SOURCE.read_text()
    keys = set(re.findall(r'"([a-z_]+)"', re.search(r"KEYS = \{([^}]*)\}", src).group(1)))
    assert recorded_keys == keys - {"python"}  # every field comes back from the macro line


@needs_xvfb
def test_dblink_fiji_shows_imagej_with_the_runtime():
    import os
    import signal

    p = subprocess.Popen(["xvfb-run", "-a", PY, "-m", "dblink.cli", "fiji", "--ij-jar", str(IJ_JAR)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)
    try:
        line = p.stdout.readline()
    finally:
        os.killpg(p.pid, signal.SIGTERM)  # xvfb-run, Xvfb and ImageJ together
        p.wait(timeout=30)
    assert line.startswith("ImageJ started in") and "in-process" in line
