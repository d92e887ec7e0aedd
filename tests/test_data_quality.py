"""Data quality of foldtree2.data on real structures: graph sequences equal the files' ATOM-record sequences
(read independently with Biopython), 3-state DSSP agrees with the mkdssp reference files shipped in
mdanalysistests on >= 95% of residues, and backbone dihedrals agree with MDAnalysis to 1e-3 rad."""
import warnings
from pathlib import Path

import MDAnalysisTests
import numpy as np
import pytest
from Bio.Data.PDBData import protein_letters_3to1_extended
from Bio.PDB import PDBParser
from Bio.PDB.Polypeptide import is_aa

from foldtree2.data import StructureDataset, build_store
from foldtree2.features import dssp3
from foldtree2.structures import AA_ORDER, AFDB_RRNPPA, UPSTREAM_H5

ROOT = Path(__file__).resolve().parents[1]
AFDB = AFDB_RRNPPA
DSSP_DIR = Path(MDAnalysisTests.__file__).parent / 'data' / 'dssp'
AF_FILES = sorted(AFDB.glob('*.pdb.gz'))
DSSP_FILES = sorted(p for p in DSSP_DIR.glob('*.pdb.gz') if (DSSP_DIR / (p.name[:-3] + '.dssp')).exists())
M3 = {'H': 0, 'G': 0, 'I': 0, 'E': 1, 'B': 1}   # DSSP 8 states -> 0 helix, 1 strand, 2 loop


def stem(p): return p.name[:-len('.pdb.gz')]


@pytest.fixture(scope='module')
def stores(tmp_path_factory):
    d = tmp_path_factory.mktemp('quality')
    assert len(AF_FILES) == 32 and len(DSSP_FILES) >= 45
    rep_af = build_store(AF_FILES, d / 'af.h5', workers=2, progress=False)
    rep_ex = build_store(DSSP_FILES, d / 'dssp.h5', mode='experimental', workers=2, progress=False)
    assert rep_af.ok and rep_ex.ok, (rep_af.summary(), rep_ex.summary())
    return StructureDataset(d / 'af.h5'), StructureDataset(d / 'dssp.h5')


def biopython_sequences(path):
    "chain id -> one-letter sequence of the first model's amino-acid residues with N, CA, C and O (Biopython)."
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        import gzip
        with (gzip.open(path, 'rt') if str(path).endswith('.gz') else open(path)) as fh:
            s = PDBParser(QUIET=True).get_structure('x', fh)
    out = {}
    for ch in next(iter(s)):
        seq = ''
        for r in ch:
            if r.id[0] == 'W' or not is_aa(r, standard=False): continue
            if not all(a in r for a in ('N', 'CA', 'C', 'O')): continue
            c = protein_letters_3to1_extended.get(r.get_resname().upper(), 'X')
            seq += c if c in AA_ORDER else 'X'
        if seq: out[ch.id] = seq
    return out


@pytest.mark.parametrize('which', ['afdb', 'dssp'])
def test_graph_sequences_equal_atom_records(stores, which):
    ds, files = (stores[0], AF_FILES) if which == 'afdb' else (stores[1], DSSP_FILES)
    n = 0
    for f in files:
        for chain_id, ref in biopython_sequences(f).items():
            if len(ref) < 2: continue
            g = ds.get(f'{stem(f)}_{chain_id}')
            assert g.sequence == ref, f'{f.name} chain {chain_id}'
            # the one-hot labels are aligned with the same residues
            aa = ''.join(AA_ORDER[i] if row.sum() > 0 else 'X' for i, row in zip(g['AA'].x.argmax(1), g['AA'].x))
            assert aa == ref
            assert g['coords'].x.shape[0] == len(ref)
            n += 1
    assert n == len(files)   # every file has exactly one protein chain in these sets


def test_plddt_from_bfactor(stores):
    ds = stores[0]
    import gzip
    f = AF_FILES[0]
    ca_b = [float(l[60:66]) / 100 for l in gzip.open(f, 'rt') if l.startswith('ATOM') and l[12:16] == ' CA ']
    np.testing.assert_allclose(ds.get(f'{stem(f)}_A')['plddt'].x[:, 0].numpy(), ca_b, atol=1e-6)
    assert (stores[1][0]['plddt'].x == 1).all()


def test_dssp_agreement_with_mkdssp(stores):
    ds = stores[1]
    agree = total = same = 0
    for f in DSSP_FILES:
        ref = np.array([M3.get(c, 2) for c in (DSSP_DIR / (f.name[:-3] + '.dssp')).read_text().split()[0]])
        sid = next(k for k in ds.ids if k.startswith(stem(f) + '_'))
        a = ds.arrays(sid)
        assert len(ref) == len(a['sequence']), f.name
        ss = dssp3(a['coords'], a['sequence'])
        # the graph's one-hot ss is the same assignment
        assert (ds.get(sid)['ss'].x.argmax(1).numpy() == ss).all()
        import pydssp
        stock = np.array([2, 0, 1])[pydssp.assign(a['coords'], out_type='index')]   # pydssp: 0 loop, 1 H, 2 E
        agree += int((ss == ref).sum()); total += len(ref); same += int((ss == stock).sum())
    frac = agree / total
    print(f'DSSP 3-state agreement with mkdssp: {frac:.4f} over {total} residues in {len(DSSP_FILES)} chains; '
          f'identical to pydssp.assign on {same}/{total}')
    assert frac >= 0.95
    assert same / total > 0.999


def _wrap(x): return np.angle(np.exp(1j * x))


@pytest.mark.parametrize('which', ['afdb', 'dssp'])
def test_dihedrals_match_mdanalysis(stores, which):
    import MDAnalysis as mda
    from MDAnalysis.analysis.dihedrals import Dihedral, Ramachandran
    ds, files = (stores[0], AF_FILES[:8]) if which == 'afdb' else (stores[1], DSSP_FILES)
    worst, n = 0.0, 0
    for f in files:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            u = mda.Universe(str(f))
            prot = u.select_atoms('protein and not name H*')
            rama = Ramachandran(prot).run()
            omega_groups = [r.omega_selection() for r in prot.residues]
            omega_res = [r for r, g in zip(prot.residues, omega_groups) if g is not None]
            omega = Dihedral([g for g in omega_groups if g is not None]).run()
        sid = next(k for k in ds.ids if k.startswith(stem(f) + '_'))
        a = ds.arrays(sid); g = ds.get(sid)
        ang, mask = g['bondangles'].x.numpy(), g['bondangles'].mask.numpy()
        row = {(int(r), ic.strip()): k for k, (r, ic) in enumerate(zip(a['resnums'], a['icodes']))}
        def compare(residues, ref, col):
            nonlocal worst, n
            for r, v in zip(residues, ref):
                k = row.get((int(r.resid), str(r.icode).strip()))
                if k is None or not mask[k, col]: continue   # not stored (no full backbone) / across a chain break
                e = abs(_wrap(ang[k, col] - np.radians(v)))
                worst = max(worst, e); n += 1
                assert e < 1e-3, f'{f.name} residue {r.resid}{r.icode} angle {col}: {ang[k, col]} vs {np.radians(v)}'
        compare(rama.ag2.residues, rama.results.angles[0, :, 0], 0)
        compare(rama.ag2.residues, rama.results.angles[0, :, 1], 1)
        compare(omega_res, omega.results.angles[0], 2)
        # almost every residue has a defined phi that was compared (only termini and chain breaks are not)
        assert mask[:, 0].sum() >= 0.9 * len(a['sequence']), f.name
    print(f'{which}: {n} dihedrals compared with MDAnalysis, max |error| = {worst:.2e} rad')
    assert n > 0


MDA_DATA = Path(MDAnalysisTests.__file__).parent / 'data'


@pytest.mark.parametrize('name', ['1BD2', '3KPR', '3PWP'])
def test_pdb_and_mmcif_give_the_same_chains(name):
    from foldtree2.structures import read_structure
    cif = read_structure(MDA_DATA / 'mmcif' / f'{name}.cif.gz')
    pdb = read_structure(MDA_DATA / 'mmcif' / f'{name}.pdb.gz')
    assert len(cif) >= 5 and [c.name for c in cif] == [c.name for c in pdb]
    ref = biopython_sequences(MDA_DATA / 'mmcif' / f'{name}.pdb.gz')
    for a, b in zip(cif, pdb):
        assert a.name.startswith(f'{name}_') and a.sequence == b.sequence == ref[a.name.split('_')[-1]]
        np.testing.assert_array_equal(a.coords, b.coords)
        np.testing.assert_array_equal(a.resnums, b.resnums)
        assert a.icodes == b.icodes and a.experimental and b.experimental


@pytest.mark.parametrize('fname', ['1hvr.pdb', '19hc.pdb.gz', '1a28.pdb.gz', '4E43.pdb', '1osm.pdb.gz'])
def test_special_residues_match_biopython(fname):
    """Modified residues (1hvr: HETATM CSO -> C), alternate locations (19hc, 4E43), ligands and water (1a28),
    insertion codes (1osm): sequences agree with Biopython's reading of the file."""
    from foldtree2.structures import read_structure
    path = MDA_DATA / fname
    chains = {c.name.split('_')[-1]: c for c in read_structure(path)}
    ref = biopython_sequences(path)
    assert {k: c.sequence for k, c in chains.items()} == ref
    if fname == '1hvr.pdb':
        assert all(c.sequence[list(c.resnums).index(67)] == 'C' for c in chains.values())   # CSO 67 -> C


def test_first_altloc_and_insertion_codes():
    import gzip
    from foldtree2.structures import read_structure
    c = read_structure(MDA_DATA / '19hc.pdb.gz', chains=['A'])[0]
    line = next(l for l in gzip.open(MDA_DATA / '19hc.pdb.gz', 'rt')
                if l.startswith('ATOM') and l[12:16] == ' CA ' and l[16] == 'A' and l[21] == 'A' and int(l[22:26]) == 58)
    k = list(c.resnums).index(58)
    np.testing.assert_allclose(c.coords[k, 1], [float(line[30:38]), float(line[38:46]), float(line[46:54])], atol=1e-3)
    # insertion codes: kept, in file order
    c = read_structure(MDA_DATA / '1osm.pdb.gz')[0]
    order = []
    for l in gzip.open(MDA_DATA / '1osm.pdb.gz', 'rt'):
        if l.startswith('ATOM') and l[12:16] == ' CA ' and l[21] == 'A':
            key = (int(l[22:26]), l[26])
            if key not in order: order.append(key)
    assert sum(i != ' ' for i in c.icodes) > 0
    assert list(zip(c.resnums.tolist(), c.icodes)) == order


def test_chain_selection():
    from foldtree2.structures import read_structure, StructureError
    cs = read_structure(MDA_DATA / 'mmcif' / '3KPR.cif.gz', chains=['A', 'C'])
    assert [c.name for c in cs] == ['3KPR_A', '3KPR_C']
    with pytest.raises(StructureError, match='chain\\(s\\) Z not in file'):
        read_structure(MDA_DATA / 'mmcif' / '3KPR.cif.gz', chains=['Z'])


def _same(a, b, path=''):
    "Recursive equality of (nested dicts of) tensors and plain values, dtype and shape included."
    import torch
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a: _same(a[k], b[k], f'{path}/{k}')
    elif torch.is_tensor(a):
        assert a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b), path
    else:
        assert a == b, path


@pytest.mark.parametrize('which', ['afdb', 'dssp'])
def test_graph_loader_batches_equal_pyg_collation(stores, which):
    """GraphLoader batches (compact graphs, collate_graphs, one expansion per batch) are exactly PyG's
    Batch.from_data_list of the full per-graph HeteroData, bookkeeping included, over every structure."""
    from torch_geometric.data import Batch
    from foldtree2.data import GraphLoader
    ds = stores[0] if which == 'afdb' else stores[1]
    n = 0
    for b in GraphLoader(ds, batch_size=7):
        ids = b.identifier
        ref = Batch.from_data_list([ds.get(i) for i in ids])
        assert [s._key for s in b.stores] == [s._key for s in ref.stores]
        for s1, s2 in zip(b.stores, ref.stores): _same(dict(s1), dict(s2), str(s1._key))
        _same(b._slice_dict, ref._slice_dict, 'slice'); _same(b._inc_dict, ref._inc_dict, 'inc')
        g = b.get_example(len(ids) - 1)
        _same(dict(g['res']), dict(ds.get(ids[-1])['res']), 'get_example')
        n += len(ids)
    assert n == len(ds)


def test_graph_loader_other_datasets():
    "A list of full HeteroData graphs and the original layout's file go through GraphLoader unchanged."
    from torch_geometric.data import Batch
    from foldtree2.data import GraphLoader
    up = StructureDataset(UPSTREAM_H5)
    graphs = [up[i] for i in range(len(up))]
    for data in (up, graphs):
        b = next(iter(GraphLoader(data, batch_size=2)))
        ref = Batch.from_data_list(graphs)
        for s1, s2 in zip(b.stores, ref.stores): _same(dict(s1), dict(s2), str(s1._key))
