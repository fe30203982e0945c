"""End-to-end: the `pgolf` command launches real runs under torchrun (gloo on the CPU)."""
import json, subprocess, sys
from pathlib import Path

import pytest

# A micro version of the tiny preset: seconds per run, same code path.
MICRO = ["data.max_docs=300", "model.model_dim=64", "model.num_heads=2", "model.num_kv_heads=1",
         "schedule.train_seq_len=128", "schedule.train_batch_tokens=4096", "schedule.iterations=8",
         "schedule.max_wallclock_seconds=0", "schedule.warmdown_iters=3", "eval.batch_tokens=8192"]


def pgolf(*args, cwd):
    exe = Path(sys.executable).with_name("pgolf")  # the console script `pip install` made
    return subprocess.run([str(exe), *args], cwd=cwd, capture_output=True, text=True, timeout=900)


def test_cli_entry_point(tmp_path):
    r = pgolf("presets", cwd=tmp_path)
    assert r.returncode == 0 and "tiny" in r.stdout and "baseline" in r.stdout


def test_two_gloo_processes_match_one(tmp_path):
    """The global batch does not depend on the process count: 2 gloo ranks x 1 micro-batch ~= 1 rank x 2."""
    res = {}
    for n in (1, 2):
        rd = tmp_path / f"n{n}"
        r = pgolf("train", "--preset", "tiny", "--nproc", str(n), "--run-dir", str(rd), "-q", *MICRO, cwd=tmp_path)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
        assert "val_bpb" in r.stdout and "headroom" in r.stdout
        res[n] = json.loads((rd / "result.json").read_text())
        assert res[n]["status"] == "ok" and res[n]["device_count"] == n and res[n]["steps"] == 8
    assert res[1]["val_tokens"] == res[2]["val_tokens"] and res[1]["val_bytes"] == res[2]["val_bytes"]
    # Same data, same init, same global batch: only float reduction order differs.
    assert abs(res[1]["val_bpb"] - res[2]["val_bpb"]) < 5e-3, (res[1]["val_bpb"], res[2]["val_bpb"])
    assert res[2]["val_bpb"] < res[2]["val_unigram_bpb"] + 0.5


def test_bad_override_fails_fast(tmp_path):
    r = pgolf("train", "--preset", "tiny", "optim.matrix_lrr=0.1", cwd=tmp_path)
    assert r.returncode == 2 and "optim.matrix_lrr" in r.stderr and "optim.matrix_lr" in r.stderr
    assert not (tmp_path / "runs").exists()


def test_corrupt_shard_is_named(tmp_path):
    """A truncated validation shard: the run fails with the file's name in its result and log."""
    from pgolf.data import prepare_corpus
    import shutil
    ds = prepare_corpus("news", max_docs=300, out_dir=tmp_path / "ds")
    val = sorted(ds.dir.glob("*_val_*.bin"))[0]
    val.write_bytes(val.read_bytes()[:-7])
    rd = tmp_path / "run"
    r = pgolf("train", "--preset", "tiny", "--run-dir", str(rd), "-q", *MICRO, "data.corpus=dir", f"data.path={ds.dir}",
              f"data.tokenizer_path={ds.tokenizer_path}", cwd=tmp_path)
    assert r.returncode == 1
    res = json.loads((rd / "result.json").read_text())
    assert res["status"] == "failed" and val.name in res["error"], res["error"]
