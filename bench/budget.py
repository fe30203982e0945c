"""Measurements behind `pgolf budget` (nbs/06d_budget.ipynb).

Usage:
    python bench/budget.py --calibrate      # init_model_bytes of every TRAINED_OVER_INIT row: the numbers the table holds
    python bench/budget.py --check-sample   # the row-sampled estimate against a full compression, at full size (34 s)

The calibration rows are the records whose logs print their compressed model bytes and whose full export recipe is
a pgolf preset (or a preset plus the overrides given in the row). Results go to bench/results.jsonl.
"""
from __future__ import annotations
import argparse, json, os, sys, time, warnings
from pathlib import Path

from pgolf.budget import TRAINED_OVER_INIT, calibration_config, init_model_bytes, export_object, sampled_bytes
from pgolf.config import resolve

HERE = Path(__file__).resolve().parent

def main(argv=None):
    ap = argparse.ArgumentParser(); ap.add_argument("--calibrate", action="store_true"); ap.add_argument("--check-sample", action="store_true")
    a = ap.parse_args(argv)
    rows = []
    warnings.simplefilter("ignore")
    if a.calibrate:
        for name, (preset, ov, logged, stored, src) in TRAINED_OVER_INIT.items():
            t = time.perf_counter(); b = init_model_bytes(calibration_config(name)); s = time.perf_counter() - t
            print(f"{name:10s} init {b:>11,} B (table {stored or 0:>11,})  logged {logged:>11,} B  ratio {logged / b:.3f}  ({s:.1f} s)", flush=True)
            rows.append(dict(bench="budget_calibrate", row=name, init_bytes=b, logged_bytes=logged, ratio=logged / b, seconds=s))
    if a.check_sample:
        c = resolve("r0322", {"export.quant": "intn", "export.compressor": "zstd", "export.level": 22, "export.method": "gptq_lite"})
        obj = export_object(c)
        t = time.perf_counter(); est = sampled_bytes(obj, c.export); ts = time.perf_counter() - t
        t = time.perf_counter(); full = init_model_bytes(c, every=0); tf = time.perf_counter() - t
        print(f"r0322 gptq_lite int6 zstd-22: sampled {est:,} B ({ts:.1f} s), whole {full:,} B ({tf:.1f} s): {100 * (est / full - 1):+.2f} %")
        rows.append(dict(bench="budget_sample", sampled=est, full=full, sampled_s=ts, full_s=tf))
    with open(HERE / "results.jsonl", "a") as f:
        meta = dict(time=time.strftime("%Y-%m-%dT%H:%M:%S"), host=os.uname().nodename, cpus=os.cpu_count())
        for r in rows: f.write(json.dumps({**meta, **r}) + "\n")

if __name__ == "__main__": main()
