"""The README's main job (structure-only alphabet on the embedded default dataset) over several seeds, and the
spread of its held-out figures. The seed sets the weights' initialisation, the batch order and which 10 of the
50 structures are held out, so the spread is what a user on another machine should expect (CPU kernels differ
between machines: one machine's run does not reproduce bit for bit on another).

    python bench/check_main_job_seeds.py [--seeds 0 1 2] [--out bench/results/check_main_job_seeds]

Per seed: `learn_monodecoder --default -e 40 -lr 1e-3 --EMA --encoder-input structure --val-fraction 0.2
--seed S`, then `foldtree2-evaluate best.pt` twice (held-out report; homolog report on the 32 AlphaFold models
of foldtree2/example_data against the DSSP chains). Writes seeds.json (per-seed figures, mean, min, max) and
prints the table; logs and evaluate reports stay under OUT/seed_S/, checkpoints under bench/out/."""
import argparse
import json
import platform
import statistics
import subprocess
import sys
from pathlib import Path

from foldtree2.structures import AFDB_RRNPPA

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # the repository root: `bench.common`
from bench.common import RESULTS, ROOT, command, timed, write_json

TRAIN = ['--default', '-e', '40', '-lr', '1e-3', '--EMA', '--encoder-input', 'structure', '--val-fraction', '0.2',
         '--no-progress']


def figures(report: dict, homologs: dict) -> dict:
    "The README's rows from one seed's two evaluate reports."
    cb, rec, hc = report['codebook'], report['reconstruction'], homologs['homolog_consistency']
    return {'held_out_structures': report['held_out']['structures'], 'held_out_residues': report['held_out']['residues'],
            'codes_used': cb['codes_used'], 'perplexity_over_K': cb['perplexity'] / cb['num_embeddings'],
            'aa_recovery': rec['aa_recovery']['value'], 'aa_baseline': rec['aa_recovery']['baseline_majority'],
            'ss_accuracy': rec['ss_accuracy']['value'], 'ss_baseline': rec['ss_accuracy']['baseline_majority'],
            'angle_mae_deg': rec['angle_mae_deg']['value'], 'angle_baseline': rec['angle_mae_deg']['baseline_circular_mean'],
            'contact_precision_L5': rec['contact_precision_L5']['value'],
            'contact_baseline': rec['contact_precision_L5']['baseline_random'],
            'homolog_token_identity': hc['homologous']['token_identity'],
            'unrelated_token_identity': hc['unrelated']['token_identity']}


def run(cmd, log):
    with open(log, 'w') as fh:
        r = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=ROOT)
    if r.returncode: sys.exit(f'{" ".join(map(str, cmd))} failed (exit {r.returncode}); see {log}')


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    ap.add_argument('--out', default=str(RESULTS / 'check_main_job_seeds'))
    a = ap.parse_args(argv)
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    bindir = Path(sys.executable).parent
    per = {}
    for s in a.seeds:
        d = out / f'seed_{s}'; d.mkdir(exist_ok=True)
        model = ROOT / 'bench' / 'out' / 'main_job' / f'seed_{s}'   # checkpoints stay out of git
        with timed() as tt: run([bindir / 'learn_monodecoder', *TRAIN, '--seed', str(s), '-o', model], d / 'train.log')
        with timed() as te: run([bindir / 'foldtree2-evaluate', model / 'best.pt', '-o', d / 'report', '--no-progress'], d / 'evaluate.log')
        t_train, t_job = tt.wall, tt.wall + te.wall
        run([bindir / 'foldtree2-evaluate', model / 'best.pt', '-o', d / 'report_homologs', '--homologs',
             AFDB_RRNPPA, '--unrelated-dssp', '--no-progress'], d / 'evaluate_homologs.log')
        rep = json.loads((d / 'report' / 'report.json').read_text())
        hom = json.loads((d / 'report_homologs' / 'report.json').read_text())
        per[s] = {**figures(rep, hom), 'train_seconds': round(t_train, 1), 'main_job_seconds': round(t_job, 1)}
        print(f'seed {s}: {per[s]}', flush=True)
    keys = list(next(iter(per.values())))
    summary = {k: {'mean': statistics.fmean(v[k] for v in per.values()), 'min': min(v[k] for v in per.values()),
                   'max': max(v[k] for v in per.values())} for k in keys}
    res = {'command': command(argv, __file__), 'train_args': TRAIN,
           'machine': f'{platform.machine()}, {platform.processor() or "?"}', 'per_seed': per, 'summary': summary}
    write_json(out / 'seeds.json', res, echo=False)
    print(f'{"figure":28s} {"mean":>8s} {"min":>8s} {"max":>8s}')
    for k, v in summary.items(): print(f'{k:28s} {v["mean"]:8.3f} {v["min"]:8.3f} {v["max"]:8.3f}')


if __name__ == '__main__':
    main()
