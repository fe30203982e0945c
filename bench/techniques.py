"""What each architecture technique costs in step time: the tiny model, one technique at a time, interleaved.

Usage:
    python bench/techniques.py                   # every arm of ablations/plans/architecture.yaml, 7 rounds
    python bench/techniques.py --rounds 5 --arms control,xsa_last2,stack_0323
    python bench/techniques.py --xsa-only        # only the XSA kernel micro-benchmark

Each arm builds the tiny preset's model and optimizers with the arm's overrides (as `pgolf.train` does) and times
one training step (forward + backward + optimizer) on one micro-batch. The arms are timed round-robin, one step
each per round, so that a machine whose speed drifts slows every arm alike; the table gives each arm's median
over the rounds and its overhead against the control. A second table times XSA's GQA-aware view against the
repeat_interleave formulation it replaces, at the baseline's attention shape (8 query heads, 4 KV heads, hd 64).

Results are appended as JSON lines to bench/results.jsonl (machine, command, date).
"""
from __future__ import annotations
import argparse, json, platform, socket, statistics, sys, time
from datetime import datetime, timezone
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml

from pgolf.config import resolve
from pgolf.model import GPT, count_params
from pgolf.train import build_optimizers
from pgolf.techniques.xsa import xsa

HERE = Path(__file__).resolve().parent
PLAN = HERE.parent / "ablations" / "plans" / "architecture.yaml"


def arms_from_plan(names: list[str] | None) -> dict[str, dict]:
    arms = yaml.safe_load(PLAN.read_text())["arms"]
    return {k: v for k, v in arms.items() if names is None or k in names}


def make_step(overrides: dict):
    cfg = resolve("tiny", overrides)
    torch.manual_seed(0)
    model = GPT(cfg.model)
    opts = build_optimizers(model, cfg, torch.device("cpu"))
    seq = cfg.schedule.train_seq_len
    bsz = cfg.schedule.train_batch_tokens // cfg.schedule.grad_accum_base // seq
    x = torch.randint(0, cfg.model.vocab_size, (bsz, seq)); y = torch.randint(0, cfg.model.vocab_size, (bsz, seq))
    def step():
        model(x, y).backward()
        for o in opts: o.step()
        for o in opts: o.zero_grad(set_to_none=True)
    return step, count_params(model), f"{bsz}x{seq}"


def xsa_repeat(y, v):
    "The formulation XSA's GQA view avoids: repeat each KV head's value for the query heads it serves."
    vr = F.normalize(v, dim=-1).repeat_interleave(y.size(2) // v.size(2), dim=2)
    return y - (y * vr).sum(-1, keepdim=True) * vr


def bench_xsa(rounds: int) -> list[dict]:
    B, T, H, Hkv, hd = 4, 1024, 8, 4, 64
    y = torch.randn(B, T, H, hd, requires_grad=True); v = torch.randn(B, T, Hkv, hd, requires_grad=True)
    assert torch.allclose(xsa(y, v), xsa_repeat(y, v), atol=1e-5)
    fns = {"xsa (GQA view)": xsa, "xsa (repeat_interleave)": xsa_repeat}
    times = {k: [] for k in fns}
    for _ in range(2): [f(y, v).sum().backward() for f in fns.values()]
    for _ in range(rounds):
        for k, f in fns.items():
            t = time.perf_counter(); f(y, v).sum().backward(); times[k].append(time.perf_counter() - t)
    return [{"what": k, "shape": f"B{B} T{T} H{H} Hkv{Hkv} hd{hd}", "ms_median": 1000 * statistics.median(t)}
            for k, t in times.items()]


def bench_meta() -> dict:
    "Where and when a benchmark ran, for bench/results.jsonl."
    return dict(device=f"cpu ({torch.get_num_threads()} threads)", torch=torch.__version__, host=socket.gethostname(),
                machine=platform.machine(), date=datetime.now(timezone.utc).strftime("%Y-%m-%d"),
                command=" ".join(["python"] + sys.argv))


def round_robin(steps: dict, rounds: int, warmup: int) -> dict[str, list[float]]:
    "Time each step function once per round, arms interleaved (drift slows every arm alike); seconds per arm."
    for _ in range(warmup):
        for s in steps.values(): s()
    times = {k: [] for k in steps}
    for _ in range(rounds):
        for k, s in steps.items():
            t = time.perf_counter(); s(); times[k].append(time.perf_counter() - t)
    return times


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--arms", default=None, help="comma-separated arm names of the architecture plan")
    ap.add_argument("--xsa-only", action="store_true")
    ap.add_argument("--no-save", action="store_true")
    a = ap.parse_args(argv)
    meta = bench_meta()
    rows = []
    if not a.xsa_only:
        arms = arms_from_plan(a.arms.split(",") if a.arms else None)
        steps = {k: make_step(v) for k, v in arms.items()}
        times = round_robin({k: s for k, (s, _, _) in steps.items()}, a.rounds, a.warmup)
        ctrl = statistics.median(times["control"]) if "control" in times else None
        print(f"{'arm':<14}{'params':>10}{'batch':>9}{'ms/step':>10}{'vs control':>12}")
        for k, (s, params, batch) in steps.items():
            med = statistics.median(times[k])
            over = None if ctrl is None else 100 * (med / ctrl - 1)
            rows.append(dict(bench="techniques", arm=k, overrides=arms[k], params=params, batch=batch, ms_median=1000 * med,
                             ms_min=1000 * min(times[k]), ms_max=1000 * max(times[k]), rounds=a.rounds, overhead_pct=over, **meta))
            print(f"{k:<14}{params:>10,}{batch:>9}{1000 * med:>10.1f}{'' if over is None else f'{over:+.1f}%':>12}")
    for r in bench_xsa(a.rounds):
        rows.append(dict(bench="xsa_kernel", **r, rounds=a.rounds, **meta))
        print(f"{r['what']:<26} {r['shape']}: {r['ms_median']:.1f} ms fwd+bwd (median)")
    if not a.no_save:
        with open(HERE / "results.jsonl", "a") as f:
            for r in rows: f.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
