"""bioimage.io model package: `dblink export --bioimageio` builds an RDF 0.5 package that
bioimageio.core's own ``test_model`` accepts. Offline: every file is inside the package."""
import zipfile

import numpy as np
import pytest

from dblink.cli import main

pytest.importorskip("bioimageio.core", reason="bioimageio.core is not installed "
                    "(pip install 'dblink[bioimageio]')")


def test_package_passes_bioimageio_test_model(tmp_path, tiny_model_file):
    from bioimageio.core import test_model

    out = tmp_path / "tiny.zip"
    assert main(["export", "--bioimageio", str(out), "--model", str(tiny_model_file)]) == 0
    with zipfile.ZipFile(out) as z:
        names = set(z.namelist())
        rdf = z.read("rdf.yaml").decode()
        x = np.load(z.open("test_input.npy"))
        y = np.load(z.open("test_output.npy"))
    assert {"rdf.yaml", "tiny.pt", "test_input.npy", "test_output.npy", "cover.png", "README.md"} <= names
    assert x.shape == y.shape == (1, 16, 64, 64) and x.dtype == y.dtype == np.float32
    assert x.sum() > 0 and 0 <= y.min() and y.max() <= 1
    for text in ("format_version: 0.5", "type: batch", "type: time", "id: y", "id: x",
                 "torchscript:", "license: MIT", "10.1038/s41592-023-01966-0"):
        assert text in rdf, text
    summary = test_model(str(out))
    assert summary.status == "passed", summary.format()


def test_bioimageio_option_errors(tmp_path, capsys, tiny_model_file):
    assert main(["export", "--bioimageio", str(tmp_path / "x.txt"), "--model", str(tiny_model_file)]) == 2
    assert ".zip" in capsys.readouterr().err
    assert main(["export", "--bioimageio", str(tmp_path / "x.zip"), "--model", "no-such-model"]) == 2
    assert "no model named" in capsys.readouterr().err
    assert main(["export"]) == 2
    assert "CHECKPOINT" in capsys.readouterr().err
