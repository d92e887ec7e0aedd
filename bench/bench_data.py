"""Benchmark of the structure → HDF5 → graph pipeline (foldtree2.data) on the 32 AlphaFold models of
foldtree2/example_data/afdb_rrnppa/: build speed (structures/s, one process and all cores), bytes stored per residue,
and graphs/s read back at batch 10 with 15 Å contacts (features are derived at load time) through the package's
`GraphLoader` (compact graphs, one collate + feature expansion per batch) and, for comparison, through
torch-geometric's DataLoader over full per-graph `HeteroData`. Reference: the original foldtree2 builder, measured on the same 32 models: 2.2
structures/s per process, 6,578 bytes/residue, 114 graphs/s at batch 10.

    python bench/bench_data.py [--repeats 3] [--epochs 15]

Writes bench/results/bench_data.json and prints it."""
import argparse
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path

import h5py
import torch
from torch_geometric.loader import DataLoader

from foldtree2.data import GraphLoader, StructureDataset, build_store
from foldtree2.structures import AFDB_RRNPPA, UPSTREAM_H5

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # the repository root: `bench.common`
from bench.common import command, result_path, timed, write_json

AFDB, UPSTREAM = AFDB_RRNPPA, UPSTREAM_H5
ORIGINAL = {'structures_per_s_per_process': 2.2, 'bytes_per_residue_15A': 6578, 'graphs_per_s_batch10': 114}


def build_rate(files, workers, repeats, tmp):
    "structures/s (wall clock) and, for one process, structures per CPU-second of that process."
    rates, cpu = [], []
    for r in range(repeats):
        out = Path(tmp) / f'build_w{workers}_{r}.h5'
        with timed() as t: rep = build_store(files, out, workers=workers, progress=False)
        dt, dc = t.wall, t.cpu
        assert rep.ok and rep.chains == len(files), rep.summary()
        rates.append(len(files) / dt); cpu.append(len(files) / dc)
    return max(rates), statistics.median(rates), statistics.median(cpu), out, rep.residues


def make_loader(path, workers, radius=15.0, ids=None, pyg=False):
    """The package's GraphLoader (compact graphs, one collate + feature expansion per batch) or, with `pyg=True`,
    torch-geometric's DataLoader over the dataset's full per-graph HeteroData; batch 10, shuffled."""
    ds = StructureDataset(path, radius=radius, ids=ids)
    kw = dict(batch_size=10, shuffle=True, num_workers=workers)
    if workers: kw['persistent_workers'] = True
    return DataLoader(ds, **kw) if pyg else GraphLoader(ds, **kw)


def loader_rates(loaders: dict, epochs: int) -> dict:
    """graphs/s of each loader, epochs interleaved (loader A epoch 1, loader B epoch 1, ..., A epoch 2, ...) so that
    all see the same machine conditions; one uncounted warm-up epoch each (caches, worker start)."""
    rates = {k: [] for k in loaders}; cpu = {k: [] for k in loaders}
    for e in range(epochs + 1):
        for k, dl in loaders.items():
            n = 0
            with timed() as t:
                for b in dl: n += b.num_graphs
            if e: rates[k].append(n / t.wall); cpu[k].append(n / t.cpu)
    return {k: {'best': round(max(v), 1), 'median': round(statistics.median(v), 1),
                'per_cpu_second_of_main_process': round(statistics.median(cpu[k]), 1)} for k, v in rates.items()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--repeats', type=int, default=3)
    ap.add_argument('--epochs', type=int, default=15)
    ap.add_argument('--sharing', default=None, choices=['file_descriptor', 'file_system'],
                    help="torch.multiprocessing sharing strategy for DataLoader workers (default: torch's)")
    ap.add_argument('--out', default=str(result_path('bench_data')))
    a = ap.parse_args(argv)
    files = sorted(AFDB.glob('*.pdb.gz'))
    ncpu = os.cpu_count()
    default_threads = torch.get_num_threads()
    torch.set_num_threads(1)                 # building: one thread per process
    res = {'machine': f'{platform.machine()} {ncpu} cores, load average at start {os.getloadavg()[0]:.2f}',
           'structures': len(files), 'original_foldtree2': ORIGINAL}
    with tempfile.TemporaryDirectory() as tmp:
        best1, med1, cpu1, out, nres = build_rate(files, 1, a.repeats, tmp)
        bestn, medn, _, _, _ = build_rate(files, ncpu, a.repeats, tmp)
        res['residues'] = nres
        res['build_structures_per_s_1_process'] = {'best': round(best1, 1), 'median': round(med1, 1),
                                                   'per_cpu_second': round(cpu1, 1)}
        res[f'build_structures_per_s_{ncpu}_processes'] = {'best': round(bestn, 1), 'median': round(medn, 1)}
        size = out.stat().st_size
        with h5py.File(out, 'r') as f:
            stored = {k: f[f'residues/{k}'].id.get_storage_size() for k in f['residues']}
        res['bytes_per_residue'] = round(size / nres, 1)
        res['bytes_per_residue_by_dataset'] = {k: round(v / nres, 1) for k, v in stored.items()}
        with h5py.File(UPSTREAM, 'r') as f:
            up_res = sum(f[f'structs/{k}/node/coords/x'].shape[0] for k in f['structs'])
        res['upstream_file_bytes_per_residue'] = round(UPSTREAM.stat().st_size / up_res, 1)
        if a.sharing: torch.multiprocessing.set_sharing_strategy(a.sharing)
        res['torch_sharing_strategy'] = torch.multiprocessing.get_sharing_strategy()
        torch.set_num_threads(default_threads)   # loading: torch's default, as a user's training process has
        res['loader_torch_threads'] = default_threads
        with h5py.File(UPSTREAM, 'r') as f: up_ids = list(f['structs'].keys()) * 16   # its 2 structures x 16
        loaders = {'loader_graphs_per_s_batch10_15A_workers0': make_loader(out, 0),
                   f'loader_graphs_per_s_batch10_15A_workers{ncpu}': make_loader(out, ncpu),
                   'pyg_dataloader_full_graphs_per_s_batch10_15A_workers0': make_loader(out, 0, pyg=True),
                   # same-conditions reference: the original layout's precomputed graphs, no feature computation
                   'upstream_layout_precomputed_loader_graphs_per_s_batch10_workers0': make_loader(UPSTREAM, 0, ids=up_ids, pyg=True)}
        res.update(loader_rates(loaders, a.epochs))
        res['loader_epochs'] = a.epochs
        del loaders
    res['ratios_vs_original'] = {
        'build_per_process': round(res['build_structures_per_s_1_process']['median'] / ORIGINAL['structures_per_s_per_process'], 1),
        'bytes_per_residue': round(res['bytes_per_residue'] / ORIGINAL['bytes_per_residue_15A'], 4),
        'loader_best_config': round(max(res[f'loader_graphs_per_s_batch10_15A_workers{w}']['median'] for w in (0, ncpu))
                                    / ORIGINAL['graphs_per_s_batch10'], 2),
        'loader_vs_upstream_layout_same_run': round(res['loader_graphs_per_s_batch10_15A_workers0']['median']
                                                    / res['upstream_layout_precomputed_loader_graphs_per_s_batch10_workers0']['median'], 2)}
    res['load_average_at_end'] = round(os.getloadavg()[0], 2)
    res['note'] = ('wall-clock rates depend on what else runs on the machine (see the load averages); loaders are timed '
                   'with interleaved epochs so that they share conditions; per_cpu_second divides by the CPU time of the '
                   'measuring process (with 2 torch threads it counts both)')
    res['command'] = command(argv, __file__)
    write_json(a.out, res)


if __name__ == '__main__':
    main()
