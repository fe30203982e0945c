import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

def pytest_configure(config):
    # Tests build small corpora; keep them out of the user's cache unless PGOLF_CACHE is set explicitly.
    os.environ.setdefault("PGOLF_CACHE", str(Path.home() / ".cache" / "pgolf"))
