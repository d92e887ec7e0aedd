"""The emprot trainer on the shared engine (`Trainer.train_epoch`) against the loop it replaced, in one process.

Issue 11 asks that the engine train no slower than each trainer's own loop did. Across processes this 2-core
machine is too noisy to see a few per cent (one configuration ranged from 52 to 98 ms per step over ten processes),
so this script times both loops in one process on one trainer, epoch by epoch, alternating which runs first.
`old_epoch` below is EMPROTTrainer's `_train_epoch` of commit 7b54617 (the last commit before the engine),
transcribed line by line with the trainer's present attributes; it exists only here, as the reference to measure
against. Both loops run the same model, optimizer and batches (real AdK windows, `bench_emprot.adk_batches`).

It also counts minor page faults per step. That is what the gap was: with glibc's default malloc the engine's
order of frees let malloc hand ~12 MB back to the kernel after every step at 214 residues, and the next step
faulted it in again. `foldtree2.engine.keep_freed_memory` (called by the trainer on the CPU) stops that. Each size
runs in fresh processes with `FOLDTREE2_MALLOC=default` (glibc's own behaviour: the old loop as it shipped) and
with the trainer's setting, alternating, so the shipped before/after pair is old loop (default) against engine
(kept), and the in-process ratio shows each mode's loop-against-loop cost.

    python bench/engine_vs_old_loop.py [--steps 30] [--repeats 10] [--processes 3] [--threads 1]

Writes bench/results/engine_before_after/engine_vs_old_loop.json and prints it."""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # the repository root: `bench.common`
from bench.bench_emprot import SIZES, adk_batches, adk_store
from bench.common import command, machine, write_json

OUT = Path(__file__).resolve().parent / 'results' / 'engine_before_after' / 'engine_vs_old_loop.json'


def child(n_res: int, steps: int, repeats: int, store_path: str, threads: int) -> dict:
    "In a fresh process: alternate the engine's epoch and the old loop's epoch on one trainer, `repeats` times."
    import torch
    if threads: torch.set_num_threads(threads)
    from emprot.evaluate import token_accuracy_counts
    from emprot.tokens import TokenStore
    from emprot.training import _COUNT_KEYS, EMPROTTrainer, masked_cross_entropy
    from foldtree2 import engine
    store = TokenStore(store_path)
    batches = adk_batches(store_path, n_res, steps)
    cfg = {'token_store': store_path, 'num_clusters': store.n_clusters, 'max_grad_norm': 1.0, 'device': 'cpu', **SIZES}
    tr = EMPROTTrainer(cfg)

    def old_epoch(loader):           # 7b54617 emprot/training.py `_train_epoch`, grad_accum_steps 1, one process
        sums = tr.zero_sums()
        tr.optimizer.zero_grad(set_to_none=True)
        for batch in loader:
            batch = tr.to_device(batch)
            with torch.enable_grad():
                with tr.amp.autocast():
                    out = tr.net(batch['input_cluster_ids'], batch['times'], batch['sequence_lengths'], batch['history_mask'])
                    loss = masked_cross_entropy(out['cluster_logits'], batch['future_cluster_ids'],
                                                batch['future_step_mask'], batch['residue_mask'])
                tr.scaler.scale(loss / 1).backward()
            counts = token_accuracy_counts(out['cluster_logits'].detach().argmax(-1), batch)   # `_accumulate`
            n = counts['total'].sum().double().cpu()
            sums['loss'] += torch.stack([loss.detach().double().cpu() * n, n])
            for k in _COUNT_KEYS: sums[k] += counts[k].detach().double().cpu()
            engine.optimizer_step([tr.optimizer], tr.scaler, tr.model.parameters(), cfg['max_grad_norm'],
                                  [tr.scheduler] if tr.scheduler else [])
            tr.global_step += 1
        return sums

    def timed_epoch(f) -> tuple[float, float]:
        r0, t0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.perf_counter()
        f(batches)
        return (time.perf_counter() - t0) / steps, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - r0) / steps

    tr.train_epoch(batches[:3]); old_epoch(batches[:3])           # warm-up
    res = {'engine': [], 'old': []}
    for r in range(repeats):
        order = [('engine', tr.train_epoch), ('old', old_epoch)]
        for name, f in (order if r % 2 == 0 else order[::-1]): res[name].append(timed_epoch(f))
    return {'engine_s': [t for t, _ in res['engine']], 'old_s': [t for t, _ in res['old']],
            'engine_faults': statistics.median(f for _, f in res['engine']),
            'old_faults': statistics.median(f for _, f in res['old']),
            'ratios': [e / o for (e, _), (o, _) in zip(res['engine'], res['old'])],
            'threads': torch.get_num_threads(), 'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--steps', type=int, default=30)
    ap.add_argument('--repeats', type=int, default=10)
    ap.add_argument('--processes', type=int, default=3, help='fresh processes per size and malloc mode')
    ap.add_argument('--sizes', type=int, nargs='+', default=[214, 64])
    ap.add_argument('--threads', type=int, default=1, help='torch threads (1: least noise on a shared 2-core machine)')
    ap.add_argument('--out', default=str(OUT))
    ap.add_argument('--_child', type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument('--_store', default=None, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a._child is not None:
        print(json.dumps(child(a._child, a.steps, a.repeats, a._store, a.threads))); return
    store = adk_store(tempfile.mkdtemp())
    out = {'command': command(argv, __file__), 'machine': machine(), 'load_average_at_start': os.getloadavg(),
           'steps': a.steps, 'repeats': a.repeats, 'processes': a.processes, 'threads': a.threads, 'results': {}}
    for n in a.sizes:
        runs = {'default': [], 'kept': []}
        for p in range(a.processes):
            for mode in (('default', 'kept') if p % 2 == 0 else ('kept', 'default')):
                env = {**os.environ, 'FOLDTREE2_MALLOC': 'default' if mode == 'default' else 'keep'}
                r = subprocess.run([sys.executable, __file__, '--_child', str(n), '--_store', str(store), '--steps',
                                    str(a.steps), '--repeats', str(a.repeats), '--threads', str(a.threads)],
                                   capture_output=True, text=True, env=env)
                if r.returncode: raise SystemExit(f'N={n} ({mode}) failed:\n{r.stderr[-3000:]}')
                runs[mode].append(json.loads(r.stdout.strip().splitlines()[-1]))
        med = lambda mode, key: statistics.median(x for run in runs[mode] for x in run[key])
        out['results'][str(n)] = {
            'engine_over_old_in_process': {m: statistics.median(x for run in runs[m] for x in run['ratios']) for m in runs},
            'step_ms': {m: {'engine': 1e3 * med(m, 'engine_s'), 'old': 1e3 * med(m, 'old_s')} for m in runs},
            'page_faults_per_step': {m: {'engine': statistics.median(r['engine_faults'] for r in runs[m]),
                                         'old': statistics.median(r['old_faults'] for r in runs[m])} for m in runs},
            'shipped_after_over_before': med('kept', 'engine_s') / med('default', 'old_s'),
            'peak_rss_mb': {m: [round(r['peak_rss_mb'], 1) for r in runs[m]] for m in runs},
            'runs': runs}
    out['load_average_at_end'] = os.getloadavg()
    write_json(a.out, out, echo=False)
    print(json.dumps({n: {k: v for k, v in r.items() if k != 'runs'} for n, r in out['results'].items()}, indent=1))


if __name__ == '__main__':
    main()
