"""Does bf16 autocast pay off on this machine's CPU?  Times forward+backward of a small graph-transformer
stack shaped like the foldtree2 encoder body (2,500 residues ~ a batch of 10 proteins, ~30 contacts per
residue, hidden 128, 16 heads) and of a plain MLP, in fp32 and under torch.autocast('cpu', bfloat16).
The result decides `foldtree2.engine.amp_policy` for CPU.  Writes bench/results/engine_amp_cpu.json.

    python bench/engine_amp_cpu.py            # ~1 minute on 2 cores; re-run on a quiet machine
"""
import platform, sys
from pathlib import Path
import torch
from torch_geometric.nn import TransformerConv
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # the repository root: `bench.common`
from bench.common import result_path, timed, write_json

torch.manual_seed(0)
N, DEG, H = 2500, 30, 128
src = torch.randint(0, N, (N * DEG,)); dst = torch.randint(0, N, (N * DEG,))
edge_index = torch.stack([src, dst])
x = torch.randn(N, H)

class Body(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.convs = torch.nn.ModuleList([TransformerConv(H, H // 16, heads=16) for _ in range(3)])
        self.out = torch.nn.Linear(H, H)
    def forward(self, x, ei):
        for c in self.convs: x = torch.relu(c(x, ei))
        return self.out(x)

mlp = torch.nn.Sequential(*[m for _ in range(4) for m in (torch.nn.Linear(H * 4, H * 4), torch.nn.ReLU())])
xm = torch.randn(N, H * 4)
body = Body()

def timeit(fn, reps=5):
    fn()
    ts = []
    for _ in range(reps):
        with timed() as t: fn()
        ts.append(t.wall)
    return min(ts)

def step(model, args, bf16):
    model.zero_grad(set_to_none=True)
    with torch.autocast('cpu', dtype=torch.bfloat16, enabled=bf16):
        y = model(*args)
    y.float().square().mean().backward()

res = {'cpu': platform.processor() or platform.machine(), 'torch': torch.__version__,
       'cpu_capability': torch.backends.cpu.get_cpu_capability(), 'threads': torch.get_num_threads()}
for name, model, args in [('graph_transformer_body', body, (x, edge_index)), ('mlp_512', mlp, (xm,))]:
    fp32 = timeit(lambda: step(model, args, False)); bf16 = timeit(lambda: step(model, args, True))
    res[name] = {'fp32_s': round(fp32, 4), 'bf16_autocast_s': round(bf16, 4), 'bf16_over_fp32': round(bf16 / fp32, 3)}
write_json(result_path('engine_amp_cpu'), res)
