"""Training throughput of the foldtree2 monodecoder on CPU at the reference configuration.

Reference configuration (issue 3): hidden 100 x3, nheads 16, 40 codes, embedding 128, EMA, concat_positions,
batch 10, 15 A contacts, all loss terms, pLDDT masking (0.3), gradient clipping (1.0), AdamW fp32, on the 32
AlphaFold models of foldtree2/example_data/afdb_rrnppa/. The original implementation: 2.50 M parameters,
190-250 residues/s, 7-18 s per optimizer step at batch 5-10.

Uses the library exactly as the trainer does: foldtree2.data (graphs), foldtree2.decoders.build_model,
foldtree2.optim.build_optimizers, foldtree2.losses.monodecoder_loss. Graphs are built and loaded into memory
first (timed separately as `load_s_per_graph`), so `residues_per_s` is the model's training rate.
Each variant runs in its own subprocess (clean peak RSS). Like the trainer on the CPU, the step runs with
`foldtree2.engine.keep_freed_memory()` (`--malloc default` leaves glibc's malloc as it is, for comparison);
`page_faults_per_step` counts the minor page faults of the timed steps.

    python bench/bench_train.py                 # all variants, writes bench/results/bench_train.json
    python bench/bench_train.py --epochs 1 --variants reference --threads 2
    python bench/bench_train.py --variants reference head_dim8 --threads 2 --out bench/results/bench_train_quiet.json
        # (bench_train_quiet.json: that command on a quiet machine, load average 0.45 at start)

On a loaded machine wall-clock rates mean little; `residues_per_cpu_s_x_threads` of the 1-thread run (residues
per CPU-second) is robust to other processes and is an upper bound for what one core achieves.
"""
import argparse, json, os, subprocess, sys, tempfile, time
from pathlib import Path

from foldtree2.structures import AFDB_RRNPPA

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # the repository root: `bench.common`
from bench.common import command, peak_rss_mb, result_path, timed, write_json

AFDB = AFDB_RRNPPA
REFERENCE = dict(hidden_channels=[100, 100, 100], nheads=16, num_embeddings=40, embedding_dim=128, EMA=True,
                 concat_positions=True, conv='transformer')
VARIANTS = {
    'reference': {},                                # dense evaluation of TransformerConv (default)
    'reference_sparse': {'dense': False},           # the same model evaluated by PyG's scatter-based layer
    'head_dim8': {'head_dim': 8},                   # 16 concatenated heads of 8 channels (not the default)
}


def run_variant(name, epochs, max_steps, profile, threads, malloc='keep'):
    import resource
    import torch
    torch.set_num_threads(threads)
    from foldtree2.engine import keep_freed_memory
    kept = keep_freed_memory() if malloc == 'keep' else False      # what foldtree2.engine.Trainer does on the CPU
    from torch_geometric.loader import DataLoader
    from foldtree2.data import build_store, StructureDataset
    from foldtree2.decoders import build_model
    from foldtree2.optim import build_optimizers
    from foldtree2.losses import monodecoder_loss
    torch.manual_seed(0)
    tmp = Path(tempfile.mkdtemp())
    files = sorted(AFDB.glob('*.pdb.gz'))
    with timed() as t: build_store(files, tmp / 'afdb.h5')
    build_s = t.wall
    ds = StructureDataset(tmp / 'afdb.h5')
    with timed() as t: graphs = [ds[i] for i in range(len(ds))]
    load_s = t.wall
    enc, dec = build_model({**REFERENCE, **VARIANTS[name]}, sample=graphs[0])
    n_params = sum(p.numel() for m in (enc, dec) for p in m.parameters())
    opts = build_optimizers(enc, dec, learning_rate=1e-4)
    params = [p for m in (enc, dec) for p in m.parameters()]
    loader = DataLoader(graphs, batch_size=10, shuffle=True, generator=torch.Generator().manual_seed(0))

    def step(batch):
        total, terms, _ = monodecoder_loss(enc, dec, batch, mask_plddt=True, plddt_threshold=0.3)
        for o in opts.values(): o.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        for o in opts.values(): o.step()
        return total.item()

    rss0 = peak_rss_mb()
    step(next(iter(loader)))                          # warm-up (k-means init of the codebook, allocator)
    res = n_steps = 0; step_times = []; losses = []
    faults0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    with timed() as run_t:
        for ep in range(epochs):
            for batch in loader:
                ts = time.perf_counter()
                losses.append(step(batch))
                step_times.append(time.perf_counter() - ts)
                res += batch['res'].num_nodes; n_steps += 1
                if max_steps and n_steps >= max_steps: break
            if max_steps and n_steps >= max_steps: break
    wall, cpu = run_t.wall, run_t.cpu
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults0
    out = dict(variant=name, config={**REFERENCE, **VARIANTS[name], 'batch_size': 10, 'radius': 15.0,
                                     'mask_plddt': True, 'clip_grad': 1.0, 'optimizer': 'AdamW fp32'},
               parameters=n_params, structures=len(graphs), steps=n_steps, residues=res, wall_s=round(wall, 2),
               residues_per_s=round(res / wall, 1), cpu_s=round(cpu, 2),
               residues_per_cpu_s_x_threads=round(res / cpu * threads, 1),
               s_per_step_mean=round(sum(step_times) / len(step_times), 2),
               s_per_step_max=round(max(step_times), 2), threads=threads, malloc_kept=kept,
               page_faults_per_step=round(faults / n_steps),
               peak_rss_mb=round(peak_rss_mb(), 1),
               rss_before_training_mb=round(rss0, 1), build_store_s=round(build_s, 2),
               load_s_per_graph=round(load_s / len(graphs), 3), first_loss=losses[0], last_loss=losses[-1],
               loadavg_1min_at_end=os.getloadavg()[0])
    if profile:
        from torch.profiler import profile as prof
        batch = next(iter(loader))
        with prof() as p: step(batch)
        rows = sorted(p.key_averages(), key=lambda e: -e.self_cpu_time_total)[:12]
        out['profile_top_ops'] = [(e.key, round(e.self_cpu_time_total / 1e6, 3)) for e in rows]
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--variants', nargs='+', default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument('--epochs', type=int, default=1)
    ap.add_argument('--max-steps', type=int, default=0, help='stop a variant after this many timed steps (0: none)')
    ap.add_argument('--sparse-max-steps', type=int, default=1, help='timed steps for the slow reference_sparse')
    ap.add_argument('--threads', type=int, nargs='+', default=[min(2, os.cpu_count() or 1), 1],
                    help='run every variant once per thread count (1 thread: CPU time is a load-robust measure)')
    ap.add_argument('--profile', action='store_true', help='add the top ops of a profiled step')
    ap.add_argument('--malloc', default='keep', choices=['keep', 'default'],
                    help="'keep': foldtree2.engine.keep_freed_memory, as the trainer does on the CPU; 'default': glibc's own")
    ap.add_argument('--out', default=str(result_path('bench_train')),
                    help='result file (default: %(default)s)')
    ap.add_argument('--_child', default=None, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a._child:
        ms = a.sparse_max_steps if a._child == 'reference_sparse' else a.max_steps
        print(json.dumps(run_variant(a._child, a.epochs, ms, a.profile, a.threads[0], a.malloc)))
        return 0
    results = {'original': {'parameters': 2.50e6, 'residues_per_s': [190, 250], 's_per_step': [7, 18],
                            'note': 'issue 3, measured on this machine by the lead'},
               'loadavg_at_start': os.getloadavg(), 'command': command(argv, __file__), 'runs': []}
    # the PyG-sparse variant needs ~15 GB and minutes per step: run it at the first thread count only
    for v, th in [(v, th) for v in a.variants for th in a.threads if v != 'reference_sparse' or th == a.threads[0]]:
        cmd = [sys.executable, __file__, '--_child', v, '--epochs', str(a.epochs), '--max-steps', str(a.max_steps),
               '--sparse-max-steps', str(a.sparse_max_steps), '--threads', str(th), '--malloc', a.malloc] + (['--profile'] if a.profile else [])
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            print(f'variant {v} failed:\n{p.stderr[-3000:]}', file=sys.stderr)
            results['runs'].append({'variant': v, 'error': p.stderr[-1000:]}); continue
        r = json.loads(p.stdout.strip().splitlines()[-1])
        r['speedup_vs_original'] = [round(r['residues_per_s'] / 250, 1), round(r['residues_per_s'] / 190, 1)]
        results['runs'].append(r)
        print(json.dumps({k: r[k] for k in ('variant', 'threads', 'parameters', 'residues_per_s', 'cpu_s',
                                             'residues_per_cpu_s_x_threads', 's_per_step_mean', 'peak_rss_mb', 'page_faults_per_step',
                                             'speedup_vs_original', 'loadavg_1min_at_end')}), flush=True)
    write_json(a.out, results)
    return 0


if __name__ == '__main__':
    sys.exit(main())
