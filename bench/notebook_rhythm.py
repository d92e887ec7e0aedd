"""Exported-cell lengths per notebook: the nbdev rhythm (one idea per export cell) measured.

    python bench/notebook_rhythm.py            # the working tree
    python bench/notebook_rhythm.py --ref 7b54617   # the notebooks as committed at a git ref

Counts the source lines of every `#| export` cell (directive lines excluded) and prints, per notebook,
the number of exported cells, their median and maximum length, and the overall figures."""
import argparse, json, statistics, subprocess, sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # the repository root: `bench.common`
from bench.common import ROOT

def notebooks(ref=None):
    "(path, notebook json) for every notebook under nbs/, from the working tree or from git at `ref`."
    if ref is None:
        return [(str(p.relative_to(ROOT)), json.loads(p.read_text())) for p in sorted(ROOT.glob('nbs/**/*.ipynb'))]
    names = subprocess.run(['git', 'ls-tree', '-r', '--name-only', ref, 'nbs'], cwd=ROOT, check=True,
                           capture_output=True, text=True).stdout.split()
    return [(n, json.loads(subprocess.run(['git', 'show', f'{ref}:{n}'], cwd=ROOT, check=True,
                                          capture_output=True, text=True).stdout))
            for n in sorted(names) if n.endswith('.ipynb')]

def export_lengths(nb):
    "Lines of each exported code cell, not counting `#|` directives."
    out = []
    for c in nb['cells']:
        src = ''.join(c['source']).splitlines() if isinstance(c['source'], list) else c['source'].splitlines()
        if c['cell_type'] == 'code' and any(l.strip().startswith('#| export') for l in src):
            out.append(sum(1 for l in src if not l.strip().startswith('#|')))
    return out

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--ref', help='git ref to read the notebooks from (default: the working tree)')
    a = ap.parse_args(argv)
    every = []
    print(f"{'notebook':44s} {'cells':>5s} {'median':>6s} {'max':>4s} {'>60':>4s}")
    for name, nb in notebooks(a.ref):
        n = export_lengths(nb)
        if not n: continue
        every += n
        print(f"{name:44s} {len(n):5d} {statistics.median(n):6.1f} {max(n):4d} {sum(x > 60 for x in n):4d}")
    print(f"{'all':44s} {len(every):5d} {statistics.median(every):6.1f} {max(every):4d} {sum(x > 60 for x in every):4d}")
    print(f"cells over 50 lines: {sum(x > 50 for x in every)}")

if __name__ == '__main__': main()
