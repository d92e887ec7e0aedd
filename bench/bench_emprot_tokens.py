"""emprot data pipeline on the AdK trajectories of mdanalysistests: feature extraction time per trajectory, k-means
codebook fit time (C clusters, fitted on adk_dims + adk_gbis_tmd), tokens per trajectory, data-loader throughput
(windows/s at batch 8), and the two baselines on adk_dims2 (K history, F future frames):
Markov fitted on the default train split (first 80 % of adk_dims + adk_gbis_tmd) and on all of both.

    python bench/bench_emprot_tokens.py [--n-clusters 36] [--history 5] [--horizon 3] [--repeats 3]

Writes bench/results/bench_emprot_tokens.json and prints it. Timings are best-of-`repeats` wall clock on this machine;
re-run on a quiet machine for figures to quote.
"""
import argparse
import os
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # the repository root: `bench.common`
from bench.common import result_path, timed, write_json


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--n-clusters', type=int, default=36)
    p.add_argument('--history', type=int, default=5)
    p.add_argument('--horizon', type=int, default=3)
    p.add_argument('--repeats', type=int, default=3)
    p.add_argument('--out', default=str(result_path('bench_emprot_tokens')))
    a = p.parse_args(argv)
    from emprot.data import DATA_DEFAULTS, TokenWindowDataset, make_loaders
    from emprot.evaluate import MarkovBaseline, evaluate_baselines
    from emprot.tokens import ADK_FIT_ON, ClusterLookup, TokenStore, adk_jobs, tokenize_trajectories, trajectory_features

    jobs = {j['name']: j for j in adk_jobs()}
    feats, feat_s = {}, {}
    for name, j in jobs.items():
        best = float('inf')
        for _ in range(a.repeats):
            with timed() as t: feats[name] = trajectory_features(j['topology'], j['trajectory'])
            best = min(best, t.wall)
        feat_s[name] = best
    fit_s = float('inf')
    for _ in range(a.repeats):
        with timed() as t: lookup = ClusterLookup.fit([feats[n].features for n in ADK_FIT_ON], a.n_clusters, seed=0)
        fit_s = min(fit_s, t.wall)
    assign_s = {}
    for n, tf in feats.items():
        with timed() as t: lookup.assign(tf.features)
        assign_s[n] = t.wall

    tmp = Path(tempfile.mkdtemp())
    store_path = tmp / 'adk.h5'
    with timed() as t: rep = tokenize_trajectories(adk_jobs(), store_path, n_clusters=a.n_clusters, fit_on=list(ADK_FIT_ON), seed=0)
    total_s = t.wall
    store = TokenStore(store_path)
    cfg = {**DATA_DEFAULTS, 'token_store': str(store_path), 'history_frames': a.history, 'future_horizon': a.horizon}
    train = TokenWindowDataset.from_config(cfg, 'train')
    test = TokenWindowDataset.from_config(cfg, 'test')
    full = TokenWindowDataset(store, [(n, 0, store.shape(n)[0]) for n in ADK_FIT_ON], a.history, a.horizon)
    base_split = evaluate_baselines(test, MarkovBaseline.fit(train))
    base_full = evaluate_baselines(test, MarkovBaseline.fit(full))

    loader = make_loaders({**cfg, 'batch_size': 8}).train
    with timed() as t: n = sum(b['input_cluster_ids'].shape[0] for b in loader)
    load_s = t.wall

    pick = lambda r: {k: r[k] for k in ('accuracy', 'changed_accuracy', 'per_horizon', 'n_targets', 'n_changed')}
    res = {
        'machine': {'platform': platform.platform(), 'cpus': os.cpu_count(), 'torch_threads': torch.get_num_threads()},
        'n_clusters': a.n_clusters, 'history_frames': a.history, 'future_horizon': a.horizon,
        'feature_seconds': feat_s,
        'kmeans_fit_seconds': fit_s, 'kmeans_fit_vectors': int(sum(feats[n].features.shape[0] * feats[n].features.shape[1] for n in ADK_FIT_ON)),
        'assign_seconds': assign_s,
        'tokenize_all_seconds': total_s,
        'tokens_per_trajectory': {k: v['tokens'] for k, v in rep['entries'].items()},
        'frames_x_residues': {k: [v['n_frames'], v['n_residues']] for k, v in rep['entries'].items()},
        'changed_per_step': {k: float(np.mean((x := store.cluster_ids(k))[1:] != x[:-1])) for k in store.names},
        'loader_windows_per_second_batch8': n / load_s,
        'baselines_on_adk_dims2': {
            'n_windows': len(test),
            'copy_last': pick(base_split['copy_last']),
            'markov_fit_on_train_split_80pct': pick(base_split['markov']),
            'markov_fit_on_all_of_adk_dims_and_gbis': pick(base_full['markov']),
        },
    }
    write_json(a.out, res)


if __name__ == '__main__':
    main()
