"""Learning check for emprot: train ProteinTransformerClassificationOnly on the adenylate-kinase trajectories
`adk_dims` + `adk_gbis_tmd` (mdanalysistests; first 80% of each for training, last 20% for validation / early
stopping), then evaluate on the held-out trajectory `adk_dims2` (K=5 history frames, F=3 future frames, C=36
clusters) next to the two baselines of emprot.evaluate: copy the last history frame, and a first-order Markov
model fitted on the training split. Reports accuracy on all future tokens and on tokens that change.

    python bench/check_emprot_learns.py [--max-epochs 40] [--seed 0] [--out bench/results/check_emprot_learns.json]

Writes the JSON report and prints the table."""
import argparse
import logging
import platform
import sys
import tempfile
from pathlib import Path

import torch

from emprot.data import DEFAULT_SPLITS, TokenWindowDataset
from emprot.evaluate import evaluation_report, format_report
from emprot.models import MODEL_DEFAULTS
from emprot.tokens import ADK_FIT_ON, TokenStore, adk_jobs, tokenize_trajectories
from emprot.training import EMPROTTrainer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # the repository root: `bench.common`
from bench.common import result_path, timed, write_json


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--max-epochs', type=int, default=40)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--d-embed', type=int, default=128)
    ap.add_argument('--num-layers', type=int, default=2)
    ap.add_argument('--dropout', type=float, default=MODEL_DEFAULTS['dropout'])
    ap.add_argument('--learning-rate', type=float, default=1e-3)
    ap.add_argument('--patience', type=int, default=8)
    ap.add_argument('--out', default=str(result_path('check_emprot_learns')))
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(levelname)s %(name)s: %(message)s')
    tmp = Path(tempfile.mkdtemp())
    store_path = tmp / 'adk.h5'
    tokenize_trajectories(adk_jobs(), store_path, n_clusters=36, fit_on=ADK_FIT_ON)
    cfg = {'token_store': str(store_path), 'splits': DEFAULT_SPLITS, 'history_frames': 5, 'future_horizon': 3,
           'batch_size': 8, 'd_embed': args.d_embed, 'num_heads': 4, 'num_layers': args.num_layers,
           'dropout': args.dropout, 'learning_rate': args.learning_rate, 'weight_decay': 0.01,
           'use_scheduler': True, 'warmup_proportion': 0.05, 'max_epochs': args.max_epochs,
           'patience': args.patience, 'seed': args.seed, 'checkpoint_dir': str(tmp / 'ck')}
    store = TokenStore(store_path)
    with timed() as t:
        trainer = EMPROTTrainer(cfg, cluster_lookup=store.lookup())
        best = trainer.train()          # leaves the best-validation weights in trainer.model
    seconds = t.wall
    train_ds = TokenWindowDataset.from_config(trainer.config, 'train', store)
    test_ds = TokenWindowDataset.from_config(trainer.config, 'test', store)
    rep = evaluation_report(train_ds, test_ds, model=trainer.model, device=trainer.device)
    rep.update(config={k: v for k, v in trainer.config.items() if k != 'token_store'}, best_val_loss=best,
               epochs_run=trainer.epoch, train_seconds=seconds, torch=torch.__version__, machine=platform.machine(),
               history=trainer.history)
    write_json(args.out, rep, echo=False)
    print(format_report(rep))
    print(f'best val loss {best:.4f} after {trainer.epoch} epochs, {seconds:.0f} s; wrote {args.out}')
    return rep


if __name__ == '__main__':
    main()
