"""Every `dblink` command in the README's shell blocks is run (on small stand-in data) or, for the
long ones (training, the preset evaluations, the paper-size bench, starting a GUI or a Fiji that is
not here), parsed with the real argument parser so that its options exist."""
import os
import re
import shlex
import shutil
from pathlib import Path
import subprocess
import sys

import pytest
import torch

from conftest import ROOT, original_state_dict
from dblink.cli import build_parser

PARSE_ONLY = ("dblink train ", "dblink evaluate ", "dblink bench ", "--fiji ",
              "fiji --ij-jar /usr/share/java/ij.jar")


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    cmds = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #")[0].strip()
            if line.startswith(".venv/bin/dblink "):
                cmds.append(line)
    return cmds


def test_readme_has_the_commands():
    cmds = readme_commands()
    assert len(cmds) >= 12
    for sub in ("reconstruct", "train", "export", "evaluate", "bench", "fiji", "resolution",
                "import-weights"):
        assert any(f"dblink {sub}" in c for c in cmds), sub


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A folder with the README's stand-ins: runs/mine (a tiny run), my_locs.csv (a small simulated movie moved to where the
    README's ROI is), demo_out/ (locs.csv, dblink.tif), LSTM_model, and links to macros/."""
    from dblink.cli import main
    from dblink.tables import read_localizations, write_localizations

    d = tmp_path_factory.mktemp("readme")
    assert main(["simulate", "filaments", "-o", str(d / "sim"), "--size", "32", "--steps", "12"]) == 0
    locs = read_localizations(d / "sim" / "locs.csv")
    locs.x += 16000.0
    locs.y += 21000.0
    write_localizations(d / "my_locs.csv", locs)
    (d / "demo_out").mkdir()
    shutil.copy(d / "sim" / "locs.csv", d / "demo_out" / "locs.csv")
    assert main(["reconstruct", str(d / "demo_out" / "locs.csv"), "-o",
                 str(d / "demo_out" / "dblink.tif"), "--progress", "none", "--stride", "4"]) == 0
    torch.save(original_state_dict(), d / "LSTM_model")
    from dblink.train import load_config, train  # a tiny run stands in for `train --preset`
    train(load_config("filaments", overrides={
        "hparams": {"hidden": 4, "encoder": 4, "decoder": 4, "skip": 2}, "steps": 2, "val_every": 2,
        "sim": {"height_px": 24, "width_px": 24, "n_steps": 6}, "batch": 2, "n_val": 1}),
        d / "runs" / "mine", device="cpu", progress="none")
    (d / "models").mkdir()
    os.symlink(ROOT / "macros", d / "macros")
    for sub in ("csv", "tif"):
        (d / "data" / sub).mkdir(parents=True)
    shutil.copy(d / "sim" / "locs.csv", d / "data" / "csv" / "a.csv")
    return d


@pytest.mark.parametrize("cmd", readme_commands())
def test_readme_command(cmd, workdir):
    argv = shlex.split(cmd)[1:]
    argv = [a.replace("/data/", str(workdir / "data") + "/") for a in argv]
    argv = ["40" if a == "NM" else "10" if a == "S" else a for a in argv]
    if any(p in cmd for p in PARSE_ONLY):
        args = build_parser().parse_args(argv)  # exits (SystemExit) on an unknown option
        assert callable(args.func)
        return
    if "dblink fiji" in cmd and not shutil.which("java"):
        pytest.skip("no Java here")
    if "dblink fiji" in cmd and "--ij-jar" not in cmd and "--fiji" not in cmd \
            and not Path("/usr/share/java/ij.jar").is_file():
        pytest.skip("no ImageJ here (apt install libij-java gives /usr/share/java/ij.jar)")
    out = subprocess.run([sys.executable, "-m", "dblink.cli", *argv], cwd=workdir,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, f"{cmd}\n{out.stderr[-2000:]}"
