"""Localization tables: every ThunderSTORM variant, the real exports, and clear errors."""
import numpy as np
import pytest

from conftest import SHARED, write_csv
from dblink.errors import DBlinkError
from dblink.tables import Localizations, read_localizations, write_localizations

ROWS = [(1, 100.0, 200.0), (2, 150.5, 250.25), (12, 3000.0, 40.0)]


def _check(locs, scale=1.0):
    assert locs.frame.tolist() == [1, 2, 12]
    np.testing.assert_allclose(locs.x, [r[1] * scale for r in ROWS])
    np.testing.assert_allclose(locs.y, [r[2] * scale for r in ROWS])


@pytest.mark.parametrize("header,make_row", [
    ('"id","frame","x [nm]","y [nm]","sigma [nm]","intensity [photon]","offset [photon]",'
     '"bkgstd [photon]","chi2","uncertainty_xy [nm]"',
     lambda i, f, x, y: (i, f, x, y, 120, 800, 10, 5, 1.5, 12)),
    ('"frame","x [nm]","y [nm]","uncertainty [nm]"', lambda i, f, x, y: (f, x, y, 10)),
    ('id,frame,x [nm],y [nm],z [nm],detections', lambda i, f, x, y: (i, f, x, y, 55.0, 3)),
    ('"y [nm]","foo [bar]","frame","x [nm]","chi2"', lambda i, f, x, y: (y, 7, f, x, 0.1)),
    ('frame,x,y', lambda i, f, x, y: (f, x, y)),
])
def test_table_variants(tmp_path, header, make_row):
    p = write_csv(tmp_path / "t.csv", header, [make_row(i + 1, *r) for i, r in enumerate(ROWS)])
    _check(read_localizations(p))


def test_units_px_and_um(tmp_path):
    p = write_csv(tmp_path / "px.csv", '"frame","x [px]","y [px]"',
                  [(f, x / 100, y / 100) for f, x, y in ROWS])
    _check(read_localizations(p, camera_pixel=100.0))
    with pytest.raises(DBlinkError, match="--camera-pixel"):
        read_localizations(p)
    for unit in ("µm", "um"):
        q = write_csv(tmp_path / f"{unit}.csv", f'"frame","x [{unit}]","y [{unit}]"',
                      [(f, x / 1000, y / 1000) for f, x, y in ROWS])
        _check(read_localizations(q))


def test_uncertainty_columns(tmp_path):
    p = write_csv(tmp_path / "u.csv", '"frame","x [nm]","y [nm]","uncertainty_xy [nm]"',
                  [(f, x, y, 9.5) for f, x, y in ROWS])
    np.testing.assert_allclose(read_localizations(p).uncertainty, 9.5)


@pytest.mark.parametrize("header,rows,match", [
    ('"frame","x [nm]"', [(1, 2)], "no 'y' column"),
    ('"frame","x [furlong]","y [furlong]"', [(1, 2, 3)], "unknown unit"),
    ('"frame","x [nm]","y [nm]"', [], "no localizations"),
    ('"frame","x [nm]","y [nm]"', [(0, 2, 3)], "1-based"),
    ('"frame","x [nm]","y [nm]"', [(1.5, 2, 3)], "whole number"),
    ('"frame","x [nm]","y [nm]"', [(1, "nan", 3)], "finite"),
    ('"frame","x [nm]","y [nm]"', [(1, "abc", 3)], r"line 2, column 2 \('x \[nm\]'\): 'abc' is not a number"),
])
def test_bad_tables(tmp_path, header, rows, match):
    p = write_csv(tmp_path / "bad.csv", header, rows)
    with pytest.raises(DBlinkError, match=match):
        read_localizations(p)


def test_missing_and_empty_file(tmp_path):
    with pytest.raises(DBlinkError, match="no such file"):
        read_localizations(tmp_path / "nope.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DBlinkError, match="empty"):
        read_localizations(tmp_path / "empty.csv")


def test_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    locs = Localizations(frame=np.arange(1, 101), x=rng.uniform(0, 5000, 100),
                         y=rng.uniform(0, 5000, 100), uncertainty=rng.uniform(5, 30, 100))
    write_localizations(tmp_path / "rt.csv", locs)
    back = read_localizations(tmp_path / "rt.csv")
    np.testing.assert_array_equal(back.frame, locs.frame)
    np.testing.assert_allclose(back.x, locs.x, atol=1e-3)
    np.testing.assert_allclose(back.uncertainty, locs.uncertainty, atol=1e-3)


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data/thunderstorm-real not present")
@pytest.mark.parametrize("name,n,last", [("ecoli_lacy_fov01.csv", 29995, 1851),
                                         ("ecoli_lacy_fov02.csv", 28757, 1801)])
def test_real_thunderstorm_exports(name, n, last):
    locs = read_localizations(SHARED / name)
    assert len(locs) == n
    assert locs.frame_range == (1, last)
    assert locs.uncertainty is not None and (locs.uncertainty > 0).all()
    # a 512 x 512 camera of 80 nm pixels: everything inside 40.96 µm
    assert locs.x.min() >= 0 and locs.x.max() < 40960 and locs.y.max() < 40960
