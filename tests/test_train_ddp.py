"""The monodecoder training loop under torchrun with 2 CPU processes (gloo): DDP on real structures.

Launches this file under `python -m torch.distributed.run --standalone --nproc_per_node=2`; each rank runs
`foldtree2.train.train` on a tiny real store and saves what it ended with; the test checks that both ranks
hold identical parameters, took the same number of steps, saw the same (all-reduced) validation losses and
stopped early on the same epoch, and that only rank 0 wrote checkpoints and TensorBoard logs. A second
launch runs the script `foldtree2/learn_monodecoder.py` itself under torchrun."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(hidden_channels=[8, 8], nheads=2, embedding_dim=8, num_embeddings=8, decoder_dim=16, decoder_heads=2,
            decoder_layers=1, pair_dim=8, batch_size=1, val_fraction=0.25,
            progress=False, lr_schedule='cosine', learning_rate=1e-3, gradient_accumulation_steps=2)


def build_tiny_store(path):
    from foldtree2.data import build_store, default_structure_files
    from foldtree2.structures import AFDB_RRNPPA
    short = ['3a4rA', '2cviA', '2xcjA', '1lpbA', '1i8nA', '2xdgA']
    build_store([f for f in default_structure_files() if f.name[:5] in short], path, mode='experimental', progress=False)
    build_store(sorted(AFDB_RRNPPA.glob('*.pdb.gz'))[:2], path, mode='alphafold', progress=False)
    return path


def _worker(h5, out):
    import torch
    from foldtree2.train import train
    rank = int(os.environ['RANK'])                     # train() itself joins and leaves the process group
    cfg = {**TINY, 'dataset': h5, 'output_dir': str(Path(out) / 'run'), 'epochs': 6, 'use_muon': True, 'EMA': True,
           'early_stopping_patience': 1, 'early_stopping_min_delta': 0.02}
    r = train(cfg)
    state = {**{f'e.{k}': v for k, v in r['encoder'].state_dict().items()},
             **{f'd.{k}': v for k, v in r['decoder'].state_dict().items()}}
    torch.save(state, Path(out) / f'params{rank}.pt')
    Path(out, f'rank{rank}.json').write_text(json.dumps({
        'step': r['step'], 'epochs': len(r['history']), 'stopped_early': r['stopped_early'],
        'val': [h['val'] for h in r['history']], 'train': [h['train']['total'] for h in r['history']],
        'usage': [h['usage'] for h in r['history']], 'total_steps': r['total_steps'],
        'dist_after': torch.distributed.is_initialized()}))


def _torchrun(args, tmp):
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONPATH': str(ROOT)}
    for k in ('WORLD_SIZE', 'RANK', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT'): env.pop(k, None)
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2', *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=ROOT)


@pytest.fixture(scope='module')
def store(tmp_path_factory):
    return build_tiny_store(tmp_path_factory.mktemp('ddp') / 'tiny.h5')


def test_train_two_gloo_processes(store, tmp_path):
    import torch
    proc = _torchrun([str(Path(__file__).resolve()), str(store), str(tmp_path)], tmp_path)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    r = [json.loads((tmp_path / f'rank{i}.json').read_text()) for i in range(2)]
    p = [torch.load(tmp_path / f'params{i}.pt') for i in range(2)]
    assert sorted(p[0]) == sorted(p[1])
    diff = [k for k in p[0] if not torch.equal(p[0][k], p[1][k])]
    assert not diff, f'parameters differ between ranks: {diff[:5]}'
    assert r[0]['step'] == r[1]['step'] > 0
    assert r[0]['epochs'] == r[1]['epochs'] and r[0]['stopped_early'] == r[1]['stopped_early']
    assert r[0]['val'] == r[1]['val'] and r[0]['train'] == r[1]['train'] and r[0]['usage'] == r[1]['usage']
    # 8 structures, 2 validation -> 6 train, 3 per rank, batches of 1, accumulation 2 -> 2 steps per epoch
    assert r[0]['total_steps'] == 12
    assert r[0]['step'] == 2 * r[0]['epochs']
    assert not r[0]['dist_after']                                       # train() cleaned up its process group
    run = tmp_path / 'run'
    assert (run / 'final.pt').exists() and (run / 'best.pt').exists()
    assert len(list((run / 'tensorboard').glob('events.*'))) == 1      # rank 0 only
    from foldtree2.engine import load_checkpoint
    ck = load_checkpoint(run / 'final.pt')
    enc = {k[8:]: v for k, v in ck['model_state_dict'].items() if k.startswith('encoder.')}
    assert enc and all(torch.equal(enc[k], p[0][f'e.{k}']) for k in enc)
    assert 'early stopping' in proc.stdout + proc.stderr or not r[0]['stopped_early']


def test_learn_monodecoder_script_under_torchrun(store, tmp_path):
    import yaml
    cfg = tmp_path / 'tiny.yaml'
    cfg.write_text(yaml.safe_dump({k: v for k, v in TINY.items()}))
    out = tmp_path / 'models'
    proc = _torchrun(['foldtree2/learn_monodecoder.py', '-d', str(store), '-e', '1', '--config', str(cfg),
                      '--use-muon', '-o', str(out)], tmp_path)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert (out / 'final.pt').exists()
    assert (proc.stdout + proc.stderr).count('epoch 1/1') == 1          # one summary line: rank 0 only


if __name__ == '__main__':
    _worker(sys.argv[1], sys.argv[2])
