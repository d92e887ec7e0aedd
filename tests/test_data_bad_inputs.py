"""Bad inputs, interrupted builds and the HDF5 round trip of `pdbs-to-graphs` / foldtree2.data.

The corpus in tests/bad_inputs/ was cut from real files (mdanalysistests, the AFDB models) except
`nucleic_only.pdb` (a hand-written DNA fragment), `binary.pdb` (seeded random bytes) and `empty.pdb`.
Unreadable files and dangling links are made at test time."""
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from foldtree2.data import StructureDataset, build_store, count_committed
from foldtree2.features import graph_from_arrays
from foldtree2.structures import AFDB_RRNPPA, UPSTREAM_H5, StructureError, read_structure

ROOT = Path(__file__).resolve().parents[1]
BAD = ROOT / 'tests' / 'bad_inputs'
AFDB, UPSTREAM = AFDB_RRNPPA, UPSTREAM_H5
CLI = [sys.executable, '-c', 'import sys; from foldtree2.cli import pdbs_to_graphs; sys.exit(pdbs_to_graphs())']

EXPECTED = {  # file -> words the reason must contain
    'empty.pdb': 'empty file',
    'truncated.pdb.gz': 'cannot read/decompress',
    'binary.pdb': 'binary content',
    'ca_only.pdb': 'CA-only',
    'nucleic_only.pdb': 'not a protein (Dna)',
    'ligand_only.pdb': 'no protein chain',
    'one_residue.pdb': '1 residue(s)',
    'not_a_structure.pdb': 'no ATOM/HETATM records',
}


@pytest.mark.parametrize('name', sorted(EXPECTED))
def test_bad_file_raises_clear_error(name):
    with pytest.raises(StructureError) as ei:
        read_structure(BAD / name)
    assert EXPECTED[name] in ei.value.reason
    assert name in str(ei.value)            # the message names the file


def test_corpus_is_complete():
    assert sorted(p.name for p in BAD.iterdir()) == sorted(EXPECTED)


def test_too_long_with_max_residues():
    f = AFDB / 'A0A060M707.pdb.gz'           # 364 residues
    with pytest.raises(StructureError, match='364 residues > --max-residues 300'):
        read_structure(f, max_residues=300)
    assert len(read_structure(f, max_residues=400)[0]) == 364


def run_cli(*args, timeout=300):
    return subprocess.run(CLI + [str(a) for a in args], capture_output=True, text=True, timeout=timeout)


def test_build_reports_every_bad_file_and_keeps_the_rest(tmp_path):
    inp = tmp_path / 'in'; inp.mkdir()
    for p in BAD.iterdir(): shutil.copy(p, inp / p.name)
    good = ['A0A075RAN3.pdb.gz', 'A0A060M707.pdb.gz']
    for g in good: shutil.copy(AFDB / g, inp / g)
    unreadable = inp / 'unreadable.pdb.gz'
    shutil.copy(AFDB / 'A0A075RAN3.pdb.gz', unreadable); unreadable.chmod(0)
    (inp / 'dangling.pdb').symlink_to(tmp_path / 'does_not_exist.pdb')
    out = tmp_path / 'out.h5'
    r = run_cli(inp, '-o', out, '-j', '2', '--max-residues', '300', '-q')
    assert r.returncode == 1, r.stderr
    failed = {l.split(': ', 1)[0].split('FAILED ', 1)[1]: l.split(': ', 1)[1]
              for l in r.stderr.splitlines() if l.strip().startswith('FAILED')}
    names = {Path(k).name: v for k, v in failed.items()}
    for name, words in EXPECTED.items():
        assert words in names[name], (name, names.get(name))
    assert '364 residues > --max-residues 300' in names['A0A060M707.pdb.gz']
    assert 'not found' in names['dangling.pdb']
    ds = StructureDataset(out)
    if os.geteuid() == 0:
        # root reads chmod-000 files, so no permission error can be produced here: the file is simply built
        assert 'unreadable.pdb.gz' not in names, names.get('unreadable.pdb.gz')
        assert 'unreadable_A' in ds.ids
    else:
        assert 'permission denied' in names['unreadable.pdb.gz']
    assert 'A0A075RAN3_A' in ds.ids
    assert ds.get('A0A075RAN3_A').sequence == read_structure(AFDB / 'A0A075RAN3.pdb.gz')[0].sequence
    assert 'failed' in r.stderr  # the summary line


def kill_build_after(cmd, out, at_least, extra_delay=0.0):
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.time()
    while time.time() - t0 < 120:
        n = count_committed(out)
        if n is not None and n >= at_least: break
        if p.poll() is not None: break
        time.sleep(0.005)
    time.sleep(extra_delay)
    os.kill(p.pid, signal.SIGKILL); p.wait()
    return p.returncode


def test_interrupted_build_resumes(tmp_path):
    files = sorted(AFDB.glob('*.pdb.gz'))
    out = tmp_path / 'afdb.h5'
    cmd = CLI + [str(AFDB), '-o', str(out), '-j', '1', '-q']
    rc = kill_build_after(cmd, out, at_least=3)
    assert rc == -signal.SIGKILL
    ds = StructureDataset(out)                 # a valid file with every finished structure
    n1 = len(ds)
    assert 3 <= n1 < len(files)
    for sid in ds.ids:                         # every stored structure is complete and correct
        src = AFDB / (sid.rsplit('_', 1)[0] + '.pdb.gz')
        assert ds.get(sid).sequence == read_structure(src)[0].sequence
    ds.close()
    # second interruption at an arbitrary moment (possibly mid-write), then resume to the end
    kill_build_after(cmd, out, at_least=n1 + 1, extra_delay=np.random.default_rng(0).uniform(0, 0.05))
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert 'already stored' in r.stdout
    ds = StructureDataset(out)
    assert len(ds) == len(files) and len(set(ds.ids)) == len(files)
    for sid in ds.ids:
        src = AFDB / (sid.rsplit('_', 1)[0] + '.pdb.gz')
        ref = read_structure(src)[0]
        a = ds.arrays(sid)
        assert a['sequence'] == ref.sequence and np.array_equal(a['coords'], ref.coords)
    # a third run has nothing to do
    r = run_cli(AFDB, '-o', out, '-q')
    assert r.returncode == 0 and f'0 file(s) written' in r.stdout and f'{len(files)} already stored' in r.stdout


NODE_TYPES = {'res', 'AA', 'bondangles', 'plddt', 'coords', 'R_true', 't_true', 'positions', 'fourier1dr',
              'fourier1di', 'fourier2dr', 'fourier2di', 'ss', 'godnode', 'godnode4decoder'}
EDGE_TYPES = {('res', r, 'res') for r in ('contactPoints', 'backbone', 'backbonerev', 'window', 'windowrev', 'hbond')} | {
    ('godnode', 'informs', 'res'), ('res', 'informs', 'godnode'),
    ('godnode4decoder', 'informs', 'res'), ('res', 'informs', 'godnode4decoder')}


def check_schema(g):
    N = g['coords'].x.shape[0]
    assert set(g.node_types) == NODE_TYPES and set(g.edge_types) == EDGE_TYPES
    shapes = {'AA': (N, 20), 'bondangles': (N, 3), 'plddt': (N, 1), 'coords': (N, 3), 'R_true': (N, 3, 3),
              't_true': (N, 3), 'positions': (N, 256), 'fourier1dr': (N, 80), 'fourier1di': (N, 80),
              'fourier2dr': (1, 1300), 'fourier2di': (1, 1300), 'ss': (N, 3), 'godnode': (1, 5),
              'godnode4decoder': (1, 5)}
    for t, s in shapes.items():
        assert tuple(g[t].x.shape) == s, t
        assert g[t].x.dtype == torch.float32, t
    assert g['res'].x.shape[0] == N and g['res'].x.dtype == torch.float32
    assert g['bondangles'].mask.shape == (N, 3) and g['bondangles'].mask.dtype == torch.bool
    for et in g.edge_types:
        ei = g[et].edge_index
        assert ei.dtype == torch.int64 and ei.shape[0] == 2
        if 'edge_attr' in g[et]:
            assert g[et].edge_attr.shape == (ei.shape[1], 1) and g[et].edge_attr.dtype == torch.float32, et
    assert isinstance(g.identifier, str) and isinstance(g.sequence, str) and len(g.sequence) == N


def test_hdf5_round_trip_into_schema(tmp_path):
    files = [AFDB / 'A0A075RAN3.pdb.gz', AFDB / 'A0A060M707.pdb.gz']
    out = tmp_path / 'rt.h5'
    r = run_cli(*files, '-o', out, '--radius', '12', '-q')
    assert r.returncode == 0, r.stderr
    ds = StructureDataset(out)
    assert ds.radius == 12.0
    for f in files:
        c = read_structure(f)[0]
        g = ds.get(c.name)
        check_schema(g)
        direct = graph_from_arrays(c.coords, c.sequence, c.plddt, identifier=c.name, radius=12.0)
        for t in g.node_types:
            assert torch.equal(g[t].x, direct[t].x), t
        for et in g.edge_types:
            assert torch.equal(g[et].edge_index, direct[et].edge_index), et
        assert g['res', 'contactPoints', 'res'].edge_attr.max() < 12
    # the upstream (original foldtree2) layout loads into the same node/edge types
    up = StructureDataset(UPSTREAM)
    assert len(up) == 2
    for g in up:
        assert set(g.node_types) == NODE_TYPES and set(g.edge_types) == EDGE_TYPES
        for et in g.edge_types:
            if 'edge_attr' in g[et]: assert g[et].edge_attr.shape == (g[et].edge_index.shape[1], 1)
        assert len(g.sequence) == g['coords'].x.shape[0]
