"""The fold-recognition benchmark on the realistic set, from one command: builds the set from the package
indexes if it is not there yet (`foldtree2-datasets realistic`), then benchmarks its test split (every pair,
TM-align truth, CATH superfamily labels from split.tsv) with matrices learned on a seeded subset of its
training split.

    python bench/bench_alphabet_realistic.py [--data ~/.cache/foldtree2/realistic] [--checkpoint CKPT]
        [--max-train-chains 60] [-j 2] [--out bench/results/bench_alphabet_realistic]

Needs what `foldtree2-datasets realistic` needs (pip and apt-get reaching their indexes, `mmseqs` from Debian's
mmseqs2); a missing piece is reported by name and the build stops. Without --checkpoint only the reference
methods (3Di, 3Di+AA, BLOSUM62, DSSP) run. Writes report.json, table.txt, roc.png and prints the table."""
import argparse
import csv
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # the repository root: `bench.common`
from bench.common import RESULTS


def labels_tsv(split_tsv: Path, out: Path) -> Path:
    "id<TAB>superfamily for the labelled test chains of split.tsv (the benchmark's --labels)."
    rows = [r for r in csv.DictReader(open(split_tsv, newline=''), delimiter='\t') if r['split'] == 'test' and r['superfamily']]
    out.write_text('id\tlabel\n' + ''.join(f"{r['id']}\t{r['superfamily']}\n" for r in rows))
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--data', default=str(Path.home() / '.cache' / 'foldtree2' / 'realistic'))
    p.add_argument('--checkpoint')
    p.add_argument('--max-train-chains', type=int, default=60)
    p.add_argument('-j', '--processes', type=int, default=2)
    p.add_argument('--out', default=str(RESULTS / 'bench_alphabet_realistic'))
    a = p.parse_args(argv)
    data, out = Path(a.data), Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    if not (data / 'split.tsv').is_file():
        from foldtree2.datasets import build_realistic
        print(f'{data}/split.tsv not found: building the realistic set there (a few minutes)')
        build_realistic(data, workers=a.processes, threads=a.processes)
    from foldtree2.cli import benchmark as benchmark_cli
    args = ['--held-out', str(data / 'test.h5'), '--train', str(data / 'train.h5'), '--labels',
            str(labels_tsv(data / 'split.tsv', out / 'test_labels.tsv')), '--max-train-chains', str(a.max_train_chains),
            '-j', str(a.processes), '-o', str(out)] + (['--checkpoint', a.checkpoint] if a.checkpoint else [])
    return benchmark_cli(args)


if __name__ == '__main__':
    sys.exit(main())
