"""Packaging: environment.yml and pyproject.toml ask for the same packages."""
import re
import pytest

tomllib = pytest.importorskip("tomllib", reason="tomllib needs Python 3.11")

from conftest import ROOT

# conda-forge names that differ from PyPI's
CONDA_TO_PYPI = {"pytorch": "torch"}
NOT_PYTHON = {"python", "openjdk", "maven", "pip"}


def _name(req: str) -> str:
    return re.split(r"[<>=!~ \[]", req.strip(), maxsplit=1)[0].lower()


def test_environment_matches_pyproject():
    py = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_name(r) for r in py["dependencies"]}
    for extra in py["optional-dependencies"].values():
        wanted |= {_name(r) for r in extra}
    env = (ROOT / "environment.yml").read_text().split("dependencies:", 1)[1]
    deps = re.findall(r"^\s+-\s+([A-Za-z0-9_.\-]+[^\n#]*)$", env, flags=re.M)
    conda = {CONDA_TO_PYPI.get(_name(d), _name(d)) for d in deps if not d.strip().endswith(":")}
    conda -= NOT_PYTHON | {"-e"}
    assert conda == wanted, (sorted(conda - wanted), sorted(wanted - conda))


def test_torch_range_admits_the_pinned_cpu_build():
    py = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    torch_req = next(r for r in py["dependencies"] if _name(r) == "torch")
    assert ">=" in torch_req and "<2.14" in torch_req  # 2.13.0 satisfies it; no open-ended pull
    assert "torch==2.13.0" in (ROOT / "Makefile").read_text()


def test_package_data_covers_the_data_files_dblink_reads():
    """Data files inside the package (presets, the suggestion library) ship with a wheel only when
    a package-data pattern names them."""
    import fnmatch

    py = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = py["tool"]["setuptools"]["package-data"]["dblink"]
    pkg = ROOT / "python" / "dblink"
    data = [p.relative_to(pkg).as_posix() for p in pkg.rglob("*")
            if p.is_file() and p.suffix in (".json", ".csv", ".txt") and "__pycache__" not in p.parts]
    assert "suggest_library.json" in data
    missing = [d for d in data if not any(fnmatch.fnmatch(d, pat) for pat in patterns)]
    assert not missing, missing
