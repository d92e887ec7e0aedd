"""Encoding speed of foldtree2-encode on CPU (residues/s), on the 32 AlphaFold models of foldtree2/example_data/afdb_rrnppa/.

Measures separately: graph construction (parse + features, what `iter_graphs` does per file), model inference
(batched `encoder.tokenize` on prebuilt graphs) and the end-to-end `encode_structures` path (files → tokens).
Without --checkpoint it uses a freshly initialised encoder at the reference configuration (hidden 100×3,
16 heads, 40 codes, embedding 128, transformer convs, concat_positions): speed does not depend on the weights.

    python bench/bench_encode.py [--checkpoint CKPT] [--batch-size 16] [--threads 2] [--repeats 2]

Writes bench/results/bench_encode.json and prints it.
"""
import argparse
import os
import platform
import sys
from pathlib import Path

import torch

from foldtree2.structures import AFDB_RRNPPA

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # the repository root: `bench.common`
from bench.common import result_path, timed, write_json
DATA = AFDB_RRNPPA


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--checkpoint', default=None)
    p.add_argument('--data', default=str(DATA))
    p.add_argument('--batch-size', type=int, default=16)
    p.add_argument('--threads', type=int, default=min(2, os.cpu_count() or 1))
    p.add_argument('--repeats', type=int, default=2, help='inference repeats (best is reported)')
    p.add_argument('--out', default=str(result_path('bench_encode')))
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    from foldtree2.alphabet import LoadedModel, encode_items, encode_structures, iter_graphs, load_model
    files = sorted(Path(a.data).glob('*.pdb.gz'))
    if not files: raise SystemExit(f'{a.data}: no *.pdb.gz files')

    errors = {}
    with timed() as t: items = list(iter_graphs(files, errors))
    t_graph = t.wall
    residues = sum(it.graph['res'].x.shape[0] for it in items)

    if a.checkpoint:
        model = load_model(a.checkpoint, 'cpu'); what = a.checkpoint
    else:
        from foldtree2.encoder import mk1_Encoder
        torch.manual_seed(0)
        enc = mk1_Encoder(in_channels=items[0].graph['res'].x.shape[1], hidden_channels=[100, 100, 100],
                          out_channels=128, num_embeddings=40, nheads=16, conv='transformer',
                          concat_positions=True, EMA=True).eval()
        model = LoadedModel(enc, None, {}, torch.device('cpu')); what = 'untrained encoder, reference configuration'
    encode_items(model, items[:2], batch_size=2, progress=False)          # warm-up
    t_inf = []
    for _ in range(a.repeats):
        with timed() as t: out = encode_items(model, items, batch_size=a.batch_size, progress=False)
        t_inf.append(t.wall)
    assert out.residues == residues and not out.errors

    with timed() as t:
        if a.checkpoint: enc = encode_structures(a.checkpoint, files, a.batch_size, 'cpu', progress=False)
        else: enc = encode_items(model, iter_graphs(files, {}), batch_size=a.batch_size, progress=False)
    e2e = t.wall
    if a.checkpoint: assert enc.residues == residues

    res = {
        'model': what, 'params_encoder': sum(p.numel() for p in model.encoder.parameters()),
        'structures': len(items), 'residues': residues, 'batch_size': a.batch_size, 'torch_threads': a.threads,
        'graph_construction_s': round(t_graph, 3), 'graph_construction_residues_per_s': round(residues / t_graph, 1),
        'inference_s_best': round(min(t_inf), 3), 'inference_residues_per_s': round(residues / min(t_inf), 1),
        'end_to_end_s': round(e2e, 3), 'end_to_end_residues_per_s': round(residues / e2e, 1),
        'cpu': platform.processor() or platform.machine(), 'torch': torch.__version__,
        'note': 'shared 2-core machine during development; re-run on a quiet machine for final numbers',
    }
    write_json(a.out, res)


if __name__ == '__main__':
    main()
