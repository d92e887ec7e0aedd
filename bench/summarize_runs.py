"""One markdown row per training run: the held-out alphabet report (`foldtree2-evaluate --held-out`,
report_test.json) next to the fold-recognition benchmark (`bench_alphabet_realistic.py`, bench_report.json).

    python bench/summarize_runs.py bench/results/realistic_pairs

Each run is a folder holding those two files; the 3Di row comes from the same benchmark report."""
import json
import sys
from pathlib import Path

COLS = ('run', 'codes used', 'exp(H)/K', 'SS', 'AA (baseline)', 'ROC-AUC', 'sens. 1st FP', 'Spearman', 'SF ROC-AUC', 'SF sens.')


def row(d: Path) -> list[str]:
    ev, b = (json.loads((d / f).read_text()) for f in ('report_test.json', 'bench_report.json'))
    cb, rec, m = ev['codebook'], ev['reconstruction'], b['methods']['tokens (learned)']
    sf = b.get('superfamily', {}).get('methods', {}).get('tokens (learned)', {})
    return [d.name, f"{cb['codes_used']}/{cb['num_embeddings']}", f"{cb['normalised_perplexity']:.3f}",
            f"{rec['ss_accuracy']['value']:.3f}",
            f"{rec['aa_recovery']['value']:.3f} ({rec['aa_recovery']['baseline_majority']:.3f})",
            f"{m['roc_auc']:.3f}", f"{m['sens_to_first_fp']:.3f}", f"{m['spearman_tm']:.3f}",
            f"{sf.get('roc_auc', float('nan')):.3f}", f"{sf.get('sens_to_first_fp', float('nan')):.3f}"]


def main(argv=None):
    root = Path((argv or sys.argv[1:] or ['bench/results/realistic_pairs'])[0])
    runs = sorted(d for d in root.iterdir() if (d / 'report_test.json').is_file() and (d / 'bench_report.json').is_file())
    print('| ' + ' | '.join(COLS) + ' |'); print('|' + '---|' * len(COLS))
    for d in runs: print('| ' + ' | '.join(row(d)) + ' |')
    if runs:
        b = json.loads((runs[0] / 'bench_report.json').read_text())
        for name in ('3Di (Foldseek matrix)', '3Di (learned)'):
            m = b['methods'][name]
            print(f"| {name} | | | | | {m['roc_auc']:.3f} | {m['sens_to_first_fp']:.3f} | {m['spearman_tm']:.3f} | | |")


if __name__ == '__main__':
    main()
