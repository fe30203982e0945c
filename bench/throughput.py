"""Training throughput of pgolf's model: tokens/s for forward + backward + optimizer step, and peak memory.

Usage:
    python bench/throughput.py                       # tiny and full-size baseline, this machine's device
    python bench/throughput.py --preset tiny --repeats 7 --batch 32x256
    python bench/throughput.py --fwd-bwd-only         # the anchor's measure: forward+backward only

On a CPU the default batch is capped at 4,096 tokens (the baseline's 65,536-token micro-batch needs about 16 GB).
Each measurement builds the preset's model and optimizers exactly as `pgolf.train` does (same groups, Muon in
fp32 on a CPU and bf16 on CUDA, bf16 autocast and torch.compile on CUDA when the preset asks), runs `--warmup`
untimed steps, then times `--repeats` steps and reports the median (and min/max). On CUDA it synchronises around
each step and reads torch.cuda.max_memory_allocated; on a CPU peak memory is the process's max RSS.

Results are appended as JSON lines to bench/results.jsonl (machine, command, date), and the table printed at the
end is what README.md's benchmark table holds.
"""
from __future__ import annotations
import argparse, contextlib, json, platform, resource, socket, statistics, sys, time
from datetime import datetime, timezone
from pathlib import Path

import torch

from pgolf.config import resolve
from pgolf.model import GPT, prepare_dtypes, count_params
from pgolf.train import build_optimizers, autocast_dtype, pick_device

HERE = Path(__file__).resolve().parent
CPU_MAX_TOKENS = 4096  # default batch cap on a CPU (tiny: its whole micro-batch; baseline: 4x1024)


def peak_mem_mib(device) -> float:
    if device.type == "cuda": return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(preset: str, batch: str | None, repeats: int, warmup: int, fwd_bwd_only: bool, overrides: list[str]) -> dict:
    cfg = resolve(preset, overrides)
    device = pick_device(cfg)
    if device.type == "cuda": torch.cuda.reset_peak_memory_stats(device)
    torch.manual_seed(0)
    base = GPT(cfg.model).to(device)
    amp = autocast_dtype(cfg, device)
    if amp is torch.bfloat16: prepare_dtypes(base)
    model = torch.compile(base, dynamic=False, fullgraph=True) if (cfg.launch.compile and device.type == "cuda") else base
    opts = [] if fwd_bwd_only else build_optimizers(base, cfg, device)
    if batch: bsz, seq = (int(v) for v in batch.lower().split("x"))
    else:
        seq = cfg.schedule.train_seq_len
        bsz = cfg.schedule.train_batch_tokens // cfg.schedule.grad_accum_base // seq  # one micro-batch of one process
        if device.type == "cpu": bsz = max(1, min(bsz, CPU_MAX_TOKENS // seq))  # the baseline's 65k-token micro-batch needs ~16 GB on a CPU
    x = torch.randint(0, cfg.model.vocab_size, (bsz, seq), device=device)
    y = torch.randint(0, cfg.model.vocab_size, (bsz, seq), device=device)
    ctx = (lambda: torch.autocast(device.type, dtype=amp)) if amp else contextlib.nullcontext

    def step():
        with ctx(): loss = model(x, y)
        loss.backward()
        for o in opts: o.step()
        for o in opts: o.zero_grad(set_to_none=True)
        if fwd_bwd_only: base.zero_grad(set_to_none=True)

    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    for _ in range(warmup): step()
    sync()
    times = []
    for _ in range(repeats):
        t = time.perf_counter(); step(); sync(); times.append(time.perf_counter() - t)
    tokens = bsz * seq
    med = statistics.median(times)
    return {
        "preset": preset, "overrides": overrides, "what": "fwd+bwd" if fwd_bwd_only else "fwd+bwd+opt",
        "params": count_params(base), "batch": f"{bsz}x{seq}", "tokens_per_step": tokens,
        "tokens_per_s_median": tokens / med, "tokens_per_s_min": tokens / max(times), "tokens_per_s_max": tokens / min(times),
        "ms_per_step_median": 1000 * med, "repeats": repeats, "warmup": warmup, "peak_mem_mib": peak_mem_mib(device),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)",
        "autocast": str(amp), "compiled": model is not base, "torch": torch.__version__,
        "host": socket.gethostname(), "machine": platform.machine(),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"), "command": " ".join(["python"] + sys.argv),
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", action="append", help="preset(s) to measure (default: tiny and baseline)")
    p.add_argument("--batch", default=None, help="BxT per step (default: one micro-batch of the preset)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--fwd-bwd-only", action="store_true", help="no optimizer step (the anchor's measure)")
    p.add_argument("--no-save", action="store_true", help="don't append to bench/results.jsonl")
    p.add_argument("overrides", nargs="*", help="dotted config overrides")
    a = p.parse_args(argv)
    rows = []
    for preset in a.preset or ["tiny", "baseline"]:
        r = measure(preset, a.batch, a.repeats, a.warmup, a.fwd_bwd_only, a.overrides)
        rows.append(r)
        print(json.dumps(r), flush=True)
        if not a.no_save:
            with open(HERE / "results.jsonl", "a") as f: f.write(json.dumps(r) + "\n")
    print("\n| preset | what | params | batch | tokens/s (median [min, max]) | ms/step | peak MiB | device |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['preset']} | {r['what']} | {r['params']:,} | {r['batch']} | {r['tokens_per_s_median']:,.0f} "
              f"[{r['tokens_per_s_min']:,.0f}, {r['tokens_per_s_max']:,.0f}] | {r['ms_per_step_median']:,.0f} | "
              f"{r['peak_mem_mib']:,.0f} | {r['device']} |")


if __name__ == "__main__":
    main()
