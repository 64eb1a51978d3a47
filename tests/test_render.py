"""The geometry convention of docs/ARCHITECTURE.md: where a localization lands in space and time."""
import numpy as np
import pytest

from dblink.errors import DBlinkError
from dblink.tables import Localizations
from dblink.render import Grid, render


def locs_of(*rows):
    f, x, y = (np.array(v) for v in zip(*rows))
    return Localizations(frame=f.astype(np.int64), x=x.astype(float), y=y.astype(float))


def test_pixel_and_step_of_a_localization():
    grid = Grid(1000.0, 2000.0, 400.0, 200.0, 40.0)  # W = 10, H = 5
    assert grid.shape == (5, 10)
    # x = 1000 + 3*40 + 5 -> column 3; y = 2000 + 2*40 + 39.9 -> row 2; frame 25 with S=10 -> step 2
    r = render(locs_of((25, 1125.0, 2119.9)), grid, frames_per_step=10)
    assert r.video.shape == (3, 5, 10)
    assert r.video[2, 2, 3] == 1 and r.video.sum() == 1


def test_pixel_edges_are_half_open():
    grid = Grid(0.0, 0.0, 80.0, 80.0, 40.0)
    r = render(locs_of((1, 40.0, 0.0), (1, 39.999, 79.999), (1, 80.0, 10.0)), grid, 1)
    assert r.video[0, 0, 1] == 1          # x = 40 starts column 1
    assert r.video[0, 1, 0] == 1          # just below the edge stays in column 0, row 1
    assert r.n_outside_roi == 1           # x = 80 is outside [0, 80)
    assert r.n_inside == 2


def test_steps_and_first_frame():
    grid = Grid(0.0, 0.0, 40.0, 40.0, 40.0)
    locs = locs_of((1, 1, 1), (10, 1, 1), (11, 1, 1), (25, 1, 1), (3, 1, 1))
    r = render(locs, grid, frames_per_step=10)
    assert r.video[:, 0, 0].tolist() == [3, 1, 1]
    r = render(locs, grid, frames_per_step=10, first_frame=5)  # steps: 5-14, 15-24, 25-34
    assert r.video[:, 0, 0].tolist() == [2, 0, 1]
    assert r.n_outside_time == 2


def test_default_grid_snaps_outward():
    locs = locs_of((1, 95.0, 130.0), (2, 205.0, 161.0))
    g = Grid.around(locs, 40.0)
    assert (g.x0, g.y0) == (80.0, 120.0)
    assert g.x0 + g.width > 205.0 and g.y0 + g.height > 161.0
    assert render(locs, g, 1).n_outside_roi == 0


@pytest.mark.parametrize("args", [(0, 0, 100, 100, 0.0), (0, 0, -5, 100, 10.0),
                                  (0, 0, 1e12, 1e12, 10.0)])
def test_absurd_grids_are_refused(args):
    with pytest.raises(DBlinkError):
        Grid(*args)


def test_roi_parsing():
    g = Grid.parse_roi("100,200,4000,3000", 40.0)
    assert g.shape == (75, 100)
    with pytest.raises(DBlinkError, match="X0,Y0"):
        Grid.parse_roi("1,2,3", 40.0)
