"""Issue 16: every common localization format in (dblink.formats). The sample files in
tests/data/formats/ (written by make_samples.py with h5py, zipfile and tifffile) all hold the same
simulated localizations as truth.csv; each reader must give them back in nm with 1-based frames,
state the units it assumed, and refuse a broken file with one line (exit 2 on the command line)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tifffile

from conftest import ROOT
from dblink.errors import DBlinkError
from dblink.formats import MapStack, detect, parse_columns, read_input, read_table
from dblink.tables import read_localizations

DATA = ROOT / "tests" / "data" / "formats"
TRUTH = read_localizations(DATA / "truth.csv")
NSTORM = "frame=Frame,x=Xc,y=Yc,uncertainty=Lateral Localization Accuracy"
h5py = pytest.importorskip("h5py")  # the 'test' extra installs it (pyproject.toml)


def _same(locs, tol_nm: float) -> None:
    assert len(locs) == len(TRUTH)
    np.testing.assert_array_equal(locs.frame, TRUTH.frame)
    np.testing.assert_allclose(locs.x, TRUTH.x, atol=tol_nm)
    np.testing.assert_allclose(locs.y, TRUTH.y, atol=tol_nm)
    assert locs.uncertainty is not None
    np.testing.assert_allclose(locs.uncertainty, TRUTH.uncertainty, atol=1e-3)


@pytest.mark.parametrize("name,kind,stated,tol", [
    ("picasso_locs.hdf5", "hdf5", "Picasso HDF5 (x, y in camera pixels x 130 nm, frames 0-based)", 1e-3),
    ("decode_emitters.h5", "hdf5", "DECODE HDF5 (x, y in px x 130 nm, frame_ix 0-based)", 1e-3),
    ("decode_emitters.csv", "decode-csv", "DECODE CSV (x, y in px x 130 nm, frame_ix 0-based)", 1e-3),
    ("smap_sml.mat", "hdf5", "SMAP HDF5 (xnm, ynm in nm, frames 1-based)", 0),
    ("smap.csv", "smap-csv", "SMAP CSV (frame, xnm, ynm in nm, frames 1-based)", 0),
    ("shareloc.smlm", "smlm", "ShareLoc .smlm (x, y in nm, frames 1-based)", 1e-3),
])
def test_each_format_gives_the_same_localizations_and_states_its_units(name, kind, stated, tol):
    assert detect(DATA / name) == kind
    notes: list[str] = []
    locs = read_input(DATA / name, warn=notes.append)
    _same(locs, tol)
    assert any(n.endswith(stated) for n in notes), notes


def test_a_csv_of_any_tool_through_columns():
    locs = read_input(DATA / "nstorm.txt", columns=NSTORM, warn=lambda m: None)
    _same(locs, 0)
    # the same as a spec object, and 0-based frames / px units through base= and unit=
    spec = parse_columns(NSTORM + ",base=0,unit=px")
    assert (spec.frame_base, spec.unit, spec.uncertainty) == (0, "px", ("Lateral Localization Accuracy",))
    locs = read_input(DATA / "nstorm.txt", columns=NSTORM + ",base=0,unit=um", warn=lambda m: None)
    np.testing.assert_array_equal(locs.frame, TRUTH.frame + 1)
    np.testing.assert_allclose(locs.x, TRUTH.x * 1000)


def test_camera_pixel_overrides_the_stored_pixel_size_and_says_so():
    notes: list[str] = []
    locs = read_input(DATA / "picasso_locs.hdf5", camera_pixel=100.0, warn=notes.append)
    np.testing.assert_allclose(locs.x, TRUTH.x / 130 * 100, atol=1e-3)
    assert any("--camera-pixel 100 nm used; picasso_locs.yaml (Pixelsize) says 130 nm" in n for n in notes)


def test_map_stack_is_summed_into_steps_without_rendering(tmp_path):
    grid = json.loads((DATA / "grid.json").read_text())
    stack = read_input(DATA / "deepstorm_maps.tif", warn=lambda m: None)
    assert isinstance(stack, MapStack)
    assert (stack.n_frames, stack.pixel_size, stack.calibration) == (60, 40.0, "the TIFF calibration")
    g = stack.grid()
    assert [g.x0, g.y0, g.width, g.height] == grid["roi_nm"]
    steps = stack.steps(g, 10)
    video = steps(0, steps.n_steps)
    # each localization is a normalised blob (values < 1e-3 cut): the sums are its count
    counts = [((TRUTH.frame > 10 * k) & (TRUTH.frame <= 10 * k + 10)).sum() for k in range(6)]
    np.testing.assert_allclose(video.sum(axis=(1, 2)), counts, atol=0.05 * max(counts))
    # exact counts, uncompressed (a memory map), with an origin: the engine sees the render
    from dblink.render import Grid, render
    g2 = Grid(-400.0, 200.0, 1280.0, 1280.0, 40.0)
    rendered = render(TRUTH, g2, 1, n_steps=60).video
    path = tmp_path / "counts.tif"
    tifffile.imwrite(path, rendered, imagej=True, resolution=(25.0, 25.0),
                     metadata={"axes": "TYX", "unit": "micron", "xorigin": 10.0, "yorigin": -5.0})
    counts_stack = read_input(path, warn=lambda m: None)
    assert counts_stack.origin == (-400.0, 200.0)
    src = counts_stack.steps(counts_stack.grid(), 10)
    np.testing.assert_array_equal(src(0, 6), render(TRUTH, g2, 10, n_steps=6).video)
    # a ROI inside, and one reaching outside the stack (zeros there)
    roi = Grid(-400.0 + 200, 200.0 + 400, 400.0, 2000.0, 40.0)
    np.testing.assert_array_equal(counts_stack.steps(roi, 10)(0, 6), render(TRUTH, roi, 10, n_steps=6).video)


def test_map_stack_reconstructs_like_the_table_it_was_rendered_from(tmp_path):
    """The engine gets the same steps from a map stack of counts as from the table."""
    from dblink.pipeline import reconstruct_table
    from dblink.render import Grid, render

    g = Grid(0.0, 0.0, 640.0, 640.0, 40.0)
    path = tmp_path / "counts.tif"
    tifffile.imwrite(path, render(TRUTH, g, 1, n_steps=60).video, imagej=True,
                     resolution=(25.0, 25.0), metadata={"axes": "TYX", "unit": "micron"})
    kw = dict(window=2, stride=8, confidence=False, progress="none", warn=lambda m: None,
              device="cpu", frames_per_step=10)
    a = reconstruct_table(path, **kw)
    b = reconstruct_table(TRUTH, roi=(0, 0, 640, 640), last_frame=60, **kw)
    assert a.params["steps"] == b.params["steps"] == 6
    np.testing.assert_allclose(a.reconstruction.video, b.reconstruction.video, atol=1e-6)
    np.testing.assert_array_equal(a.rendered.video, b.rendered.video)


# ----------------------------------------------------------------------------- bad inputs
def _picasso(tmp: Path, yaml: str | None, fields=("frame", "x", "y")) -> Path:
    rec = np.zeros(3, dtype=[(f, "f4") for f in fields])
    with h5py.File(tmp / "p.hdf5", "w") as f:
        f.create_dataset("locs", data=rec)
    if yaml is not None:
        (tmp / "p.yaml").write_text(yaml)
    return tmp / "p.hdf5"


def _decode_h5(tmp: Path, unit="px", px_size=(100.0, 100.0), frames=(0, 1, 2)) -> Path:
    with h5py.File(tmp / "d.h5", "w") as f:
        f.create_group("meta").attrs.update({"xy_unit": unit, **({"px_size": px_size} if px_size else {})})
        f.create_group("decode")
        g = f.create_group("data")
        g.create_dataset("xyz", data=np.ones((3, 3), np.float32))
        g.create_dataset("frame_ix", data=np.array(frames))
    return tmp / "d.h5"


def _smlm(tmp: Path, manifest: dict | str | None, table: bytes = b"", name="t.smlm") -> Path:
    with zipfile.ZipFile(tmp / name, "w") as zf:
        if manifest is not None:
            zf.writestr("manifest.json", manifest if isinstance(manifest, str) else json.dumps(manifest))
        zf.writestr("table-0.bin", table)
    return tmp / name


def _manifest(rows=2, headers=("frame", "x", "y"), units=("frame", "nm", "nm")) -> dict:
    return {"format_version": "0.2",
            "formats": {"b": {"type": "table", "mode": "binary", "headers": list(headers),
                              "dtype": ["uint32"] + ["float32"] * (len(headers) - 1),
                              "shape": [1] * len(headers), "units": list(units)}},
            "files": [{"name": "table-0.bin", "type": "table", "format": "b", "rows": rows}]}


def _row_bytes(n: int, cols: int = 3) -> bytes:
    return np.zeros(n, dtype=[("frame", "<u4")] + [(f"c{i}", "<f4") for i in range(cols - 1)]).tobytes()


def _text(path: Path, content: str | bytes) -> Path:
    (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
    return path


def _tiff(tmp: Path, data, name="m.tif", **kw) -> Path:
    kw.setdefault("photometric", "minisblack")
    tifffile.imwrite(tmp / name, data, **kw)
    return tmp / name


CAL = dict(imagej=True, resolution=(25.0, 25.0), metadata={"axes": "TYX", "unit": "micron"})

BAD = {
    "picasso: no yaml, no --camera-pixel": (
        lambda t: _picasso(t, None), {}, "positions are in camera pixels and no p.yaml beside it "
        "gives no pixel size; give it with --camera-pixel NM"),
    "picasso: yaml without Pixelsize": (
        lambda t: _picasso(t, "Frames: 3\n---\nGenerated by: Picasso Localize\n"), {},
        "p.yaml (no Pixelsize in it) gives no pixel size"),
    "picasso: Pixelsize not a number": (
        lambda t: _picasso(t, "Pixelsize: fast\n"), {}, "the pixel size in p.yaml (Pixelsize) is 'fast'"),
    "picasso: broken yaml": (lambda t: _picasso(t, "Pixelsize: [130\n"), {}, "p.yaml: not readable YAML"),
    "picasso: no frame field": (
        lambda t: _picasso(t, "Pixelsize: 130\n", ("x", "y")), {}, "Picasso: the 'locs' table has no frame field"),
    "decode h5: unknown unit": (lambda t: _decode_h5(t, unit="furlong"), {},
                                "DECODE: meta attribute xy_unit is 'furlong', not px or nm"),
    "decode h5: px without px_size": (lambda t: _decode_h5(t, px_size=None), {},
                                      "its meta px_size gives no pixel size; give it with --camera-pixel NM"),
    "decode h5: negative frame": (lambda t: _decode_h5(t, frames=(0, -1, 2)), {},
                                  "localization 2: frame -1 is not a whole number from 0 (DECODE frames are 0-based)"),
    "hdf5: neither format": (lambda t: (h5py.File(t / "x.h5", "w").close(), t / "x.h5")[1], {},
                             "an HDF5 file, but not Picasso ('locs'), DECODE ('data/xyz') or SMAP"),
    "hdf5: truncated": (lambda t: _text(t / "x.hdf5", (DATA / "picasso_locs.hdf5").read_bytes()[:3000]), {}, "not a readable HDF5 file"),
    "hdf5 extension, text inside": (lambda t: _text(t / "x.hdf5", "frame,x,y\n1,2,3\n"),
                                    {}, "the extension says HDF5 file, but the file is not an HDF5 file"),
    "decode csv: no metadata line": (
        lambda t: _text(t / "d.csv", "# DECODE EmitterSet\n# {}\n# {}\nx,y,frame_ix\n1,2,0\n"),
        {}, "DECODE CSV: line 3 holds no emitter metadata with 'xy_unit'"),
    "decode csv: bad value": (
        lambda t: _text(t / "d.csv", '# DECODE EmitterSet\n# {}\n# {"xy_unit": "nm"}\n'
                                           "x,y,frame_ix\n1,2,0\n1,two,1\n"),
        {}, "d.csv: line 6, column 2 ('y'): 'two' is not a number"),
    "smap h5: no ynm": (lambda t: _smap_h5(t), {}, "SMAP: saveloc/loc has no ynm"),
    "smap csv: frame 0": (lambda t: _text(t / "s.csv", "frame,xnm,ynm\n0,1,2\n"), {},
                          "s.csv: line 2, column 1 ('frame'): frame '0' is not a whole number from 1 "
                          "to 2^53 (SMAP frames are 1-based)"),
    "smlm: no manifest": (lambda t: _smlm(t, None), {}, "t.smlm: no manifest.json in the .smlm archive"),
    "smlm: manifest not JSON": (lambda t: _smlm(t, "{nope"), {}, "manifest.json is not valid JSON"),
    "smlm: rows do not match the bytes": (lambda t: _smlm(t, _manifest(rows=5), _row_bytes(2)), {},
                                          "holds 24 bytes, not 5 rows of 12 bytes"),
    "smlm: no frame column": (lambda t: _smlm(t, _manifest(headers=("id", "x", "y")), _row_bytes(2)), {},
                              "the .smlm table has no 'frame' column"),
    "smlm: unknown unit": (lambda t: _smlm(t, _manifest(units=("frame", "parsec", "nm")), _row_bytes(2)), {},
                           ".smlm column 'x' has unit 'parsec'"),
    "smlm: not a zip": (lambda t: _text(t / "t.smlm", "frame,x,y\n"), {},
                        "the extension says zip archive (.smlm), but the file is not a zip archive (.smlm)"),
    "zip without manifest, not .smlm": (lambda t: _smlm(t, None, name="t.zip"), {},
                                        "a zip archive without manifest.json is not a ShareLoc .smlm file"),
    "columns: no such column": (lambda t: DATA / "nstorm.txt", {"columns": "frame=Frame,x=Xnm,y=Yc"},
                                "line 1: no 'Xnm' (x) column in the header"),
    "columns: on an HDF5 file": (lambda t: DATA / "smap_sml.mat", {"columns": "frame=a,x=b,y=c"},
                                 "--columns is for CSV tables; this file is HDF5"),
    "columns: bad spec": (lambda t: DATA / "nstorm.txt", {"columns": "frame=Frame,x=Xc"},
                          "--columns needs frame=, x= and y= (missing: y)"),
    "maps: uncalibrated": (lambda t: _tiff(t, np.ones((3, 4, 4), np.float32)), {},
                           "the TIFF has no pixel size in nm or µm (uncalibrated); give the maps' pixel "
                           "size with --pixel-size NM"),
    "maps: a single image": (lambda t: _tiff(t, np.ones((4, 4), np.float32), imagej=True,
                                              resolution=(25.0, 25.0), metadata={"unit": "micron"}), {},
                             "a single 2-D image (4 x 4 px); a map stack has one localization map per raw frame"),
    "maps: NaN": (lambda t: _tiff(t, np.array([np.ones((4, 4)), np.full((4, 4), np.nan)], np.float32), **CAL),
                  {}, "frame 2 holds NaN or infinite values"),
    "maps: negative": (lambda t: _tiff(t, -np.ones((2, 4, 4), np.float32), **CAL), {},
                       "frame 1 holds negative values"),
    "maps: all zero": (lambda t: _tiff(t, np.zeros((2, 4, 4), np.float32), **CAL), {},
                       "every map is zero: no localizations"),
    "maps: two channels": (lambda t: _tiff(t, np.ones((2, 2, 4, 4), np.float32), imagej=True,
                                           metadata={"axes": "TCYX"}), {},
                           "a TIFF of shape 2 x 2 x 4 x 4; a map stack is T x H x W"),
    "mat file, not v7.3": (lambda t: _text(t / "old_sml.mat", b"MATLAB 5.0 MAT-file" + bytes(200)), {},
                           "a MATLAB .mat file older than v7.3 (not HDF5)"),
    "tif extension, text inside": (lambda t: _text(t / "m.tif", "frame,x,y\n"), {},
                                   "the extension says TIFF, but the file is not a TIFF"),
}


def _smap_h5(t: Path) -> Path:
    with h5py.File(t / "s.mat", "w", userblock_size=512) as f:
        loc = f.create_group("saveloc").create_group("loc")
        loc.create_dataset("frame", data=np.ones((1, 3)))
        loc.create_dataset("xnm", data=np.ones((1, 3)))
    return t / "s.mat"


@pytest.mark.parametrize("case", list(BAD))
def test_bad_inputs_are_one_line_errors(case, tmp_path):
    make, kw, message = BAD[case]
    path = make(tmp_path)
    with pytest.raises(DBlinkError) as err:
        read_input(path, warn=lambda m: None, **kw)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_bad_inputs_on_the_command_line_exit_2_with_one_line(tmp_path):
    """Each format's refusal through `dblink suggest` and `dblink reconstruct`: exit 2, one line."""
    cases = ["picasso: no yaml, no --camera-pixel", "decode h5: unknown unit", "smlm: no manifest",
             "maps: uncalibrated", "columns: no such column"]
    for case in cases:
        make, kw, message = BAD[case]
        folder = tmp_path / case.replace(" ", "_").replace(":", "").replace(",", "")
        folder.mkdir()
        path = make(folder)
        extra = ["--columns", kw["columns"]] if "columns" in kw else []
        for cmd in (["suggest", str(path)], ["reconstruct", str(path), "-o", str(folder / "o.tif")]):
            if cmd[0] == "suggest" and case.startswith("maps"):
                continue
            r = subprocess.run([sys.executable, "-m", "dblink.cli", *cmd, *extra], capture_output=True,
                               text=True, env={**os.environ, "PYTHONPATH": str(ROOT / "python")})
            assert r.returncode == 2, (case, cmd, r.stderr)
            assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
            assert message in r.stderr, (case, r.stderr)


def test_without_h5py_hdf5_is_refused_in_one_line():
    code = ("import sys; sys.modules['h5py'] = None\n"
            "from dblink.cli import main\n"
            f"sys.exit(main(['suggest', {str(DATA / 'picasso_locs.hdf5')!r}]))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(ROOT / "python")})
    assert r.returncode == 2
    assert r.stderr.strip() == ("dblink: error: reading HDF5 files needs h5py, which is not installed: "
                                "pip install \"dblink[hdf5]\" (or pip install h5py)")


def test_read_table_refuses_a_map_stack():
    with pytest.raises(DBlinkError, match="a map stack \\(TIFF\\), not a localization table"):
        read_table(DATA / "deepstorm_maps.tif", warn=lambda m: None)


def test_a_reader_failing_without_a_message_is_named(tmp_path, monkeypatch):
    """tifffile failing on a map stack's layout or pixels with an empty or multi-line message: one
    line that names what failed (the first non-blank line, else the exception's type)."""
    import dblink.formats as fm

    path = tmp_path / "maps.tif"
    tifffile.imwrite(path, np.zeros((6, 8, 8), np.float32))

    def fail(exc):
        def raiser(*a, **k):
            raise exc
        return raiser

    monkeypatch.setattr(tifffile, "memmap", fail(ValueError("")))
    monkeypatch.setattr(tifffile, "imread", fail(AssertionError()))
    with pytest.raises(DBlinkError) as e:
        fm._tiff_pixels(path, 6, 8, 8)
    assert str(e.value) == f"{path}: cannot read the TIFF's pixels (AssertionError)"
    monkeypatch.setattr(tifffile.TiffFile, "series", property(fail(ValueError("\n  tag 256 missing\nmore"))))
    with pytest.raises(DBlinkError) as e:
        fm._tiff_layout(path)
    assert str(e.value) == f"{path}: cannot read the TIFF's layout (tag 256 missing)"
