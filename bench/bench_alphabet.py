"""Fold-recognition benchmark of the alphabets on the structures the repository carries (foldtree2.benchmark).

Data: the ~50 experimental mdanalysistests DSSP chains + the 32 AlphaFold models of foldtree2/example_data,
split in two halves (alternating within each group, sorted by name): the training half learns the matrices
(3Di, DSSP, our tokens) and their gap penalties, the held-out half is benchmarked all-vs-all.

    python bench/bench_alphabet.py [--checkpoint CKPT] [--train-model EPOCHS] [-j 2] [--out bench/results/bench_alphabet]

--checkpoint: a trained foldtree2 checkpoint (its token matrix is learned on the training half's TM-align pairs,
unless CKPT's .submat.txt exists, which is then used as is). --train-model N: train a small model (hidden 32x2, 2 heads, 40 codes,
embedding 32) for N epochs on the training half first and use it (a quick stand-in, not the reference model;
model and its HDF5 go to bench/out/bench_alphabet/, which git ignores).
Without either, only the reference methods run. Writes report.json, table.txt, roc.png and prints the table.
"""
import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # the repository root: `bench.common`
from bench.common import RESULTS, ROOT, command, timed


def split():
    from foldtree2.data import default_structure_files
    from foldtree2.structures import AFDB_RRNPPA
    dssp, afdb = default_structure_files(), sorted(AFDB_RRNPPA.glob('*.pdb.gz'))
    return dssp[0::2] + afdb[0::2], dssp[1::2] + afdb[1::2]


def train_small(train_files, epochs: int, out: Path) -> Path:
    from foldtree2.data import build_store
    from foldtree2.learn_monodecoder import resolve_config
    from foldtree2.train import train
    out.mkdir(parents=True, exist_ok=True)
    h5 = out / 'train_half.h5'
    if not h5.exists(): build_store(train_files, h5, progress=False)
    cfg = resolve_config(['-d', str(h5), '-e', str(epochs), '-bs', '4', '-lr', '1e-3', '-o', str(out / 'model'),
                          '--mask-plddt', '--no-mixed-precision', '--hidden-channels', '32', '32', '--nheads', '2',
                          '--embedding-dim', '32', '--val-fraction', '0.1'])
    r = train(cfg)
    best = Path(r['output_dir']) / 'best.pt'
    return best if best.exists() else Path(r['final_checkpoint'])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--checkpoint')
    p.add_argument('--train-model', type=int, default=0, metavar='EPOCHS')
    p.add_argument('-j', '--processes', type=int, default=2)
    p.add_argument('--out', default=str(RESULTS / 'bench_alphabet'))
    a = p.parse_args(argv)
    from foldtree2.benchmark import run_benchmark, write_report, table
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    held, tr = split()
    ck, extra = a.checkpoint, {}
    if a.train_model:
        with timed() as t: ck = train_small(tr, a.train_model, ROOT / 'bench' / 'out' / 'bench_alphabet')
        extra['model_train_s'] = t.wall
    rep = run_benchmark(held, tr, ck, processes=a.processes)
    rep['bench'] = {'held_out_files': [f.name for f in held], 'train_files': [f.name for f in tr], **extra,
                    'command': command(argv, __file__)}
    path = write_report(rep, out)
    print(table(rep))
    print(json.dumps({k: round(v, 1) for k, v in rep['seconds'].items()}), json.dumps({k: v for k, v in extra.items()}))
    print('->', path)


if __name__ == '__main__':
    main()
