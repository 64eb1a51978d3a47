"""`make test` on a fresh machine with Java but without Debian's ImageJ (issue 15, item 1): the
ImageJ tests skip with a reason, and `dblink fiji` names the default jar it looked for."""
import os
import subprocess
import sys

import pytest

from conftest import ROOT


def test_dblink_fiji_names_the_default_jar(monkeypatch, tmp_path):
    import dblink.imagej as imagej
    from dblink.errors import DBlinkError

    missing = tmp_path / "usr" / "share" / "java" / "ij.jar"
    monkeypatch.setattr(imagej, "DEBIAN_IJ_JAR", missing)
    with pytest.raises(DBlinkError) as e:
        imagej.fiji_main(None, None, True, None)
    msg = str(e.value)
    assert str(missing) in msg and "--fiji DIR" in msg and "--ij-jar PATH" in msg


def test_imagej_tests_skip_without_imagej(tmp_path):
    """The ImageJ test modules, pointed at a missing ImageJ jar, skip with the reason (and run
    nothing): what a fresh machine without libij-java sees."""
    env = dict(os.environ, DBLINK_IJ_JAR=str(tmp_path / "no-ij.jar"), DBLINK_THUNDERSTORM_JAR="")
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
                          str(ROOT / "tests" / "test_fiji.py"), str(ROOT / "tests" / "test_thunderstorm.py")],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert " passed" not in out.stdout and " failed" not in out.stdout
    assert f"ImageJ 1.x not installed: no {tmp_path / 'no-ij.jar'}" in out.stdout
    assert "no ThunderSTORM build given: set DBLINK_THUNDERSTORM_JAR" in out.stdout
