"""foldtree2.alphabet: character mapping, FASTA round trip, per-file errors, encoding real structures."""
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from foldtree2.alphabet import (MAX_TOKENS, RESERVED_CHARS, read_fasta, read_residue_table, residue_rows,
                                string_to_tokens, token_chars, tokens_to_string, write_fasta, write_mafft_hex,
                                write_residue_table)
from foldtree2.structures import AFDB_RRNPPA as AFDB

# The original foldtree2 table (DessimozLab/foldtree2, foldtree2/src/encoder.py encode_structures_fasta):
# token k -> chr(k+1) except these characters, written as the given code points.
ORIGINAL_REMAP = {'\x00': 0xF6, '"': 0xF8, '#': 0xF7, '>': 0xF9, '=': 0xFA, '<': 0xFB, '-': 0xFC, ' ': 0xFD,
                  '\r': 0xFE, '\n': 0xFF}
RESERVED_BYTES = set(b'\x00"#><=- \r\n')


def original_char(k: int) -> str:
    c = chr(k + 1)
    return chr(ORIGINAL_REMAP[c]) if c in ORIGINAL_REMAP else c


def test_mapping_matches_original_and_is_a_bijection_for_every_k():
    for K in range(1, MAX_TOKENS + 1):
        chars = token_chars(K)
        assert chars == [original_char(k) for k in range(K)]
        assert len(set(chars)) == K, K
        assert not set(chars) & RESERVED_CHARS
        assert all(1 <= ord(c) <= 0xFF for c in chars)
    with pytest.raises(ValueError, match='1..246'):
        token_chars(MAX_TOKENS + 1)


@pytest.mark.parametrize('K', [2, 20, 40, 64, 128, 193, 246])
@pytest.mark.parametrize('encoding', ['latin-1', 'utf-8'])
def test_fasta_round_trip_and_no_reserved_bytes(tmp_path, K, encoding):
    rng = np.random.default_rng(K)
    recs = {f'prot_{i}': rng.integers(0, K, size=int(rng.integers(1, 500))) for i in range(30)}
    recs['every_code'] = np.arange(K)
    path = write_fasta(recs, tmp_path / 'x.fa', num_embeddings=K, encoding=encoding)
    back = read_fasta(path, num_embeddings=K, encoding='auto' if K <= 193 else encoding)
    assert list(back) == list(recs)
    for k, v in recs.items():
        np.testing.assert_array_equal(back[k], v)
    body = [l for l in path.read_bytes().split(b'\n') if l and not l.startswith(b'>')]
    if encoding == 'latin-1':
        assert [len(l) for l in body] == [len(v) for v in recs.values()]   # one byte per residue
        assert not RESERVED_BYTES & set(b''.join(body))
    else:
        assert not RESERVED_BYTES & set(b''.join(body).decode('utf-8').encode('latin-1'))


def test_reader_errors_name_file_and_record(tmp_path):
    p = tmp_path / 'bad.fa'
    for text, msg in [('>a\n\x01\n>a\n\x02\n', "duplicate identifier 'a'"), ('\x01\x02\n', 'before the first'),
                      ('>a\n', "record 'a' has no residues"), ('>\n\x01\n', 'empty identifier'),
                      ('>a\n\x01 \x02\n', "record 'a'")]:
        p.write_text(text, encoding='latin-1')
        with pytest.raises(ValueError, match=msg) as e:
            read_fasta(p)
        assert str(p) in str(e.value)
    p.write_text('>a\n\x01\x02\x29\n', encoding='latin-1')          # token 40 in a 40-code alphabet
    with pytest.raises(ValueError, match='40-code'):
        read_fasta(p, num_embeddings=40)
    with pytest.raises(FileNotFoundError):
        read_fasta(tmp_path / 'missing.fa')


def test_control_characters_are_tokens_and_wrapped_records_join(tmp_path):
    p = tmp_path / 'w.fa'
    p.write_bytes(b'>first\r\n\x01\t\x0b\x0c\r\n\x02\n>last\n\xff\xfe')
    back = read_fasta(p)
    np.testing.assert_array_equal(back['first'], [0, 8, 10, 11, 1])
    np.testing.assert_array_equal(back['last'], [9, 12])


def test_gapped_reading_and_mafft_hex(tmp_path):
    p = tmp_path / 'aln.fa'
    p.write_bytes(b'>a\n\x01--\xff\n>b\n\x02\x03\x04\xfe\n')
    back = read_fasta(p, gaps=True)
    np.testing.assert_array_equal(back['a'], [0, -1, -1, 9])
    h = write_mafft_hex({'a': [0, 9, 12, 44, 245]}, tmp_path / 'a.hex').read_text()
    assert h == '>a\n01 ff fe fc f6\n'


def test_residue_table_round_trip(tmp_path):
    toks = np.array([3, 9, 0])
    rows = residue_rows('x', toks, sequence='MKV', resnums=[5, 6, 8])
    back = read_residue_table(write_residue_table(rows, tmp_path / 't.tsv'))
    assert [(r['id'], r['resnum'], r['aa'], r['token'], r['char_hex']) for r in back] == \
           [('x', '5', 'M', 3, '04'), ('x', '6', 'K', 9, 'ff'), ('x', '8', 'V', 0, '01')]
    with pytest.raises(ValueError, match='3 tokens but sequence of 2'):
        residue_rows('x', toks, sequence='MK')


# ---- encoding real structures with a checkpoint in the trainer's format --------------------------------------------
TINY = {'hidden_channels': [16, 16], 'nheads': 2, 'embedding_dim': 16, 'num_embeddings': 40, 'EMA': False,
        'conv': 'transformer', 'concat_positions': True}


@pytest.fixture(scope='module')
def tiny_checkpoint(tmp_path_factory):
    "A checkpoint exactly as foldtree2.train writes it (model.encoder/decoder state, config, in_channels)."
    import torch
    from foldtree2.alphabet import iter_graphs
    from foldtree2.decoders import build_model
    from foldtree2.engine import save_checkpoint
    from foldtree2.train import default_config
    g = next(iter_graphs(sorted(AFDB.glob('*.pdb.gz'))[:1], {})).graph
    cfg = {**default_config(), **TINY}
    torch.manual_seed(0)
    enc, dec = build_model({**cfg, 'in_channels': g['res'].x.shape[1]})
    path = tmp_path_factory.mktemp('ckpt') / 'final.pt'
    save_checkpoint(path, {'model': {'encoder': enc.state_dict(), 'decoder': dec.state_dict()}, 'config': cfg,
                           'in_channels': g['res'].x.shape[1], 'kind': 'final'})
    return path


def test_encode_cli_real_structures_with_bad_files(tmp_path, tiny_checkpoint):
    from foldtree2.alphabet import encode_structures
    from foldtree2.cli import encode as encode_cli
    d = tmp_path / 'in'; d.mkdir()
    files = sorted(AFDB.glob('*.pdb.gz'))[:3]
    for f in files: (d / f.name).write_bytes(f.read_bytes())
    (d / 'broken.pdb').write_text('HEADER    nothing here\nEND\n')
    (d / 'truncated.pdb.gz').write_bytes(files[0].read_bytes()[:200])
    out = tmp_path / 'tok.fa'
    rc = encode_cli([str(tiny_checkpoint), str(d), '-o', str(out), '--table', str(tmp_path / 't.tsv'),
                     '--hex', str(tmp_path / 't.hex'), '--no-progress', '-bs', '2'])
    assert rc == 1                                           # some inputs failed, the rest was written
    errs = (tmp_path / 'tok.fa.errors.tsv').read_text()
    assert 'broken.pdb' in errs and 'truncated.pdb.gz' in errs
    back = read_fasta(out, num_embeddings=40)
    assert sorted(back) == sorted(f.name.split('.')[0] + '_A' for f in files)
    api = encode_structures(tiny_checkpoint, [str(f) for f in files], batch_size=3, progress=False)
    for k, v in api.tokens.items():
        np.testing.assert_array_equal(back[k], v)
        assert len(v) == len(api.sequences[k])
    body = b''.join(l for l in out.read_bytes().split(b'\n') if not l.startswith(b'>'))
    assert not RESERVED_BYTES & set(body) and len(body) == api.residues
    rows = read_residue_table(tmp_path / 't.tsv')
    assert len(rows) == api.residues and {r['aa'] for r in rows} <= set('ACDEFGHIKLMNPQRSTVWYX')
    assert (tmp_path / 't.hex').read_text().count('>') == 3


def test_encode_from_hdf5_matches_files_and_nothing_encodable_exits_2(tmp_path, tiny_checkpoint):
    from foldtree2.alphabet import encode_structures
    from foldtree2.cli import encode as encode_cli
    from foldtree2.data import build_store
    files = sorted(AFDB.glob('*.pdb.gz'))[3:5]
    build_store(files, tmp_path / 's.h5', progress=False)
    a = encode_structures(tiny_checkpoint, tmp_path / 's.h5', progress=False)
    b = encode_structures(tiny_checkpoint, [str(f) for f in files], progress=False)
    assert sorted(a.tokens) == sorted(b.tokens)
    for k in a.tokens:
        np.testing.assert_array_equal(a.tokens[k], b.tokens[k])
    (tmp_path / 'junk.pdb').write_text('not a structure\n')
    assert encode_cli([str(tiny_checkpoint), str(tmp_path / 'junk.pdb'), '-o', str(tmp_path / 'x.fa'), '--no-progress']) == 2
    assert not (tmp_path / 'x.fa').exists()
    with pytest.raises(FileNotFoundError):
        encode_structures(tiny_checkpoint, str(tmp_path / 'nomatch_*.pdb'), progress=False)


def test_decode_tokens_predictions(tiny_checkpoint):
    from foldtree2.alphabet import decode_tokens, load_model
    m = load_model(tiny_checkpoint)
    preds = decode_tokens(m, [np.array([0, 5, 9, 39, 12]), np.arange(40)])
    assert len(preds) == 2
    for p, L in zip(preds, (5, 40)):
        assert p['aa_logits'].shape == (L, 20)
        for k, shape in (('ss_logits', (L, 3)), ('contact_prob', (L, L))):
            if k in p: assert p[k].shape == shape
        if 'angles' in p: assert p['angles'].shape[0] == L
    with pytest.raises(ValueError, match='outside'):
        decode_tokens(m, [np.array([40])])


MAFFT_LIBEXEC = [Path('/usr/lib/mafft/lib/mafft'), Path('/usr/libexec/mafft'), Path('/usr/local/libexec/mafft')]


@pytest.mark.skipif(shutil.which('mafft') is None, reason='mafft not installed (apt-get install mafft)')
def test_mafft_text_mode_aligns_our_fasta_and_hex_tools_agree(tmp_path):
    """MAFFT --text reads the LATIN-1 FASTA (all 246 codes, every remapped one included); the gapped output reads
    back to the same tokens; MAFFT's hex2maffttext turns our hex file into exactly our FASTA."""
    rng = np.random.default_rng(1)
    recs = {f's{i}': np.concatenate([np.arange(MAX_TOKENS), rng.integers(0, MAX_TOKENS, 60)])[rng.permutation(MAX_TOKENS + 60)]
            for i in range(4)}
    fa = write_fasta(recs, tmp_path / 'x.fa')
    aln = subprocess.run(['mafft', '--text', '--quiet', '--thread', '1', str(fa)], capture_output=True, check=True).stdout
    (tmp_path / 'x.aln').write_bytes(aln)
    back = read_fasta(tmp_path / 'x.aln', gaps=True)
    assert sorted(back) == sorted(recs)
    for k, v in recs.items():
        np.testing.assert_array_equal(back[k][back[k] >= 0], v)
    tool = next((d / 'hex2maffttext' for d in MAFFT_LIBEXEC if (d / 'hex2maffttext').exists()), None)
    if tool is not None:
        hx = write_mafft_hex(recs, tmp_path / 'x.hex')
        assert subprocess.run([str(tool), str(hx)], capture_output=True, check=True).stdout == fa.read_bytes()
