"""The output hyperstack: calibrated ImageJ TIFF, read back with tifffile; atomic writes."""
import json

import numpy as np
import pytest
import tifffile

from dblink.errors import DBlinkError
from dblink.files import atomic_output
from dblink.hyperstack import read_hyperstack, write_hyperstack


def test_metadata_read_back(tmp_path):
    rec = np.random.default_rng(0).random((5, 12, 16)).astype(np.float32)
    conf = np.ones_like(rec) * 0.5
    path = tmp_path / "out.tif"
    write_hyperstack(path, [rec, conf], ["dblink", "confidence"], pixel_size_nm=40.0,
                     frames_per_step=10, exposure_s=0.02, origin_nm=(400.0, 800.0),
                     info={"model": "filaments", "window": 25})
    with tifffile.TiffFile(path) as tif:
        assert tif.is_imagej
        ij = tif.imagej_metadata
        data = tif.asarray()
        xres = tif.pages[0].tags["XResolution"].value
        assert tif.series[0].axes == "TCYX"
    assert data.shape == (5, 2, 12, 16) and data.dtype == np.float32
    np.testing.assert_array_equal(data[:, 0], rec)
    assert xres[0] / xres[1] == pytest.approx(25.0)      # 25 pixels per µm = 40 nm
    assert ij["unit"] == "micron"
    assert ij["finterval"] == pytest.approx(0.2) and ij["tunit"] == "sec"
    assert ij["xorigin"] == pytest.approx(-10) and ij["yorigin"] == pytest.approx(-20)
    assert ij["Labels"][:2] == ["dblink t=1", "confidence t=1"]
    info = json.loads(ij["Info"].split("=", 1)[1])
    assert info["model"] == "filaments" and info["channels"] == ["dblink", "confidence"]
    data2, meta = read_hyperstack(path)
    assert data2.shape == (5, 2, 12, 16) and meta["pixel_size_um"] == pytest.approx(0.04)


def test_frame_interval_without_exposure(tmp_path):
    write_hyperstack(tmp_path / "o.tif", [np.zeros((3, 4, 4))], ["dblink"], 20.0, 7)
    ij = tifffile.TiffFile(tmp_path / "o.tif").imagej_metadata
    assert ij["finterval"] == 7 and ij["tunit"] == "frame"


def test_atomic_output_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "x.tif"
    with pytest.raises(RuntimeError):
        with atomic_output(target) as tmp:
            open(tmp, "wb").write(b"half")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    target.write_bytes(b"old")
    with pytest.raises(DBlinkError, match="already exists"):
        with atomic_output(target, overwrite=False):
            pass
    assert target.read_bytes() == b"old"


def test_metadata_patched_in_place_when_room_is_reserved(tmp_path, monkeypatch):
    """Past 4 GB nothing can be appended to a classic TIFF: the stream writer then reserves room
    in the Info text and writes the final metadata (ranges, run time) in place, padded."""
    import tifffile

    from dblink import hyperstack as io

    monkeypatch.setattr(io, "RESERVE_ABOVE_BYTES", 0)  # behave as for a file over 4 GB
    info = {"k": 1}
    frames = [np.full((3, 4), v, np.float32) for v in (1.0, 2.5, 7.0)]

    def steps():
        yield from ([f] for f in frames)
        info["seconds"] = 12.5  # known only at the end, as in reconstruct_to_file

    path = tmp_path / "r.tif"
    io.write_hyperstack_stream(path, steps(), (3, 3, 4), ["dblink"], 40.0, 10, info=info)
    with tifffile.TiffFile(path) as t:
        meta = t.imagej_metadata
        offset = t.pages[0].tags["IJMetadata"].valueoffset
        first_data = t.pages[0].dataoffsets[0]
    assert meta["Ranges"] == (1.0, 7.0) and len(meta["Info"]) > 4000  # padded, in place
    assert offset < first_data  # not appended after the image data
    data, m = io.read_hyperstack(path)
    assert m["dblink"]["seconds"] == 12.5 and m["dblink"]["k"] == 1
    np.testing.assert_array_equal(data[:, 0], np.stack(frames))
