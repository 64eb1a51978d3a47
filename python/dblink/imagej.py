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
import time
from pathlib import Path

import numpy as np

from . import __version__
from .errors import DBlinkError, first_line
from .options import ReconstructOptions
from .sinks import Layout, Sink, TiffSink

REPO = Path(__file__).resolve().parents[2]
PLUGIN_DIR = REPO / "fiji-plugin"
DEBIAN_IJ_JAR = Path("/usr/share/java/ij.jar")


def plugin_jar(ij_jar: str | Path | None = None, rebuild: bool = False) -> Path:
    """The DBlink plugin jar; built with ``fiji-plugin/build.sh`` (plain javac) when missing."""
    jar = PLUGIN_DIR / "build" / "DBlink_.jar"
    sources = list((PLUGIN_DIR / "src").rglob("*")) if PLUGIN_DIR.is_dir() else []
    sources.append(Path(__file__).with_name("__init__.py"))  # the version the jar carries
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
                          f"{first_line(exc)}). PyImageJ needs ImageJ2 "
                          f"and reaches its Maven repositories on first start; offline, start "
                          f"plain ImageJ with --ij-jar instead") from None


#: macro keys of the plugin that are not reconstruction options (see :mod:`dblink.options`)
PLUGIN_KEYS = ("table", "show", "save", "python")


#: ``stride=auto`` (the plugin's default): the exact mode on a GPU, this many kept outputs per
#: window on a CPU (about 8x faster; F1 0.9813 against 0.9812 exact, README "Stride")
CPU_STRIDE = 8


def auto_stride(device: str) -> int:
    """The stride ``stride=auto`` means on ``device`` (a resolved torch device type or ``auto``)."""
    if device == "auto":
        from .engine import pick_device
        device = pick_device("auto").type
    return 1 if device in ("cuda", "mps") else CPU_STRIDE


def _resolve_stride(options: dict) -> dict:
    """The plugin's options with ``stride=auto`` (or no stride) replaced by a number."""
    opts = dict(options)
    stride = str(opts.get("stride", "auto")).strip().lower()
    if stride in ("auto", "", "0"):
        from .engine import pick_device
        device = pick_device(str(opts.get("device") or "auto")).type
        opts["stride"] = str(auto_stride(device))
    return opts


def prepare_run(options: dict) -> dict:
    """The plugin's check before a long run: every option checked, the model loaded (a bad name
    or file fails here, in seconds), the device and ``stride=auto`` resolved."""
    from .engine import pick_device
    from .export import load_model

    opts = _resolve_stride({k: str(v) for k, v in options.items()})
    o = macro_options(opts)
    device = pick_device(o.device).type
    lm = load_model(o.model)
    return {"model": lm.name, "pixel_size_nm": lm.pixel_size, "frames_per_step": lm.frames_per_step,
            "window": lm.window, "device": device, "stride": o.stride}


def macro_options(options: dict) -> ReconstructOptions:
    """The plugin's option strings (macro keys, as recorded by its dialog) → the reconstruction
    options; the plugin's own keys (:data:`PLUGIN_KEYS`) are left out, an unknown key is an error."""
    return ReconstructOptions.from_macro({k: v for k, v in options.items() if k not in PLUGIN_KEYS})


class ImagePlusSink(Sink):
    """Builds the calibrated ImageJ hyperstack (CompositeImage when C > 1) step by step, laid out
    and calibrated as the TIFF that :func:`dblink.hyperstack.write_hyperstack` writes. The planes
    live on the Java heap (``holds_steps``: counted in the memory budget)."""

    holds_steps = True

    def __init__(self, title: str = "DBlink") -> None:
        self.title = title
        self.imp = None

    def begin(self, layout: Layout) -> None:
        import jpype

        self._JFloat, self._JArray = jpype.JFloat, jpype.JArray
        self._FloatProcessor = jpype.JClass("ij.process.FloatProcessor")
        T, H, W = layout.shape
        self._stack = jpype.JClass("ij.ImageStack")(W, H)
        C = len(layout.channel_names)
        self._names = list(layout.channel_names)
        self._lo, self._hi = [np.inf] * C, [-np.inf] * C

    def put(self, t: int, frames: list[np.ndarray]) -> None:
        names = self._names
        for c, plane in enumerate(frames):
            plane = np.ascontiguousarray(plane, dtype=np.float32)
            self._lo[c] = min(self._lo[c], float(plane.min()))
            self._hi[c] = max(self._hi[c], float(plane.max()))
            H, W = plane.shape
            pixels = self._JArray(self._JFloat)(plane.ravel())
            self._stack.addSlice(f"{names[c]} t={t + 1}", self._FloatProcessor(W, H, pixels))

    def end(self, layout: Layout) -> None:
        import jpype

        ImagePlus = jpype.JClass("ij.ImagePlus")
        CompositeImage = jpype.JClass("ij.CompositeImage")
        T, H, W = layout.shape
        C = len(layout.channel_names)
        imp = ImagePlus(self.title, self._stack)
        imp.setDimensions(C, 1, T)
        imp.setOpenAsHyperStack(True)
        cal = imp.getCalibration()
        cal.pixelWidth = cal.pixelHeight = layout.pixel_size_nm / 1000.0
        cal.setUnit("micron")
        interval, unit = layout.frame_interval
        cal.frameInterval = float(interval)
        cal.setTimeUnit(unit)
        cal.xOrigin = -layout.origin_nm[0] / layout.pixel_size_nm
        cal.yOrigin = -layout.origin_nm[1] / layout.pixel_size_nm
        info = dict(layout.info, channels=list(layout.channel_names))
        imp.setProperty("Info", "dblink=" + json.dumps(info, sort_keys=True))
        if C > 1:
            imp = CompositeImage(imp, CompositeImage.GRAYSCALE)
            imp.setCalibration(cal)
        for c in range(C):
            lo, hi = self._lo[c], self._hi[c]
            if C > 1:
                imp.setC(c + 1)
            imp.setDisplayRange(lo, hi if hi > lo else lo + 1.0)
        if C > 1:
            imp.setC(1)
        self.imp = imp


def to_imageplus(data: np.ndarray, title: str, pixel_size_nm: float, frames_per_step: int,
                 exposure_s: float | None, channel_names: list[str],
                 origin_nm: tuple[float, float] = (0, 0), info: dict | None = None):
    """A float32 (T, C, Y, X) array → an ImageJ hyperstack (see :class:`ImagePlusSink`)."""
    data = np.asarray(data, dtype=np.float32)
    T, C, H, W = data.shape
    sink = ImagePlusSink(title)
    sink.consume((list(data[t]) for t in range(T)),
                 Layout((T, H, W), list(channel_names), pixel_size_nm, frames_per_step, exposure_s,
                        origin_nm, dict(info or {})))
    return sink.imp


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
        def prepare(self, options_json):
            try:
                return json.dumps(prepare_run(json.loads(str(options_json))))
            except DBlinkError as exc:
                raise jpype.JClass("java.lang.IllegalArgumentException")(str(exc)) from None
            except Exception as exc:  # noqa: BLE001
                raise jpype.JClass("java.lang.RuntimeException")(
                    f"{type(exc).__name__}: {exc}") from None

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
            finally:
                _free_memory()  # a cancelled or failed run leaves nothing behind (GPU included)

        def _reconstruct(self, options_json):
            from .pipeline import reconstruct

            opts = _resolve_stride({k: str(v) for k, v in json.loads(str(options_json)).items()})
            if not opts.get("table"):
                raise DBlinkError("no table given (macro key table=...)")

            def progress(done: int, total: int) -> None:
                IJ.showProgress(done / max(total, 1))
                IJ.showStatus(f"DBlink: {done}/{total} steps (Esc cancels)")
                if IJ.escapePressed():
                    raise DBlinkError("cancelled by the user (Esc)")

            sink = ImagePlusSink(title=Path(opts["table"]).name)
            target = TiffSink(opts["save"], overwrite=True, also=sink) if opts.get("save") else sink
            reconstruct(opts["table"], target, macro_options(opts), progress=progress,
                        warn=lambda m: IJ.log(f"DBlink warning: {m}"))
            return sink.imp

    runtime = PythonRuntime()
    jpype.JClass("dblink.DBlink_Reconstruct").setRuntime(runtime)
    return runtime


def _free_memory() -> None:
    """Give back what a run held: Python garbage, and PyTorch's cached GPU memory."""
    import gc
    import sys

    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


def on_macro_thread(fn, name: str = "dblink"):
    """Run ``fn()`` in a Java thread named like ImageJ's own (``Run$_NAME``), so that
    ``Macro.getOptions()`` answers inside it; returns its result, re-raises its exception here."""
    import jpype
    from jpype import JImplements, JOverride

    box: dict = {}

    @JImplements("java.lang.Runnable")
    class Job:
        @JOverride
        def run(self):
            try:
                box["ret"] = fn()
            except Exception as exc:  # noqa: BLE001 - handed to the caller's thread
                box["error"] = exc

    thread = jpype.JClass("java.lang.Thread")(Job(), f"Run$_{name}")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box.get("ret")


def run_macro(path: str | Path, args: str = "") -> str:
    """Run an ImageJ macro file on a macro thread (:func:`on_macro_thread`); returns what the
    macro returned."""
    import jpype

    path = Path(path)
    if not path.is_file():
        raise DBlinkError(f"{path}: no such macro file")
    IJ = jpype.JClass("ij.IJ")
    try:
        ret = on_macro_thread(lambda: IJ.runMacroFile(str(path), args), "dblink-macro")
    except Exception as exc:  # noqa: BLE001 - a failed macro is one line for the user
        raise DBlinkError(f"macro {path.name} failed: {exc}") from None
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
        raise DBlinkError(f"no ImageJ found: the default {DEBIAN_IJ_JAR} (Debian's libij-java) is "
                          f"not installed; give --fiji DIR (a Fiji.app folder) or --ij-jar PATH "
                          f"(an ImageJ 1.x jar)")
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


def _main(argv: list[str]) -> int:
    """``python -m dblink.imagej prepare JSON``: the plugin's subprocess route asks this before a
    long run (see :func:`prepare_run`); prints one JSON line, or ``dblink: error: ...`` (exit 2)."""
    import sys

    if len(argv) != 2 or argv[0] != "prepare":
        print("usage: python -m dblink.imagej prepare OPTIONS_JSON", file=sys.stderr)
        return 2
    try:
        print(json.dumps(prepare_run(json.loads(argv[1]))))
    except DBlinkError as exc:
        print(f"dblink: error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"dblink: error: bad options ({exc})", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(_main(sys.argv[1:]))
