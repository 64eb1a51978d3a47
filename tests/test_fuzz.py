"""Property-based tests (hypothesis) of the table reader and of render.

Invalid input of any kind may only raise DBlinkError; valid input lands every localization in the
pixel and step that docs/ARCHITECTURE.md's geometry gives: pixel (r, c) covers x in [x0 + c*p, x0 + (c+1)*p)
and y in [y0 + r*p, y0 + (r+1)*p); step k holds raw frames f0 + k*S ... f0 + (k+1)*S - 1.
"""
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from dblink.errors import DBlinkError
from dblink.tables import Localizations, read_localizations
from dblink.render import Grid, render

FUZZ = settings(max_examples=100, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
LIMIT = 64 * 2**20  # max_bytes for render in the fuzz: nothing large is ever allocated


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


def read_or_refuse(path, **kw):
    """Read a table; DBlinkError is the only acceptable failure. Returns Localizations or None."""
    notes = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warnings go through the callback, never warnings.warn
        try:
            locs = read_localizations(path, warn=notes.append, **kw)
        except DBlinkError as exc:
            msg = str(exc)
            assert msg and "\n" not in msg, repr(msg)
            return None
    assert len(locs) > 0
    assert locs.frame.dtype == np.int64 and (locs.frame >= 1).all()
    assert np.isfinite(locs.x).all() and np.isfinite(locs.y).all()
    assert len(locs.x) == len(locs.y) == len(locs.frame)
    return locs


# ------------------------------------------------------------------ reader: arbitrary input

@FUZZ
@given(data=st.binary(max_size=400))
def test_reader_on_arbitrary_bytes(folder, data):
    p = folder / "bytes.csv"
    p.write_bytes(data)
    read_or_refuse(p)


CELLS = st.one_of(st.integers(-5, 10**6).map(str),
                  st.floats(allow_nan=True, allow_infinity=True).map(repr),
                  st.sampled_from(["", "nan", "inf", "-inf", "1e400", "abc", "1,5", '"3"', "1.0",
                                   " 7 ", "µ", "\x00", "2e-3", "0x10", "1_0"]))
HEADERS = st.lists(st.sampled_from(['"frame"', "frame", '"x [nm]"', "x [um]", "x [µm]", "x [px]",
                                    "x", '"y [nm]"', "y [um]", "y", "y [px]", "id", "z [nm]",
                                    '"uncertainty [nm]"', "uncertainty_xy [nm]", "x [furlong]",
                                    "sigma [nm]", ""]), min_size=0, max_size=7)


@FUZZ
@given(header=HEADERS, rows=st.lists(st.lists(CELLS, min_size=0, max_size=8), max_size=6),
       delim=st.sampled_from([",", ";", "\t"]), eol=st.sampled_from(["\n", "\r\n"]),
       end=st.booleans(), bom=st.booleans(), camera=st.sampled_from([None, 100.0, 0.0]),
       encoding=st.sampled_from(["utf-8", "latin-1"]))
def test_reader_on_random_tables(folder, header, rows, delim, eol, end, bom, camera, encoding):
    text = eol.join([delim.join(header)] + [delim.join(r) for r in rows]) + (eol if end else "")
    data = text.encode(encoding, errors="replace")
    p = folder / "random.csv"
    p.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)
    read_or_refuse(p, camera_pixel=camera)


# ------------------------------------------------------------------ reader: valid tables round trip

UNITS = {"nm": 1.0, "um": 1000.0, "µm": 1000.0, "px": 80.0, None: 1.0}


@FUZZ
@given(frames=st.lists(st.integers(1, 10**7), min_size=1, max_size=30), data=st.data(),
       unit=st.sampled_from(list(UNITS)), delim=st.sampled_from([",", ";", "\t"]),
       eol=st.sampled_from(["\n", "\r\n"]), quoted=st.booleans(), with_id=st.booleans(),
       order=st.permutations(["frame", "x", "y", "extra"]), bom=st.booleans(),
       encoding=st.sampled_from(["utf-8", "latin-1"]))
def test_valid_tables_read_back(folder, frames, data, unit, delim, eol, quoted, with_id, order, bom,
                                encoding):
    n = len(frames)
    coord = st.floats(-1e7, 1e7, allow_nan=False)
    xs = data.draw(st.lists(coord, min_size=n, max_size=n))
    ys = data.draw(st.lists(coord, min_size=n, max_size=n))
    label = {"frame": "frame", "x": f"x [{unit}]" if unit else "x", "y": f"y [{unit}]" if unit else "y",
             "extra": "intensity [photon]"}
    cols = (["id"] if with_id else []) + list(order)
    q = '"' if quoted else ""
    lines = [delim.join(q + label.get(c, c) + q for c in cols)]
    for i in range(n):
        val = {"id": str(i + 1), "frame": str(frames[i]), "x": repr(xs[i]), "y": repr(ys[i]),
               "extra": "123.5"}
        lines.append(delim.join(val[c] for c in cols))
    p = folder / "valid.csv"
    p.write_bytes((b"\xef\xbb\xbf" if bom else b"") + (eol.join(lines) + eol).encode(encoding))
    locs = read_or_refuse(p, camera_pixel=80.0)
    assert locs is not None
    assert locs.frame.tolist() == frames
    np.testing.assert_allclose(locs.x, np.array(xs) * UNITS[unit], rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(locs.y, np.array(ys) * UNITS[unit], rtol=1e-12, atol=1e-9)


# ------------------------------------------------------------------ render: geometry

@FUZZ
@given(x0=st.floats(-1e5, 1e5), y0=st.floats(-1e5, 1e5), p=st.floats(1.0, 200.0),
       W=st.integers(1, 12), H=st.integers(1, 12), S=st.integers(1, 20), f0=st.integers(1, 50),
       data=st.data())
def test_every_localization_lands_where_the_design_says(x0, y0, p, W, H, S, f0, data):
    grid = Grid(x0, y0, W * p, H * p, p)
    assert grid.shape == (H, W)
    T = data.draw(st.integers(1, 6))
    spots = data.draw(st.lists(st.tuples(st.integers(0, T - 1), st.integers(0, H - 1),
                                         st.integers(0, W - 1), st.integers(0, S - 1),
                                         st.floats(0.001, 0.999), st.floats(0.001, 0.999)),
                               min_size=1, max_size=40))
    # localizations outside: left/right/above/below the ROI, before f0, after the last step
    outside = data.draw(st.lists(st.tuples(st.sampled_from(["left", "right", "up", "down"]),
                                           st.floats(0.01, 5.0)), max_size=5))
    late = data.draw(st.integers(0, 3))
    early = data.draw(st.integers(0, 3)) if f0 > 1 else 0
    f, x, y = [], [], []
    expected = np.zeros((T, H, W), np.float32)
    for k, r, c, j, u, v in spots:
        f.append(f0 + k * S + j)
        x.append(x0 + (c + u) * p)
        y.append(y0 + (r + v) * p)
        expected[k, r, c] += 1
    for side, d in outside:
        f.append(f0)
        x.append({"left": x0 - d * p, "right": x0 + (W + d) * p}.get(side, x0 + 0.5 * p))
        y.append({"up": y0 - d * p, "down": y0 + (H + d) * p}.get(side, y0 + 0.5 * p))
    for i in range(late):
        f.append(f0 + T * S + i)
        x.append(x0 + 0.5 * p)
        y.append(y0 + 0.5 * p)
    for i in range(early):
        f.append(max(1, f0 - 1 - i))
        x.append(x0 + 0.5 * p)
        y.append(y0 + 0.5 * p)
    assume(all(fr >= 1 for fr in f))
    locs = Localizations(frame=np.array(f, np.int64), x=np.array(x), y=np.array(y))
    res = render(locs, grid, S, first_frame=f0, n_steps=T, max_bytes=LIMIT)
    np.testing.assert_array_equal(res.video, expected)
    assert res.n_inside == len(spots)
    assert res.n_outside_roi == len(outside)
    assert res.n_outside_time == late + early
    # the default grid (bounding box) keeps every localization, and steps follow the frames
    sub = Localizations(frame=np.array(f[:len(spots)], np.int64), x=np.array(x[:len(spots)]),
                        y=np.array(y[:len(spots)]))
    auto = render(sub, Grid.around(sub, p), S, first_frame=f0, max_bytes=LIMIT)
    assert auto.n_inside == len(spots) and auto.n_outside_roi == 0
    assert auto.video.shape[0] == (max(f[:len(spots)]) - f0) // S + 1


ANY_FLOAT = st.floats(allow_nan=True, allow_infinity=True)


@FUZZ
@given(x=st.lists(ANY_FLOAT, min_size=1, max_size=10), data=st.data(),
       p=st.one_of(ANY_FLOAT, st.floats(1e-3, 1e3)), roi=st.one_of(st.none(), st.tuples(*[ANY_FLOAT] * 4)),
       S=st.integers(-3, 10**9), f0=st.integers(-3, 10**6))
def test_render_never_fails_other_than_dblink_error(x, data, p, roi, S, f0):
    n = len(x)
    y = data.draw(st.lists(ANY_FLOAT, min_size=n, max_size=n))
    f = data.draw(st.lists(st.integers(1, 2**53), min_size=n, max_size=n))
    locs = Localizations(frame=np.array(f, np.int64), x=np.array(x), y=np.array(y))
    try:
        grid = Grid.around(locs, p) if roi is None else Grid(*roi, p)
        res = render(locs, grid, S, first_frame=f0, max_bytes=LIMIT)
    except DBlinkError as exc:
        assert "\n" not in str(exc)
        return
    assert res.video.dtype == np.float32 and res.video.nbytes <= LIMIT
    assert res.n_inside + res.n_outside_roi + res.n_outside_time >= n - int((~np.isfinite(locs.x) | ~np.isfinite(locs.y)).sum())
    assert res.video.sum() == res.n_inside
