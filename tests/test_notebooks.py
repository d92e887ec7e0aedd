"""Runs every notebook under `nbs/` as a test, the way `nbdev_test` does, so one pytest run covers
notebooks and `tests/`. Cells flagged `#| slow` are skipped unless FT2_SLOW=1."""
import os
from pathlib import Path

import pytest
from nbdev.test import test_nb as run_notebook  # renamed: pytest would collect `test_nb` itself

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p for p in (ROOT / 'nbs').rglob('*.ipynb')
                   if not any(part.startswith(('_', '.')) for part in p.relative_to(ROOT / 'nbs').parts))


@pytest.mark.parametrize('nb', NOTEBOOKS, ids=[str(p.relative_to(ROOT / 'nbs')) for p in NOTEBOOKS])
def test_notebook(nb):
    skip = [] if os.environ.get('FT2_SLOW') == '1' else ['slow']
    ok, secs = run_notebook(nb, skip_flags=skip, basepath=ROOT)
    assert ok, f'{nb.relative_to(ROOT)} failed (see the traceback printed above)'
