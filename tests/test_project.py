"""The project's own invariants: pgolf/ is what nbdev-export makes of nbs/, notebooks are clean,
and .ci/run runs exactly the README's two commands."""
import json, re, shutil, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _tree(d: Path) -> dict:
    return {str(p.relative_to(d)): p.read_text() for p in sorted(d.rglob("*.py")) if "__pycache__" not in p.parts}


def test_pgolf_is_exported_from_nbs(tmp_path):
    for name in ("nbs", "pgolf"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    exe = Path(sys.executable).with_name("nbdev-export")
    r = subprocess.run([str(exe)], cwd=tmp_path, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    want, got = _tree(tmp_path / "pgolf"), _tree(ROOT / "pgolf")
    stale = sorted(k for k in want.keys() | got.keys() if want.get(k) != got.get(k))
    assert not stale, f"pgolf/ differs from `nbdev-export` of nbs/ in {stale}: run nbdev-export and commit"


def test_notebooks_are_clean():
    dirty = []
    for nb in ROOT.joinpath("nbs").rglob("*.ipynb"):
        d = json.loads(nb.read_text())
        for c in d["cells"]:
            if set(c.get("metadata", {})) - {"tags"} or c.get("outputs") or c.get("execution_count"):
                dirty.append(str(nb.relative_to(ROOT))); break
    assert not dirty, f"run nbdev-clean on {dirty}"


def readme_commands() -> list[str]:
    txt = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- commands -->\s*```(?:bash|sh)?\n(.*?)```", txt, re.S)
    assert block, "README.md must hold its two commands in a ``` block right after <!-- commands -->"
    return [l for l in block.group(1).splitlines() if l.strip() and not l.lstrip().startswith("#")]


def test_readme_has_two_commands_and_ci_runs_them():
    cmds = readme_commands()
    assert len(cmds) == 2, cmds
    ci = (ROOT / ".ci" / "run").read_text()
    for c in cmds: assert c in ci, f".ci/run does not run the README command {c!r}"


def test_seeds_tiny_arms_score_the_same_text():
    "Every arm of the seeds-tiny plan, the tiny control included, scores the twins' validation documents."
    import warnings
    from pgolf.lab.plans import load_plan
    from pgolf.presets import TWIN_VAL_DOCS
    plan = load_plan(ROOT / "ablations" / "plans" / "seeds-tiny.yaml")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        seen = {arm: (c.data.corpus, c.data.val_docs) for arm in plan.arms for c in [plan.config(arm, 1)]}
    assert set(seen.values()) == {("news", TWIN_VAL_DOCS)}, seen
