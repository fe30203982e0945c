"""One pytest test per notebook: each notebook's cells run through nbdev's `test_nb`.

Cells flagged with the project's `tst_flags` (`slow`, `cuda`) are skipped, as `nbdev-test` does.
"""
from pathlib import Path

import pytest
from nbdev.config import get_config
from nbdev import test as nbdev_test  # not `from ... import test_nb`: pytest would collect it

ROOT = Path(__file__).resolve().parent.parent
NBS = ROOT / "nbs"
NOTEBOOKS = sorted(p for p in NBS.rglob("*.ipynb")
                   if not any(part.startswith(("_", ".")) for part in p.relative_to(NBS).parts))
SKIP_FLAGS = str(get_config(ROOT).tst_flags).split()


def test_notebooks_found():
    assert len(NOTEBOOKS) >= 8, NOTEBOOKS


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: str(p.relative_to(NBS)))
def test_notebook(nb):
    ok, secs = nbdev_test.test_nb(nb, skip_flags=SKIP_FLAGS, basepath=ROOT)
    assert ok, f"{nb.relative_to(ROOT)} failed after {secs:.1f}s; its traceback is printed above"
