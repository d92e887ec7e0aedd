"""foldtree2.alphabet: character mapping, FASTA round trip, per-file errors, encoding real structures."""
from pathlib import Path

import numpy as np
import pytest

from foldtree2.alphabet import (MAX_TOKENS, RESERVED_CHARS, read_fasta, read_residue_table, residue_rows,
                                string_to_tokens, token_chars, tokens_to_string, write_fasta, write_mafft_hex,
                                write_residue_table)

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
