"""Keep the remote pairs of an aligned-pairs file (`foldtree2-datasets realistic` writes train_pairs.npz): only pairs
with TM-score below `--max-tm`, so that the pair term of `learn_monodecoder --pairs` asks distant relatives, not near
copies, to share tokens (an issue-10 experiment; results in bench/results/realistic_final/).

    python bench/remote_pairs.py DATA/train_pairs.npz --max-tm 0.9 -o DATA/train_pairs_remote.npz
"""
import argparse

import numpy as np

from foldtree2.datasets import PairSet


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('pairs'); ap.add_argument('--max-tm', type=float, default=0.9); ap.add_argument('-o', '--out', required=True)
    a = ap.parse_args(argv)
    ps = PairSet.load(a.pairs)
    keep = np.flatnonzero(ps.tm < a.max_tm)
    sub = PairSet([ps.a[i] for i in keep], [ps.b[i] for i in keep], ps.tm[keep], [ps.ia[i] for i in keep], [ps.ib[i] for i in keep])
    sub.save(a.out)
    print(f'{ps} -> {sub} (TM < {a.max_tm}; median TM {np.median(sub.tm):.3f})')


if __name__ == '__main__':
    main()
