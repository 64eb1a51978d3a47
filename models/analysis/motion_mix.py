"""How fast the training clips of a config move, per domain (issue 12): the share of clips whose
drift or rotation per raw frame is at least half that of the fast evaluation sets
(``ours/camera-filaments-fast``: 1.5 µm and 60° over 1,000 raw frames), and the share of static ones.
Draws only the settings (no simulation): seconds.

usage: PYTHONPATH=python python models/analysis/motion_mix.py CONFIG.json [CONFIG.json ...]
"""
import sys
from dataclasses import replace

import numpy as np

from dblink.train import load_config, pick_domain, sim_base, sim_ranges

FAST_DRIFT, FAST_ROT = 1.5, 0.06     # nm and degrees per raw frame of the fast sets


def motion_mix(path: str, n: int = 4000) -> dict:
    cfg = load_config(path=path)
    dom, v, rot = [], [], []
    for i in range(n):
        rng = np.random.default_rng([cfg["seed"], 0, i])
        d = pick_domain(cfg, rng)
        base = sim_base(cfg) if d is None else replace(sim_base(cfg), domain=d)
        c = sim_ranges(cfg, d).draw(rng, base)
        dom.append(c.domain)
        v.append(c.drift_nm / c.n_frames)
        rot.append(c.rotation_deg / c.n_frames)
    dom, v, rot = np.array(dom), np.array(v), np.array(rot)
    fast = (v >= FAST_DRIFT / 2) | (rot >= FAST_ROT / 2)
    out = {"clip_frames": sim_base(cfg).n_frames, "fast": float(fast.mean())}
    for d in sorted(set(dom)):
        m = dom == d
        out[d] = {"share": float(m.mean()), "fast": float(fast[m].mean()), "static": float((v[m] == 0).mean())}
    return out


if __name__ == "__main__":
    for p in sys.argv[1:]:
        r = motion_mix(p)
        per = ", ".join(f"{d} {r[d]['share']:.2f} of clips ({r[d]['fast']:.2f} fast, {r[d]['static']:.2f} static)"
                        for d in r if isinstance(r[d], dict))
        print(f"{p}: {r['clip_frames']} raw frames per clip; fast clips {r['fast']:.2f}; {per}")
