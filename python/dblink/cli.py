"""The ``dblink`` command line: a thin shell over the Python API (see DESIGN.md for the contract).

Exit codes: 0 success; 2 usage or input error (one line on stderr); 130 interrupted.
"""
from __future__ import annotations

import argparse
import json
import sys

from . import __version__
from .errors import DBlinkError


def _cmd_train(a: argparse.Namespace) -> int:
    from .train import load_config, train

    overrides = {}
    if a.steps:
        overrides["steps"] = a.steps
    if a.max_minutes is not None:
        overrides["max_minutes"] = a.max_minutes
    if a.workers is not None:
        overrides["num_workers"] = a.workers
    cfg = None if a.resume else load_config(a.preset, a.config, overrides)
    best = train(cfg, a.output, resume=a.resume, device=a.device, progress=a.progress)
    print(json.dumps({"event": "done", "run": a.output, "best": best}))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dblink", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"dblink {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    t = sub.add_parser("train", help="train a model on simulated movies",
                       description="Train a DBlink network on movies simulated on the fly.")
    src = t.add_mutually_exclusive_group()
    src.add_argument("--preset", choices=["filaments"], help="a bundled training config")
    src.add_argument("--config", help="a training config (JSON)")
    t.add_argument("-o", "--output", required=True, help="run folder (checkpoint, log, config)")
    t.add_argument("--resume", action="store_true", help="continue the run in the folder")
    t.add_argument("--steps", type=int, help="override the number of training iterations")
    t.add_argument("--max-minutes", type=float, help="stop (and checkpoint) after this wall time")
    t.add_argument("--workers", type=int, help="data-simulation worker processes")
    t.add_argument("--device", default="auto", help="auto, cpu, cuda or mps (default: auto)")
    t.add_argument("--progress", default="bar", choices=["bar", "json", "none"])
    t.set_defaults(func=_cmd_train)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except DBlinkError as exc:
        print(f"dblink: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dblink: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
