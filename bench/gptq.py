"""Full GPTQ at the r0409 shapes on this machine: Hessian collection, then GPTQ of every block matrix and the tied embedding.

Usage:
    python bench/gptq.py                          # 4 calibration sequences of 2048 tokens, 3 rounds of the GPTQ stage
    python bench/gptq.py --seqs 64                # the records' 64 x 2048 tokens (long on a small CPU: see below)
    python bench/gptq.py --threads 1 --best-clip  # one thread; also time 03-29's five-candidate clip search

The model is `resolve("r0409")`: 11 blocks of width 512 (MLP 2048, 8 heads, 4 KV heads), vocab 8192, tied embedding,
blocks 3-5 looped three times (17 virtual layers, as at the end of training), GPT-J parallel residuals from block 7:
67 matrices (6 per block and tok_emb). Its weights are random (every CastedLinear N(0, 1/fan_in), the embedding at
its init) and its calibration tokens uniformly random: GPTQ's cost depends on the shapes, not the values.

Stages, each timed:
  build      the model
  forward    one plain forward of one calibration batch (no hooks), for scale
  hessians   `collect_hessians` over --seqs sequences of --seq-len tokens, --batch sequences per forward; also given
             per 2048-token sequence and extrapolated linearly to the records' 64 x 2048
  gptq       the 04-05 / 04-09 recipe on every matrix: SDClip int6 at k=12.85 for the block matrices, int8 at k=20
             for tok_emb, act-order, blocks of 128; the median of --rounds rounds, and per kind of matrix
  best_clip  (--best-clip) 03-29's recipe: int6 GPTQ once per clip percentile (5), lowest weight MSE
A sanity line checks the result: GPTQ's layer error against round-to-nearest's on the same scales, per kind.

Results are appended as JSON lines to bench/results.jsonl (machine, command, date, and the 1-minute load average at
the start: on a shared 2-core machine, two torch threads contending with other work made the GPTQ stage 6x slower
than one thread).
"""
from __future__ import annotations
import argparse, json, os, platform, socket, statistics, sys, time
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

import torch

from pgolf.config import resolve
from pgolf.layers import CastedLinear
from pgolf.model import GPT
from pgolf.techniques.gptq import (EMBED_KEY, SDCLIP_K_EMBED, SDCLIP_K_MATRIX, collect_hessians, dequantize,
                                   gptq_best_clip, gptq_quantize, layer_error, round_to_nearest, sdclip_scale)

HERE = Path(__file__).resolve().parent
RECORD_SEQS = 64  # the issue's (and the records' per-batch) 64 x 2048 calibration tokens


def kind(name: str) -> str:
    "The matrix's kind: 'attn.c_q', 'mlp.proj', ..., or 'tok_emb'."
    return "tok_emb" if name == EMBED_KEY else ".".join(name.split(".")[2:4])


def build(seed: int) -> GPT:
    cfg = resolve("r0409")
    torch.manual_seed(seed)
    model = GPT(cfg.model)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, CastedLinear): m.weight.normal_(0.0, m.weight.shape[1] ** -0.5)
    return model.eval()


def recipe(name: str) -> tuple[int, float]:
    "04-05 / 04-09: int6 SDClip at k=12.85 for the matrices, int8 at k=20 for the embedding."
    return (8, SDCLIP_K_EMBED) if name == EMBED_KEY else (6, SDCLIP_K_MATRIX)


def gptq_stage(sd: dict, hessians: dict) -> tuple[float, dict, dict]:
    "GPTQ of every matrix with the SDClip recipe: (seconds, seconds per kind, {name: (q, scale)})."
    per_kind, out = defaultdict(float), {}
    t_all = time.perf_counter()
    for name, H in hessians.items():
        bits, k = recipe(name)
        t = time.perf_counter()
        W = sd[name]
        out[name] = gptq_quantize(W, H, bits, sdclip_scale(W, bits, k))
        per_kind[kind(name)] += time.perf_counter() - t
    return time.perf_counter() - t_all, dict(per_kind), out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seqs", type=int, default=4, help="calibration sequences (the records: 64)")
    ap.add_argument("--seq-len", type=int, default=2048)
    ap.add_argument("--batch", type=int, default=1, help="sequences per forward")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of the GPTQ stage (the median is reported)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--best-clip", action="store_true", help="also time 03-29's five-candidate clip search (one round)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-save", action="store_true")
    a = ap.parse_args(argv)
    if a.seqs % a.batch: ap.error(f"--seqs={a.seqs} must be a multiple of --batch={a.batch}")
    if a.threads: torch.set_num_threads(a.threads)
    meta = dict(device=f"cpu ({torch.get_num_threads()} threads)", torch=torch.__version__, host=socket.gethostname(),
                machine=platform.machine(), date=datetime.now(timezone.utc).strftime("%Y-%m-%d"),
                command=" ".join(["python"] + sys.argv), load_avg_1min=round(os.getloadavg()[0], 2))
    shape = dict(preset="r0409", calib_tokens=a.seqs * a.seq_len, calib=f"{a.seqs}x{a.seq_len}", batch=a.batch)
    rows = []
    def row(stage, seconds, **kw):
        rows.append(dict(bench="gptq", stage=stage, seconds=seconds, **shape, **kw, **meta))

    t = time.perf_counter(); model = build(a.seed); t_build = time.perf_counter() - t
    vocab = model.cfg.vocab_size
    print(f"r0409 model: {sum(p.numel() for p in model.parameters()):,} parameters, layer order {model.layer_order()}; "
          f"built in {t_build:.1f} s ({meta['device']})")
    row("build", t_build)

    g = torch.Generator().manual_seed(a.seed + 1)
    batches = [torch.randint(0, vocab, (a.batch, a.seq_len + 1), generator=g) for _ in range(a.seqs // a.batch)]
    it = iter(batches)
    next_batch = lambda: (lambda s: (s[:, :-1], s[:, 1:]))(next(it))
    with torch.no_grad():
        t = time.perf_counter(); model.forward_logits(batches[0][:, :-1]); t_fwd = time.perf_counter() - t
    print(f"forward (no hooks), {a.batch}x{a.seq_len} tokens: {t_fwd:.1f} s")
    row("forward", t_fwd)

    t = time.perf_counter(); hessians = collect_hessians(model, next_batch, len(batches)); t_h = time.perf_counter() - t
    per_seq = t_h / a.seqs * (2048 / a.seq_len)
    print(f"hessians: {len(hessians)} matrices from {a.seqs}x{a.seq_len} tokens in {t_h:.1f} s "
          f"({per_seq:.2f} s per 2048-token sequence; {RECORD_SEQS}x2048 would take about {RECORD_SEQS * per_seq:.0f} s)")
    row("hessians", t_h, matrices=len(hessians), s_per_2048_seq=per_seq, extrapolated_64x2048_s=RECORD_SEQS * per_seq)

    sd = {k: v.detach() for k, v in model.state_dict().items()}
    times, kinds = [], []
    for r in range(a.rounds):
        secs, per_kind, out = gptq_stage(sd, hessians)
        times.append(secs); kinds.append(per_kind)
        print(f"gptq round {r + 1}: {secs:.1f} s")
    med = statistics.median(times)
    med_kind = {k: statistics.median(pk[k] for pk in kinds) for k in kinds[0]}
    n_kind = defaultdict(int)
    for name in hessians: n_kind[kind(name)] += 1
    print(f"gptq (SDClip int6 k={SDCLIP_K_MATRIX}, tok_emb int8 k={SDCLIP_K_EMBED}): {med:.1f} s median of {a.rounds} "
          f"(min {min(times):.1f}, max {max(times):.1f})")
    for k, s in med_kind.items():
        W = sd[next(n for n in hessians if kind(n) == k)]
        print(f"  {k:<10} {n_kind[k]:>3} x {tuple(W.shape)}: {s:6.2f} s ({1000 * s / n_kind[k]:.0f} ms each)")
    row("gptq", med, rounds=a.rounds, s_min=min(times), s_max=max(times), per_kind_s=med_kind, recipe="sdclip 6/12.85, embed 8/20")

    ratios = defaultdict(list)   # sanity: GPTQ's layer error against RTN's on the same scales
    for name, (q, s) in out.items():
        W, H = sd[name], hessians[name]
        bits, _ = recipe(name)
        ratios[kind(name)].append(layer_error(W, dequantize(q, s), H) / layer_error(W, dequantize(round_to_nearest(W, s, bits), s), H))
    print("layer error, GPTQ / RTN (same scales), mean per kind: " +
          ", ".join(f"{k} {statistics.mean(v):.3f}" for k, v in ratios.items()))
    assert all(max(v) < 1 for v in ratios.values()), ratios

    if a.best_clip:
        t = time.perf_counter()
        for name, H in hessians.items():
            if name != EMBED_KEY: gptq_best_clip(sd[name], H, 6)
        t_bc = time.perf_counter() - t
        print(f"best-clip GPTQ (03-29: 5 candidates, int6, block matrices only): {t_bc:.1f} s")
        row("best_clip", t_bc, recipe="03-29 best clip, int6, block matrices")

    total = t_build + t_h + med
    print(f"total (build + hessians + gptq): {total:.1f} s; with the hessians extrapolated to {RECORD_SEQS}x2048: "
          f"{t_build + RECORD_SEQS * per_seq + med:.1f} s")
    row("total", total, total_extrapolated_64x2048_s=t_build + RECORD_SEQS * per_seq + med)
    if not a.no_save:
        with open(HERE / "results.jsonl", "a") as f:
            for r in rows: f.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
