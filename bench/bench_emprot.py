"""Training throughput of emprot's ProteinTransformerClassificationOnly on CPU: target tokens per second
(B·F·N future tokens per optimizer step / step time) and peak memory, for d_embed 128, 4 heads, 2 layers,
K=5 history frames, F=3 future frames, C=36 clusters, batch 8, on real AdK windows (mdanalysistests, N=214
residues) and on the same windows cut to their first 64 residues.

One step = forward + masked cross-entropy + backward + gradient clipping + AdamW step, run by the trainer's own
`train_epoch` (so metric bookkeeping is included) over a fixed list of batches; the bare model step
(forward + CE + backward + AdamW) is timed too, and the trainer's task step without the loop (its `loss`, metric
counts included, + clipping + AdamW): trainer / task step is the loop's cost, task step / bare the task's. The
three are timed interleaved in one process, repeat by repeat. Each configuration runs in a fresh process so that its peak RSS
(ru_maxrss) is its own; `rss_increase_mb` is the peak minus the RSS after imports and data loading. Wall time
and process CPU time are both recorded: on a busy machine wall time is inflated by other processes (and two
OpenMP threads competing for cores can be several times slower than one), CPU time much less so.

Reference (the original implementation, same sizes, this machine): ~3,450 target tokens/s at N=214 (1.49 s per
step) and ~7,700 at N=64. Target: at least 10x.

    python bench/bench_emprot.py [--steps 20] [--repeats 3] [--threads 0]

Writes bench/results/bench_emprot.json and prints it. Timings are sensitive to other load on the machine: run it
on a quiet machine."""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # the repository root: `bench.common`
from bench.common import current_rss_mb, peak_rss_mb, result_path, timed, write_json

ORIGINAL = {'214': {'tokens_per_s': 3450, 'seconds_per_step': 1.49}, '64': {'tokens_per_s': 7700}}
SIZES = dict(d_embed=128, num_heads=4, num_layers=2, history_frames=5, future_horizon=3, batch_size=8)


def adk_batches(store_path: str, n_res: int, steps: int) -> list:
    "`steps` seeded random batches of real AdK windows (sizes of SIZES), cut to their first `n_res` residues."
    import torch
    from emprot.data import TokenWindowDataset, collate_windows
    from emprot.tokens import TokenStore
    store = TokenStore(store_path)
    ds = TokenWindowDataset(store, [('adk_dims', 0, store.shape('adk_dims')[0]),
                                    ('adk_gbis_tmd', 0, store.shape('adk_gbis_tmd')[0])],
                            SIZES['history_frames'], SIZES['future_horizon'])
    B = SIZES['batch_size']
    g = torch.Generator().manual_seed(0)
    batches = []
    for _ in range(steps):
        idx = torch.randperm(len(ds), generator=g)[:B].tolist()
        b = collate_windows([ds[i] for i in idx])
        for k in ('input_cluster_ids', 'history_mask'):
            b[k] = b[k][:, :, :n_res].contiguous()
        for k in ('future_cluster_ids', 'change_mask'):
            b[k] = b[k][:, :, :n_res].contiguous()
        b['residue_mask'] = b['residue_mask'][:, :n_res].contiguous()
        b['run_length'] = b['run_length'][:, :n_res].contiguous()
        b['sequence_lengths'] = b['sequence_lengths'].clamp(max=n_res)
        batches.append(b)
    return batches


def adk_store(folder) -> Path:
    "The AdK token store of mdanalysistests' trajectories (36 clusters), written into `folder`."
    from emprot.tokens import ADK_FIT_ON, adk_jobs, tokenize_trajectories
    store = Path(folder) / 'adk.h5'
    tokenize_trajectories(adk_jobs(), store, n_clusters=36, fit_on=ADK_FIT_ON)
    return store


def run_one(n_res: int, steps: int, repeats: int, store_path: str, threads: int = 0) -> dict:
    "Runs inside a fresh process: times the trainer's train_epoch and the bare step on `steps` real batches."
    import torch
    if threads:
        torch.set_num_threads(threads)
    from emprot.tokens import TokenStore
    from emprot.training import EMPROTTrainer, masked_cross_entropy
    from foldtree2 import engine

    store = TokenStore(store_path)
    batches = adk_batches(store_path, n_res, steps)
    B = SIZES['batch_size']
    F, N = batches[0]['future_cluster_ids'].shape[1:]
    targets = B * F * N
    rss_before = current_rss_mb()
    cfg = {'token_store': store_path, 'num_clusters': store.n_clusters, 'max_grad_norm': 1.0, 'device': 'cpu',
           **{k: v for k, v in SIZES.items()}}
    trainer = EMPROTTrainer(cfg)
    model, opt = trainer.model, trainer.optimizer
    def bare_step(b):
        out = model(b['input_cluster_ids'], b['times'], b['sequence_lengths'], b['history_mask'])
        loss = masked_cross_entropy(out['cluster_logits'], b['future_cluster_ids'], b['future_step_mask'],
                                    b['residue_mask'])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    def task_step(b):               # the trainer's own loss (metric counts included) + clipping + AdamW, no loop
        total, _ = trainer.loss(trainer.net, b)
        total.backward()
        engine.optimizer_step([opt], trainer.scaler, trainer.params, cfg['max_grad_norm'])
    trainer.train_epoch(batches[:3])                           # warm-up
    for b in batches[:3]: bare_step(b); task_step(b)
    epoch_times, epoch_cpu, bare, bare_cpu, task = [], [], [], [], []
    for _ in range(repeats):                                   # interleaved: drift hits all three alike
        with timed() as t: trainer.train_epoch(batches)
        epoch_times.append(t.wall / steps)
        epoch_cpu.append(t.cpu / steps)
        for b in batches:
            with timed() as t: bare_step(b)
            bare.append(t.wall)
            bare_cpu.append(t.cpu)
        with timed() as t:
            for b in batches: task_step(b)
        task.append(t.wall / steps)
    step_med = statistics.median(epoch_times)
    return {'n_residues': int(N), 'batch_size': B, 'targets_per_step': int(targets),
            'trainer_seconds_per_step_median': step_med, 'trainer_seconds_per_step_min': min(epoch_times),
            'trainer_tokens_per_s': targets / step_med,
            'trainer_cpu_seconds_per_step_median': statistics.median(epoch_cpu),
            'trainer_tokens_per_cpu_s': targets / statistics.median(epoch_cpu),
            'bare_seconds_per_step_median': statistics.median(bare), 'bare_seconds_per_step_min': min(bare),
            'bare_tokens_per_s': targets / statistics.median(bare),
            'bare_cpu_seconds_per_step_median': statistics.median(bare_cpu),
            'task_step_seconds_per_step_median': statistics.median(task), 'task_step_tokens_per_s': targets / statistics.median(task),
            'peak_rss_mb': peak_rss_mb(), 'rss_increase_mb': peak_rss_mb() - rss_before,
            'parameters': sum(p.numel() for p in model.parameters()), 'dropout': trainer.config['dropout'],
            'threads': torch.get_num_threads()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--steps', type=int, default=20)
    ap.add_argument('--repeats', type=int, default=3)
    ap.add_argument('--sizes', type=int, nargs='+', default=[214, 64])
    ap.add_argument('--threads', type=int, default=0, help='torch threads (0: torch default)')
    ap.add_argument('--out', default=str(result_path('bench_emprot')))
    ap.add_argument('--_child', type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument('--_store', default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._child is not None:
        print(json.dumps(run_one(args._child, args.steps, args.repeats, args._store, args.threads)))
        return
    import torch
    store = adk_store(tempfile.mkdtemp())
    results, load_start = {}, os.getloadavg()
    for n in args.sizes:
        r = subprocess.run([sys.executable, __file__, '--_child', str(n), '--_store', str(store),
                            '--steps', str(args.steps), '--repeats', str(args.repeats), '--threads', str(args.threads)],
                           capture_output=True, text=True, check=False)
        if r.returncode != 0:
            raise SystemExit(f'benchmark at N={n} failed:\n{r.stderr[-3000:]}')
        res = json.loads(r.stdout.strip().splitlines()[-1])
        ref = ORIGINAL.get(str(n))
        if ref:
            res['original_tokens_per_s'] = ref['tokens_per_s']
            res['speedup_vs_original'] = res['trainer_tokens_per_s'] / ref['tokens_per_s']
        results[str(n)] = res
    out = {'benchmark': 'emprot training throughput (CPU)', 'sizes': SIZES, 'num_clusters': 36,
           'torch': torch.__version__, 'machine': platform.machine(), 'cpu_count': os.cpu_count(),
           'load_average_at_start': load_start, 'load_average_at_end': os.getloadavg(), 'steps': args.steps, 'repeats': args.repeats, 'results': results}
    write_json(args.out, out)


if __name__ == '__main__':
    main()
