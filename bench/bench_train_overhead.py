"""Per-optimizer-step bookkeeping cost of the training loop (foldtree2.engine.Trainer running the monodecoder task
of foldtree2.train) at the reference model size.

At every accumulation-group boundary the loop takes a snapshot (`Trainer._snapshot`: a detached copy of the
model state + the RNG states) so that a non-finite loss or gradient can be skipped by restoring an exact state.
This measures what that snapshot costs, and what writing a full checkpoint costs (`engine.save_checkpoint` of
`Trainer.state_dict()`: model, optimizers, scheduler, scaler, history, ...), for the reference configuration of
issue 3 (hidden 100 x3, 16 heads, 40 codes, embedding 128, EMA, concat_positions, Muon+AdamW) built on real
AlphaFold graphs, next to the time of one optimizer step as the loop runs it (`Trainer._group` + `_finish_group`:
forward, backward, clipping, step) on one batch of those models, measured in the same run (same machine load).
The copy is memory-bandwidth bound: on a busy machine it is slow, but so is the step; the ratio is what matters.

    python bench/bench_train_overhead.py                    # 10 structures, batch 10; writes bench/results/bench_train_overhead.json
    python bench/bench_train_overhead.py --structures 4 --out /tmp/overhead.json      # quick smoke test
"""
import argparse
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # the repository root: `bench.common`
from bench.common import peak_memory, result_path, timed, write_json

REFERENCE = dict(hidden_channels=[100, 100, 100], nheads=16, num_embeddings=40, embedding_dim=128, EMA=True,
                 concat_positions=True, use_muon=True, mask_plddt=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--structures', type=int, default=10, help='AlphaFold models used (one batch of all of them)')
    ap.add_argument('--snapshots', type=int, default=20, help='snapshots timed (mean reported)')
    ap.add_argument('--steps', type=int, default=3, help='optimizer steps timed after one warm-up step (median reported)')
    ap.add_argument('--out', default=str(result_path('bench_train_overhead')))
    a = ap.parse_args(argv)
    from foldtree2 import engine
    from foldtree2.data import StructureDataset, build_store
    from foldtree2.structures import AFDB_RRNPPA
    from foldtree2.train import build_trainer, default_config, make_loader

    tmp = Path(tempfile.mkdtemp())
    build_store(sorted(AFDB_RRNPPA.glob('*.pdb.gz'))[:a.structures], tmp / 'afdb.h5', mode='alphafold', progress=False)
    ds = StructureDataset(tmp / 'afdb.h5')
    cfg = {**default_config(), **REFERENCE, 'batch_size': len(ds), 'output_dir': str(tmp / 'out'), 'progress': False,
           'tensorboard': str(tmp / 'tb')}
    engine.seed_everything(0)
    t = build_trainer(cfg, ds, ds[0], engine.init_distributed())
    batch = next(iter(make_loader(ds, list(range(len(ds))), len(ds))))

    def step():
        "One optimizer step as train_epoch runs it, without the snapshot (read only if the step were skipped)."
        ok, sums = t._group([batch])
        assert t._finish_group(ok, sums, 0, 0, 0.0), 'non-finite step'

    t._snap = t._snapshot()
    step()                                               # warm-up (k-means init of the codebook, allocator)
    steps = []
    for _ in range(a.steps):
        with timed() as s: step()
        steps.append(s.wall)
    step_s = sorted(steps)[len(steps) // 2]
    t._snapshot()
    with timed() as s:
        for _ in range(a.snapshots): snap = t._snapshot()
    snap_s = s.wall / a.snapshots
    del snap
    with timed() as s: path = engine.save_checkpoint(tmp / 'ck.pt', {**t.state_dict(), 'kind': 'bench'})
    res = {'structures': len(ds), 'batch_size': len(ds), 'residues': int(batch['res'].num_nodes),
           'step_s': round(step_s, 2), 'snapshot_fraction_of_step': round(snap_s / step_s, 4),
           'parameters': sum(p.numel() for p in t.model.parameters()), 'optimizers': sorted(t.optimizers),
           'snapshot_ms_per_step': round(snap_s * 1e3, 2), 'checkpoint_write_s': round(s.wall, 3),
           'checkpoint_fraction_of_step': round(s.wall / step_s, 4),
           'checkpoint_mb': round(Path(path).stat().st_size / 2**20, 1), 'threads': torch.get_num_threads(),
           **peak_memory()}
    if len(ds) == 10: res['step_s_batch10'] = res['step_s']          # the key of the earlier result
    write_json(a.out, res)
    return res


if __name__ == '__main__':
    main()
