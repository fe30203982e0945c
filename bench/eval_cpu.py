"""What the evaluation of an 8,192-id model costs on a CPU, and what two choices save (nbs/06_evaluate, nbs/00b_presets).

Usage:
    python bench/eval_cpu.py [--preset pr1658-tiny] [--tokens 45568]

1. The sliding scorer asks for the scored positions' logits alone (`evaluate.logits_at`, `GPT.forward_logits(x, keep)`):
   it times `eval_sliding` on the preset's model (random weights, depth recurrence on) with the head on the scored
   positions and, through a wrapper without `keep`, on all of them. Both must give the same val_loss.
2. The first standard evaluation with large batches pays for fresh memory: it times `eval_standard` twice in a fresh
   process at 65,536 and at 16,384 tokens a forward (the twins' old and new `eval.batch_tokens`).
Everything runs under pgolf's CPU malloc settings (`pgolf.lab.runs.CPU_MALLOC_ENV`), as a run's worker does.
Results go to bench/results.jsonl.
"""
from __future__ import annotations
import argparse, json, os, subprocess, sys, time, warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent

def setup(preset, n_tokens):
    import torch
    from pgolf.presets import resolve
    from pgolf.model import GPT
    from pgolf.bpb import ByteLUTs
    warnings.simplefilter("ignore")
    torch.manual_seed(0); torch.set_num_threads(2)
    cfg = resolve(preset); m = GPT(cfg.model).eval(); m.looping = cfg.model.loop_passes > 1
    V = cfg.model.vocab_size
    val = torch.randint(4, V, (n_tokens + 1,), generator=torch.Generator().manual_seed(1))
    luts = ByteLUTs(torch.randint(1, 5, (V,), dtype=torch.int16), torch.zeros(V, dtype=torch.bool), torch.arange(V) < 4)
    return cfg, m, val, luts

def sliding(preset, n_tokens):
    import torch
    from pgolf.evaluate import eval_sliding
    cfg, m, val, luts = setup(preset, n_tokens)
    class NoKeep(torch.nn.Module):
        def __init__(self, m): super().__init__(); self.m = m
        def forward_logits(self, x): return self.m.forward_logits(x)
    e, rows = cfg.eval, []
    for name, model in (("all positions", NoKeep(m)), ("scored positions", m), ("all positions", NoKeep(m)), ("scored positions", m)):
        t = time.perf_counter(); r = eval_sliding(model, val, luts, e.seq_len, e.stride, e.batch_seqs)
        rows.append(dict(stage="sliding_head", head=name, seconds=time.perf_counter() - t, val_loss=r["val_loss"],
                         seq_len=e.seq_len, stride=e.stride))
    return rows

def standard_child(preset, n_tokens, batch_tokens):
    from pgolf.evaluate import eval_standard
    cfg, m, val, luts = setup(preset, n_tokens)
    out = []
    for k in (1, 2):
        t = time.perf_counter(); eval_standard(m, val, luts, cfg.eval.seq_len, batch_tokens); out.append(time.perf_counter() - t)
    print(json.dumps(out))

def main(argv=None):
    ap = argparse.ArgumentParser(); ap.add_argument("--preset", default="pr1658-tiny"); ap.add_argument("--tokens", type=int, default=45568)
    ap.add_argument("--child", nargs=1, type=int, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child: return standard_child(a.preset, a.tokens, a.child[0])
    from pgolf.lab.runs import CPU_MALLOC_ENV
    if any(os.environ.get(k) != v for k, v in CPU_MALLOC_ENV.items()):   # glibc reads these at start: run as a CPU worker does
        os.execve(sys.executable, [sys.executable, __file__, *sys.argv[1:]], {**os.environ, **CPU_MALLOC_ENV})
    rows = sliding(a.preset, a.tokens)
    for bt in (65536, 16384):   # a fresh process each: the first pass is the one that meets fresh memory
        r = subprocess.run([sys.executable, __file__, "--preset", a.preset, "--tokens", str(a.tokens), "--child", str(bt)],
                           env={**os.environ, **CPU_MALLOC_ENV}, capture_output=True, text=True, check=True)
        first, second = json.loads(r.stdout.strip().splitlines()[-1])
        rows.append(dict(stage="standard_first_use", batch_tokens=bt, first_s=first, second_s=second))
    import torch
    meta = dict(bench="eval_cpu", preset=a.preset, tokens=a.tokens, device=f"cpu ({torch.get_num_threads()} threads)",
                torch=torch.__version__, host=os.uname().nodename, date=time.strftime("%Y-%m-%d"),
                command="python bench/eval_cpu.py" + ("" if argv is None and len(sys.argv) == 1 else " " + " ".join(sys.argv[1:])),
                loadavg_start=os.getloadavg()[0])
    for r in rows:
        if r["stage"] == "sliding_head": print(f"sliding, head on {r['head']:16s}: {r['seconds']:6.2f} s  val_loss {r['val_loss']:.6f}")
        else: print(f"standard at {r['batch_tokens']:6,} tokens a forward: first pass {r['first_s']:6.2f} s, second {r['second_s']:6.2f} s")
    with open(HERE / "results.jsonl", "a") as f:
        for r in rows: f.write(json.dumps({**meta, **r}) + "\n")

if __name__ == "__main__": main()
