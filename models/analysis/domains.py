"""Cross-domain evaluation of a model (issue 12): the same as
``dblink evaluate --model MODEL --domains --n N --stride K``, writing the rows as JSON too.

usage: PYTHONPATH=python python models/analysis/domains.py MODEL N STRIDE OUT.json [SET,SET,...] [--first I]
(one CPU thread; sets default to every domain set of the model's sample type; --first: the first
movie's index, 100 for every reported table, 200 for the movies candidates are chosen on)
"""
import json
import sys
import tempfile
import time
import warnings

import torch

from dblink.evaluate import domain_sets_for, evaluate_domains, format_domain_table
from dblink.export import load_model

warnings.filterwarnings("ignore")
torch.set_num_threads(1)
argv = sys.argv
first = 100
if "--first" in argv:
    i = argv.index("--first")
    if i + 1 >= len(argv) or not argv[i + 1].isdigit():
        sys.exit("domains.py: --first needs a movie index (100: the reported tables, 200: selection)")
    first, argv = int(argv[i + 1]), argv[:i] + argv[i + 2:]
sys.argv = argv
if len(argv) < 5:
    sys.exit(__doc__.strip().splitlines()[3])
model = load_model(sys.argv[1])
n, stride, out = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
names = sys.argv[5].split(",") if len(sys.argv) > 5 else domain_sets_for(model.meta.get("sample", "filaments"))
t0 = time.time()
with tempfile.TemporaryDirectory(prefix="dblink-domains-") as tmp:
    rows = evaluate_domains(model, names, tmp, n=n, first=first, stride=stride, device="cpu")
print(f"model {model.name} ({sys.argv[1]}), {n} movies per set from {first}, stride {stride}, "
      f"{time.time() - t0:.0f} s")
print(format_domain_table(rows))
json.dump(rows, open(out, "w"), indent=1)
