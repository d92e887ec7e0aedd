"""Wall time of `SCRIPT --help` for every console script of both packages (the installed entry points).

    python bench/bench_help.py                 # 5 runs each, writes bench/results/bench_help.json
    python bench/bench_help.py --ref-module    # also `python -c "import <worker module>"`: what --help used to cost

Each run is a fresh process, as a user's shell starts it; the figure is the median of the runs (the minimum too).
The scripts parse their arguments in `foldtree2.cli` / `emprot.cli`, which import no torch; the worker modules
(imported by `--ref-module`) are what each script loaded before it could print its help."""
import argparse, configparser, shutil, statistics, subprocess, sys, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # the repository root: `bench.common`
from bench.common import ROOT, command, result_path, write_json

WORKERS = {'pdbs-to-graphs': 'foldtree2.data', 'foldtree2-datasets': 'foldtree2.datasets',
           'learn_monodecoder': 'foldtree2.learn_monodecoder', 'foldtree2-encode': 'foldtree2.alphabet',
           'foldtree2-evaluate': 'foldtree2.evaluate', 'foldtree2-submat': 'foldtree2.submat',
           'foldtree2-benchmark': 'foldtree2.benchmark', 'foldtree2-tree': 'foldtree2.tree',
           'emprot-tokenize': 'emprot.tokens', 'emprot-train': 'emprot.training', 'emprot-evaluate': 'emprot.evaluate'}

def scripts() -> list:
    "Console script names declared in settings.ini."
    ini = configparser.ConfigParser(); ini.read(ROOT / 'settings.ini')
    return [l.split('=')[0].strip() for l in ini['DEFAULT']['console_scripts'].split('\n') if '=' in l]

def wall(cmd: list, runs: int) -> list:
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        out.append(time.perf_counter() - t)
    return out

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--runs', type=int, default=5)
    ap.add_argument('--ref-module', action='store_true', help='also time importing each worker module')
    ap.add_argument('--out', default=str(result_path('bench_help')))
    a = ap.parse_args(argv)
    rows = {}
    for s in scripts():
        exe = shutil.which(s)
        if exe is None: raise SystemExit(f'{s}: not installed (pip install -e . first)')
        t = wall([exe, '--help'], a.runs)
        rows[s] = {'help_median_s': round(statistics.median(t), 3), 'help_min_s': round(min(t), 3)}
        if a.ref_module:
            m = wall([sys.executable, '-c', f'import {WORKERS[s]}'], a.runs)
            rows[s].update(worker_module=WORKERS[s], import_median_s=round(statistics.median(m), 3))
        print(s, rows[s], flush=True)
    write_json(a.out, {'benchmark': 'console script --help wall time', 'runs': a.runs, 'scripts': rows,
                       'command': command(argv)}, echo=False)

if __name__ == '__main__': main()
