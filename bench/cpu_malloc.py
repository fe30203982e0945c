"""What keeping large malloc blocks saves a CPU run (pgolf.lab.runs.CPU_MALLOC_ENV; nbs/lab/runs.ipynb).

Usage:
    python bench/cpu_malloc.py [--preset pr1658-tiny] [--steps 12]

Runs the same short training run twice through `pgolf train`, once with glibc's defaults (PGOLF_CPU_MALLOC=0) and
once with pgolf's CPU allocator settings, and reports ms/step, the whole run's seconds and both val_bpb (they must
agree: the setting changes where memory comes from, not what is computed). Results go to bench/results.jsonl.
"""
from __future__ import annotations
import argparse, json, os, subprocess, sys, tempfile, time
from pathlib import Path

HERE = Path(__file__).resolve().parent

def one(preset, steps, malloc):
    with tempfile.TemporaryDirectory() as d:
        env = dict(os.environ, PGOLF_CPU_MALLOC="1" if malloc else "0")
        cmd = [sys.executable, "-c", "import sys; from pgolf.cli import main; sys.exit(main(sys.argv[1:]))", "train", "--preset", preset, "--run-dir", f"{d}/run", "-q",
               f"schedule.iterations={steps}", "ttt.mode=off", "eval.mode=standard", "export.calibration=train"]
        t = time.perf_counter(); r = subprocess.run(cmd, env=env, capture_output=True, text=True); s = time.perf_counter() - t
        res_p = Path(f"{d}/run/result.json")   # 12 steps is short of the unigram bpb: "degenerate" (exit 1) is expected
        if not res_p.exists() or json.loads(res_p.read_text())["status"] not in ("ok", "degenerate"):
            sys.exit(f"{' '.join(cmd)} failed:\n{r.stdout[-2000:]}{r.stderr[-2000:]}")
        res = json.loads(res_p.read_text())
        return dict(malloc=malloc, ms_per_step=res["ms_per_step"], run_seconds=s, val_bpb=res["val_bpb"])

def main(argv=None):
    ap = argparse.ArgumentParser(); ap.add_argument("--preset", default="pr1658-tiny"); ap.add_argument("--steps", type=int, default=12)
    a = ap.parse_args(argv)
    rows = [one(a.preset, a.steps, m) for m in (False, True)]
    for r in rows: print(f"{'pgolf CPU malloc' if r['malloc'] else 'glibc defaults  '}: {r['ms_per_step']:7.1f} ms/step, "
                         f"run {r['run_seconds']:6.1f} s, val_bpb {r['val_bpb']:.6f}")
    meta = dict(time=time.strftime("%Y-%m-%dT%H:%M:%S"), host=os.uname().nodename, cpus=os.cpu_count(), load=os.getloadavg()[0])
    with open(HERE / "results.jsonl", "a") as f:
        for r in rows: f.write(json.dumps({**meta, "bench": "cpu_malloc", "preset": a.preset, "steps": a.steps, **r}) + "\n")

if __name__ == "__main__": main()
