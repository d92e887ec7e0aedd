"""foldtree2.tree / foldtree2-tree on real structures: every engine gives a rooted tree with all ids as leaves,
the NJ fallback when the alphabet exceeds an engine's states, the missing-binary message, tree distances."""
import itertools
from pathlib import Path

import dendropy
import numpy as np
import pytest

from foldtree2.structures import AFDB_RRNPPA as AFDB
from foldtree2.tree import (ENGINE_STATES, MissingBinaryError, align_tokens, find_binary, leaf_labels, quartet_distance,
                            read_text_matrix, rf_distance, token_tree)
from foldtree2.cli import tree as tree_cli

FILES = sorted(AFDB.glob('*.pdb.gz'))[:6]


def _checkpoint(path, K):
    "A checkpoint exactly as foldtree2.train writes it (random weights: the machinery, not the tree, is under test)."
    import torch
    from foldtree2.alphabet import iter_graphs
    from foldtree2.decoders import build_model
    from foldtree2.engine import save_checkpoint
    from foldtree2.train import default_config
    g = next(iter_graphs(FILES[:1], {})).graph
    cfg = {**default_config(), 'hidden_channels': [16, 16], 'nheads': 2, 'embedding_dim': 16, 'num_embeddings': K, 'EMA': False}
    torch.manual_seed(0)
    enc, dec = build_model({**cfg, 'in_channels': g['res'].x.shape[1]})
    return save_checkpoint(path, {'model': {'encoder': enc.state_dict(), 'decoder': dec.state_dict()}, 'config': cfg,
                                  'in_channels': g['res'].x.shape[1], 'kind': 'final'})


@pytest.fixture(scope='module')
def encoded(tmp_path_factory):
    from foldtree2.alphabet import encode_items, iter_graphs, load_model
    d = tmp_path_factory.mktemp('ck')
    items = list(iter_graphs(FILES, {}))
    return {K: encode_items(load_model(_checkpoint(d / f'k{K}.pt', K)), items, progress=False) for K in (20, 40)}, d


def _is_rooted_binary_root(newick):
    t = dendropy.Tree.get(data=newick, schema='newick', preserve_underscores=True)
    return len(t.seed_node.child_nodes()) == 2


@pytest.mark.parametrize('engine', ['iqtree', 'raxml', 'fasttree', 'nj'])
def test_every_engine_gives_a_rooted_tree_of_all_ids(encoded, engine):
    enc = encoded[0][20]
    r = token_tree(enc, engine=engine)
    assert sorted(leaf_labels(r.newick)) == sorted(enc.tokens) and len(enc.tokens) == len(FILES)
    assert _is_rooted_binary_root(r.newick)
    assert not r.fallback
    assert {'iqtree': 'IQ-TREE MORPH', 'raxml': 'RAxML MULTIGAMMA', 'fasttree': 'FastTree F81', 'nj': 'NJ'}[engine] in r.method


@pytest.mark.parametrize('engine', ['iqtree', 'raxml', 'fasttree'])
def test_alphabet_larger_than_engine_falls_back_to_nj(encoded, engine):
    enc = encoded[0][40]
    r = token_tree(enc, engine=engine)
    limit = len(ENGINE_STATES[engine])
    assert r.fallback and r.method.startswith('NJ') and f'K=40 exceeds the {limit} states {engine} accepts' in r.method
    assert sorted(leaf_labels(r.newick)) == sorted(enc.tokens)


def test_fasttree_limit_is_20_but_iqtree_takes_32(encoded):
    toks = {k: v % 24 for k, v in encoded[0][40].tokens.items()}      # real token strings folded onto 24 codes
    assert token_tree(toks, 24, engine='fasttree').fallback
    assert not token_tree(toks, 24, engine='iqtree', fast=True).fallback


def test_famsa_and_matrix_paths(encoded, tmp_path):
    from foldtree2.alphabet import token_chars
    from foldtree2.submat import SubMatrix, save_submat
    enc = encoded[0][20]
    S = np.full((20, 20), -1); np.fill_diagonal(S, 5)
    m = save_submat(SubMatrix(''.join(token_chars(20)), S, np.full(20, 0.05)), tmp_path / 'm.submat.txt')
    assert read_text_matrix(m, 20).shape == (20, 20)
    for aligner in ('mafft', 'famsa'):
        aln = align_tokens(enc.tokens, 20, aligner, matrix=m)
        for k, row in aln.items():
            np.testing.assert_array_equal(row[row >= 0], enc.tokens[k])
    r = token_tree(enc, engine='nj', aligner='famsa', matrix=m)
    assert sorted(leaf_labels(r.newick)) == sorted(enc.tokens)


def test_cli_from_structures_with_comparisons(encoded, tmp_path, capsys):
    ck = encoded[1] / 'k20.pt'
    out = tmp_path / 'run'
    rc = tree_cli(['-c', str(ck), *map(str, FILES), '-o', str(out), '--engine', 'fasttree', '--compare-aa', 'fasttree', '--compare-tm'])
    assert rc == 0
    printed = capsys.readouterr()
    assert 'tokens vs aa: RF' in printed.out and 'tokens vs tm: RF' in printed.out and 'aa vs tm: RF' in printed.out
    assert 'tree path: FastTree' in printed.err
    ids = sorted(encoded[0][20].tokens)
    for suffix in ('.nwk', '.aa.nwk', '.tm.nwk'):
        assert sorted(leaf_labels(Path(f'{out}{suffix}').read_text())) == ids
    assert Path(f'{out}.png').stat().st_size > 5000 and Path(f'{out}.tokens.fa').exists() and Path(f'{out}.aln.fa').exists()
    rc = tree_cli(['-c', str(encoded[1] / 'k40.pt'), *map(str, FILES), '-o', str(tmp_path / 'fb'), '--engine', 'raxml', '--no-png'])
    assert rc == 0 and 'tree path: FALLBACK NJ' in capsys.readouterr().err


def test_missing_binary_names_the_debian_package(encoded, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv('PATH', str(tmp_path))                  # an empty directory: no tool on PATH
    for tool, pkg in (('mafft', 'mafft'), ('iqtree', 'iqtree'), ('raxml', 'raxml'), ('fasttree', 'fasttree')):
        with pytest.raises(MissingBinaryError, match=f'apt-get install {pkg}'):
            find_binary(tool)
    fa = tmp_path / 't.fa'
    encoded[0][20].write_fasta(fa)
    assert tree_cli(['--tokens', str(fa), '-o', str(tmp_path / 'x'), '--no-png']) == 2
    assert 'apt-get install mafft' in capsys.readouterr().err


def test_tree_distances_on_hand_built_trees():
    # 4 leaves: the three resolved quartet topologies; any two differ in the single quartet and in both splits.
    a, b, c = '((x,y),(z,w));', '((x,z),(y,w));', '((x,w),(y,z));'
    for s, t in itertools.combinations((a, b, c), 2):
        assert quartet_distance(s, t) == (1, 1.0) and rf_distance(s, t) == (2, 1.0)
    # caterpillar (((a,b),c),d),e) vs (((a,b),d),c),e): quartets {a,b,c,d} same (ab|cd), {a,c,d,e}: ac|de vs ad|ce,
    # {b,c,d,e} likewise, {a,b,c,e} and {a,b,d,e}: ab|.. in both -> 2 of 5 differ; RF: splits abc|de vs abd|ce -> 2.
    t1, t2 = '((((a,b),c),d),e);', '((((a,b),d),c),e);'
    assert quartet_distance(t1, t2) == (2, 0.4)
    assert rf_distance(t1, t2) == (2, 0.5)
    assert quartet_distance(t1, '(b,(a,(c,(d,e))));') == (0, 0.0)        # same unrooted tree, other rooting
