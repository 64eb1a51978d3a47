"""A property-based test of the whole command line (issue 13): random argv for every subcommand,
random bytes and mutated real tables, TIFFs, model files, checkpoints and state dicts. The promise:

    exit code 0 or 2 (or 130/143 for Ctrl-C/SIGTERM), never a traceback, one ``dblink: error:``
    line for a usage or input error, no output left behind by a run that failed, and no run
    past the memory limit (RLIMIT_AS) or the time limit.

The CLI runs in a worker subprocess (``tests/cli_fuzz_worker.py``, torch imported once) under
``RLIMIT_AS`` = ``DBLINK_FUZZ_MEMORY`` bytes (default 3 GiB) with ``DBLINK_FUZZ_TIMEOUT`` seconds per
example (default 60); a worker that dies or runs over is restarted and the example is a finding.
``DBLINK_FUZZ_EXAMPLES`` sets the number of random examples (default 30, well under a minute on two
cores); ``DBLINK_FUZZ_SEED`` varies them (default: derandomized, the same examples every run);
``DBLINK_FUZZ_LOG=FILE`` appends every example's argv, exit code and last line there.
All findings of a run are listed together at the end (argv and the traceback's last line).

Not fuzzed here (they run long by design when their arguments are valid): ``train``, ``bench``,
``demo``; ``fiji`` only with arguments that cannot start a JVM.
"""
from __future__ import annotations

import json
import os
import resource
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, Phase, given, seed, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

HERE = Path(__file__).parent
WORKER = HERE / "cli_fuzz_worker.py"
MEMORY = int(float(os.environ.get("DBLINK_FUZZ_MEMORY", 3 * 2**30)))
TIMEOUT = float(os.environ.get("DBLINK_FUZZ_TIMEOUT", 60))
EXAMPLES = int(os.environ.get("DBLINK_FUZZ_EXAMPLES", 30))
SEED = os.environ.get("DBLINK_FUZZ_SEED")
OK_CODES = (0, 2, 130, 143)


# ------------------------------------------------------------------ the worker

class Worker:
    """``dblink.cli.main`` in a subprocess under RLIMIT_AS; restarted after a crash or a timeout."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.proc = None
        self.starts = 0

    def start(self) -> None:
        r, w = os.pipe()
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p),
                   OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
                   PYTHONWARNINGS="ignore")

        def limit():
            resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))
            signal.signal(signal.SIGINT, signal.SIG_DFL)

        self.starts += 1
        self.stderr = open(self.log_dir / f"worker{self.starts}.log", "wb")
        self.proc = subprocess.Popen([sys.executable, str(WORKER), str(w)], stdin=subprocess.PIPE,
                                     stdout=subprocess.DEVNULL, stderr=self.stderr, pass_fds=(w,),
                                     preexec_fn=limit, env=env, cwd=self.log_dir)
        os.close(w)
        self.fd = r
        self.buf = b""

    def stop(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            os.close(self.fd)
            self.stderr.close()
            self.proc = None

    def run(self, argv: list[str], cwd: Path, timeout: float = TIMEOUT) -> dict:
        if self.proc is None or self.proc.poll() is not None:
            self.stop()
            self.start()
        try:
            self.proc.stdin.write((json.dumps({"argv": argv, "cwd": str(cwd)}) + "\n").encode())
            self.proc.stdin.flush()
        except BrokenPipeError:
            return self._died()
        deadline = time.monotonic() + timeout + 20  # + the worker's start (torch import)
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                self.stop()
                return {"timeout": timeout}
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                chunk = os.read(self.fd, 65536)
                if not chunk:
                    return self._died()
                self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def _died(self) -> dict:
        self.proc.wait()
        code = self.proc.returncode
        self.stderr.flush()
        tail = (self.log_dir / f"worker{self.starts}.log").read_text(errors="replace")[-2000:]
        self.stop()
        return {"died": code, "err": tail}


# ------------------------------------------------------------------ real inputs to mutate

def _make_fixtures(d: Path) -> dict:
    import tifffile
    import torch

    sys.path.insert(0, str(HERE))
    from conftest import original_state_dict

    from dblink.export import save_model
    from dblink.model import build_model, model_hparams

    rng = np.random.default_rng(0)
    n = 3000  # localizations on four lines (FRC finds a resolution), 40 raw frames, 1.3 µm field
    t, k = rng.uniform(0, 1, n), rng.integers(0, 4, n)
    x = 100 + t * 1100 + rng.normal(0, 10, n)
    y = 200 + k * 250 + 0.1 * t * 1100 * (k % 2) + rng.normal(0, 10, n)
    cols = np.column_stack([np.arange(1, n + 1), rng.integers(1, 41, n), x, y, rng.uniform(5, 30, n)])
    table = d / "good.csv"
    np.savetxt(table, cols, fmt=["%d", "%d", "%.2f", "%.2f", "%.2f"], delimiter=",",
               header='"id","frame","x [nm]","y [nm]","uncertainty [nm]"', comments="")
    yy, xx = np.mgrid[0:64, 0:64]  # blobs and a line (decorrelation finds a resolution)
    img = np.zeros((4, 2, 64, 64), np.float32)
    for ti in range(4):
        for c in range(2):
            im = 0.6 * np.exp(-((yy - 0.5 * xx - 10 - ti) ** 2) / (2 * 1.2 ** 2))
            for cx, cy in rng.uniform(8, 56, (5, 2)):
                im += np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * 1.5 ** 2))
            img[ti, c] = im + rng.normal(0, 0.02, im.shape)
    tif = d / "good.tif"
    tifffile.imwrite(tif, img, imagej=True, resolution=(25.0, 25.0),
                     metadata={"axes": "TCYX", "unit": "micron"})
    torch.manual_seed(0)
    hp = dict(hidden=2, encoder=2, decoder=2, skip=2)
    net = build_model("compact", **hp)
    meta = {"name": "tiny", "arch": "compact", "hparams": model_hparams("compact", **hp),
            "pixel_size_nm": 40.0, "frames_per_step": 10, "window": 2, "output": "probability",
            "density_range_per_um2_per_frame": [0.1, 1.0]}
    model = save_model(net, d / "tiny.pt", meta)
    ckpt = d / "checkpoint.pt"
    cfg = {"name": "t", "arch": "compact", "hparams": hp, "window": 2,
           "sim": {"sample": "filaments", "pixel_size": 40.0, "frames_per_step": 10}}
    torch.save({"config": json.dumps(cfg), "best": net.state_dict(), "step": 5, "elapsed_s": 1.0,
                "best_metrics": {"f1": 0.5}}, ckpt)
    sd = d / "LSTM_model"
    small = {k: v for k, v in original_state_dict().items()}
    torch.save(small, sd)
    (d / "adir").mkdir()
    (d / "exists.tif").write_bytes(b"precious")
    return {"table": table, "tif": tif, "model": model, "ckpt": ckpt, "sd": sd,
            "meta": meta, "dir": d / "adir"}


@pytest.fixture(scope="module")
def fx(tmp_path_factory):
    return _make_fixtures(tmp_path_factory.mktemp("fuzz-fixtures"))


@pytest.fixture(scope="module")
def worker(tmp_path_factory):
    w = Worker(tmp_path_factory.mktemp("fuzz-worker"))
    yield w
    w.stop()


# ------------------------------------------------------------------ strategies

TOKENS = [b"\r", b"\n", b"\r\n", b",", b";", b"\t", b'"', b"'", b"nan", b"NaN", b"inf", b"-inf",
          b"-", b"1e308", b"1e400", b"-1e400", b"9" * 40, b"\x00", b"\xff\xfe", b"\xef\xbb\xbf",
          b"0", b"-1", b"1.5", b"#", b" ", b"x [px]", b"frame", b"1e12", b"2147483648", b"\xb5"]


@st.composite
def mutated(draw, data: bytes, text: bool) -> bytes:
    """``data`` after a few random edits (byte flips, inserted tokens, cuts, duplicated spans)."""
    data = bytearray(data)
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "cut", "dup", "overwrite"]))
        n = len(data)
        i = draw(st.integers(0, max(n - 1, 0)))
        if op == "flip" and n:
            data[i] = draw(st.integers(0, 255))
        elif op == "insert":
            tok = draw(st.sampled_from(TOKENS)) if text else draw(st.binary(min_size=1, max_size=16))
            data[i:i] = tok * draw(st.sampled_from([1, 1, 2, 100]))
        elif op == "delete" and n:
            del data[i:i + draw(st.integers(1, 64))]
        elif op == "cut":
            del data[i:]
        elif op == "dup" and n:
            j = min(n, i + draw(st.integers(1, 200)))
            data[j:j] = data[i:j] * draw(st.sampled_from([1, 3, 50]))
        elif op == "overwrite" and n:
            blob = draw(st.binary(min_size=1, max_size=32))
            data[i:i + len(blob)] = blob
    return bytes(data)


NUMBERS = ["0", "1", "2", "3", "10", "-1", "-4", "0.5", "1e-9", "nan", "inf", "-inf", "1e400",
           "-1e400", "1e12", "2147483648", "99999999999999999999", "", " ", "abc", "1,5", "0x10",
           "1_000", "٣", "3\n4", "-0"]
STRINGS = ["", " ", "-", "--", "-x", "a\nb", "☃", "x" * 5000, "../", "/", "/dev/null", "/dev/zero",
           "/proc/self/status", "-500,-500,2000,2000", "0,0,1000,1000", "0,0,0,0", "1,2,3",
           "nan,0,10,10", "0,0,1e30,1e30", "1G", "1e400", "-5G", "0", "8G", "512M", "1T", "abc"]


def _files(fx) -> list[str]:
    return [str(fx["table"]), str(fx["tif"]), str(fx["model"]), str(fx["ckpt"]), str(fx["sd"]),
            str(fx["dir"]), "missing.csv", "exists.tif", "/dev/null", "/dev/zero"]


def _subparsers():
    import argparse

    from dblink.cli import build_parser

    p = build_parser()
    for a in p._actions:
        if isinstance(a, argparse._SubParsersAction):
            return a.choices
    return {}


def _options(sub):
    """(flag, takes_value, choices) of a subparser's optional arguments."""
    out = []
    for a in sub._actions:
        if not a.option_strings or "-h" in a.option_strings:
            continue
        out.append((a.option_strings[-1], a.nargs != 0, list(a.choices) if a.choices else None))
    return out


@st.composite
def random_argv(draw, fx) -> tuple[list[str], dict]:
    """Any subcommand, its flags in any order with values from hostile pools, any positionals."""
    subs = _subparsers()
    names = [n for n in subs if n not in ("train", "bench", "demo", "fiji")]
    name = draw(st.sampled_from(sorted(names)))
    opts = _options(subs[name])
    argv = [name]
    files = _files(fx)
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["flag", "flag", "flag", "positional", "junk"]))
        if kind == "flag" and opts:
            flag, takes, choices = draw(st.sampled_from(opts))
            argv.append(flag)
            if takes:
                pool = (choices or []) + NUMBERS + STRINGS + files
                argv.append(str(draw(st.sampled_from(pool))))
        elif kind == "positional":
            argv.append(draw(st.sampled_from(files + STRINGS[:8])))
        else:
            argv.append(draw(st.sampled_from(STRINGS + NUMBERS)))
    # keep valid runs small: the tiny model, unless the example chose another
    if name in ("reconstruct", "evaluate") and "--model" not in argv:
        argv += ["--model", str(fx["model"])]
    if name == "reconstruct" and "--progress" not in argv:
        argv += ["--progress", "none"]
    if name == "batch":  # small and quiet; in this process unless the example chose workers
        argv += [] if "--model" in argv else ["--model", str(fx["model"])]
        argv += [] if "--progress" in argv else ["--progress", "none"]
        argv += [] if {"--workers", "--scheduler"} & set(argv) else ["--workers", "0"]
    if name == "evaluate":
        argv += ["--n", draw(st.sampled_from(["0", "-1", "1"])), "--data", str(fx["dir"])]
    if name == "simulate":
        argv += ["--steps", draw(st.sampled_from(["2", "0", "-1", "1e9", "3"])),
                 "--size", draw(st.sampled_from(["8", "0", "-8", "16", "100000"]))]
    return argv, {}


@st.composite
def valid_base(draw, fx) -> tuple[list[str], dict]:
    """A command that works, plus a few flags of its subcommand with hostile values."""
    t, m = str(fx["table"]), str(fx["model"])
    bases = {
        "reconstruct": ["reconstruct", t, "-o", "out.tif", "--model", m, "--progress", "none"],
        "preview": ["preview", str(fx["tif"]), "-o", "p"],
        "resolution": ["resolution", t, "-o", "r"],
        "resolution-image": ["resolution", "--image", str(fx["tif"]), "-o", "r"],
        "import-weights": ["import-weights", str(fx["sd"]), "-o", "m.pt", "--pixel-size", "100",
                           "--frames-per-step", "10"],
        "export": ["export", str(fx["ckpt"]), "-o", "m.pt"],
        "simulate": ["simulate", "filaments", "-o", "sim", "--steps", "2", "--size", "8"],
        "evaluate": ["evaluate", "--model", m, "--data", str(fx["dir"])],
        "models": ["models"],
        "suggest": ["suggest", t, "--device", "cpu"],
    }
    key = draw(st.sampled_from(sorted(bases)))
    argv = list(bases[key])
    subs = _subparsers()
    opts = _options(subs[argv[0]]) if argv[0] in subs else []
    for _ in range(draw(st.integers(1, 3))):
        if not opts:
            break
        flag, takes, choices = draw(st.sampled_from(opts))
        if flag in ("--model", "--progress", "--data", "--preset", "--domains", "--vary"):
            continue  # keep the run small: the tiny model, quiet, no simulated evaluation sets
        argv.append(flag)
        if takes:
            argv.append(str(draw(st.sampled_from((choices or []) + NUMBERS + STRINGS[:20]))))
    return argv, {}


@st.composite
def mutated_inputs(draw, fx) -> tuple[list[str], dict]:
    """A real command on a mutated real input file."""
    which = draw(st.sampled_from(["reconstruct", "reconstruct", "reconstruct", "resolution", "suggest",
                                  "preview", "resolution-image", "model", "model-meta",
                                  "import-weights", "export", "random-bytes"]))
    out = draw(st.sampled_from(["out.tif", "out.tif", "out.tif", "exists.tif", "adir",
                                "missing/out.tif", "out.png"]))
    if which in ("reconstruct", "resolution", "suggest"):
        data = draw(mutated(fx["table"].read_bytes(), text=True))
        if which == "resolution":
            return ["resolution", "in.csv", "-o", "res"], {"in.csv": data}
        if which == "suggest":
            return ["suggest", "in.csv", "--device", "cpu"] + draw(st.sampled_from(
                [[], ["--json"], ["--model", str(fx["model"])]])), {"in.csv": data}
        return (["reconstruct", "in.csv", "-o", out, "--model", str(fx["model"]), "--progress",
                 "none"], {"in.csv": data})
    if which == "random-bytes":
        data = draw(st.binary(max_size=4096))
        sub = draw(st.sampled_from([["reconstruct", "in.bin", "-o", "out.tif", "--model",
                                     str(fx["model"]), "--progress", "none"],
                                    ["preview", "in.bin"], ["resolution", "in.bin"],
                                    ["reconstruct", str(fx["table"]), "-o", "out.tif", "--model",
                                     "in.bin.pt", "--progress", "none"],
                                    ["export", "in.bin", "-o", "m.pt"],
                                    ["import-weights", "in.bin", "-o", "m.pt", "--pixel-size", "100",
                                     "--frames-per-step", "10"]]))
        return sub, {"in.bin": data, "in.bin.pt": data}
    if which in ("preview", "resolution-image"):
        data = draw(mutated(fx["tif"].read_bytes(), text=False))
        if which == "preview":
            return ["preview", "in.tif", "-o", draw(st.sampled_from(["p", "adir", "missing/p"]))], \
                {"in.tif": data}
        return ["resolution", "--image", "in.tif", "-o", "r"], {"in.tif": data}
    if which == "model":
        data = draw(mutated(fx["model"].read_bytes(), text=False))
        return (["reconstruct", str(fx["table"]), "-o", out, "--model", "m.pt", "--progress", "none"],
                {"m.pt": data})
    if which == "model-meta":
        meta = dict(fx["meta"])
        json_values = st.recursive(st.none() | st.booleans() | st.integers(-10**20, 10**20)
                                   | st.floats() | st.text(max_size=8),
                                   lambda c: st.lists(c, max_size=3)
                                   | st.dictionaries(st.text(max_size=6), c, max_size=3), max_leaves=6)
        for _ in range(draw(st.integers(1, 3))):
            key = draw(st.sampled_from(sorted(meta) + ["hparams.kernel", "hparams.hidden", "extra"]))
            value = draw(json_values)
            if key.startswith("hparams."):  # (an earlier edit may have replaced hparams itself)
                base = meta["hparams"] if isinstance(meta.get("hparams"), dict) else {}
                meta["hparams"] = dict(base, **{key.split(".")[1]: value})
            else:
                meta[key] = value
        return (["reconstruct", str(fx["table"]), "-o", out, "--model", "m.pt", "--progress", "none"],
                {"m.pt": ("META", json.dumps(meta))})
    if which == "import-weights":
        data = draw(mutated(fx["sd"].read_bytes(), text=False))
        return ["import-weights", "sd.bin", "-o", "m.pt", "--pixel-size", "100", "--frames-per-step",
                "10"], {"sd.bin": data}
    data = draw(mutated(fx["ckpt"].read_bytes(), text=False))
    return ["export", "ck.pt", "-o", "m.pt"], {"ck.pt": data}


# ------------------------------------------------------------------ the property

def _write_inputs(d: Path, files: dict, fx) -> None:
    for name, data in files.items():
        if isinstance(data, tuple):  # a model file with this dblink.json text
            import torch

            from dblink.model import build_model
            net = torch.jit.script(build_model("compact", **{k: fx["meta"]["hparams"][k]
                                                             for k in ("hidden", "encoder", "decoder", "skip")}))
            torch.jit.save(net, str(d / name), _extra_files={"dblink.json": data[1]})
        else:
            (d / name).write_bytes(data)


def _listing(d: Path) -> set:
    return {str(p.relative_to(d)) for p in d.rglob("*")}


def check(worker: Worker, fx, argv: list[str], files: dict, root: Path) -> str | None:
    """Run one example; None if it kept the promise, else what went wrong (one line)."""
    d = Path(tempfile.mkdtemp(dir=root))
    try:
        (d / "adir").mkdir()
        (d / "exists.tif").write_bytes(b"precious")
        _write_inputs(d, files, fx)
        before = _listing(d)
        res = worker.run(argv, d)
        if os.environ.get("DBLINK_FUZZ_LOG"):  # every example and its outcome, for a look at coverage
            with open(os.environ["DBLINK_FUZZ_LOG"], "a") as fh:
                fh.write(json.dumps({"argv": argv, "rc": res.get("rc"),
                                     "last": (res.get("exc") or res.get("err") or "").strip()[-300:]})
                         + "\n")
        if "timeout" in res:
            return f"ran past {res['timeout']:.0f} s"
        if "died" in res:
            last = (res["err"].strip().splitlines() or ["(no output)"])[-1]
            return f"the process died (exit {res['died']}, memory limit {MEMORY / 2**30:.0f} GiB?): {last}"
        if res["exc"]:
            return "traceback: " + res["exc"].strip().splitlines()[-1][:300]
        rc, err = res["rc"], res["err"]
        if rc not in OK_CODES:
            return f"exit code {rc}: {(err.strip().splitlines() or [''])[-1][:200]}"
        if "Traceback (most recent call last)" in err:
            return "a traceback on stderr: " + err.strip().splitlines()[-1][:200]
        if rc == 2:
            lines = [ln for ln in err.strip().splitlines() if ln.strip()]
            errors = [i for i, ln in enumerate(lines) if "error:" in ln]
            if not errors:
                return f"exit 2 without an error line: {lines[-1:]!r}"
            if errors[-1] != len(lines) - 1:
                return f"the error is not one line (continues after it): {lines[errors[-1]:][:3]!r}"
            if not (lines[-1].startswith("dblink: error:") or lines[-1].startswith("usage:")
                    or ": error:" in lines[-1]):
                return f"odd error line: {lines[-1][:200]!r}"
            new = sorted(_listing(d) - before)
            if new and not (argv[0] == "batch" and "inputs failed" in lines[-1]):
                # (a batch keeps the outputs of the inputs that worked)
                return f"a failed run left files behind: {new[:5]}"
        if (d / "exists.tif").is_file() and (d / "exists.tif").read_bytes() != b"precious" \
                and "--overwrite" not in argv:
            return "exists.tif was replaced without --overwrite"
        parts = [p for p in _listing(d) if p.endswith(".part")]
        if parts:
            return f"temporary files left: {parts[:3]}"
        return None
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _settings(n: int):
    kw = dict(max_examples=n, deadline=None, database=None,
              phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))
    if SEED is None:
        kw["derandomize"] = True
    return settings(**kw)


def _report(findings: list) -> str:
    seen, lines = {}, []
    for argv, what in findings:
        key = (argv[0], what.split(" (")[0].split(":")[0], what.split(":")[-1][-60:]
               if what.startswith("traceback") else "")
        seen[key] = seen.get(key, 0) + 1
        if seen[key] > 2:  # two examples of each kind are enough
            continue
        lines.append(f"  {' '.join(repr(a) if (not a or ' ' in a or chr(10) in a) else a for a in argv)[:300]}\n"
                     f"      -> {what}")
    return f"{len(findings)} of the examples broke the promise ({len(lines)} distinct):\n" + "\n".join(lines)


@pytest.mark.parametrize("strategy", ["random_argv", "valid_base", "mutated_inputs"])
def test_cli_never_tracebacks(fx, worker, tmp_path, strategy):
    findings = []
    strat = {"random_argv": random_argv, "valid_base": valid_base,
             "mutated_inputs": mutated_inputs}[strategy](fx)
    n = max(1, EXAMPLES // 3)

    @_settings(n)
    @given(case=strat)
    def prop(case):
        argv, files = case
        what = check(worker, fx, argv, files, tmp_path)
        if what:
            findings.append((argv, what))

    if SEED is not None:
        prop = seed(int(SEED))(prop)
    prop()
    assert not findings, _report(findings)


# ------------------------------------------------------------------ named hostile cases (issue 13)

def _hostile(fx):
    t, m = str(fx["table"]), str(fx["model"])
    rec = ["reconstruct", t, "-o", "out.tif", "--model", m, "--progress", "none"]
    return {
        "exposure negative": rec + ["--exposure", "-0.02"],
        "exposure nan": rec + ["--exposure", "nan"],
        "max-memory 1e400": rec + ["--max-memory", "1e400"],
        "max-memory junk": rec + ["--max-memory", "lots"],
        "roi negative numbers": rec + ["--roi", "-500,-500,2000,2000"],
        "roi nan": rec + ["--roi", "nan,0,100,100"],
        "pixel-size 0": rec + ["--pixel-size", "0"],
        "pixel-size tiny": rec + ["--pixel-size", "1e-6"],
        "window huge": rec + ["--window", "1000000000"],
        "frames-per-step 0": rec + ["--frames-per-step", "0"],
        "first-frame huge": rec + ["--first-frame", "99999999999999999999"],
        "device cuda": rec + ["--device", "cuda:7"],
        "output is a folder": ["reconstruct", t, "-o", "adir", "--model", m, "--progress", "none"],
        "output folder with --overwrite": ["reconstruct", t, "-o", "adir", "--model", m,
                                           "--progress", "none", "--overwrite"],
        "newline in the table name": ["reconstruct", "a\nb.csv", "-o", "out.tif", "--model", m],
        "table from /dev/zero": ["reconstruct", "/dev/zero", "-o", "out.tif", "--model", m],
        "model is the table": ["reconstruct", t, "-o", "out.tif", "--model", t],
        "model is a folder": ["reconstruct", t, "-o", "out.tif", "--model", str(fx["dir"]) + "/"],
        "simulate density -1": ["simulate", "filaments", "-o", "sim", "--density", "-1", "--steps", "2",
                                "--size", "8"],
        "simulate seed -4": ["simulate", "filaments", "-o", "sim", "--seed", "-4", "--steps", "2",
                             "--size", "8"],
        "suggest from /dev/zero": ["suggest", "/dev/zero"],
        "resolution of an empty name": ["resolution", ""],
        "resolution of an empty image name": ["resolution", "--image", ""],
        "suggest a model file": ["suggest", m],
        "simulate into a file": ["simulate", "filaments", "-o", "exists.tif", "--steps", "2", "--size", "8"],
        "simulate size huge": ["simulate", "filaments", "-o", "sim", "--steps", "2", "--size", "1000000"],
        "evaluate n 0": ["evaluate", "--model", m, "--n", "0"],
        "preview a table": ["preview", t],
        "preview into a missing folder": ["preview", str(fx["tif"]), "-o", "missing/p"],
        "resolution into a missing folder": ["resolution", "--image", str(fx["tif"]), "-o", "missing/r"],
        "import-weights window -4": ["import-weights", str(fx["sd"]), "-o", "m.pt", "--pixel-size", "100",
                                     "--frames-per-step", "10", "--window", "-4"],
        "import-weights a model file": ["import-weights", m, "-o", "m.pt", "--pixel-size", "100",
                                        "--frames-per-step", "10"],
        "export a model file": ["export", m, "-o", "m.pt"],
        "export a table": ["export", t, "-o", "m.pt"],
        "bioimageio of a table": ["export", "--bioimageio", "p.zip", "--model", t],
        "fiji ij-jar not a jar": ["fiji", "--ij-jar", t, "--headless", "--macro", t],
        "batch workers huge": ["batch", t, "-o", "bo", "--model", m, "--workers", "2147483648"],
        "batch scheduler junk": ["batch", t, "-o", "bo", "--model", m, "--scheduler", "abc"],
        "batch into a file": ["batch", t, "-o", "exists.tif", "--model", m, "--workers", "0"],
        "batch of /dev/zero": ["batch", "/dev/zero", t, "-o", "bo", "--model", m, "--workers", "0"],
    }


HOSTILE = sorted(_hostile({k: Path("/x") for k in ("table", "model", "tif", "sd", "dir", "ckpt")}))


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_argv(fx, worker, tmp_path, case):
    argv = _hostile(fx)[case]
    what = check(worker, fx, argv, {}, tmp_path)
    assert what is None, f"{argv!r} -> {what}"
