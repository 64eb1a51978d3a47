"""Paired comparison of two models' cross-domain rows (issue 12), written by domains.py on the same
seeds: per set, F1 of A and B at the paper level, the best baseline, and B − A per movie.

usage: PYTHONPATH=python python models/analysis/compare_domains.py A.json B.json
A "better" or "worse" verdict needs every movie to agree in sign and |mean| > 0.01; otherwise the
set is "within noise" (n is small: 2-4 movies per set).
"""
import json
import sys

import numpy as np


def compare(a_rows: list[dict], b_rows: list[dict]) -> list[dict]:
    b_by = {r["set"]: r for r in b_rows}
    out = []
    for a in a_rows:
        b = b_by[a["set"]]
        d = np.array(b["movies_f1"]) - np.array(a["movies_f1"])
        verdict = ("better" if (d > 0).all() and d.mean() > 0.01 else
                   "worse" if (d < 0).all() and d.mean() < -0.01 else "within noise")
        out.append({"set": a["set"], "n": len(d), "a_f1": a["model"]["f1"], "b_f1": b["model"]["f1"],
                    "baseline_f1": a["baseline"]["f1"], "diff": float(d.mean()),
                    "diff_min": float(d.min()), "diff_max": float(d.max()),
                    "b_fidelity": b["model"]["fidelity"], "b_hallucination": b["model"]["hallucination"],
                    "verdict": verdict})
    return out


if __name__ == "__main__":
    rows = compare(json.load(open(sys.argv[1])), json.load(open(sys.argv[2])))
    print("| set | A F1 | B F1 | B − A (per-movie range) | best baseline F1 | B − baseline | verdict |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for r in rows:
        print(f"| {r['set']} | {r['a_f1']:.3f} | {r['b_f1']:.3f} | {r['diff']:+.3f} "
              f"({r['diff_min']:+.3f} … {r['diff_max']:+.3f}) | {r['baseline_f1']:.3f} | "
              f"{r['b_f1'] - r['baseline_f1']:+.3f} | {r['verdict']} |")
    d = np.mean([r["diff"] for r in rows])
    print(f"\nmean B − A over the {len(rows)} sets: {d:+.3f}")
