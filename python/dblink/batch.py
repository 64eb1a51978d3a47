"""``dblink batch``: many localization tables → one hyperstack each, on Dask distributed.

One stage: plan the files, run each through the same core as ``dblink reconstruct``
(:func:`dblink.pipeline.reconstruct` with a :class:`~.sinks.TiffSink`, the same
:class:`~.options.ReconstructOptions`), collect one summary row per file.

* **Inputs**: files, folders (their tables with a known extension, :func:`table_suffixes`) and
  globs (``**`` recursive; every file matched). A table is read by the reader ``reconstruct`` uses, so every format it
  reads works here too. Output: ``OUT_DIR/<name>.tif``; inputs with the same name in different
  folders get their folders in the name (``cell1_locs.tif``, ``cell2_locs.tif``).
* **Resumable**: an output that exists is complete (outputs are written under a temporary name and
  renamed when complete, :func:`dblink.files.atomic_output`), so it is skipped; the temporary
  files of a killed run are removed by the next run. ``overwrite`` redoes every file.
* **Isolated failures**: a file that fails gets its one-line reason in the summary; the others go
  on. A worker that dies (e.g. killed for memory) has its file retried elsewhere by Dask, up to
  Dask's ``distributed.scheduler.allowed-failures`` times, then that file is reported failed.
* **Where it runs**: ``workers = 0``: in this process, one file after another (no Dask needed);
  ``workers = N``: an embedded Dask ``LocalCluster`` of N worker processes with one thread each;
  ``scheduler = ADDRESS``: an existing Dask cluster (e.g. dask-jobqueue on SLURM). On each worker,
  PyTorch gets ``usable cores / workers on that host`` threads, the default ``max_memory`` is the
  host's share, and with ``device`` auto/cuda the workers of a host take its GPUs in turn
  (worker k → GPU k mod #GPUs). Tasks in one worker process run one at a time (a lock), so a
  worker started with several threads still reconstructs one file at a time.
* **Summary**: a CSV (input, output, T×H×W, seconds, device, status, message), rewritten
  (atomically) after every file, so a killed run leaves the rows of what it finished.
"""
from __future__ import annotations

import contextlib
import csv
import glob
import os
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

from .errors import DBlinkError, first_line, one_line, out_of_memory
from .options import ReconstructOptions

#: extensions of the inputs a folder contributes (lower case; the formats of :mod:`dblink.formats`
#: may add to them with a ``SUFFIXES`` of their own). A file named explicitly or matched by a glob
#: is always taken, so a map stack (.tif) is an input when named: a folder's TIFFs are not taken,
#: they may be raw camera movies or this batch's outputs.
TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".hdf5", ".h5", ".smlm")
#: default name of the summary, in the output folder
SUMMARY_NAME = "dblink_batch.csv"
SUMMARY_FIELDS = ("input", "output", "shape", "seconds", "device", "status", "message")
#: the Dask event topic the workers report step progress on
TOPIC = "dblink-batch"
#: seconds between two progress reports of one file
REPORT_EVERY_S = 0.5
_GLOB_CHARS = set("*?[")


def table_suffixes() -> tuple[str, ...]:
    """The extensions a folder or glob is searched for: :data:`TABLE_SUFFIXES` plus any that
    ``dblink.formats.SUFFIXES`` declares (the readers module, where present)."""
    extra: Iterable[str] = ()
    try:
        from . import formats  # type: ignore[attr-defined]
        extra = getattr(formats, "SUFFIXES", ()) or ()
    except ImportError:
        pass
    out = list(TABLE_SUFFIXES)
    for s in extra:
        s = str(s).lower()
        s = s if s.startswith(".") else "." + s
        if s not in out:
            out.append(s)
    return tuple(out)


# ----------------------------------------------------------------------------- the plan
@dataclass(frozen=True)
class Item:
    """One file of the batch: its table and its output hyperstack (absolute paths)."""

    input: Path
    output: Path


def _is_table(p: Path, suffixes: tuple[str, ...]) -> bool:
    return p.is_file() and not p.name.startswith(".") and p.suffix.lower() in suffixes


def expand_inputs(inputs: Sequence[str | os.PathLike], suffixes: tuple[str, ...] | None = None) -> list[Path]:
    """Files, folders (their files with a known extension, :func:`table_suffixes`; not
    recursive) and globs (every file matched) → absolute paths, in the order given (each folder
    and glob sorted), without duplicates. Anything that names no input is one DBlinkError line."""
    suffixes = table_suffixes() if suffixes is None else suffixes
    found: list[Path] = []
    seen: set[Path] = set()
    kinds = ", ".join(suffixes)
    for raw in inputs:
        text = os.fspath(raw)
        if not text.strip():
            raise DBlinkError("an empty input name; give tables, folders or globs")
        p = Path(text)
        if p.is_dir():
            hits = sorted(q for q in p.iterdir() if _is_table(q, suffixes))
            if not hits:
                raise DBlinkError(f"{p}: no tables ({kinds}) in this folder")
        elif p.is_file():
            hits = [p]
        elif p.exists():
            raise DBlinkError(f"{p}: not a file or folder")
        elif _GLOB_CHARS & set(text):
            hits = sorted(Path(q) for q in glob.glob(text, recursive=True)
                          if Path(q).is_file() and not Path(q).name.startswith("."))
            if not hits:
                raise DBlinkError(f"{text}: no file matches")
        else:
            raise DBlinkError(f"{p}: no such file or folder")
        for q in hits:
            a = q.resolve()
            if a not in seen:
                seen.add(a)
                found.append(a)
    return found


def plan(tables: Sequence[Path], out_dir: str | os.PathLike) -> list[Item]:
    """The output of every table: ``OUT_DIR/<stem>.tif``; where stems repeat, the path below the
    repeated tables' common folder, joined with ``_`` (``a/locs.csv`` → ``a_locs.tif``), and the
    extension where that is not enough (``a.csv``, ``a.h5`` → ``a_csv.tif``, ``a_h5.tif``).
    Tables inside ``out_dir`` that are this batch's own outputs are left out."""
    out = Path(out_dir).resolve()
    stems: dict[str, list[Path]] = {}
    for t in tables:
        stems.setdefault(t.stem, []).append(t)
    names: dict[Path, str] = {}
    for stem, group in stems.items():
        if len(group) == 1:
            names[group[0]] = stem
            continue
        root = Path(os.path.commonpath([str(g.parent) for g in group]))
        for g in group:
            names[g] = "_".join(g.relative_to(root).with_suffix("").parts)
        if len({names[g] for g in group}) < len(group):  # one folder, two formats: a.csv, a.h5
            for g in group:
                names[g] += "_" + g.suffix.lstrip(".").lower()
    items = [Item(t, out / f"{names[t]}.tif") for t in tables]
    outputs = {i.output for i in items}
    items = [i for i in items if i.input not in outputs]
    seen: dict[Path, Path] = {}
    for i in items:
        if i.output in seen:
            raise DBlinkError(f"{seen[i.output]} and {i.input} would both be written to {i.output}; "
                              f"rename one or run them in two batches")
        seen[i.output] = i.input
    return items


def parse_macro_text(text: str) -> dict[str, str]:
    """An ImageJ macro option string (``model=filaments roi=[0,0,5000,5000] skip_confidence``) →
    {key: value}; a bracketed value ends at ``"] "`` or at the final ``]`` (as ImageJ's
    ``Macro.getValue`` reads it), a key without ``=`` is a boolean ``"true"``."""
    out: dict[str, str] = {}
    s = str(text).strip()
    i = 0
    while i < len(s):
        while i < len(s) and s[i] == " ":
            i += 1
        if i >= len(s):
            break
        j = i
        while j < len(s) and s[j] not in " =":
            j += 1
        key = s[i:j]
        if j < len(s) and s[j] == "=":
            if s[j + 1:j + 2] == "[":
                end = (s + " ").find("] ", j + 2)
                value, i = s[j + 2:end], end + 2
            else:
                end = s.find(" ", j + 1)
                end = len(s) if end < 0 else end
                value, i = s[j + 1:end], end
        else:
            value, i = "true", j
        out[key] = value
    return out


#: macro keys of the batch itself (besides the reconstruction's): --workers, --scheduler, --overwrite
BATCH_KEYS = ("workers", "scheduler", "overwrite")


def macro_options(text: str) -> tuple[ReconstructOptions, dict]:
    """Fiji macro keys → (the reconstruction options, the batch's own keys :data:`BATCH_KEYS`).
    Keys are read as the DBlink plugin reads them (``stride=auto`` included); the plugin's own
    keys (table, show, save, python) are refused: a batch names its inputs and output folder."""
    from .imagej import PLUGIN_KEYS, _resolve_stride
    from .imagej import macro_options as from_keys

    values = parse_macro_text(text)
    own = [k for k in values if k in PLUGIN_KEYS]
    if own:
        raise DBlinkError(f"--macro-options: {', '.join(own)} is not an option of a batch (give the "
                          f"inputs and -o OUT_DIR instead)")
    batch = {k: values.pop(k) for k in BATCH_KEYS if k in values}
    if "workers" in batch:
        try:
            batch["workers"] = int(batch["workers"])
        except ValueError:
            raise DBlinkError(f"--macro-options: workers must be a whole number, got "
                              f"{batch['workers']!r}") from None
    if "overwrite" in batch:
        batch["overwrite"] = batch["overwrite"].lower() in ("true", "1", "yes", "on")
    return from_keys(_resolve_stride(values)), batch


# ----------------------------------------------------------------------------- one file (the task)
_LOCK = threading.Lock()  # one reconstruction at a time per process
_MODELS: dict = {}        # loaded models of this process, by (name, device): loaded once per worker


def usable_cpus() -> int:
    """CPU cores this process may run on (its affinity; ``os.cpu_count()`` where unknown)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _placement(placement: dict | None) -> tuple[int, int]:
    """(this worker's slot on its host, workers on its host) from the client's placement map."""
    if not placement:
        return 0, 1
    try:
        from distributed import get_worker
        return tuple(placement.get(get_worker().address, (0, 1)))  # type: ignore[return-value]
    except (ImportError, ValueError):
        return 0, 1


def _shape_text(shape: Sequence[int]) -> str:
    return "x".join(str(int(v)) for v in shape)


def run_one(table: str, output: str, options: ReconstructOptions, overwrite: bool = False,
            placement: dict | None = None, report: Callable[[dict], None] | None = None) -> dict:
    """Reconstruct one table into ``output`` (a hyperstack TIFF); never raises for a bad input.

    Runs in a Dask worker (``placement``: worker address → (slot on its host, workers on its host),
    from which threads, memory share and GPU are chosen; progress goes out as Dask events on
    :data:`TOPIC`) or in this process (``report`` gets the progress). Returns the summary row:
    input, output, shape (T×H×W), seconds (wall, the whole file), device, status (done or
    failed), message (the one-line reason, or the run's warnings)."""
    t0 = time.perf_counter()
    row = {"input": table, "output": output, "shape": "", "seconds": "", "device": "",
           "status": "failed", "message": ""}
    in_worker = placement is not None
    if report is None and in_worker:
        from distributed import get_worker
        worker = get_worker()

        def report(msg: dict) -> None:
            worker.log_event(TOPIC, msg)
    warnings: list[str] = []
    try:
        with _LOCK:
            opts, device = _worker_options(options, placement) if in_worker else (options, None)
            last = [0.0]

            def progress(done: int, total: int) -> None:
                now = time.perf_counter()
                if report is not None and (now - last[0] >= REPORT_EVERY_S or done >= total):
                    last[0] = now
                    report({"input": table, "done": int(done), "total": int(total)})

            from .pipeline import reconstruct
            from .sinks import TiffSink

            run = reconstruct(table, TiffSink(output, overwrite=overwrite), opts, progress=progress,
                              warn=warnings.append, loaded_model=_model(opts))
        row.update(shape=_shape_text(run.shape), status="done",
                   device=device or str(run.device), message=" | ".join(warnings))
    except DBlinkError as exc:
        row["message"] = one_line(exc)
    except Exception as exc:  # noqa: BLE001 - one file's failure must not stop the batch
        what = one_line(f"{type(exc).__name__}: {first_line(exc, 160)}")
        row["message"] = (f"out of memory ({what}); use a smaller --max-memory, --roi or --tile"
                          if out_of_memory(exc) else what)
    row["seconds"] = f"{time.perf_counter() - t0:.2f}"
    return row


def _worker_options(options: ReconstructOptions, placement: dict) -> tuple[ReconstructOptions, str | None]:
    """The options and the device label for this worker: PyTorch threads and the default
    ``max_memory`` are this worker's share of its host; on a host with GPUs the worker takes GPU
    ``slot mod #GPUs``."""
    import torch

    from .memory import default_max_memory

    slot, n_local = _placement(placement)
    n_local = max(1, n_local)
    torch.set_num_threads(max(1, usable_cpus() // n_local))
    if options.max_memory is None:
        options = replace(options, max_memory=max(2**28, default_max_memory() // n_local))
    label = None
    if options.device in ("auto", "cuda") and torch.cuda.is_available():
        index = slot % torch.cuda.device_count()
        torch.cuda.set_device(index)
        label = f"cuda:{index}"
    return options, label


def _is_bundled(name: str) -> bool:
    """Whether ``name`` is a bundled model's name (found on every worker), not a file path."""
    return Path(name).suffix != ".pt" and os.sep not in name


def _model(options: ReconstructOptions):
    """The model of ``options``, loaded once per process (a worker reuses it for every file)."""
    from .export import load_model

    key = str(options.model)
    if key not in _MODELS:
        _MODELS.clear()  # one model at a time
        _MODELS[key] = load_model(options.model)
    return _MODELS[key]


# ----------------------------------------------------------------------------- the summary
def existing_row(item: Item) -> dict:
    """The summary row of an output that already exists (skipped): its shape and device from the
    hyperstack's header and Info (seconds stay empty: nothing ran)."""
    import json

    import tifffile

    row = {"input": str(item.input), "output": str(item.output), "shape": "", "seconds": "",
           "device": "", "status": "skipped", "message": "output exists"}
    try:
        with tifffile.TiffFile(item.output) as tif:
            meta = tif.imagej_metadata or {}
            H, W = tif.pages[0].shape[-2:]
            info = meta.get("Info", "")
            params = json.loads(info[len("dblink="):]) if str(info).startswith("dblink=") else {}
            T = params.get("steps", meta.get("frames", 1))
            row.update(shape=_shape_text((T, H, W)), device=str(params.get("device", "")))
    except Exception:  # noqa: BLE001 - the row is informative only
        row["message"] = "output exists (not a readable dblink hyperstack)"
    return row


def write_summary(path: str | os.PathLike, rows: Iterable[dict]) -> Path:
    """Write the summary CSV atomically (replacing an older one)."""
    from .files import atomic_output

    path = Path(path)
    with atomic_output(path, overwrite=True) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=SUMMARY_FIELDS, extrasaction="ignore")
            w.writeheader()
            for r in rows:
                w.writerow(r)
    return path


# ----------------------------------------------------------------------------- progress display
class Display:
    """What the user sees: ``bar`` (a bar over files and one over the steps of the files running,
    one line per finished file), ``json`` (JSON lines on stdout) or ``none``."""

    def __init__(self, n_files: int, mode: str = "bar") -> None:
        self.mode = mode
        self.totals: dict[str, int] = {}
        self.done: dict[str, int] = {}
        self.files = self.steps = None
        if mode == "bar":
            from tqdm import tqdm
            import sys
            self.files = tqdm(total=n_files, desc="files", unit="file", position=0, file=sys.stderr,
                              dynamic_ncols=True)
            self.steps = tqdm(total=0, desc="steps", unit="step", position=1, file=sys.stderr,
                              dynamic_ncols=True)

    def step(self, msg: dict) -> None:
        """A worker's progress report ``{input, done, total}``."""
        name, done, total = msg["input"], int(msg["done"]), int(msg["total"])
        if self.mode == "json":
            from .progress import emit
            emit({"event": "progress", "stage": "steps", "input": name, "step": done, "total": total})
            return
        if self.steps is None:
            return
        if name not in self.totals:
            self.totals[name] = total
            self.steps.total += total
            self.steps.refresh()
        delta = done - self.done.get(name, 0)
        if delta > 0:
            self.done[name] = done
            self.steps.update(delta)

    def file(self, row: dict) -> None:
        """A finished (done, skipped or failed) file."""
        if self.mode == "json":
            from .progress import emit
            emit({"event": "file", **row})
            return
        if self.files is None:
            return
        name = row["input"]
        if row["status"] == "failed":  # its steps will not come: take them off the total
            left = self.totals.get(name, 0) - self.done.get(name, 0)
            if left > 0:
                self.steps.total -= left
                self.steps.refresh()
        if row["status"] == "done":
            text = f"done    {row['input']} -> {row['output']} ({row['shape']}, {row['seconds']} s, {row['device']})"
            if row["message"]:
                text += f"; warning: {row['message']}"
        elif row["status"] == "skipped":
            text = f"skipped {row['input']} ({row['output']} exists)"
        else:
            text = f"failed  {row['input']}: {row['message']}"
        self.files.write(text)
        self.files.update(1)

    def close(self) -> None:
        for bar in (self.steps, self.files):
            if bar is not None:
                bar.close()


# ----------------------------------------------------------------------------- the batch
@dataclass
class BatchResult:
    """Rows in input order, the summary path, and where it ran."""

    rows: list
    summary: Path
    where: str
    seconds: float

    def count(self, status: str) -> int:
        return sum(r["status"] == status for r in self.rows)


#: memory a CPU worker is given at least by the default worker count (PyTorch, model, one chunk)
WORKER_MEMORY = 2 * 2**30


def gpu_count() -> int:
    """GPUs PyTorch sees here (0 without CUDA)."""
    try:
        import torch
        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:  # noqa: BLE001
        return 0


def default_workers() -> int:
    """Workers of the embedded cluster: one per GPU where PyTorch sees GPUs; else one per core
    (one PyTorch thread each: whole files in parallel use the cores better than threads inside
    one file's small convolutions, and the reading, rendering and writing of one file overlap the
    network of another), as far as the memory gives each :data:`WORKER_MEMORY`."""
    n = gpu_count()
    if n:
        return n
    from .memory import available_memory

    avail = available_memory() or 0
    return max(1, min(usable_cpus(), avail // WORKER_MEMORY if avail else 1))


def have_dask() -> bool:
    try:
        import distributed  # noqa: F401
    except ImportError:
        return False
    return True


DASK_MISSING = ("dblink batch on a Dask cluster needs Dask: pip install 'dblink[batch]' "
                "(or --workers 0 runs the files one after another in this process)")


def run_batch(inputs: Sequence[str | os.PathLike], out_dir: str | os.PathLike,
              options: ReconstructOptions | None = None, *, workers: int | None = None,
              scheduler: str | None = None, overwrite: bool = False, progress: str = "bar",
              summary: str | os.PathLike | None = None,
              warn: Callable[[str], None] | None = None) -> BatchResult:
    """Reconstruct every table of ``inputs`` into ``out_dir`` (see the module docstring).

    Args:
        workers: 0 = in this process, one after another; N = an embedded Dask cluster of N
            processes (at most one per core or GPU, and no more than files to do); None =
            :func:`default_workers` (in this process when Dask is missing).
        scheduler: address of an existing Dask scheduler (``tcp://host:8786``); ``workers`` is
            then not used.
        overwrite: redo files whose output exists (default: skip them).
        progress: ``bar``, ``json`` or ``none``.
        summary: the summary CSV (default ``OUT_DIR/dblink_batch.csv``).

    Everything is checked, and the cluster started or reached, before anything is written.
    """
    from .files import check_output_dir, check_output_path, clean_stale_parts

    t0 = time.perf_counter()
    options = options or ReconstructOptions()
    if scheduler is None:
        if workers is None:
            workers = default_workers() if have_dask() else 0
            if workers == 0 and warn:
                warn("Dask is not installed (pip install 'dblink[batch]'): the files run one after "
                     "another in this process")
        most = max(usable_cpus(), gpu_count())
        if not 0 <= workers <= most:
            raise DBlinkError(f"--workers must be between 0 and {most} (the cores or GPUs of this "
                              f"machine), got {workers}; use --scheduler for a bigger cluster")
    out = check_output_dir(out_dir)
    items = plan(expand_inputs(inputs), out)
    if not items:
        raise DBlinkError("no tables to reconstruct (the inputs are this batch's own outputs)")
    summary_path = Path(summary) if summary else Path(out) / SUMMARY_NAME
    if summary is not None or Path(out).is_dir():
        check_output_path(summary_path, overwrite=True, suffixes=(".csv",), what="summary")
    if (scheduler is not None or workers) and not have_dask():
        raise DBlinkError(DASK_MISSING)
    rows: dict[Item, dict] = {}
    todo = [it for it in items if overwrite or not it.output.exists()]
    if todo:  # a bad model fails here, once, not once per file
        lm = _model(options)
        if not _is_bundled(str(options.model)):  # a file: by its absolute path (workers elsewhere)
            options = replace(options, model=str(lm.path.resolve()))
            _MODELS[options.model] = lm
    try:
        with _executor(workers, scheduler, len(todo)) as (client, where):
            Path(out).mkdir(exist_ok=True)
            display = Display(len(items), progress)

            def finished(it: Item, row: dict) -> None:
                rows[it] = row
                display.file(row)
                write_summary(summary_path, [rows[i] for i in items if i in rows])

            try:
                for it in items:
                    if it not in todo:
                        finished(it, existing_row(it))
                if client is None:
                    for it in todo:
                        finished(it, run_one(str(it.input), str(it.output), options, overwrite,
                                             report=display.step))
                else:
                    _run_dask(client, todo, options, overwrite, display, finished)
            finally:
                display.close()
    finally:  # stopped (Ctrl-C, SIGTERM): the local workers are gone, so are their temporary files
        if Path(out).is_dir():
            clean_stale_parts(out)
    ordered = [rows[i] for i in items]
    write_summary(summary_path, ordered)
    return BatchResult(ordered, summary_path, where, time.perf_counter() - t0)


@contextlib.contextmanager
def _executor(workers: int, scheduler: str | None, n_todo: int) -> Iterator[tuple[object, str]]:
    """(a Dask client or None, where it runs): an embedded LocalCluster of ``workers`` processes,
    the cluster at ``scheduler``, or this process (``workers`` 0, or nothing to do)."""
    if scheduler is None and (not workers or n_todo == 0):
        yield None, "this process"
        return
    import logging

    from distributed import Client, LocalCluster

    cluster = None
    try:
        if scheduler is None:
            n = min(workers, n_todo)
            cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                   dashboard_address=None, silence_logs=logging.CRITICAL)
            client = Client(cluster)
            client.wait_for_workers(n, timeout=300)
            where = f"a local Dask cluster of {n} worker process{'es' if n > 1 else ''}"
        else:
            client = Client(scheduler, timeout=CONNECT_TIMEOUT)
            where = f"the Dask cluster at {scheduler}"
    except Exception as exc:  # noqa: BLE001 - a bad address, an unreachable scheduler, no ports
        if cluster is not None:
            cluster.close()
        what = f"cannot reach the Dask scheduler at {scheduler}" if scheduler else \
            "cannot start a local Dask cluster"
        raise DBlinkError(f"{what} ({one_line(exc)})") from None
    try:
        yield client, where
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


#: how long to try reaching an existing scheduler
CONNECT_TIMEOUT = "10s"


def _run_dask(client, todo: list[Item], options: ReconstructOptions, overwrite: bool,
              display: Display, finished: Callable[[Item, dict], None]) -> None:
    """Run ``todo`` on the cluster behind ``client``: one task per file, the largest first;
    finished files and the workers' progress events are handed on as they come."""
    import queue

    from distributed import wait

    events: queue.Queue = queue.Queue()
    client.subscribe_topic(TOPIC, lambda ev: events.put(ev[1] if isinstance(ev, tuple) else ev))
    placement = _placements(client)
    # the largest files first: the last file to start is a small one (a shorter tail)
    sizes = {it: (it.input.stat().st_size if it.input.is_file() else 0) for it in todo}
    futures = {}
    for it in todo:
        f = client.submit(run_one, str(it.input), str(it.output), options, overwrite, placement,
                          key=f"dblink-batch-{it.output.name}-{os.urandom(4).hex()}",
                          pure=False, priority=sizes[it])
        futures[f] = it
    pending = set(futures)
    while pending:
        try:
            done, pending = wait(pending, timeout=0.25, return_when="FIRST_COMPLETED")
        except TimeoutError:
            done = set()
        while not events.empty():
            display.step(events.get_nowait())
        for f in done:
            it = futures[f]
            try:
                row = f.result()
            except Exception as exc:  # noqa: BLE001 - e.g. KilledWorker: the worker died
                first = first_line(exc, 300)
                row = {"input": str(it.input), "output": str(it.output), "shape": "",
                       "seconds": "", "device": "", "status": "failed",
                       "message": one_line(f"{type(exc).__name__}: {first} (the worker died "
                                            f"running it, e.g. out of memory)")}
            finished(it, row)


def _placements(client) -> dict:
    """Worker address → (slot among the workers of its host, workers on its host)."""
    info = client.scheduler_info().get("workers", {})
    by_host: dict[str, list[str]] = {}
    for addr, w in info.items():
        by_host.setdefault(str(w.get("host", addr)), []).append(addr)
    out = {}
    for addrs in by_host.values():
        for slot, addr in enumerate(sorted(addrs)):
            out[addr] = (slot, len(addrs))
    return out
