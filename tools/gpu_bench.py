"""GPU throughput of the engine (compact, 32 hidden channels), as run on one H100 on 2026-11-26:
`python3 tools/gpu_bench.py CHECKPOINT` (weights do not change the speed). Uses the engine of that day
(no tiling); figures in the README."""
import time, torch, numpy as np, sys
sys.path.insert(0, "python")
from dblink.model import build_model
from dblink.engine import infer
m = build_model("compact", hidden=32)
sd = torch.load(sys.argv[1], map_location="cpu", weights_only=True)["best"]
m.load_state_dict(sd)
rng = np.random.default_rng(0)
for size in (128, 1024):
    T = 120 if size == 128 else 60
    v = (rng.random((T, size, size)) < 0.01).astype(np.float32)
    for stride, batch in ((1, 16), (8, 16)):
        b = batch if size == 128 else 2
        infer(v[:60], m, 25, stride, "cuda", b, True, False, "none")
        torch.cuda.synchronize(); t = time.perf_counter()
        r = infer(v, m, 25, stride, "cuda", b, True, False, "none")
        dt = time.perf_counter() - t
        print(f"compact h32 {size}x{size} T={T} stride={stride} batch={b}: {T/dt:.1f} output frames/s")
