"""A worker process for tests/test_cli_fuzz.py: runs ``dblink.cli.main(argv)`` for one request after
another (so that torch is imported once), under the memory limit its parent set.

Requests: one JSON object per line on stdin, ``{"argv": [...], "cwd": "..."}``. Answers: one JSON
object per line on the file descriptor given as argv[1]: ``{"rc": int|None, "err": "...",
"exc": "traceback text"|None}``. Whatever escapes ``main`` (other than SystemExit) is a traceback
the user would have seen.
"""
import io
import json
import os
import sys
import traceback


def run(argv, cwd):
    from dblink.cli import main

    err, out = io.StringIO(), io.StringIO()
    old_err, old_out = sys.stderr, sys.stdout
    sys.stderr, sys.stdout = err, out
    rc, exc = None, None
    try:
        os.chdir(cwd)
        rc = main(argv)
    except SystemExit as e:  # argparse: 2 for a usage error, 0 for --help/--version
        rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:  # noqa: BLE001 - this is what the fuzz test looks for
        exc = traceback.format_exc()
    finally:
        sys.stderr, sys.stdout = old_err, old_out
    text = err.getvalue()
    if len(text) > 200_000:  # keep the first and the last lines whole
        text = text[:100_000] + "\n[...]\n" + text[-100_000:]
    return {"rc": rc, "err": text, "exc": exc}


def serve():
    answer = os.fdopen(int(sys.argv[1]), "w", buffering=1)
    import torch  # noqa: F401 - once, before the first request

    import dblink.cli  # noqa: F401

    for line in sys.stdin:
        req = json.loads(line)
        res = run(req["argv"], req["cwd"])
        answer.write(json.dumps(res) + "\n")
        answer.flush()


if __name__ == "__main__":
    serve()
