"""What each training recipe costs in step time: the tiny model, one recipe at a time, interleaved.

Usage:
    python bench/recipes.py                  # every arm below, 7 rounds
    python bench/recipes.py --rounds 5 --arms control,qat_on

Each arm builds the model, optimizers and callbacks exactly as `pgolf.train` does (`build_model`,
`build_optimizers`, `run_callbacks` without the log, the timer and the stop) and times one full training step:
`before_step` callbacks, forward + backward on one micro-batch, gradient clipping, every optimizer, `after_step`
callbacks (the EMA update, an SWA snapshot). The arms are timed round-robin, one step each per round, so that a
machine whose speed drifts slows every arm alike; the table gives each arm's median and its overhead against the
control. Results are appended as JSON lines to bench/results.jsonl (machine, command, date).
"""
from __future__ import annotations
import argparse, contextlib, json, platform, socket, statistics, sys, time
from datetime import datetime, timezone
from pathlib import Path

import torch

from pgolf.config import resolve
from pgolf.model import count_params
from pgolf.callbacks import Callbacks, TrainState, StepTimer, WallclockStop
from pgolf.train import build_model, build_optimizers, make_train_step, run_callbacks, TrainLog
from techniques import bench_meta, round_robin  # bench/techniques.py: the same round-robin timing

HERE = Path(__file__).resolve().parent
ARMS = {
    "control": {},
    "weight_decay": {"optim.muon_wd": 0.04, "optim.embed_wd": 0.04, "optim.scalar_wd": 0.04},
    "grad_clip": {"optim.grad_clip_norm": 0.3},
    "ema": {"average.ema_decay": 0.997},
    "swa_every_step": {"average.swa_mode": "apply", "average.swa_every": 1, "average.swa_start_frac": 1e-6},
    "qat_installed_off": {"qat.mode": "late", "qat.threshold": 0.15},   # the flag stays off (the multiplier is 1)
    "qat_on": {"qat.mode": "always"},
}


def make_step(overrides: dict):
    cfg = resolve("tiny", overrides)
    torch.manual_seed(0)
    model = build_model(cfg, torch.device("cpu"))
    opts = build_optimizers(model, cfg, torch.device("cpu"))
    cbs = Callbacks([c for c in run_callbacks(cfg) if not isinstance(c, (TrainLog, StepTimer, WallclockStop))])
    t = TrainState(cfg, model, opts, log=lambda m: None, callbacks=cbs)
    seq = cfg.schedule.train_seq_len
    bsz = cfg.schedule.train_batch_tokens // cfg.schedule.grad_accum_base // seq
    x = torch.randint(0, cfg.model.vocab_size, (bsz, seq)); y = torch.randint(0, cfg.model.vocab_size, (bsz, seq))
    train_step = make_train_step(model, opts, lambda: (x, y), 1, contextlib.nullcontext, clip_norm=cfg.optim.grad_clip_norm,
                                 params=model.parameters())
    cbs("before_train", t)
    def step():
        cbs("before_step", t); t.loss = train_step(); t.step += 1; cbs("after_step", t)
    return step, count_params(model), f"{bsz}x{seq}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--arms", default=None, help="comma-separated arm names")
    ap.add_argument("--no-save", action="store_true")
    a = ap.parse_args(argv)
    meta = bench_meta()
    arms = {k: v for k, v in ARMS.items() if a.arms is None or k in a.arms.split(",")}
    steps = {k: make_step(v) for k, v in arms.items()}
    times = round_robin({k: s for k, (s, _, _) in steps.items()}, a.rounds, a.warmup)
    ctrl = statistics.median(times["control"]) if "control" in times else None
    print(f"{'arm':<20}{'params':>10}{'batch':>9}{'ms/step':>10}{'vs control':>12}")
    rows = []
    for k, (s, params, batch) in steps.items():
        med = statistics.median(times[k])
        over = None if ctrl is None else 100 * (med / ctrl - 1)
        rows.append(dict(bench="recipes", arm=k, overrides=arms[k], params=params, batch=batch, ms_median=1000 * med,
                         ms_min=1000 * min(times[k]), ms_max=1000 * max(times[k]), rounds=a.rounds, overhead_pct=over, **meta))
        print(f"{k:<20}{params:>10,}{batch:>9}{1000 * med:>10.1f}{'' if over is None else f'{over:+.1f}%':>12}")
    if not a.no_save:
        with open(HERE / "results.jsonl", "a") as f:
            for r in rows: f.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
