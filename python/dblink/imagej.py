"""Bridge to ImageJ and Fiji: start them from Python, register the in-process runtime, and hand
reconstructions over as ImagePlus hyperstacks.

* ``--ij-jar PATH``: plain ImageJ1 through JPype (what Debian's ``libij-java`` gives).
* ``--fiji DIR``: a real Fiji through PyImageJ (``imagej.init(DIR, mode=...)``); PyImageJ needs
  ImageJ2 and, on its first start, its Maven repositories.

Either way the DBlink plugin jar is put on the class path and in a plugins folder (so the menu
command exists), and an object implementing the plugin's ``dblink.DBlinkRuntime`` interface is
registered: the plugin then runs reconstructions in this Python process instead of a subprocess.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from . import __version__
from .errors import DBlinkError

REPO = Path(__file__).resolve().parents[2]
PLUGIN_DIR = REPO / "fiji-plugin"
DEBIAN_IJ_JAR = Path("/usr/share/java/ij.jar")


def plugin_jar(ij_jar: str | Path | None = None, rebuild: bool = False) -> Path:
    """The DBlink plugin jar; built with ``fiji-plugin/build.sh`` (plain javac) when missing."""
    jar = PLUGIN_DIR / "build" / "DBlink_.jar"
    sources = list((PLUGIN_DIR / "src").rglob("*")) if PLUGIN_DIR.is_dir() else []
    stale = jar.is_file() and any(s.stat().st_mtime > jar.stat().st_mtime for s in sources)
    if jar.is_file() and not (rebuild or stale):
        return jar
    build = PLUGIN_DIR / "build.sh"
    ij = Path(ij_jar) if ij_jar else DEBIAN_IJ_JAR
    if not build.is_file():
        raise DBlinkError("the DBlink plugin jar is not built and fiji-plugin/build.sh is not here")
    if shutil.which("javac") is None:
        raise DBlinkError("javac not found: install a JDK (conda: openjdk) to build the plugin jar")
    if not ij.is_file():
        raise DBlinkError(f"{ij}: ImageJ jar not found (give --ij-jar, or Fiji's jars/ij-*.jar)")
    out = subprocess.run(["bash", str(build), str(ij)], capture_output=True, text=True)
    if out.returncode != 0 or not jar.is_file():
        raise DBlinkError(f"building the plugin jar failed: {(out.stderr or out.stdout).strip()[-300:]}")
    return jar


def _require_jpype():
    try:
        import jpype
    except ImportError:
        raise DBlinkError("JPype is not installed: pip install 'dblink[fiji]' (jpype1, scyjava, "
                          "pyimagej)") from None
    return jpype


def start_imagej1(ij_jar: str | Path, headless: bool = False) -> Path:
    """Start plain ImageJ1 in this process (JPype) with the DBlink plugin; returns the plugins dir."""
    jpype = _require_jpype()
    ij_jar = Path(ij_jar)
    if not ij_jar.is_file():
        raise DBlinkError(f"{ij_jar}: ImageJ jar not found")
    jar = plugin_jar(ij_jar)
    plugins_root = Path(tempfile.mkdtemp(prefix="dblink-ij-"))
    (plugins_root / "plugins").mkdir()
    shutil.copy(jar, plugins_root / "plugins" / jar.name)
    if jpype.isJVMStarted():
        return plugins_root
    args = [f"-Dplugins.dir={plugins_root}"]
    if headless:
        args.append("-Djava.awt.headless=true")
    jpype.startJVM(*args, classpath=[str(ij_jar), str(jar)], convertStrings=True)
    if not headless:
        ImageJ = jpype.JClass("ij.ImageJ")
        ImageJ(ImageJ.NO_SHOW)  # builds the menus (commands) without showing the window
    return plugins_root


def start_fiji(fiji_dir: str | Path, headless: bool = False):
    """Start Fiji through PyImageJ with the DBlink plugin on the class path; returns the gateway."""
    fiji_dir = Path(fiji_dir)
    if not fiji_dir.is_dir():
        raise DBlinkError(f"{fiji_dir}: no such Fiji folder")
    try:
        import scyjava
        import imagej
    except ImportError:
        raise DBlinkError("PyImageJ is not installed: pip install 'dblink[fiji]' or use the conda "
                          "environment (environment.yml)") from None
    java_home = os.environ.get("JAVA_HOME")
    if shutil.which("java") is None and not (java_home and (Path(java_home) / "bin" / "java").exists()):
        # never let scyjava fetch a JDK from the internet: say what to install instead
        raise DBlinkError("no Java found (java on the PATH or $JAVA_HOME): install a JDK, e.g. "
                          "conda install -c conda-forge openjdk=11, or use environment.yml")
    ij_jars = sorted((fiji_dir / "jars").glob("ij-*.jar"))
    jar = plugin_jar(ij_jars[0] if ij_jars else None)
    scyjava.config.add_classpath(str(jar))
    scyjava.config.set_java_constraints(fetch="auto")  # "never" trips pyimagej 1.8; no JDK fetch with one present
    try:
        return imagej.init(str(fiji_dir), mode="headless" if headless else "interactive")
    except Exception as exc:  # noqa: BLE001 - PyImageJ raises many kinds; one clear line for the user
        raise DBlinkError(f"PyImageJ could not start Fiji at {fiji_dir} ({type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else ''}). PyImageJ needs ImageJ2 "
                          f"and reaches its Maven repositories on first start; offline, start "
                          f"plain ImageJ with --ij-jar instead") from None


def options_to_kwargs(options: dict) -> dict:
    """The plugin's option strings (macro keys) → :func:`dblink.pipeline.reconstruct_table` kwargs."""
    num = {"pixel_size": ("pixel_size", float), "frames_per_step": ("frames_per_step", int),
           "window": ("window", int), "stride": ("stride", int), "tta": ("tta", int),
           "camera_pixel": ("camera_pixel", float), "exposure": ("exposure_s", float)}
    kw: dict = {}
    for key, (name, cast) in num.items():
        if options.get(key):
            try:
                kw[name] = cast(float(options[key])) if cast is int else cast(options[key])
            except ValueError:
                raise DBlinkError(f"option {key}={options[key]!r} is not a number") from None
    for key in ("model", "roi", "device", "precision"):
        if options.get(key):
            kw[key] = options[key]
    kw["confidence"] = not options.get("skip_confidence")
    return kw


def to_imageplus(data: np.ndarray, title: str, pixel_size_nm: float, frame_interval: float,
                 time_unit: str, channel_names: list[str], origin_nm: tuple[float, float] = (0, 0),
                 info: str = ""):
    """A float32 (T, C, Y, X) array → an ImageJ hyperstack (CompositeImage when C > 1), calibrated
    as the TIFF that :func:`dblink.hyperstack.write_hyperstack` writes."""
    import jpype

    JFloat, JArray = jpype.JFloat, jpype.JArray
    ImageStack = jpype.JClass("ij.ImageStack")
    FloatProcessor = jpype.JClass("ij.process.FloatProcessor")
    ImagePlus = jpype.JClass("ij.ImagePlus")
    CompositeImage = jpype.JClass("ij.CompositeImage")
    data = np.ascontiguousarray(data, dtype=np.float32)
    T, C, H, W = data.shape
    stack = ImageStack(W, H)
    for t in range(T):
        for c in range(C):
            plane = JArray(JFloat)(data[t, c].ravel())
            stack.addSlice(f"{channel_names[c]} t={t + 1}", FloatProcessor(W, H, plane))
    imp = ImagePlus(title, stack)
    imp.setDimensions(C, 1, T)
    imp.setOpenAsHyperStack(True)
    cal = imp.getCalibration()
    cal.pixelWidth = cal.pixelHeight = pixel_size_nm / 1000.0
    cal.setUnit("micron")
    cal.frameInterval = float(frame_interval)
    cal.setTimeUnit(time_unit)
    cal.xOrigin = -origin_nm[0] / pixel_size_nm
    cal.yOrigin = -origin_nm[1] / pixel_size_nm
    if info:
        imp.setProperty("Info", info)
    if C > 1:
        imp = CompositeImage(imp, CompositeImage.GRAYSCALE)
        imp.setCalibration(cal)
    for c in range(C):
        lo, hi = float(data[:, c].min()), float(data[:, c].max())
        if C > 1:
            imp.setC(c + 1)
        imp.setDisplayRange(lo, hi if hi > lo else lo + 1.0)
    if C > 1:
        imp.setC(1)
    return imp


def result_to_imageplus(result, title: str = "DBlink"):
    """A :class:`dblink.pipeline.Result` → ImagePlus (same layout and calibration as its TIFF)."""
    arrs, names = result.channels
    g = result.rendered.grid
    S = result.rendered.frames_per_step
    exposure = result.params.get("exposure_s")
    info = "dblink=" + json.dumps(dict(result.params, channels=names), sort_keys=True)
    return to_imageplus(np.stack(arrs, axis=1), title, g.pixel_size,
                        S * exposure if exposure else float(S), "sec" if exposure else "frame",
                        names, (g.x0, g.y0), info)


def register_runtime():
    """Register the in-process runtime with the plugin (the JVM must be running)."""
    import jpype
    from jpype import JImplements, JOverride

    IJ = jpype.JClass("ij.IJ")

    @JImplements("dblink.DBlinkRuntime")
    class PythonRuntime:
        @JOverride
        def version(self):
            return __version__

        @JOverride
        def reconstruct(self, options_json):
            # Python exceptions reach Java as a bare PyExceptionProxy: hand over the message instead
            try:
                return self._reconstruct(options_json)
            except DBlinkError as exc:
                raise jpype.JClass("java.lang.IllegalArgumentException")(str(exc)) from None
            except Exception as exc:  # noqa: BLE001 - anything else: one readable line for ImageJ
                raise jpype.JClass("java.lang.RuntimeException")(
                    f"{type(exc).__name__}: {exc}") from None

        def _reconstruct(self, options_json):
            from .pipeline import reconstruct_table

            opts = json.loads(str(options_json))

            def progress(done: int, total: int) -> None:
                IJ.showProgress(done / max(total, 1))
                IJ.showStatus(f"DBlink: {done}/{total} steps (Esc cancels)")
                if IJ.escapePressed():
                    raise DBlinkError("cancelled by the user (Esc)")

            res = reconstruct_table(opts["table"], progress=progress,
                                    warn=lambda m: IJ.log(f"DBlink warning: {m}"),
                                    **options_to_kwargs(opts))
            if opts.get("save"):
                res.write(opts["save"], overwrite=True)
            return result_to_imageplus(res, title=Path(opts["table"]).name)

    runtime = PythonRuntime()
    jpype.JClass("dblink.DBlink_Reconstruct").setRuntime(runtime)
    return runtime


def run_macro(path: str | Path, args: str = "") -> str:
    """Run an ImageJ macro file in a thread named like ImageJ's own (``Run$_``), so that
    ``Macro.getOptions()`` answers inside it; returns what the macro returned."""
    import jpype
    from jpype import JImplements, JOverride

    path = Path(path)
    if not path.is_file():
        raise DBlinkError(f"{path}: no such macro file")
    IJ = jpype.JClass("ij.IJ")
    box: dict = {}

    @JImplements("java.lang.Runnable")
    class Job:
        @JOverride
        def run(self):
            try:
                box["ret"] = IJ.runMacroFile(str(path), args)
            except Exception as exc:  # noqa: BLE001
                box["error"] = exc

    thread = jpype.JClass("java.lang.Thread")(Job(), "Run$_dblink-macro")
    thread.start()
    thread.join()
    if "error" in box:
        raise DBlinkError(f"macro {path.name} failed: {box['error']}")
    ret = box.get("ret")
    return "" if ret is None else str(ret)


def fiji_main(fiji: str | None, ij_jar: str | None, headless: bool, macro: str | None,
              args: str = "") -> int:
    """``dblink fiji``: start ImageJ/Fiji, register the runtime, then run a macro or show the UI."""
    if fiji:
        ij = start_fiji(fiji, headless)
        register_runtime()
        if macro:
            out = ij.py.run_macro(Path(macro).read_text(), {"args": args} if args else None)
            print(out)
            return 0
        if not headless:
            ij.ui().showUI()
            _wait_for_ui(lambda: True)
        return 0
    jar = ij_jar or (str(DEBIAN_IJ_JAR) if DEBIAN_IJ_JAR.is_file() else None)
    if jar is None:
        raise DBlinkError("give --fiji DIR (a Fiji.app folder) or --ij-jar PATH (an ImageJ 1.x jar)")
    t0 = time.perf_counter()
    start_imagej1(jar, headless)
    register_runtime()
    if macro:
        ret = run_macro(macro, args)
        if ret:
            print(ret)
        return 0
    if headless:
        raise DBlinkError("--headless needs --macro FILE (there is no window to show)")
    import jpype
    IJ = jpype.JClass("ij.IJ")
    IJ.getInstance().setVisible(True)
    print(f"ImageJ started in {time.perf_counter() - t0:.1f} s with dblink {__version__} in-process; "
          f"close ImageJ to exit")
    _wait_for_ui(lambda: IJ.getInstance() is not None and IJ.getInstance().isShowing())
    return 0


def _wait_for_ui(alive) -> None:
    try:
        while alive():
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
