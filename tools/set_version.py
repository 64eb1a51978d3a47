#!/usr/bin/env python3
"""Set dblink's version: python tools/set_version.py X.Y.Z

The version has one source, ``python/dblink/__init__.py``; pyproject.toml reads it (dynamic), the
Fiji plugin's jar gets it from fiji-plugin/build.sh (or Maven's resource filtering of the pom
version). The copies that cannot read it — CITATION.cff and fiji-plugin/pom.xml — are rewritten
here, and tests/test_version.py fails while any copy differs.
"""
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FILES = {  # path: (pattern, replacement), each must match once
    "python/dblink/__init__.py": (r'^__version__ = "[^"]*"', '__version__ = "{v}"'),
    "CITATION.cff": (r"^version: .*$", "version: {v}"),
    "fiji-plugin/pom.xml": (r"(</parent>.*?<version>)[^<]*(</version>)", r"\g<1>{v}\g<2>"),
}


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not re.fullmatch(r"\d+\.\d+\.\d+(?:[.-]?\w+)?", argv[0]):
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        return 2
    v = argv[0]
    for rel, (pattern, repl) in FILES.items():
        path = ROOT / rel
        text = path.read_text()
        new, n = re.subn(pattern, repl.format(v=v), text, count=1, flags=re.M | re.S)
        if n != 1:
            print(f"set_version: no version found in {rel}", file=sys.stderr)
            return 1
        path.write_text(new)
        print(f"{rel}: {v}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
