"""Bad and odd localization tables: one clear line for what cannot be read, acceptance of what is
unambiguous (delimiters, line endings, BOM, Latin-1 headers), and a truncated last line."""
import time
import warnings

import numpy as np
import pytest

from dblink.errors import DBlinkError
from dblink.tables import Localizations, read_localizations, write_localizations

GOOD = [(1, 100.0, 200.0), (2, 150.5, 250.25), (12, 3000.0, 40.0)]


def write_bytes(tmp_path, data: bytes, name="t.csv"):
    p = tmp_path / name
    p.write_bytes(data)
    return p


def table(header, rows, delim=",", eol="\n"):
    return eol.join([header] + [delim.join(str(v) for v in r) for r in rows]) + eol


def check_good(locs, scale=1.0):
    assert locs.frame.tolist() == [1, 2, 12]
    np.testing.assert_allclose(locs.x, [r[1] * scale for r in GOOD])
    np.testing.assert_allclose(locs.y, [r[2] * scale for r in GOOD])


def one_line_error(path, match, **kw):
    with pytest.raises(DBlinkError) as info:
        read_localizations(path, **kw)
    msg = str(info.value)
    assert "\n" not in msg, msg
    assert str(path) in msg, msg
    assert match in msg, msg
    return msg


# ---------------------------------------------------------------- accepted: unambiguous variants

@pytest.mark.parametrize("delim", [",", ";", "\t"])
@pytest.mark.parametrize("eol", ["\n", "\r\n"])
def test_delimiters_and_line_endings(tmp_path, delim, eol):
    hdr = delim.join(['"id"', '"frame"', '"x [nm]"', '"y [nm]"', '"sigma [nm]"'])
    rows = [(i + 1, f, x, y, 120.5) for i, (f, x, y) in enumerate(GOOD)]
    p = write_bytes(tmp_path, table(hdr, rows, delim, eol).encode())
    check_good(read_localizations(p))


def test_utf8_bom(tmp_path):
    p = write_bytes(tmp_path, b"\xef\xbb\xbf" + table('"frame","x [nm]","y [nm]"', GOOD).encode())
    check_good(read_localizations(p))


def test_latin1_micro_sign_in_header(tmp_path):
    rows = [(f, x / 1000, y / 1000) for f, x, y in GOOD]
    p = write_bytes(tmp_path, table('"frame","x [µm]","y [µm]"', rows).encode("latin-1"))
    assert b"\xb5" in p.read_bytes()
    check_good(read_localizations(p))
    q = write_bytes(tmp_path, table('"frame","x [µm]","y [µm]"', rows).encode("utf-8"), "u8.csv")
    check_good(read_localizations(q))


def test_blank_lines_and_no_final_newline_are_fine(tmp_path):
    text = table("frame,x,y", GOOD).replace("\n2,", "\n\n2,").rstrip("\n")
    p = write_bytes(tmp_path, text.encode())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a complete last row without newline is not a warning
        check_good(read_localizations(p))


def test_text_in_an_unused_column_is_ignored(tmp_path):
    p = write_bytes(tmp_path, table("frame,x,y,comment", [r + ("ok",) for r in GOOD]).encode())
    check_good(read_localizations(p))


# ---------------------------------------------------------------- truncated last line

def test_truncated_last_line_is_left_out_with_a_warning(tmp_path):
    text = table('"id","frame","x [nm]","y [nm]","uncertainty [nm]"',
                 [(i + 1, f, x, y, 9.0) for i, (f, x, y) in enumerate(GOOD)] + [(4, 13, 3050.0)])
    p = write_bytes(tmp_path, text.rstrip("\n").encode())
    with pytest.warns(UserWarning, match=r"line 5: the last line .* incomplete .*truncated.* 3 complete"):
        check_good(read_localizations(p))
    notes = []
    check_good(read_localizations(p, warn=notes.append))
    assert len(notes) == 1 and str(p) in notes[0]


def test_truncated_in_the_middle_of_a_number(tmp_path):
    text = table("frame,x,y", GOOD) + "13,30"
    p = write_bytes(tmp_path, text.encode())
    notes = []
    check_good(read_localizations(p, warn=notes.append))
    assert "line 5" in notes[0]


def test_a_short_row_in_the_middle_is_an_error(tmp_path):
    p = write_bytes(tmp_path, table("frame,x,y", [GOOD[0], (2, 150.5), GOOD[2]]).encode())
    one_line_error(p, "line 3: only 2 of 3 columns, no value for 'y'")


# ---------------------------------------------------------------- refused, with file, line, column

@pytest.mark.parametrize("text,match", [
    ("", "empty file"),
    ("   \n\n", "empty file"),
    ('"frame","x [nm]","y [nm]"\n', "header but no localizations"),
    ('"frame","x [nm]","y [nm]"', "header but no localizations"),
    ('"id","x [nm]","y [nm]"\n1,2,3\n', "line 1: no 'frame' column in the header (found: 'id', 'x [nm]', 'y [nm]')"),
    ('"frame","y [nm]"\n1,2\n', "no 'x' column"),
    ('"frame","x [furlong]","y [nm]"\n1,2,3\n', "line 1: column 'x [furlong]' has an unknown unit"),
    ('"frame","x [px]","y [px]"\n1,2,3\n', "in camera pixels; give the camera pixel size with --camera-pixel"),
    ("frame,x,y\n1,2,3\nnan,2,3\n", "line 3, column 1 ('frame'): frame 'nan' is not a whole number"),
    ("frame,x,y\n1,2,3\ninf,2,3\n", "line 3, column 1 ('frame'): frame 'inf'"),
    ("frame,x,y\n-4,2,3\n", "line 2, column 1 ('frame'): frame '-4' is not a whole number"),
    ("frame,x,y\n0,2,3\n", "1-based"),
    ("frame,x,y\n2.5,2,3\n", "frame '2.5' is not a whole number"),
    ("frame,x,y\n1e30,2,3\n", "from 1 to 2^53"),
    ("frame,x,y\n1,2,3\n2,inf,3\n", "line 3, column 2 ('x'): 'inf' is not a finite coordinate"),
    ("frame,x,y\n1,2,3\n2,3,NaN\n", "line 3, column 3 ('y'): 'NaN' is not a finite coordinate"),
    ("frame,x [um],y [um]\n1,2,1e306\n", "not a finite coordinate"),  # finite in µm, not in nm
    ("frame,x,y\n1,2,3\n2,3,4\n3,abc,5\n", "line 4, column 2 ('x'): 'abc' is not a number"),
    ("frame,x,y\n1,2,3\nthree,2,3\n", "line 3, column 1 ('frame'): 'three' is not a number"),
    ("frame;x;y\n1;2,5;3\n", "'2,5' is not a number (a decimal comma?"),
    ('"frame","x [nm]","y [nm]","x [px]"\n1,2,3,4\n', "line 1: 2 columns are named 'x' ('x [nm]', 'x [px]', columns 2, 4)"),
    ("frame,frame,x,y\n1,1,2,3\n", "2 columns are named 'frame'"),
    ("frame,x,y\r1,2,3\r", "bare CR"),
])
def test_bad_tables_one_line(tmp_path, text, match):
    p = write_bytes(tmp_path, text.encode())
    one_line_error(p, match)


@pytest.mark.parametrize("data,match", [
    (bytes(range(256)) * 4, "binary"),
    (b"\x89PNG\r\n\x1a\n" + bytes(100), "PNG image"),
    (b"PK\x03\x04" + bytes(60), "zip archive"),
    (b"\x1f\x8b\x08\x00" + bytes(60), "gzip"),
    ("frame,x,y\n1,2,3\n".encode("utf-16"), "UTF-16"),
    (np.arange(300, dtype=np.float64).tobytes(), "binary"),
])
def test_binary_files_renamed_csv(tmp_path, data, match):
    p = write_bytes(tmp_path, data, "renamed.csv")
    one_line_error(p, match)


def test_not_a_file(tmp_path):
    one_line_error(tmp_path, "not a file")


def test_camera_pixel_must_be_positive(tmp_path):
    p = write_bytes(tmp_path, b'"frame","x [px]","y [px]"\n1,2,3\n')
    for bad in (0.0, -80.0, float("nan")):
        with pytest.raises(DBlinkError, match="--camera-pixel must be a positive"):
            read_localizations(p, camera_pixel=bad)
    assert read_localizations(p, camera_pixel=80.0).x.tolist() == [160.0]


def test_error_in_a_later_block_names_the_right_line(tmp_path, monkeypatch):
    import dblink.tables as dio
    monkeypatch.setattr(dio, "BLOCK_BYTES", 64)  # many small blocks
    rows = [(i % 50 + 1, float(i), 2.0 * i) for i in range(200)]
    rows[150] = (151, "oops", 3.0)
    text = table("frame,x,y", rows).replace("\n11,", "\n\n11,", 1)  # a blank line shifts the rest
    p = write_bytes(tmp_path, text.encode())
    one_line_error(p, "line 153, column 2 ('x'): 'oops' is not a number")
    rows[150] = (-1, 1.0, 3.0)
    p = write_bytes(tmp_path, table("frame,x,y", rows).encode())
    one_line_error(p, "line 152, column 1 ('frame'): frame '-1'")
    rows[150] = (1, 1.0, 3.0)
    p = write_bytes(tmp_path, table("frame,x,y", rows).encode())
    locs = read_localizations(p)
    assert len(locs) == 200 and locs.x[199] == 199.0


def test_one_million_rows_in_about_a_second(tmp_path):
    n = 1_000_000
    rng = np.random.default_rng(2)
    locs = Localizations(frame=rng.integers(1, 5000, n), x=rng.uniform(0, 4e4, n),
                         y=rng.uniform(0, 4e4, n), uncertainty=rng.uniform(5, 30, n))
    write_localizations(tmp_path / "m.csv", locs)
    t0 = time.perf_counter()
    back = read_localizations(tmp_path / "m.csv")
    dt = time.perf_counter() - t0
    assert len(back) == n
    np.testing.assert_array_equal(back.frame, locs.frame)
    assert dt < 5.0, f"1e6 rows took {dt:.2f} s"  # ~1 s on 2 shared cores; generous for CI noise


def test_cli_prints_the_truncation_warning(tmp_path, tiny_model_file, capsys):
    from dblink.cli import main

    rows = [(f, 100.0 + 7 * f, 200.0 + 3 * f) for f in range(1, 40)]
    p = write_bytes(tmp_path, (table('"frame","x [nm]","y [nm]"', rows) + "40,380.").encode())
    assert main(["reconstruct", str(p), "-o", str(tmp_path / "o.tif"), "--model",
                 str(tiny_model_file), "--progress", "none"]) == 0
    warn = [ln for ln in capsys.readouterr().err.splitlines() if "truncated" in ln]
    assert len(warn) == 1 and warn[0].startswith("dblink: warning:") and "line 41" in warn[0]
    assert "39 complete rows" in warn[0] and (tmp_path / "o.tif").exists()


# ---------------------------------------------------------------- round 2: the csv module's own limits

HDR = b"frame,x [nm],y [nm]\n"


@pytest.mark.parametrize("data,match", [
    (HDR + b"1,2,3\n2," + b"9" * 200_000 + b",3\n3,4,5\n", "line 3: a field longer than 131,072"),
    (HDR + b"1,2,3\n2," + b"a" * 200_000 + b",3\n", "line 3: a field longer than 131,072"),
    (HDR + b"1,2,3\n" * 5 + b"7,2,\"" + b"x" * 200_000 + b"\"\n", "line 7: a field longer than 131,072"),
    (b"frame,x [nm],y [nm]," + b"a" * 200_000 + b"\n1,2,3\n", "line 1: a field longer than 131,072"),
    (HDR + b"1,2,3\n2," + b"1" * (2 * 2**20) + b",3\n3,4,5\n", "line 3 is longer than 1 MiB"),
    (HDR + b"1,2,3\n2,3,4\r5,6,7\n3,4,5\n", "line 3: a bare CR inside the line"),
    (HDR + b"1,2,3\n2,3,4\r5,6,7", "line 3: a bare CR inside the line"),
    (b"frame,x [nm],y [nm]\r\n1,2,3\r\n2,3,4\r5,6,7\r\n", "line 3: a bare CR inside the line"),
    (HDR + b"1,2,3\n" * 3 + b"\r\r\r\n", "line 5: a bare CR inside the line"),
])
def test_csv_module_limits_are_one_line(tmp_path, data, match):
    one_line_error(write_bytes(tmp_path, data), match)


def test_bare_cr_found_in_a_later_block(tmp_path, monkeypatch):
    import dblink.tables as T
    monkeypatch.setattr(T, "BLOCK_BYTES", 64)
    rows = b"".join(b"%d,1.5,2.5\n" % (i + 1) for i in range(100))
    one_line_error(write_bytes(tmp_path, HDR + rows + b"101,1,2\r102,3,4\n"), "line 102: a bare CR")


def test_a_file_without_line_breaks_is_refused_with_bounded_memory(tmp_path):
    import tracemalloc

    p = tmp_path / "huge.csv"
    with open(p, "wb") as fh:
        fh.write(HDR + b"1,2,3\n2,")
        block = b"1" * 2**20
        for _ in range(100):  # 100 MiB in one line without a newline
            fh.write(block)
    tracemalloc.start()
    try:
        one_line_error(p, "line 3 is longer than 1 MiB")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 40 * 2**20, f"peak {peak / 2**20:.0f} MiB"


def test_long_lines_over_blocks_are_refused(tmp_path, monkeypatch):
    import dblink.tables as T
    monkeypatch.setattr(T, "BLOCK_BYTES", 4096)
    monkeypatch.setattr(T, "MAX_LINE_BYTES", 10_000)
    rows = HDR + b"1,2,3\n" * 3 + b"4,5," + b"6" * 20_000 + b"\n5,1,1\n"
    one_line_error(write_bytes(tmp_path, rows), "line 5 is longer than")
    # a long last line without a newline, after complete lines
    rows = HDR + b"1,2,3\n" * 3 + b"4,5," + b"6" * 20_000
    one_line_error(write_bytes(tmp_path, rows, "b.csv"), "line 5 is longer than")


# comment and blank-space lines are parsed line by line: 40 MiB of them take minutes (slow)
@pytest.mark.parametrize("filler", [b"\n", pytest.param(b"#\n", marks=pytest.mark.slow),
                                    pytest.param(b"   \r\n", marks=pytest.mark.slow)])
def test_memory_follows_the_rows_not_the_lines(tmp_path, filler):
    import tracemalloc

    p = tmp_path / "blank.csv"
    with open(p, "wb") as fh:
        fh.write(HDR + b"1,2,3\n")
        fh.write(filler * (40 * 2**20 // len(filler)))  # ~40 MiB of lines that are not rows
        fh.write(b"2,3,4\n")
    tracemalloc.start()
    try:
        locs = read_localizations(p)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(locs) == 2 and locs.frame.tolist() == [1, 2]
    assert peak < 120 * 2**20, f"peak {peak / 2**20:.0f} MiB"  # not 24 bytes per line (1 GB)


def test_columns_grow_past_the_first_allocation(tmp_path, monkeypatch):
    import dblink.tables as T
    monkeypatch.setattr(T, "INITIAL_ROWS", 7)
    monkeypatch.setattr(T, "BLOCK_BYTES", 50)
    rows = [(i % 9 + 1, i * 1.5, i * 2.5, 10.0) for i in range(1000)]
    p = write_bytes(tmp_path, table("frame,x [nm],y [nm],uncertainty [nm]", rows).encode())
    locs = read_localizations(p)
    assert len(locs) == 1000 and locs.x[-1] == 999 * 1.5 and locs.uncertainty.shape == (1000,)
    assert locs.frame.tolist() == [r[0] for r in rows]


def test_lines_of_spaces_are_blank_lines(tmp_path):
    p = write_bytes(tmp_path, table("frame,x [nm],y [nm]", GOOD[:2]).encode() + b"   \n\t\r\n"
                    + b"12,3000.0,40.0\n  \n")
    check_good(read_localizations(p))
    # ... and an error after them still names its own line
    p = write_bytes(tmp_path, HDR + b"1,2,3\n   \n \t \n4,x,5\n", "b.csv")
    one_line_error(p, "line 5, column 2 ('x [nm]'): 'x' is not a number")
