"""emprot data side on real adenylate-kinase trajectories (mdanalysistests): tokenisation, token store,
windows/splits, the batch contract, and the evaluation baselines."""
import contextlib
import io
import json
import warnings

import h5py
import numpy as np
import pytest
import torch
from MDAnalysisTests.datafiles import DCD, DCD2, PSF, XTC, waterDCD, waterPSF

from emprot.data import (BATCH_KEYS, DATA_DEFAULTS, IGNORE_INDEX, OPTIONAL_BATCH_KEYS, PAD_ID, TokenWindowDataset,
                         collate_windows, last_history_ids, make_loaders, parse_split, window_anchors)
from emprot.evaluate import MarkovBaseline, copy_last_predict, evaluate_baselines, evaluate_model, token_accuracy_counts
from emprot.tokens import (ADK_FIT_ON, ClusterLookup, TokenStore, TokenStoreError, TrajectoryError, adk_jobs,
                           tokenize_trajectories, trajectory_features)

K, F, C = 5, 3, 36


@pytest.fixture(scope='module')
def store_path(tmp_path_factory):
    path = tmp_path_factory.mktemp('emprot') / 'adk.h5'
    jobs = adk_jobs() + [dict(name='adk_cut', topology=PSF, trajectory=DCD2, selection='protein and resid 1-120')]
    rep = tokenize_trajectories(jobs, path, n_clusters=C, fit_on=list(ADK_FIT_ON), seed=0)
    assert not rep['failed'], rep['failed']
    return path


@pytest.fixture(scope='module')
def store(store_path):
    return TokenStore(store_path)


@pytest.fixture(scope='module')
def cfg(store_path):
    return {**DATA_DEFAULTS, 'token_store': str(store_path), 'history_frames': K, 'future_horizon': F}


# ---------------------------------------------------------------- tokens
def test_features_match_mdanalysis_ramachandran():
    import MDAnalysis as mda
    from MDAnalysis.analysis.dihedrals import Ramachandran
    tf = trajectory_features(PSF, DCD2, stop=4)
    assert tf.features.shape == (4, 214, 4) and tf.features.dtype == np.float32
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        ref = Ramachandran(mda.Universe(PSF, DCD2).select_atoms('protein')).run(stop=4).results.angles
    ours = np.degrees(np.arctan2(tf.features[:, 1:-1, [0, 2]], tf.features[:, 1:-1, [1, 3]]))
    assert np.abs((ours - ref + 180) % 360 - 180).max() < 1e-3
    # termini: undefined angle encoded as sin = cos = 0
    assert (tf.features[:, 0, :2] == 0).all() and (tf.features[:, -1, 2:] == 0).all()
    assert not tf.angle_mask[0, 0] and not tf.angle_mask[-1, 1] and tf.angle_mask[1:-1].all()


@pytest.mark.parametrize('top,traj,sel,words', [
    ('/no/such/top.psf', DCD, 'protein', ['top.psf', 'not found']),
    (PSF, '/no/such/traj.dcd', 'protein', ['traj.dcd', 'not found']),
    (PSF, XTC, 'protein', ['adk_oplsaa.xtc', 'same number of atoms']),
    (waterPSF, waterDCD, 'protein', ['watdyn.psf', 'no protein']),
    (PSF, DCD, 'resname NOPE', ['adk.psf', 'no protein']),
])
def test_bad_input_names_the_file(top, traj, sel, words):
    with pytest.raises(TrajectoryError) as e:
        trajectory_features(top, traj, selection=sel)
    for w in words:
        assert w in str(e.value), str(e.value)


def test_store_contents(store, store_path):
    assert store.names == ['adk_cut', 'adk_dims', 'adk_dims2', 'adk_gbis_tmd']
    assert store.n_clusters == C
    for name, shape in [('adk_dims', (98, 214)), ('adk_dims2', (102, 214)), ('adk_gbis_tmd', (100, 214)), ('adk_cut', (102, 120))]:
        ids = store.cluster_ids(name)
        assert ids.shape == shape and ids.min() >= 0 and ids.max() < C
        assert store.times(name).shape == (shape[0],) and np.all(np.diff(store.times(name)) > 0)
        assert len(store.resnames(name)) == shape[1]
    assert store.resids('adk_cut').tolist() == list(range(1, 121))
    assert store.info['adk_dims2']['trajectory'] == DCD2 and store.info['adk_dims2']['topology'] == PSF
    assert store.info['adk_dims']['codebook_fingerprint'] == store.lookup().fingerprint
    # stored IDs are the nearest centroids of the recomputed features
    tf = trajectory_features(PSF, DCD2)
    assert (store.lookup().assign(tf.features) == store.cluster_ids('adk_dims2')).all()
    with h5py.File(store_path, 'r') as f:
        assert f['trajectories/adk_dims/cluster_ids'].dtype == np.int32


def test_codebook_fit_on_training_only_and_roundtrip(store, tmp_path):
    meta = store.lookup().meta
    assert [s.split('/')[-1] for s in meta['sources']] == ['adk_dims.dcd', 'adk_gbis_tmd-fast1_NAMD.dcd']
    lk = store.lookup()
    p = lk.save(tmp_path / 'cb.npz')
    lk2 = ClusterLookup.load(p)
    assert lk2.n_clusters == C and lk2.fingerprint == lk.fingerprint
    np.save(tmp_path / 'raw.npy', lk.centroids)
    x = np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32)
    assert (ClusterLookup.load(tmp_path / 'raw.npy').assign(x) == lk.assign(x)).all()
    with pytest.raises(ValueError, match='dimension'):
        lk.assign(np.zeros((3, 5)))


def test_batch_job_resumes_and_refuses_foreign_codebook(store_path, tmp_path):
    path = tmp_path / 's.h5'
    rep = tokenize_trajectories([dict(name='a', topology=PSF, trajectory=DCD), dict(name='bad', topology=PSF, trajectory=XTC)],
                                path, n_clusters=8, seed=0)
    assert list(rep['entries']) == ['a'] and 'adk_oplsaa.xtc' in rep['failed']['bad']
    before = TokenStore(path).cluster_ids('a')
    rep2 = tokenize_trajectories([dict(name='a', topology=PSF, trajectory=DCD), dict(name='b', topology=PSF, trajectory=DCD2)], path)
    assert rep2['skipped'] == ['a'] and list(rep2['entries']) == ['b'] and rep2['codebook'] == 'from store'
    assert (TokenStore(path).cluster_ids('a') == before).all()
    other = ClusterLookup(np.eye(4, dtype=np.float32))
    with pytest.raises(TokenStoreError, match='another codebook') as e:
        tokenize_trajectories([dict(name='c', topology=PSF, trajectory=DCD)], path, lookup=other)
    assert 's.h5' in str(e.value)
    assert TokenStore(path).names == ['a', 'b']


# ---------------------------------------------------------------- windows and splits
def test_windows_and_time_split(store, cfg):
    assert len(window_anchors(0, 98, K, F)) == 98 - K - F + 1
    train = TokenWindowDataset.from_config(cfg, 'train')
    val = TokenWindowDataset.from_config(cfg, 'val')
    assert train.ranges == [('adk_dims', 0, 78), ('adk_gbis_tmd', 0, 80)]
    assert val.ranges == [('adk_dims', 78, 98), ('adk_gbis_tmd', 80, 100)]
    used = {'train': set(), 'val': set()}
    for split, ds in (('train', train), ('val', val)):
        for i in range(len(ds)):
            s = ds[i]
            frames = s['anchor'] + np.arange(-K + 1, F + 1)
            used[split] |= {(s['entry'], int(f)) for f in frames}
    assert not used['train'] & used['val']           # no frame shared between train and val windows
    assert len(train) == (78 - 7) + (80 - 7) and len(val) == (20 - 7) * 2


def test_window_content_with_stride_and_frame_step(store):
    ds = TokenWindowDataset(store, [('adk_gbis_tmd', 0, 100)], K, F, stride=3, frame_step=2)
    ids = store.cluster_ids('adk_gbis_tmd')
    assert ds.index[:, 1].tolist()[:3] == [8, 11, 14]
    s = ds[1]
    a = s['anchor']
    assert (s['history'] == ids[a - 8:a + 1:2]).all() and (s['future'] == ids[a + 2:a + 7:2]).all()
    assert s['times'].tolist() == [-8, -6, -4, -2, 0] and s['delta_t'].tolist() == [2, 4, 6]
    ps = TokenWindowDataset(store, [('adk_gbis_tmd', 0, 100)], K, F, time_unit='ps')[0]
    t = store.times('adk_gbis_tmd')
    assert np.allclose(ps['times'], t[:5] - t[4], atol=1e-6) and np.allclose(ps['delta_t'], t[5:8] - t[4], atol=1e-6)


def test_split_errors(store, cfg):
    with pytest.raises(KeyError, match='nope'):
        parse_split(['nope'], store, 'train')
    with pytest.raises(ValueError, match='start < end'):
        parse_split([{'name': 'adk_dims', 'start': 0.5, 'end': 0.2}], store, 'val')
    with pytest.raises(ValueError, match='unknown key'):
        parse_split([{'name': 'adk_dims', 'begin': 0.1}], store, 'val')
    with pytest.raises(ValueError, match='no window'):
        make_loaders({**cfg, 'splits': {'train': [{'name': 'adk_dims', 'end': 0.05}]}})


# ---------------------------------------------------------------- batch contract
def test_batch_contract_two_proteins(store):
    ds = TokenWindowDataset(store, [('adk_dims2', 0, 102), ('adk_cut', 0, 102)], K, F,
                            min_history_frames=2, allow_partial_future=True)
    # anchor 1 of the long protein (2 history frames), the short protein's last window (1 future frame), a full one
    samples = [ds[0], ds[len(ds) - 1], ds[40]]
    b = collate_windows(samples)
    assert set(b) == set(BATCH_KEYS) | set(OPTIONAL_BATCH_KEYS)
    B, N = 3, 214
    expect = {'input_cluster_ids': ((B, K, N), torch.long), 'times': ((B, K), torch.float32),
              'sequence_lengths': ((B,), torch.long), 'history_mask': ((B, K, N), torch.bool),
              'residue_mask': ((B, N), torch.bool), 'future_cluster_ids': ((B, F, N), torch.long),
              'future_step_mask': ((B, F), torch.bool), 'delta_t': ((B, F), torch.float32),
              'change_mask': ((B, F, N), torch.bool), 'run_length': ((B, N), torch.long)}
    for k, (shape, dtype) in expect.items():
        assert tuple(b[k].shape) == shape and b[k].dtype == dtype, k
    assert b['sequence_lengths'].tolist() == [214, 120, 214]
    assert (b['residue_mask'] == (torch.arange(N)[None] < b['sequence_lengths'][:, None])).all()
    assert b['future_step_mask'].tolist() == [[True] * 3, [True, False, False], [True] * 3]
    # padding value never collides with a real cluster, and sits exactly where history_mask is False
    assert PAD_ID < 0 and IGNORE_INDEX < 0
    assert (b['input_cluster_ids'][~b['history_mask']] == PAD_ID).all()
    real = b['input_cluster_ids'][b['history_mask']]
    assert real.min() >= 0 and real.max() < C
    assert b['history_mask'][0, :, 0].tolist() == [False, False, False, True, True]   # left time padding
    valid = b['future_step_mask'][:, :, None] & b['residue_mask'][:, None, :]
    assert (b['future_cluster_ids'][~valid] == IGNORE_INDEX).all() and (b['future_cluster_ids'][valid] >= 0).all()
    # values are the store's
    ids = store.cluster_ids('adk_dims2')
    assert (b['input_cluster_ids'][2].numpy() == ids[samples[2]['anchor'] - 4:samples[2]['anchor'] + 1]).all()
    assert (b['input_cluster_ids'][1, :, :119].numpy() == ids[96:101, :119]).all()
    last = last_history_ids(b['input_cluster_ids'], b['history_mask'])
    assert (last == b['input_cluster_ids'][:, -1]).all()
    assert (b['change_mask'] == (valid & (b['future_cluster_ids'] != last[:, None]))).all()
    assert (b['run_length'] >= 1).sum() == 214 + 120 + 214 and (b['run_length'][1, 120:] == 0).all()
    assert b['run_length'][0].max() <= 2


def test_loader_workers_match_and_sampler_reproducible(cfg):
    l0 = make_loaders({**cfg, 'batch_size': 16, 'num_workers': 0})
    l2 = make_loaders({**cfg, 'batch_size': 16, 'num_workers': 2})
    for a, b in zip(l0.test, l2.test):
        for k in a:
            assert torch.equal(a[k], b[k]), k
    l0.train.sampler.set_epoch(2); l2.train.sampler.set_epoch(2)
    assert list(l0.train.sampler) == list(l2.train.sampler)
    first = [torch.cat([x['future_cluster_ids'] for x in l0.train])]
    l0.train.sampler.set_epoch(2)
    assert torch.equal(torch.cat([x['future_cluster_ids'] for x in l0.train]), first[0])
    r = [make_loaders(cfg, rank=i, world_size=2).train.sampler for i in range(2)]
    assert len(list(r[0])) == len(list(r[1])) and set(r[0]) | set(r[1]) == set(range(len(l0.train.dataset)))


# ---------------------------------------------------------------- baselines and metric
def test_copy_last_baseline_against_numpy(store, cfg):
    train = TokenWindowDataset.from_config(cfg, 'train')
    test = TokenWindowDataset.from_config(cfg, 'test')
    rep = evaluate_baselines(test, MarkovBaseline.fit(train))
    ids = store.cluster_ids('adk_dims2')
    a = test.index[:, 1]
    fut = np.stack([ids[a + f] for f in range(1, F + 1)], 1)
    same = fut == ids[a][:, None]
    assert rep['copy_last']['accuracy'] == pytest.approx(same.mean(), abs=1e-12)
    assert rep['copy_last']['changed_accuracy'] == 0.0
    assert rep['copy_last']['n_changed'] == int((~same).sum()) == rep['markov']['n_changed']
    assert 0.0 < rep['markov']['changed_accuracy'] < 1.0


def test_markov_is_optimal_in_sample_and_unseen_states_stay(store):
    name, T = 'adk_gbis_tmd', 100
    test = TokenWindowDataset(store, [(name, 0, T)], K, F)
    # fitted on exactly the transitions anchor -> anchor + 1 of the windows, with (almost) no shrinkage, the per-residue
    # argmax is the best predictor of step 1 from (residue, current ID) on those windows; copy-last is one such predictor
    fit = TokenWindowDataset(store, [(name, K - 1, T - F + 1)], K, F)
    m = MarkovBaseline.fit(fit, alpha=1e-9)
    rep = evaluate_baselines(test, m)
    assert rep['markov']['per_horizon'][0] > rep['copy_last']['per_horizon'][0]
    # a 3-frame fit leaves most states unseen: they stay (= copy-last) in the pooled table
    tiny = MarkovBaseline.fit(TokenWindowDataset(store, [(name, 0, 3)], 1, F, allow_partial_future=True))
    unseen = np.flatnonzero(tiny.pooled_counts.sum(1) == 0)
    assert len(unseen) > 0
    tab = tiny.tables()['pooled']
    assert all((tab[:, c] == c).all() for c in unseen)


def test_metric_counts_and_model_path(cfg):
    loaders = make_loaders({**cfg, 'batch_size': 10})
    test = loaders.test.dataset

    class CopyLast(torch.nn.Module):
        def forward(self, input_cluster_ids, times, sequence_lengths, history_mask):
            last = input_cluster_ids[:, -1].clamp(min=0)
            return {'cluster_logits': torch.nn.functional.one_hot(last, C).float()[:, None].expand(-1, F, -1, -1)}

    r = evaluate_model(CopyLast(), loaders.test)
    base = evaluate_baselines(test, MarkovBaseline.fit(loaders.train.dataset))
    assert r['accuracy'] == pytest.approx(base['copy_last']['accuracy'], abs=1e-12)
    assert r['n_targets'] == len(test) * F * 214
    # one batch by hand
    b = next(iter(loaders.test))
    pred = copy_last_predict(b, F)
    c = token_accuracy_counts(pred, b)
    t = b['future_cluster_ids']
    assert c['total'].tolist() == [t.shape[0] * 214] * F
    assert c['correct'].sum() == (pred == t).sum() and c['changed_correct'].sum() == 0


# ---------------------------------------------------------------- CLI
def test_cli_tokenize_and_evaluate(tmp_path, store_path):
    from emprot.cli import evaluate, tokenize
    out = tmp_path / 's.h5'
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        rc = tokenize(['--out', str(out), '--topology', PSF, '--trajectory', DCD, XTC, '--n-clusters', '6',
                       '--report', str(tmp_path / 'r.json')])
    assert rc == 1
    rep = json.loads((tmp_path / 'r.json').read_text())
    assert list(rep['entries']) == ['adk_dims'] and 'adk_oplsaa' in rep['failed']
    assert TokenStore(out).n_clusters == 6
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert evaluate(['--baselines-only', '--token-store', str(store_path), '--out', str(tmp_path / 'e.json')]) == 0
    e = json.loads((tmp_path / 'e.json').read_text())
    assert e['eval_ranges'] == [['adk_dims2', 0, 102]] and {'copy_last', 'markov'} <= set(e)
