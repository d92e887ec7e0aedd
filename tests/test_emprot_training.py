"""EMPROTTrainer on real tokenised adenylate-kinase trajectories (mdanalysistests): exact resume, DDP with two gloo
processes under torchrun, load_checkpoint failure modes, config errors."""
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from foldtree2 import engine
from emprot.tokens import ADK_FIT_ON, ClusterLookup, TokenStore, adk_jobs, tokenize_trajectories
from emprot.training import EMPROTTrainer, trainer_config


@pytest.fixture(scope='module')
def store_path(tmp_path_factory):
    path = tmp_path_factory.mktemp('adk') / 'adk.h5'
    rep = tokenize_trajectories(adk_jobs(), path, n_clusters=36, fit_on=ADK_FIT_ON)
    assert not rep['failed'], rep['failed']
    return path


def small_config(store_path, **kw):
    "A small model on the real AdK token store; dropout and a warmup+cosine schedule so that RNG and scheduler state matter."
    splits = {'train': [{'name': 'adk_dims', 'start': 0.0, 'end': 0.8}, {'name': 'adk_gbis_tmd', 'start': 0.0, 'end': 0.8}],
              'val': [{'name': 'adk_dims', 'start': 0.8, 'end': 1.0}, {'name': 'adk_gbis_tmd', 'start': 0.8, 'end': 1.0}]}
    return {'token_store': str(store_path), 'splits': splits, 'stride': 6, 'batch_size': 8, 'd_embed': 32, 'num_heads': 4,
            'num_layers': 1, 'dropout': 0.2, 'learning_rate': 2e-3, 'use_scheduler': True, 'warmup_proportion': 0.2,
            'grad_accum_steps': 2, 'max_epochs': 3, 'patience': None, **kw}


def params(model):
    return [p.detach().clone() for p in model.parameters()]


class Crash(RuntimeError):
    pass


def test_resume_is_bit_identical(store_path, tmp_path):
    ref = EMPROTTrainer(small_config(store_path, checkpoint_dir=str(tmp_path / 'a')))
    ref.train()

    crashed = EMPROTTrainer(small_config(store_path, checkpoint_dir=str(tmp_path / 'b')))
    train_epoch = crashed.train_epoch
    def crashing(loader):                      # the job dies at the start of its third epoch
        if crashed.epoch == 2:
            raise Crash('simulated interruption')
        return train_epoch(loader)
    crashed.train_epoch = crashing
    with pytest.raises(Crash):
        crashed.train()
    assert crashed.epoch == 2
    epoch2 = tmp_path / 'epoch2.pt'
    shutil.copy(tmp_path / 'b' / 'last.pt', epoch2)        # the resumed run overwrites last.pt

    resumed = EMPROTTrainer(small_config(store_path, checkpoint_dir=str(tmp_path / 'b'),
                                         resume_from=str(epoch2)))
    resumed.train()
    assert resumed.epoch == ref.epoch == 3
    assert resumed.global_step == ref.global_step
    assert [h['total_loss'] for h in resumed.history] == [h['total_loss'] for h in ref.history]
    assert [h['val/total_loss'] for h in resumed.history] == [h['val/total_loss'] for h in ref.history]
    final = lambda d: engine.load_checkpoint(tmp_path / d / 'final.pt')['model_state_dict']
    fa, fb = final('a'), final('b')
    assert all(torch.equal(fa[k], fb[k]) for k in fa)                    # final weights, bit for bit
    for a, b in zip(params(ref.model), params(resumed.model)):           # best weights (what train() leaves)
        assert torch.equal(a, b)
    ck = engine.load_checkpoint(epoch2)
    assert ck['epoch'] == 2 and 'rng' in ck and ck['scheduler'] is not None and 'scaler' in ck
    # the test can fail: a resume that loses the RNG state (dropout masks) ends elsewhere
    forgetful = EMPROTTrainer(small_config(store_path, checkpoint_dir=str(tmp_path / 'c')))
    assert forgetful.load_checkpoint(epoch2)
    torch.manual_seed(12345)
    forgetful.train()
    fc = final('c')
    assert not all(torch.equal(fa[k], fc[k]) for k in fa)
    assert not all(torch.equal(fa[k], ck['model_state_dict'][k]) for k in fa)   # and epoch 3 did change the weights


DDP_SCRIPT = r'''
import json, sys, torch
from foldtree2 import engine
from emprot.training import EMPROTTrainer
cfg, out = json.loads(sys.argv[1]), sys.argv[2]
t = EMPROTTrainer(cfg)
init = [p.detach().clone() for p in t.model.parameters()]
t.train()
torch.save({'rank': t.env.rank, 'world_size': t.env.world_size, 'epoch': t.epoch, 'history': t.history,
            'params': [p.detach().clone() for p in t.model.parameters()], 'init': init,
            'n_train': len(t._train_batches) if hasattr(t, '_train_batches') else None},
           f'{out}/rank{t.env.rank}.pt')
engine.cleanup_distributed()
'''


def test_ddp_two_gloo_processes(store_path, tmp_path):
    script = tmp_path / 'ddp_train.py'
    script.write_text(DDP_SCRIPT)
    # min_delta 1.0 nat: the first epoch improves on inf, the second cannot improve by a full nat -> stop at epoch 2
    cfg = small_config(store_path, max_epochs=6, patience=1, early_stopping_min_delta=1.0, dropout=0.1,
                       checkpoint_dir=str(tmp_path / 'ck'))
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    r = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2',
                        str(script), json.dumps(cfg), str(tmp_path)], capture_output=True, text=True, env=env,
                       timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    r0, r1 = (torch.load(tmp_path / f'rank{i}.pt', weights_only=False) for i in (0, 1))
    assert (r0['rank'], r1['rank'], r0['world_size'], r1['world_size']) == (0, 1, 2, 2)
    for a, b in zip(r0['params'], r1['params']):
        assert torch.equal(a, b)
    assert not all(torch.equal(a, b) for a, b in zip(r0['init'], r0['params']))      # it trained
    assert r0['epoch'] == r1['epoch'] == 2 < cfg['max_epochs']                         # same early stop
    assert [h['val/total_loss'] for h in r0['history']] == [h['val/total_loss'] for h in r1['history']]
    assert [h['total_loss'] for h in r0['history']] == [h['total_loss'] for h in r1['history']]
    assert sorted(p.name for p in (tmp_path / 'ck').iterdir()) == ['best.pt', 'final.pt', 'last.pt']  # rank 0 only, no temp files


@pytest.fixture(scope='module')
def trained(store_path, tmp_path_factory):
    d = tmp_path_factory.mktemp('ck')
    t = EMPROTTrainer(small_config(store_path, max_epochs=1, checkpoint_dir=str(d)),
                      cluster_lookup=TokenStore(store_path).lookup())
    t.train()
    return t, d / 'last.pt'


def _state(t):
    return {k: v.clone() for k, v in t.model.state_dict().items()}, t.optimizer.state_dict()['state'], t.epoch


def _unchanged(t, before):
    sd, opt, epoch = before
    assert all(torch.equal(sd[k], v) for k, v in t.model.state_dict().items())
    assert t.epoch == epoch and len(t.optimizer.state_dict()['state']) == len(opt)


@pytest.mark.parametrize('case', ['missing', 'truncated', 'not_a_checkpoint', 'foreign', 'other_architecture',
                                  'other_codebook', 'bad_optimizer_state'])
def test_load_checkpoint_failures(store_path, trained, tmp_path, caplog, case):
    _, good = trained
    lookup = TokenStore(store_path).lookup()
    t = EMPROTTrainer(small_config(store_path, max_epochs=1), cluster_lookup=lookup)
    path, expect = tmp_path / 'x.pt', None
    if case == 'missing':
        expect = 'does not exist'
    elif case == 'truncated':
        path.write_bytes(good.read_bytes()[:4096]); expect = 'corrupt'
    elif case == 'not_a_checkpoint':
        torch.save({'weights': torch.zeros(3)}, path); expect = 'not a foldtree2 checkpoint'
    elif case == 'foreign':
        engine.save_checkpoint(path, {'model': {}}); expect = 'not an EMPROTTrainer checkpoint'
    elif case == 'other_architecture':
        EMPROTTrainer(small_config(store_path, d_embed=64)).save_checkpoint(path); expect = 'd_embed: 64 vs 32'
    elif case == 'other_codebook':
        rng = np.random.default_rng(0)
        other = ClusterLookup(lookup.centroids + rng.normal(0, 0.1, lookup.centroids.shape).astype(lookup.centroids.dtype))
        EMPROTTrainer(small_config(store_path), cluster_lookup=other).save_checkpoint(path); expect = 'different codebook'
    elif case == 'bad_optimizer_state':        # passes the checks, fails half-way: model already loaded -> rolled back
        ck = engine.load_checkpoint(good)
        ck['optimizer']['adamw']['param_groups'] = ck['optimizer']['adamw']['param_groups'][:1]   # optimizers by name
        torch.save(ck, path); expect = 'previous state kept'
    before = _state(t)
    with caplog.at_level(logging.ERROR, logger='emprot.training'):
        assert t.load_checkpoint(path) is False
    assert expect in caplog.text
    _unchanged(t, before)
    assert t.load_checkpoint(good) is True and t.epoch == 1          # and a good file still loads afterwards


def test_resume_from_unloadable_is_an_error(store_path, tmp_path):
    t = EMPROTTrainer(small_config(store_path, resume_from=str(tmp_path / 'nope.pt')))
    with pytest.raises(RuntimeError, match='could not be loaded'):
        t.train()


def test_config_errors(store_path, tmp_path):
    with pytest.raises(engine.ConfigError, match="unknown key 'learning_rat'"):
        EMPROTTrainer(small_config(store_path, learning_rat=1e-3))
    with pytest.raises(engine.ConfigError, match="'max_grad_norm'"):
        EMPROTTrainer(small_config(store_path, max_grad_norm='big'))
    with pytest.raises(engine.ConfigError, match='num_clusters=12'):
        EMPROTTrainer(small_config(store_path, num_clusters=12), cluster_lookup=TokenStore(store_path).lookup())
    with pytest.raises(ValueError, match='divisible by num_heads'):
        EMPROTTrainer(small_config(store_path, d_embed=30))
    f = tmp_path / 'cfg.yaml'
    f.write_text('max_epochs: 2\nbatch_sise: 4\n')
    with pytest.raises(engine.ConfigError, match=f"{f}: unknown key 'batch_sise'"):
        trainer_config(engine.load_config_file(f), str(f))
    assert EMPROTTrainer(small_config(store_path)).config['num_clusters'] == 36     # from the token store


def test_missing_wandb_never_breaks_training(store_path, caplog):
    with caplog.at_level(logging.WARNING, logger='emprot.training'):
        t = EMPROTTrainer(small_config(store_path, max_epochs=1, use_wandb=True, splits={
            'train': [{'name': 'adk_dims', 'start': 0.0, 'end': 0.5}], 'val': [{'name': 'adk_dims', 'start': 0.5, 'end': 1.0}]}))
        best = t.train()
    assert np.isfinite(best)
    try:
        import wandb  # noqa: F401
    except ImportError:
        assert 'wandb cannot be imported' in caplog.text


def test_non_finite_batch_skips_the_step(store_path, caplog):
    "A batch with NaN times gives NaN gradients: the optimizer step is skipped, the weights stay finite and unchanged."
    from emprot.data import make_loaders
    t = EMPROTTrainer(small_config(store_path, grad_accum_steps=1, max_epochs=1))
    batches = []
    for b in make_loaders(t.config).train:
        batches.append(b)
        if len(batches) == 2: break
    bad = {k: (v.clone() if torch.is_tensor(v) else v) for k, v in batches[1].items()}
    bad['times'][:] = float('nan')
    before = params(t.model)
    with caplog.at_level(logging.WARNING):
        t.train_epoch([bad])
    assert all(torch.equal(a, b) for a, b in zip(before, params(t.model)))
    assert t.global_step == 0 and 'non-finite gradient' in caplog.text
    t.train_epoch(batches[:1])                                     # a good batch still trains
    assert t.global_step == 1 and all(torch.isfinite(p).all() for p in t.model.parameters())
    assert not all(torch.equal(a, b) for a, b in zip(before, params(t.model)))
