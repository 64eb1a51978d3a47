"""The corpus of bad inputs in tests/data/bad/, through the command line (see its README.md)."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

BAD = Path(__file__).parent / "data" / "bad"


def cases():
    rows = re.findall(r"^\| `([^`]+)` \| `(.+?)` \|", (BAD / "README.md").read_text(encoding="utf-8"),
                      flags=re.M)
    assert len(rows) >= 20
    return rows


def test_every_file_is_listed():
    listed = {f for f, _ in cases()}
    present = {p.name for p in BAD.iterdir() if p.name not in ("README.md", ".gitattributes")}
    assert listed == present


@pytest.mark.parametrize("name,expected", cases())
def test_bad_input_exits_2_with_one_line(tmp_path, tiny_model_file, name, expected):
    out = tmp_path / "OUT.tif"
    res = subprocess.run([sys.executable, "-m", "dblink.cli", "reconstruct", str(BAD / name), "-o",
                          str(out), "--model", str(tiny_model_file), "--progress", "none"],
                         capture_output=True, text=True, timeout=120)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2, res.stderr
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("dblink: error:")
    assert name in lines[0] and expected in lines[0], lines[0]
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []
