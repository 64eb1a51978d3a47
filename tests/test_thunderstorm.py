"""The real ThunderSTORM, in one ImageJ under Xvfb: simulated camera frames → ThunderSTORM
(Camera setup, Run analysis) → ``DBlink Reconstruct...`` with ``table=[ThunderSTORM results]`` →
a calibrated hyperstack that beats the summed localizations against the known ground truth.

ThunderSTORM is not part of dblink (GPL v3, github.com/zitmen/thunderstorm): build it with
``tools/build_thunderstorm.sh SRC_DIR`` from a checkout of tag dev-2016-07-20-b1 and point
``DBLINK_THUNDERSTORM_JAR`` at the jar; without it this test is skipped.

    DBLINK_THUNDERSTORM_JAR=/path/Thunder_STORM.jar pytest tests/test_thunderstorm.py -s
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

from conftest import ROOT

# Debian's libij-java, or another ImageJ 1.x jar (e.g. Fiji's jars/ij-1.54f.jar)
IJ_JAR = Path(os.environ.get("DBLINK_IJ_JAR", "/usr/share/java/ij.jar"))
TS_JAR = os.environ.get("DBLINK_THUNDERSTORM_JAR", "")
PY = sys.executable
pytestmark = [
    pytest.mark.skipif(not TS_JAR, reason="no ThunderSTORM build given: set DBLINK_THUNDERSTORM_JAR "
                       "to a jar built by tools/build_thunderstorm.sh (CI has no copy of ThunderSTORM)"),
    pytest.mark.skipif(bool(TS_JAR) and not Path(TS_JAR).is_file(),
                       reason=f"DBLINK_THUNDERSTORM_JAR={TS_JAR}: no such file"),
    pytest.mark.skipif(not IJ_JAR.is_file(), reason=f"ImageJ 1.x not installed: no {IJ_JAR} (apt install libij-java, or set DBLINK_IJ_JAR)"),
    pytest.mark.skipif(shutil.which("javac") is None, reason="no JDK (javac) to build the plugin"),
    pytest.mark.skipif(shutil.which("xvfb-run") is None,
                       reason="xvfb not installed (ThunderSTORM's results table needs a display)"),
    pytest.mark.slow,
]

CAMERA_PX = 100.0     # nm
OFFSET, E_PER_ADU = 100.0, 2.0  # sCMOS: ADU = electrons / 2 + 100


def simulate_movie(folder: Path, seed: int = 7):
    """Camera frames (16-bit, ADU) of moving filaments, as dblink's camera domain images them
    (integrated Gaussian PSF, background, shot and sCMOS read noise), and the ground truth
    (T, H, W) on the 40 nm render grid."""
    from dblink.render import Grid
    from dblink.simulate import SimConfig, _ground_truth, _structure_and_motion
    from dblink.simulate.camera import camera_frames, emitter_events

    cfg = SimConfig(domain="camera", camera="scmos", height_px=96, width_px=96, n_steps=30,
                    frames_per_step=10, density=0.6, camera_pixel_nm=CAMERA_PX)
    rng = np.random.default_rng(seed)
    w, h = cfg.field_nm
    n_truth, truth, n, where = _structure_and_motion(rng, cfg)
    gt = _ground_truth(cfg, Grid(0.0, 0.0, w, h, cfg.pixel_size), n_truth, truth)
    F = cfg.n_frames
    mid = where(np.arange(n), F // 2)
    share = np.mean((np.abs(mid[:, 0]) < w / 2) & (np.abs(mid[:, 1]) < h / 2))
    fr, site, ph = emitter_events(rng, n, F, w * h / 1e6, cfg.density / max(share, 0.05),
                                  cfg.mean_on_frames, cfg.photons, cfg.bleach)
    xy = where(site, fr) + [w / 2, h / 2]
    shape = (int(np.ceil(h / CAMERA_PX)), int(np.ceil(w / CAMERA_PX)))
    electrons = camera_frames(rng, fr, xy, ph, F, shape, CAMERA_PX, cfg.psf_sigma_nm,
                              cfg.background, cfg.camera)
    adu = np.clip(np.round(electrons / E_PER_ADU + OFFSET), 0, 65535).astype(np.uint16)
    tifffile.imwrite(folder / "raw.tif", adu, imagej=True)
    return cfg, gt


def test_thunderstorm_then_dblink_in_one_imagej(tmp_path):
    from dblink.imagej import plugin_jar
    from dblink.metrics import baseline, best_baseline, best_f1
    from dblink.render import Grid, render
    from dblink.tables import read_localizations

    cfg, gt = simulate_movie(tmp_path)
    w, h = cfg.field_nm
    root = tmp_path / "ij"
    (root / "plugins").mkdir(parents=True)
    shutil.copy(plugin_jar(IJ_JAR), root / "plugins" / "DBlink_.jar")
    shutil.copy(TS_JAR, root / "plugins" / "Thunder_STORM.jar")
    out, report = tmp_path / "dblink.tif", tmp_path / "report.txt"
    sigma = cfg.psf_sigma_nm / CAMERA_PX
    macro = f"""
R = "{report}";
// before any analysis: DBlink's clear message, not ThunderSTORM's NullPointerException window
r = call("dblink.DBlink_Reconstruct.macro", "table=[ThunderSTORM results] python=[{PY}]");
File.append("NOTABLE=" + r, R);
open("{tmp_path / 'raw.tif'}");
run("Camera setup", "offset={OFFSET} quantumefficiency=1.0 isemgain=false photons2adu={E_PER_ADU} pixelsize={CAMERA_PX}");
t0 = getTime();
run("Run analysis", "filter=[Wavelet filter (B-Spline)] scale=2.0 order=3 detector=[Local maximum] connectivity=8-neighbourhood threshold=std(Wave.F1) estimator=[PSF: Integrated Gaussian] sigma={sigma:.2f} fitradius=3 method=[Weighted Least squares] full_image_fitting=false mfaenabled=false renderer=[No Renderer]");
File.append("THUNDERSTORM_S=" + (getTime() - t0) / 1000, R);
t0 = getTime();
run("DBlink Reconstruct...", "table=[ThunderSTORM results] model=filaments roi=[0,0,{w:g},{h:g}] save=[{out}] python=[{PY}] show");
File.append("DBLINK_S=" + (getTime() - t0) / 1000, R);
File.append("ERROR=" + call("dblink.DBlink_Reconstruct.lastError"), R);
File.append("TITLE=" + getTitle(), R);
getVoxelSize(pw, ph, pd, unit);
File.append("PIXEL=" + pw + " " + unit, R);
Stack.getDimensions(W, H, C, Z, T);
File.append("DIMS=" + W + " " + H + " " + C + " " + Z + " " + T, R);
File.append("INFO=" + replace(getMetadata("Info"), "\\n", " | "), R);
titles = getList("window.titles");
s = ""; for (i = 0; i < titles.length; i++) s = s + titles[i] + ";";
File.append("WINDOWS=" + s, R);
File.append("LOG=" + replace(getInfo("log"), "\\n", " | "), R);
close("*");
run("Quit");
"""
    mfile = tmp_path / "pipeline.ijm"
    mfile.write_text(macro)
    # -macro, not -batch: ThunderSTORM's results table needs the ImageJ window (IJ.getInstance())
    run = subprocess.run(["xvfb-run", "-a", "java", f"-Dplugins.dir={root}", "-cp", str(IJ_JAR),
                          "ij.ImageJ", "-macro", str(mfile)],
                         capture_output=True, text=True, timeout=900)
    assert report.is_file(), run.stdout[-3000:] + run.stderr[-3000:]
    rep = dict(line.split("=", 1) for line in report.read_text().splitlines() if "=" in line)
    assert rep["NOTABLE"].startswith("error: no ThunderSTORM results table is open"), rep
    assert "Exception" not in rep["WINDOWS"], rep["WINDOWS"]
    assert rep["ERROR"] == "", rep
    # the hyperstack: shape and calibration, in ImageJ and in the saved file
    T, H, W = gt.shape
    assert rep["TITLE"] == "DBlink of ThunderSTORM results"
    assert rep["DIMS"] == f"{W} {H} 2 1 {T}"
    assert rep["PIXEL"] in ("0.04 micron", "0.04 microns", "0.04 µm")
    assert "dblink.source=ThunderSTORM results of raw.tif" in rep["INFO"]
    assert '"cameraSettings"' in rep["INFO"] and '"pixelSize": 100.0' in rep["INFO"]
    assert "DBlink: wrote" in rep["LOG"] and "model filaments ready" in rep["LOG"]
    stack = tifffile.imread(out)
    assert stack.shape == (T, 2, H, W) and stack.dtype == np.float32
    with tifffile.TiffFile(out) as tf:
        xres = tf.pages[0].tags["XResolution"].value
        assert xres[0] / xres[1] == pytest.approx(25.0)  # 25 px per µm = 40 nm pixels
        assert tf.imagej_metadata["unit"] in ("micron", "um", "µm")
    # ThunderSTORM's table is kept next to the output; better than summing its localizations
    kept = tmp_path / "dblink.thunderstorm.csv"
    assert kept.is_file() and (tmp_path / "dblink.thunderstorm-protocol.txt").is_file()
    locs = read_localizations(kept)
    video = render(locs, Grid(0.0, 0.0, w, h, cfg.pixel_size), cfg.frames_per_step, n_steps=T).video
    f1_dblink, _ = best_f1(stack[:, 0], gt)
    base = best_baseline(video, gt)
    corr = float(np.corrcoef(stack[:, 0].ravel(), gt.ravel())[0, 1])
    summed = baseline(video, base["window"])  # the best summed window's video
    corr_base = float(np.corrcoef(summed.ravel(), gt.ravel())[0, 1])
    numbers = {"frames": cfg.n_frames, "camera_frame_px": [int(np.ceil(h / CAMERA_PX)), int(np.ceil(w / CAMERA_PX))],
               "localizations": len(locs.frame), "thunderstorm_s": float(rep["THUNDERSTORM_S"]),
               "dblink_s": float(rep["DBLINK_S"]), "f1_dblink": round(f1_dblink, 3),
               "f1_summed_best": round(base["f1"], 3), "summed_window": base["window"],
               "corr_dblink": round(corr, 3), "corr_summed": round(corr_base, 3)}
    print("\nThunderSTORM -> DBlink:", json.dumps(numbers))
    assert f1_dblink > base["f1"], numbers
    assert corr > corr_base, numbers


def test_the_after_thunderstorm_macro_from_a_shell(tmp_path):
    """The header's shell command of macros/dblink_after_thunderstorm.ijm with the real
    ThunderSTORM: movie=[...] opens the movie, the camera settings go to ThunderSTORM's Camera
    setup, the result is saved next to ThunderSTORM's kept table, and `quit` ends ImageJ."""
    from dblink.imagej import plugin_jar

    cfg, gt = simulate_movie(tmp_path, seed=11)
    root = tmp_path / "ij"
    (root / "plugins").mkdir(parents=True)
    shutil.copy(plugin_jar(IJ_JAR), root / "plugins" / "DBlink_.jar")
    shutil.copy(TS_JAR, root / "plugins" / "Thunder_STORM.jar")
    out = tmp_path / "from shell.tif"
    args = (f"movie=[{tmp_path / 'raw.tif'}] pixelsize={CAMERA_PX} photons2adu={E_PER_ADU} "
            f"offset={OFFSET} sigma={cfg.psf_sigma_nm / CAMERA_PX:.2f} save=[{out}] python=[{PY}] quit")
    run = subprocess.run(["xvfb-run", "-a", "java", f"-Dplugins.dir={root}", "-cp", str(IJ_JAR),
                          "ij.ImageJ", "-macro", str(ROOT / "macros" / "dblink_after_thunderstorm.ijm"),
                          args], capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    T, H, W = gt.shape
    stack = tifffile.imread(out)
    assert stack.shape[0] == T and stack.shape[1] == 2  # the data's bounding box: H, W up to the field
    assert (tmp_path / "from shell.thunderstorm.csv").is_file()
    protocol = (tmp_path / "from shell.thunderstorm-protocol.txt").read_text()
    assert '"pixelSize": 100.0' in protocol and '"title": "raw.tif"' in protocol
