"""GPU check (about 5 minutes on one CUDA GPU; not used by CI or the tests): both trainers for a few hundred
optimizer steps in fp32, bf16 autocast and fp16 autocast + GradScaler, plus the GPU's matmul throughput.

* foldtree2: `foldtree2.train.build_trainer` (the engine's `Trainer` with the monodecoder task, as
  `foldtree2.train.train` builds it) at the reference configuration (hidden 100 x3, 16 heads, 40 codes, embedding
  128, EMA, concat_positions, pLDDT masking, batch 10) on the 32 AlphaFold models `foldtree2.structures.AFDB_RRNPPA`
  (`foldtree2.data.build_store`); reports residues/s.
* emprot: `emprot.training.EMPROTTrainer` (d_embed 128, 4 heads, 2 layers, K=5, F=3, C=36, batch 8) on AdK
  tokens built as bench/bench_emprot.py builds them (N=214 residues); reports target tokens/s (B*F*N per step).

Precision is set as the engine sets it: `foldtree2.engine.amp_policy(device, enabled, dtype=...)` gives the
autocast dtype and whether a GradScaler is used; the trainers' `amp`/`scaler` are replaced by that policy's
(the trainers' own options, `mixed_precision` / `use_amp`, only switch AMP on or off and pick bf16 where the GPU
has it). Every run starts from the same seed, weights and batches. The check fails (exit 1) if any loss is not
finite, or if the mean loss over all timed steps, or the final loss (mean of the last 10% of steps), of bf16 or
fp16 differs from fp32's by more than --rtol / --rtol-final (relative). Also reported: peak GPU memory per run
(torch.cuda.max_memory_allocated) and the TFLOP/s of a timed large torch.matmul in fp32, tf32, bf16 and fp16.

    python bench/gpu_check.py                                  # CUDA, 300 steps each; writes bench/results/gpu_check.json
    python bench/gpu_check.py --device cpu --steps 3 --structures 6 --batch-size 3 --out /tmp/gpu_check.json   # smoke test

On CPU fp16 autocast is skipped (no GradScaler path there) and the matmul sizes are small; the figures mean nothing,
the run only shows that the script works end to end. Batches are collated and moved to the device once, before
the runs, so the rates are those of the optimizer steps (no data loading or host-to-device copies).
"""
import argparse
import math
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # the repository root: `bench.common`
from bench.common import peak_memory, result_path, timed, write_json

FOLDTREE2 = dict(hidden_channels=[100, 100, 100], nheads=16, num_embeddings=40, embedding_dim=128, EMA=True,
                 concat_positions=True, mask_plddt=True, learning_rate=1e-3, lr_schedule='none', val_fraction=0.0,
                 mixed_precision=False, progress=False)
EMPROT = dict(d_embed=128, num_heads=4, num_layers=2, history_frames=5, future_horizon=3, batch_size=8,
              max_grad_norm=1.0, learning_rate=1e-3, use_amp=False)
PRECISIONS = ('fp32', 'bf16', 'fp16')


def sync(device):
    if device.type == 'cuda': torch.cuda.synchronize(device)


def policy(device, precision):
    "The engine's AmpPolicy for `precision`, or None where this device cannot run it (fp16 on CPU)."
    from foldtree2.engine import amp_policy
    if precision == 'fp32': return amp_policy(device, enabled=False)
    if device.type == 'cpu':
        return amp_policy(device, enabled=True, cpu_bf16=True) if precision == 'bf16' else None
    return amp_policy(device, enabled=True, dtype=precision)


def timed_run(trainer, warmup, batches, device, precision) -> dict:
    "Set the trainer's precision, run `warmup` then `batches` (one optimizer step each) -> losses, seconds, memory."
    pol = policy(device, precision)
    trainer.amp, trainer.scaler = pol, pol.make_scaler()
    losses = []
    trainer.on_step = lambda info: losses.append(float(info['loss']))
    trainer.train_epoch(warmup)
    losses.clear()
    if device.type == 'cuda': torch.cuda.reset_peak_memory_stats(device)
    sync(device)
    with timed() as t:
        trainer.train_epoch(batches)
        sync(device)
    out = {'amp': pol.reason, 'grad_scaler': pol.use_scaler, 'steps': len(losses), 'skipped_steps': len(batches) - len(losses),
           'seconds': round(t.wall, 3), 'first_loss': losses[0] if losses else None, 'losses': losses}
    if device.type == 'cuda': out['peak_gpu_mb'] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    else: out['peak_rss_mb_process'] = peak_memory()['peak_rss_mb']
    return out


def run_precisions(label: str, a, device, make_trainer, warmup, timed_b, rate_key: str, amount: int, unit: str) -> dict:
    "Each precision of `a.precisions` on a fresh trainer `make_trainer(prec)`: the timed run and its rate, or why not."
    runs = {}
    for prec in a.precisions:
        if policy(device, prec) is None:
            print(f'{label} {prec}: skipped on {device.type} (fp16 autocast + GradScaler needs CUDA)', flush=True)
            runs[prec] = {'skipped': f'fp16 autocast + GradScaler needs CUDA, device is {device.type}'}; continue
        t = make_trainer(prec)
        try: r = timed_run(t, warmup, timed_b, device, prec)
        except Exception as e:                      # a precision that crashes is a failure of the check, not of the script
            runs[prec] = {'error': f'{type(e).__name__}: {e}'[:2000]}
            print(f'{label} {prec}: FAILED with {type(e).__name__}: {str(e)[:300]}', flush=True); del t; continue
        r['parameters'] = sum(p.numel() for p in t.model.parameters())
        r[rate_key] = round(amount / r['seconds'], 1)
        runs[prec] = r
        print(f"{label} {prec}: {r['steps']} steps, {r[rate_key]} {unit}, loss {r['first_loss']:.4f} -> "
              f"{r['losses'][-1]:.4f}, {r.get('peak_gpu_mb', r.get('peak_rss_mb_process'))} MB; {r['amp']}", flush=True)
        del t
        if device.type == 'cuda': torch.cuda.empty_cache()
    return runs


def foldtree2_runs(a, device, tmp) -> dict:
    from foldtree2 import engine
    from foldtree2.data import StructureDataset, build_store
    from foldtree2.structures import AFDB_RRNPPA
    from foldtree2.train import build_trainer, default_config, epoch_order, make_loader
    files = sorted(AFDB_RRNPPA.glob('*.pdb.gz'))[:a.structures]
    build_store(files, tmp / 'afdb.h5', mode='alphafold', progress=False)
    ds = StructureDataset(tmp / 'afdb.h5')
    env = engine.init_distributed(device=device)
    per_epoch = math.ceil(len(ds) / a.batch_size)
    batches, epoch = [], 0
    while len(batches) < a.steps + 1:          # the loop's own epoch orders, collated once (same batches every run)
        batches += list(make_loader(ds, epoch_order(list(range(len(ds))), epoch, 0, env), a.batch_size)); epoch += 1
    batches = [b.to(device) for b in batches[:a.steps + 1]]      # on the device once: the runs time the steps
    warmup, timed_b = batches[:1], batches[1:a.steps + 1]
    residues = sum(int(b['res'].num_nodes) for b in timed_b)
    out = {'structures': len(ds), 'batch_size': a.batch_size, 'batches_per_epoch': per_epoch,
           'config': {k: v for k, v in FOLDTREE2.items() if k != 'progress'}, 'runs': {}}
    def make(prec):
        engine.seed_everything(0)
        cfg = {**default_config(), **FOLDTREE2, 'batch_size': a.batch_size, 'output_dir': str(tmp / f'ft2_{prec}'),
               'tensorboard': str(tmp / f'ft2_{prec}_tb')}
        return build_trainer(cfg, ds, ds[0], env)
    out['runs'] = run_precisions('foldtree2', a, device, make, warmup, timed_b, 'residues_per_s', residues, 'residues/s')
    return out


def emprot_runs(a, device, tmp) -> dict:
    from emprot.data import TokenWindowDataset, collate_windows
    from emprot.tokens import ADK_FIT_ON, TokenStore, adk_jobs, tokenize_trajectories
    from emprot.training import EMPROTTrainer
    store_path = tmp / 'adk.h5'
    tokenize_trajectories(adk_jobs(), store_path, n_clusters=36, fit_on=ADK_FIT_ON)
    store = TokenStore(store_path)
    ds = TokenWindowDataset(store, [('adk_dims', 0, store.shape('adk_dims')[0]),
                                    ('adk_gbis_tmd', 0, store.shape('adk_gbis_tmd')[0])],
                            EMPROT['history_frames'], EMPROT['future_horizon'])
    B, g = EMPROT['batch_size'], torch.Generator().manual_seed(0)
    batches = [collate_windows([ds[i] for i in torch.randperm(len(ds), generator=g)[:B].tolist()])
               for _ in range(a.steps + 3)]
    batches = [{k: v.to(device) if torch.is_tensor(v) else v for k, v in b.items()} for b in batches]
    warmup, timed_b = batches[:3], batches[3:]
    targets = sum(int(b['future_cluster_ids'].numel()) for b in timed_b)
    out = {'config': EMPROT, 'num_clusters': store.n_clusters, 'n_residues': int(timed_b[0]['future_cluster_ids'].shape[2]),
           'runs': {}}
    make = lambda prec: EMPROTTrainer({**EMPROT, 'token_store': str(store_path), 'num_clusters': store.n_clusters,
                                       'device': str(device), 'seed': 0})
    out['runs'] = run_precisions('emprot', a, device, make, warmup, timed_b, 'target_tokens_per_s', targets, 'target tokens/s')
    return out


def matmul_tflops(device, n: int, reps: int) -> dict:
    "TFLOP/s (2 n^3 per product) of a timed n x n torch.matmul per dtype (best of `reps` after a warm-up)."
    out = {'n': n}
    kinds = [('fp32', torch.float32, False), ('tf32', torch.float32, True), ('bf16', torch.bfloat16, False),
             ('fp16', torch.float16, False)]
    if device.type != 'cuda': kinds = [k for k in kinds if k[0] in ('fp32', 'bf16')]
    old = torch.backends.cuda.matmul.allow_tf32
    try:
        for name, dt, tf32 in kinds:
            torch.backends.cuda.matmul.allow_tf32 = tf32
            x, y = torch.randn(n, n, device=device, dtype=dt), torch.randn(n, n, device=device, dtype=dt)
            torch.matmul(x, y); sync(device)
            best = math.inf
            for _ in range(reps):
                with timed() as t:
                    for _ in range(5): torch.matmul(x, y)
                    sync(device)
                best = min(best, t.wall / 5)
            out[name] = round(2 * n ** 3 / best / 1e12, 2)
            del x, y
    finally:
        torch.backends.cuda.matmul.allow_tf32 = old
    return out


def compare(runs: dict, rtol: float, rtol_final: float) -> list:
    "Failures: non-finite losses, and bf16/fp16 mean or final loss further than the tolerances from fp32's."
    bad, tail = [], lambda l: l[-max(1, len(l) // 10):]
    mean = lambda l: sum(l) / len(l)
    for prec, r in runs.items():
        if 'skipped' in r: continue
        if 'error' in r: bad.append(f'{prec}: the run raised {r["error"][:300]}'); continue
        if not r['losses'] or not all(math.isfinite(x) for x in r['losses']) or r['skipped_steps']:
            bad.append(f'{prec}: non-finite loss ({r["skipped_steps"]} optimizer steps skipped)')
        r['mean_loss'], r['final_loss'] = (mean(r['losses']), mean(tail(r['losses']))) if r['losses'] else (None, None)
    ref = runs.get('fp32')
    if ref is None or ref.get('mean_loss') is None: return bad + ['no fp32 run to compare with']
    for prec, r in runs.items():
        if prec == 'fp32' or r.get('mean_loss') is None: continue
        for key, tol in (('mean_loss', rtol), ('final_loss', rtol_final)):
            d = abs(r[key] - ref[key]) / abs(ref[key])
            r[f'{key}_rel_diff_vs_fp32'] = round(d, 5)
            if not d <= tol: bad.append(f'{prec}: {key} {r[key]:.4f} vs fp32 {ref[key]:.4f} (relative {d:.4f} > {tol})')
    return bad


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--device', default='cuda')
    ap.add_argument('--steps', type=int, default=300, help='timed optimizer steps per trainer and precision')
    ap.add_argument('--precisions', nargs='+', default=list(PRECISIONS), choices=PRECISIONS)
    ap.add_argument('--structures', type=int, default=32, help='AlphaFold models for foldtree2 (of 32)')
    ap.add_argument('--batch-size', type=int, default=10, help='foldtree2 batch size')
    ap.add_argument('--rtol', type=float, default=0.05, help='relative tolerance on the mean loss vs fp32')
    ap.add_argument('--rtol-final', type=float, default=0.10, help='relative tolerance on the final loss vs fp32')
    ap.add_argument('--matmul-n', type=int, default=0, help='matmul size (0: 8192 on CUDA, 512 on CPU)')
    ap.add_argument('--skip', nargs='*', default=[], choices=['foldtree2', 'emprot', 'matmul'])
    ap.add_argument('--out', default=str(result_path('gpu_check')))
    a = ap.parse_args(argv)
    device = torch.device(a.device)
    if device.type == 'cuda' and not torch.cuda.is_available(): sys.exit('--device cuda: CUDA is not available')
    if device.type == 'cuda': torch.cuda.set_device(device)
    if 'fp32' not in a.precisions: a.precisions = ['fp32', *a.precisions]
    tmp = Path(tempfile.mkdtemp())
    res = {'device': str(device), 'steps': a.steps, 'precisions': a.precisions,
           'tolerance': {'mean_loss_rtol': a.rtol, 'final_loss_rtol': a.rtol_final,
                         'final_loss': 'mean of the last 10% of the timed steps'},
           'tf32_matmul_in_fp32_runs': torch.backends.cuda.matmul.allow_tf32,
           'cudnn_tf32_in_fp32_runs': torch.backends.cudnn.allow_tf32}
    failures = []
    for name, fn in (('foldtree2', foldtree2_runs), ('emprot', emprot_runs)):
        if name in a.skip: continue
        res[name] = fn(a, device, tmp)
        failures += [f'{name} {f}' for f in compare(res[name]['runs'], a.rtol, a.rtol_final)]
    if 'matmul' not in a.skip:
        n = a.matmul_n or (8192 if device.type == 'cuda' else 512)
        res['matmul_tflops'] = matmul_tflops(device, n, reps=5 if device.type == 'cuda' else 2)
        print('matmul TFLOP/s:', res['matmul_tflops'], flush=True)
    res['failures'], res['ok'] = failures, not failures
    res.update(peak_memory())
    write_json(a.out, res, echo=False)
    print('\n'.join(['FAILED:', *failures]) if failures else 'ok: all losses finite, bf16/fp16 within tolerance of fp32')
    print('->', a.out)
    return 0 if not failures else 1


if __name__ == '__main__':
    sys.exit(main())
