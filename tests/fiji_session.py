"""Runs inside a fresh Python process (one JVM per process) for tests/test_fiji.py.

usage: python fiji_session.py CHECK JSON_ARGS  → prints one JSON line with the results.
"""
import json
import re
import sys
import time

import numpy as np


def main() -> None:
    check, args = sys.argv[1], json.loads(sys.argv[2])
    import jpype

    from dblink.imagej import register_runtime, start_imagej1, to_imageplus

    start_imagej1(args["ij_jar"], headless=args.get("headless", True))
    P = jpype.JClass("dblink.DBlink_Reconstruct")
    out: dict = {}
    if check == "routes":
        both_routes(P, args["options"], out, register_runtime)
    elif check == "open_image":
        # issue 16: table=[open image] — the active image is a map stack (both routes)
        IJ, WM = jpype.JClass("ij.IJ"), jpype.JClass("ij.WindowManager")
        imp = IJ.openImage(args["image"])
        WM.setTempCurrentImage(imp)
        out["title_before"] = str(imp.getTitle())
        both_routes(P, args["options"], out, register_runtime)
        out["title_after"] = str(imp.getTitle())
    elif check == "errors":
        # failing runs, one JVM: each {"options": ..., "register": in-process route or not}
        out["runs"] = []
        for run in args["runs"]:
            P.setRuntime(None)
            if run.get("register"):
                register_runtime()
            r = P.macro(run["options"])
            out["runs"].append({"return": str(r), "last_error": str(P.lastError())})
    elif check == "cancel":
        import threading
        if args.get("register"):
            register_runtime()
        IJ = jpype.JClass("ij.IJ")

        def press_escape() -> None:
            time.sleep(args["after_s"])
            IJ.setKeyDown(27)  # KeyEvent.VK_ESCAPE: what ImageJ does when Esc is pressed

        System = jpype.JClass("java.lang.System")
        System.gc()
        out["heap_before_mb"] = IJ.currentMemory() / 2**20
        threading.Thread(target=press_escape, daemon=True).start()
        t0 = time.perf_counter()
        imp = P().runWith(P.parse(args["options"] + f" python=[{sys.executable}]"), True)
        out["seconds"] = time.perf_counter() - t0
        out["image"] = imp is not None
        out["last_error"] = str(P.lastError())
        del imp
        System.gc()
        out["heap_after_mb"] = IJ.currentMemory() / 2**20
    elif check == "dialog":
        # the dialog's fields filled from a macro line, as ImageJ does when a macro runs the
        # command (on a thread named Run$_...), against the same line parsed for headless runs
        from dblink.imagej import on_macro_thread
        Macro = jpype.JClass("ij.Macro")

        def fill():
            try:
                Macro.setOptions(args["options"])
                got = P().dialog()
                return None if got is None else \
                    {str(e.getKey()): str(e.getValue()) for e in got.entrySet()}
            finally:
                Macro.setOptions(None)

        try:
            out["dialog"], out["error"] = on_macro_thread(fill, "dialog"), None
        except Exception as exc:  # noqa: BLE001
            out["dialog"], out["error"] = None, str(exc)
        out["parsed"] = {str(e.getKey()): str(e.getValue()) for e in P.parse(args["options"]).entrySet()}
    elif check == "no_options":
        IJ = jpype.JClass("ij.IJ")
        IJ.runPlugIn("dblink.DBlink_Reconstruct", "")
        out["last_error"] = str(P.lastError())
    elif check == "convert":
        data = np.random.default_rng(0).random((1000, 1, 256, 256), dtype=np.float32)
        t0 = time.perf_counter()
        imp = to_imageplus(data, "x", 40.0, 10, None, ["dblink"])
        out["seconds"] = time.perf_counter() - t0
        px = np.asarray(memoryview(imp.getStack().getPixels(500)), dtype=np.float32)
        out["equal"] = bool(np.array_equal(px.reshape(256, 256), data[499, 0]))
        out["dims"] = list(imp.getDimensions())
    print(json.dumps(out))


def both_routes(P, options: str, out: dict, register_runtime) -> None:
    """Run the plugin on ``options`` in-process (registered runtime) and as a subprocess; record
    each route's error, both images and their largest difference in ``out``."""
    register_runtime()
    a = P().runWith(P.parse(options), True)
    out["inprocess_error"] = str(P.lastError())
    P.setRuntime(None)
    b = P().runWith(P.parse(options + f" python=[{sys.executable}]"), True)
    out["subprocess_error"] = str(P.lastError())
    out["images"] = [describe(a), describe(b)] if a is not None and b is not None else None
    if a is not None and b is not None:
        out["max_abs_diff"] = max_diff(a, b)


def describe(imp) -> dict:
    cal = imp.getCalibration()
    info = str(imp.getProperty("Info") or imp.getInfoProperty() or "")
    source = re.search(r"^dblink\.source=(.*)$", info, re.M)
    tta = re.search(r'"tta": *(\d+)', info)
    return {"title": str(imp.getTitle()), "dims": list(imp.getDimensions()),
            "pixel_width": cal.pixelWidth, "unit": str(cal.getUnit()),
            "frame_interval": cal.frameInterval, "time_unit": str(cal.getTimeUnit()),
            "x_origin": cal.xOrigin, "composite": bool(imp.isComposite()),
            "info_has_model": '"model"' in info, "info_tta": int(tta.group(1)) if tta else None,
            "source": source.group(1) if source else None}


def max_diff(a, b) -> float:
    n = a.getStackSize()
    d = 0.0
    for i in range(1, n + 1):
        pa = np.asarray(memoryview(a.getStack().getPixels(i)), dtype=np.float32)
        pb = np.asarray(memoryview(b.getStack().getPixels(i)), dtype=np.float32)
        d = max(d, float(np.abs(pa - pb).max()))
    return d


if __name__ == "__main__":
    main()
