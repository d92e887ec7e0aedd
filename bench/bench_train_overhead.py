"""Per-optimizer-step bookkeeping cost of foldtree2.train at the reference model size.

The loop keeps a snapshot (model state + RNG + position) at every optimizer-step boundary so that
checkpoints, Ctrl-C and non-finite-loss skips restore an exact state. This measures what that costs per
step, and what writing a full checkpoint costs, for the reference configuration of issue 3 (hidden 100 x3,
16 heads, 40 codes, embedding 128, EMA, concat_positions, Muon+AdamW) built on real AlphaFold graphs, next to
the time of one optimizer step (forward, backward, step) on a batch of 10 of those models measured in the
same run (same machine load). The copy is memory-bandwidth bound: on a busy machine it is slow, but so is
the step; the ratio is what matters.

    python bench/bench_train_overhead.py       # writes bench/results/bench_train_overhead.json
"""
import json, tempfile, time
from pathlib import Path
import torch
from foldtree2.data import build_store, StructureDataset
from foldtree2.structures import AFDB_RRNPPA
from foldtree2.decoders import build_model
from foldtree2.engine import save_checkpoint
from foldtree2.optim import build_optimizers
from foldtree2.train import LossModel, _snapshot, _new_acc, DEFAULT_WEIGHTS

ROOT = Path(__file__).resolve().parents[1]
tmp = Path(tempfile.mkdtemp())
build_store(sorted(AFDB_RRNPPA.glob('*.pdb.gz'))[:10], tmp / 'ten.h5', mode='alphafold', progress=False)
ds = StructureDataset(tmp / 'ten.h5'); graphs = [ds[i] for i in range(len(ds))]
sample = graphs[0]
torch.manual_seed(0)
enc, dec = build_model({'hidden_channels': [100, 100, 100], 'nheads': 16, 'num_embeddings': 40, 'embedding_dim': 128,
                        'EMA': True, 'concat_positions': True}, sample=sample)
model = LossModel(enc, dec, DEFAULT_WEIGHTS, True, 0.3)
opts = build_optimizers(enc, dec, use_muon=True, muon_encoder=True, muon_decoders=True)
n_params = sum(p.numel() for p in model.parameters())
acc = _new_acc(40)
_snapshot(model, 0, 0, 0, acc)
t = time.perf_counter(); n = 20
for i in range(n): snap = _snapshot(model, 0, i, i, acc)
snap_s = (time.perf_counter() - t) / n
state = {'model': {'encoder': snap['encoder'], 'decoder': snap['decoder']}, 'rng': snap['rng'],
         'optimizers': {k: o.state_dict() for k, o in opts.items()}}
t = time.perf_counter(); save_checkpoint(tmp / 'ck.pt', state); ck_s = time.perf_counter() - t
from torch_geometric.loader import DataLoader
batch = next(iter(DataLoader(graphs, batch_size=10)))
def step():
    total = model(batch)[0]
    total.backward()
    for o in opts.values(): o.step(); o.zero_grad(set_to_none=True)
step()
t = time.perf_counter(); step(); step_s = time.perf_counter() - t
res = {'step_s_batch10': round(step_s, 2), 'snapshot_fraction_of_step': round(snap_s / step_s, 4), 'parameters': n_params, 'snapshot_ms_per_step': round(snap_s * 1e3, 2), 'checkpoint_write_s': round(ck_s, 3),
       'checkpoint_mb': round((tmp / 'ck.pt').stat().st_size / 2**20, 1), 'threads': torch.get_num_threads()}
out = ROOT / 'bench/results/bench_train_overhead.json'
out.write_text(json.dumps(res, indent=1)); print(json.dumps(res, indent=1))
