"""Issue 16 in ImageJ: a map stack that is the open image (table=[open image]) reconstructs in
both routes (in-process and the command line), as the same TIFF does through dblink reconstruct."""
import pytest
import tifffile

from conftest import ROOT
from test_fiji import pytestmark as fiji_marks, session

# skipped without ImageJ 1.x or a JDK; about 30 s (two JVM routes and the command line)
pytestmark = [*fiji_marks, pytest.mark.extra]

MAPS = ROOT / "tests" / "data" / "formats" / "deepstorm_maps.tif"


def test_the_open_image_as_a_map_stack(tmp_path):
    from dblink.cli import main
    assert main(["reconstruct", str(MAPS), "-o", str(tmp_path / "cli.tif"), "--progress", "none",
                 "--stride", "8", "--frames-per-step", "5", "--window", "4"]) == 0
    opts = "table=[open image] stride=8 frames_per_step=5 window=4"
    r = session("open_image", image=str(MAPS), options=opts, headless=True)
    assert r["inprocess_error"] == "" and r["subprocess_error"] == "", r
    a, b = r["images"]
    assert a == b and r["max_abs_diff"] == 0.0
    T, C, H, W = tifffile.imread(tmp_path / "cli.tif").shape
    assert a["dims"] == [W, H, C, 1, T] == [32, 32, 2, 1, 12]
    assert a["pixel_width"] == pytest.approx(0.04) and a["title"] == "DBlink of deepstorm_maps.tif"
    assert a["source"] == "map stack deepstorm_maps.tif"
    assert r["title_after"] == r["title_before"]  # the user's image is not renamed
