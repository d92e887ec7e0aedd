"""One markdown row per training run: the held-out alphabet report (`foldtree2-evaluate --held-out`,
report_test.json) next to the fold-recognition benchmark (`bench_alphabet_realistic.py`, bench_report.json).

    python bench/summarize_runs.py bench/results/realistic_pairs

Each run is a folder holding those two files; the reference rows (3Di, 3Di+AA, amino acids, DSSP) come from the
same benchmark report, and the last two columns are our tokens + amino acids (the analogue of 3Di+AA)."""
import json
import sys
from pathlib import Path

COLS = ('run', 'codes used', 'exp(H)/K', 'SS', 'AA (baseline)', 'ROC-AUC', 'sens. 1st FP', 'Spearman', 'SF ROC-AUC', 'SF sens.',
        '+AA ROC-AUC', '+AA sens.')
REFERENCES = ('3Di (Foldseek matrix)', '3Di (learned)', '3Di+AA (Foldseek + BLOSUM62)', 'amino acids (BLOSUM62)',
              'DSSP 3-state (learned)')


def row(d: Path) -> list[str]:
    ev, b = (json.loads((d / f).read_text()) for f in ('report_test.json', 'bench_report.json'))
    cb, rec, m = ev['codebook'], ev['reconstruction'], b['methods']['tokens (learned)']
    sf = b.get('superfamily', {}).get('methods', {}).get('tokens (learned)', {})
    both = b['methods'].get('tokens+AA (learned + BLOSUM62)', {})
    return [d.name, f"{cb['codes_used']}/{cb['num_embeddings']}", f"{cb['normalised_perplexity']:.3f}",
            f"{rec['ss_accuracy']['value']:.3f}",
            f"{rec['aa_recovery']['value']:.3f} ({rec['aa_recovery']['baseline_majority']:.3f})",
            f"{m['roc_auc']:.3f}", f"{m['sens_to_first_fp']:.3f}", f"{m['spearman_tm']:.3f}",
            f"{sf.get('roc_auc', float('nan')):.3f}", f"{sf.get('sens_to_first_fp', float('nan')):.3f}",
            *((f"{both['roc_auc']:.3f}", f"{both['sens_to_first_fp']:.3f}") if both else ('–', '–'))]


def main(argv=None):
    root = Path((argv or sys.argv[1:] or ['bench/results/realistic_pairs'])[0])
    runs = sorted(d for d in root.iterdir() if (d / 'report_test.json').is_file() and (d / 'bench_report.json').is_file())
    print('| ' + ' | '.join(COLS) + ' |'); print('|' + '---|' * len(COLS))
    for d in runs: print('| ' + ' | '.join(row(d)) + ' |')
    if runs:
        b = json.loads((runs[0] / 'bench_report.json').read_text())
        for name in REFERENCES:
            m, sf = b['methods'][name], b.get('superfamily', {}).get('methods', {}).get(name, {})
            print(f"| {name} | | | | | {m['roc_auc']:.3f} | {m['sens_to_first_fp']:.3f} | {m['spearman_tm']:.3f} | "
                  f"{sf.get('roc_auc', float('nan')):.3f} | {sf.get('sens_to_first_fp', float('nan')):.3f} | | |")


if __name__ == '__main__':
    main()
