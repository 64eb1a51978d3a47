"""The memory model against the operating system: `dblink reconstruct`'s estimated peak (printed
with --timings) within ±30 % of the peak resident memory measured by wait4, for both
architectures, several fields, strides and confidence on/off (issue #18).

One quick case runs in `make test` (a field where the network's memory is most of the run's: the
paper layout with a 4x narrower head, so that it runs in seconds); the whole grid of
tools/memory_calibration.py (both architectures, the paper's own head) is marked slow
(`make test-all`)."""
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("memory_calibration", ROOT / "tools" / "memory_calibration.py")
cal = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cal)

TOLERANCE = 0.30


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("memory")
    return tmp, {"compact": "filaments", "paper": str(cal.paper_model(tmp / "paper.pt")),
                 "paper-narrow": str(cal.paper_model(tmp / "narrow.pt", head=[32, 64, 16]))}


def _check(setup, arch, size, stride, conf):
    tmp, models = setup
    csv = tmp / f"t{size}.csv"
    if not csv.exists():
        cal.table(csv, size, steps=40)
    r = cal.measure(models[arch], csv, tmp / "out.tif", size, stride, conf, window=10)
    assert r["estimated_mib"], r["report"]
    err = r["estimated_mib"] / r["measured_mib"] - 1
    assert abs(err) <= TOLERANCE, (f"{arch} {size}² stride {stride} confidence {conf}: estimated "
                                   f"{r['estimated_mib']:.0f} MiB, measured {r['measured_mib']:.0f} "
                                   f"MiB ({100 * err:+.0f} %); {r['report']}")


@pytest.mark.parametrize("arch,size,stride,conf", [("paper-narrow", 192, 8, True)])
def test_estimated_peak_memory_is_within_30_percent(setup, arch, size, stride, conf):
    _check(setup, arch, size, stride, conf)


@pytest.mark.slow
@pytest.mark.parametrize("arch,size,stride,conf", cal.CASES_FULL)
def test_estimated_peak_memory_is_within_30_percent_on_the_grid(setup, arch, size, stride, conf):
    _check(setup, arch, size, stride, conf)
