"""End-to-end checks of `pgolf ablate` with real training runs, micro-sized (the `tiny` preset shrunk to width 64,
16 steps, 300 news documents): 2 arms x 2 seeds.

One batch is run the hard way, once, by the module fixture: `pgolf ablate` is started, SIGKILLed (its whole process
group) while the second run trains, and started again; then run a third time, when everything is done; then, after one
byte of a finished run's artifact is flipped, a fourth time, which must run that one again. The tests check what each
step left. The runner's logic (resume, failures, Ctrl-C, the lock, a changed plan) is tested
quickly, with stand-in runs, in nbs/lab/batches.ipynb; this file checks that it holds with real processes.
"""
import hashlib, json, os, signal, subprocess, sys, time
from pathlib import Path

import pandas as pd
import pytest

from pgolf.lab.plans import load_plan, expand
from pgolf.lab.batches import ablations_dir

PGOLF = [sys.executable, "-c", "import sys; from pgolf.cli import main; sys.exit(main(sys.argv[1:]))"]
MICRO = """\
name: micro
description: The tiny preset shrunk to seconds per run (end-to-end tests of the batch runner).
base: tiny
overrides:
  model.model_dim: 64
  model.num_heads: 2
  model.num_kv_heads: 1
  schedule.train_seq_len: 128
  schedule.train_batch_tokens: 4096
  schedule.iterations: 16
  schedule.max_wallclock_seconds: 0
  schedule.warmdown_iters: 4
  data.max_docs: 300
  eval.batch_tokens: 8192
arms:
  muon: {}
  adam: {optim.matrix_optimizer: adam, optim.matrix_lr: 0.004}
control: muon
seeds: [1, 2]
"""
RUN_LIMIT_S = 300  # generous: a micro run takes 15-60 s on a busy 2-core CPU
# 16 steps, not fewer: at 6 steps these runs score about 3.41 bpb, worse than the split's unigram entropy (3.35), and
# are flagged degenerate; at 16 steps Muon scores about 3.14 and Adam 3.26 (measured with `pgolf train`, seed 1337).


def pgolf(*args, cwd, timeout=900):
    return subprocess.run(PGOLF + [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def procs_mentioning(s: str) -> list:
    "Live processes whose command line mentions `s` (Linux /proc)."
    out = []
    for p in Path("/proc").glob("[0-9]*"):
        try:
            if s in (p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                state = (p / "stat").read_text().rsplit(")", 1)[1].split()[0]
                if state not in "ZX": out.append(int(p.name))
        except OSError: pass
    return out


def wait_for(cond, secs, what, proc=None, log=None):
    t = time.monotonic()
    while not cond():
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"pgolf ablate exited ({proc.returncode}) before {what}:\n{Path(log).read_text()[-3000:]}")
        if time.monotonic() - t > secs: pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.5)


def result(run_dir: Path) -> dict:
    try: return json.loads((run_dir / "result.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError): return {}


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    "Start a batch, SIGKILL it during its second run, run it again, and once more when all is done."
    d = tmp_path_factory.mktemp("ablate"); plan = d / "micro.yaml"; plan.write_text(MICRO)
    B = d / "batches" / "micro"
    runs = expand(load_plan(plan)); rd = [B / "runs" / r.run_id for r in runs]
    log = d / "killed.log"
    t0 = time.monotonic()
    with open(log, "w") as f:
        p = subprocess.Popen(PGOLF + ["ablate", str(plan), "--no-report"], cwd=d, stdout=f, stderr=subprocess.STDOUT,
                             start_new_session=True)
    try:
        wait_for(lambda: result(rd[0]).get("status") == "ok" and (rd[1] / "launch.log").exists(), RUN_LIMIT_S,
                 "the first run's ok result and the second run's start", p, log)
        time.sleep(2)  # the second run is training now
    finally:
        os.killpg(p.pid, signal.SIGKILL); p.wait()
    t_kill = time.monotonic()
    # the kernel notices its parent is gone, the guard notices the kernel is gone: no training is left behind
    wait_for(lambda: not procs_mentioning(str(B)), 60, "the killed batch's processes to go")
    s = dict(orphans_gone_s=time.monotonic() - t_kill, first_mtime=(rd[0] / "result.json").stat().st_mtime_ns,
             first_start=result(rd[0])["start_time"], killed_second=result(rd[1]), runs=runs, rd=rd, B=B, d=d)
    s["resume"] = pgolf("ablate", plan, "--no-report", cwd=d)
    s["mtimes"] = {r: (r / "result.json").stat().st_mtime_ns for r in rd if (r / "result.json").exists()}
    s["resumed_first_start"] = result(rd[0])["start_time"]
    s["again"] = pgolf("ablate", plan, cwd=d)  # all done: nothing runs, the results and the report are made again
    s["mtimes_again"] = {r: (r / "result.json").stat().st_mtime_ns for r in rd}  # before the corruption below reruns one
    art = next(rd[0].glob("*.ptz")); s["old_result"] = result(rd[0])
    b = bytearray(art.read_bytes()); b[len(b) // 2] ^= 0xFF; art.write_bytes(bytes(b))  # a corrupted artifact, same size
    s["corrupted"] = pgolf("ablate", plan, "--no-report", cwd=d)
    s["seconds"] = time.monotonic() - t0
    print(f"kill + resume + rerun: {s['seconds']:.0f}s (orphans gone {s['orphans_gone_s']:.1f}s after the kill)")
    return s


def test_ablate_completes_the_batch(batch):
    r = batch["resume"]
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    B, runs = batch["B"], batch["runs"]
    for name in ("plan.yaml", "plan.expanded.json", "results.parquet", "results.csv"): assert (B / name).is_file(), name
    assert (B / "plan.yaml").read_text() == MICRO
    df = pd.read_parquet(B / "results.parquet")
    assert len(df) == 4 and (df.status == "ok").all(), df[["run_id", "status", "error"]]
    assert df.run_id.tolist() == [x.run_id for x in runs]
    assert sorted(zip(df.arm, df.seed)) == [("adam", 1), ("adam", 2), ("muon", 1), ("muon", 2)]
    assert df[df.is_control].arm.unique().tolist() == ["muon"]
    assert df.set_index("arm")["optim.matrix_optimizer"].to_dict() == {"muon": "muon", "adam": "adam"}
    assert (df["model.model_dim"] == 64).all() and (df.steps == 16).all() and (df.val_bpb < df.val_unigram_bpb).all()
    assert (df.total_bytes == df.model_bytes + df.code_bytes).all() and df.device_count.eq(1).all()
    assert pd.read_csv(B / "results.csv").run_id.tolist() == df.run_id.tolist()
    for rd in batch["rd"]:  # each run directory holds the run's record and its executed notebook
        for name in ("config.json", "metrics.jsonl", "result.json", "train.log", "run.ipynb"): assert (rd / name).is_file(), (rd, name)
        assert result(rd)["preset"] == "tiny" and result(rd)["arm"] in ("muon", "adam")
        nb = json.loads((rd / "run.ipynb").read_text())
        assert "image/png" in json.dumps([c.get("outputs") for c in nb["cells"]])  # the curves were drawn
    out = pgolf("results", B, cwd=batch["d"])
    assert out.returncode == 0 and out.stdout.count(" ok ") >= 4, out.stdout


def test_kill_leaves_finished_runs_and_resume_does_the_rest(batch):
    rd = batch["rd"]
    assert batch["orphans_gone_s"] < 60
    assert batch["killed_second"].get("status") != "ok"  # killed mid-run: no result, not a false ok
    assert "1 done, 3 to run" in batch["resume"].stdout, batch["resume"].stdout
    assert batch["mtimes"][rd[0]] == batch["first_mtime"]  # the finished run was not redone
    assert batch["resumed_first_start"] == batch["first_start"]
    assert (rd[1] / "attempts" / "1" / "launch.log").is_file()  # the killed attempt's files, set aside
    assert not (rd[1] / "attempts" / "1" / "result.json").exists() or result(rd[1] / "attempts" / "1").get("status") != "ok"


def test_rerun_when_done_runs_nothing(batch):
    r = batch["again"]
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "4 done, 0 to run" in r.stdout
    assert batch["mtimes_again"] == batch["mtimes"]
    assert (batch["B"] / "results.parquet").is_file()
    try: import pgolf.lab.report  # noqa: F401  (the report is another notebook's; when it is there, it is rendered)
    except ImportError: return
    if (ablations_dir() / "report.ipynb").is_file():
        assert (batch["B"] / "report.html").is_file(), r.stdout[-2000:]


def test_typo_fails_before_anything_runs(tmp_path):
    (tmp_path / "typo.yaml").write_text(MICRO.replace("optim.matrix_lr: 0.004", "optim.matrix_lrr: 0.004"))
    r = pgolf("ablate", "typo.yaml", cwd=tmp_path, timeout=120)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "typo.yaml" in r.stderr and "arm 'adam'" in r.stderr and "'optim.matrix_lrr'" in r.stderr, r.stderr
    assert "Did you mean 'optim.matrix_lr'" in r.stderr
    assert not (tmp_path / "batches").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["typo.yaml"]


def test_a_corrupted_artifact_is_run_again(batch):
    "A finished run whose artifact no longer matches the sha256 in its result.json is not done: the resume says so and reruns it."
    r, rd = batch["corrupted"], batch["rd"]
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "4 runs, 3 done, 1 to run" in r.stdout, r.stdout
    assert (f"note: runs/{rd[0].name} finished, but its artifact final_model.int8.ptz does not match the sha256 in "
            "result.json (changed or corrupted): running it again") in r.stdout, r.stdout
    new, old = result(rd[0]), batch["old_result"]
    assert new["status"] == "ok" and new["start_time"] != old["start_time"]
    assert new["artifact_sha256"] == hashlib.sha256(next(rd[0].glob("*.ptz")).read_bytes()).hexdigest()
    assert result(rd[0] / "attempts" / "1")["artifact_sha256"] == old["artifact_sha256"]  # the old record, set aside
    assert {p: (p / "result.json").stat().st_mtime_ns for p in rd[1:]} == {p: t for p, t in batch["mtimes"].items() if p != rd[0]}


EXPORT_ARMS = MICRO.replace("""arms:
  muon: {}
  adam: {optim.matrix_optimizer: adam, optim.matrix_lr: 0.004}
control: muon
seeds: [1, 2]""", """arms:
  int8: {}
  lzma: {export_from: int8, export.compressor: lzma, export.level: 6}
  int6: {export_from: int8, export.quant: intn, export.passthrough_numel: 1024, export.method: gptq_lite}
control: int8
seeds: [1]""").replace("name: micro", "name: exports")


def test_export_only_arms_reuse_one_training_run(tmp_path):
    "A plan with export-only arms trains once per seed: the other arms re-export its float weights, in seconds."
    (tmp_path / "exports.yaml").write_text(EXPORT_ARMS)
    runs = expand(load_plan(tmp_path / "exports.yaml"))
    assert [r.arm for r in runs] == ["int8", "lzma", "int6"] and runs[1].export_from == runs[2].export_from == runs[0].run_id
    r = pgolf("ablate", "exports.yaml", "--no-report", cwd=tmp_path)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    B = tmp_path / "batches" / "exports"
    df = pd.read_parquet(B / "results.parquet").set_index("arm")
    assert (df.status == "ok").all(), df[["status", "error"]]
    train, lz, i6 = (result(B / "runs" / x.run_id) for x in runs)
    assert (B / "runs" / runs[0].run_id / "final_model.pt").is_file() and not (B / "runs" / runs[1].run_id / "run.ipynb").exists()  # no training notebook
    assert lz["val_bpb"] == train["val_bpb"] and lz["model_bytes"] != train["model_bytes"]  # the same values, another coder
    assert i6["val_bpb"] != train["val_bpb"] and i6["export_stages"]["methods"]["gptq_lite"] == 24  # 4 layers x 6 matrices
    assert lz["steps"] == i6["steps"] == train["steps"] == 16 and lz["train_seconds"] == train["train_seconds"]
    assert lz["export_from"] == str((B / "runs" / runs[0].run_id).resolve()) and df.loc["lzma", "config_hash"] == runs[1].config_hash
    # done means done; a re-trained source makes its export-only runs stale
    again = pgolf("ablate", "exports.yaml", "--no-report", cwd=tmp_path)
    assert again.returncode == 0 and "3 done, 0 to run" in again.stdout, again.stdout
    res0 = B / "runs" / runs[0].run_id / "result.json"
    d0 = json.loads(res0.read_text()); d0["artifact_sha256"] = "0" * 64; res0.write_text(json.dumps(d0))
    from pgolf.lab.batches import why_run
    assert why_run(runs[1], B) == "its training run changed since it was exported"
