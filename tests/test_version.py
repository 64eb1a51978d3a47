"""One version, python/dblink/__init__.py; every other place reads it or is checked against it
(issue 15): pyproject.toml (dynamic), CITATION.cff, fiji-plugin/pom.xml, the Fiji plugin's jar
(build.sh writes dblink/version.properties; the Java VERSION constant reads it)."""
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT

INIT = ROOT / "python" / "dblink" / "__init__.py"


def source_version() -> str:
    return re.search(r'^__version__ = "([^"]+)"', INIT.read_text(), re.M).group(1)


def test_the_package_reports_the_source_version():
    import dblink
    assert dblink.__version__ == source_version()
    out = subprocess.run([sys.executable, "-m", "dblink.cli", "--version"], capture_output=True,
                         text=True)
    assert out.stdout.strip() == f"dblink {source_version()}"


def test_pyproject_reads_it():
    import tomllib
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in cfg["project"] and "version" in cfg["project"]["dynamic"]
    assert cfg["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "dblink.__version__"}
    from setuptools.config.pyprojecttoml import read_configuration
    assert read_configuration(ROOT / "pyproject.toml")["project"]["version"] == source_version()


def test_citation_and_pom_copies_match():
    cff = re.search(r"^version: *(\S+)", (ROOT / "CITATION.cff").read_text(), re.M).group(1)
    assert cff.strip("\"'") == source_version(), "run: python tools/set_version.py X.Y.Z"
    pom = (ROOT / "fiji-plugin" / "pom.xml").read_text()
    own = re.search(r"</parent>.*?<version>([^<]+)</version>", pom, re.S).group(1)
    assert own == source_version(), "run: python tools/set_version.py X.Y.Z"
    props = ROOT / "fiji-plugin" / "src" / "main" / "resources" / "dblink" / "version.properties"
    assert "version=${project.version}" in props.read_text()  # Maven fills it from the pom


def test_java_has_no_version_literal():
    src = (ROOT / "fiji-plugin" / "src" / "main" / "java" / "dblink" / "DBlink_Reconstruct.java").read_text()
    assert "VERSION = readVersion();" in src
    assert not re.search(r'VERSION = "\d', src)


@pytest.mark.skipif(shutil.which("javac") is None or not Path("/usr/share/java/ij.jar").is_file(),
                    reason="no JDK or no ImageJ jar to build the plugin")
def test_the_built_jar_carries_it(tmp_path):
    out = subprocess.run(["bash", str(ROOT / "fiji-plugin" / "build.sh"), "/usr/share/java/ij.jar",
                          str(tmp_path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    text = zipfile.ZipFile(tmp_path / "DBlink_.jar").read("dblink/version.properties").decode()
    assert f"version={source_version()}" in text


def test_set_version_rewrites_every_copy(tmp_path):
    """tools/set_version.py on a copy of the files: all copies agree afterwards."""
    for rel in ("python/dblink/__init__.py", "CITATION.cff", "fiji-plugin/pom.xml",
                "tools/set_version.py"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, tmp_path / rel)
    out = subprocess.run([sys.executable, str(tmp_path / "tools" / "set_version.py"), "9.8.7"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert '__version__ = "9.8.7"' in (tmp_path / "python/dblink/__init__.py").read_text()
    assert "version: 9.8.7" in (tmp_path / "CITATION.cff").read_text()
    pom = (tmp_path / "fiji-plugin/pom.xml").read_text()
    assert "<artifactId>DBlink_</artifactId>\n  <version>9.8.7</version>" in pom
    assert "<version>37.0.0</version>" in pom  # the parent's version is left alone
