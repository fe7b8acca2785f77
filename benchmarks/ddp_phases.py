"""Time the phases of one default training in this process or rank: imports, reading, the fit, the training loop.

Usage: `python benchmarks/ddp_phases.py DATA THREADS` (one process), or under
`torchrun --standalone --nproc-per-node 2 benchmarks/ddp_phases.py DATA THREADS`; prints one JSON line per rank
(docs/distributed.md)."""
import sys, time, json, torch
t0 = time.perf_counter()
from comorbid import distributed, training
from comorbid.data import load_dataset
from comorbid.model import MultiLabelModel
t1 = time.perf_counter()
fit = training.fit
spent = {}
def timed_fit(*a, **k):
    s = time.perf_counter(); out = fit(*a, **k); spent["loop_s"] = time.perf_counter() - s; return out
import comorbid.model as M
M.fit = timed_fit
torch.set_num_threads(int(sys.argv[2]))
ctx = distributed.process_group() if distributed.launched() else None
if ctx: ctx.__enter__()
data = load_dataset(sys.argv[1]); t2 = time.perf_counter()
m = MultiLabelModel().fit(data); t3 = time.perf_counter()
print(json.dumps({"rank": distributed.rank(), "world": distributed.world_size(), "threads": torch.get_num_threads(), "import_s": round(t1-t0,1), "read_s": round(t2-t1,1), "fit_s": round(t3-t2,1), "loop_s": round(spent["loop_s"],1), "evaluations": m.history.get("evaluations")}), flush=True)
if ctx: ctx.__exit__(None, None, None)
