"""What test-time training gains on the tiny model, and what it costs: one trained tiny run, re-evaluated with each
TTT mode (`pgolf export RUN_DIR eval.* ttt.*`, the same artifact every time), against the same artifact's standard
and sliding-window scores.

Usage:
    python bench/ttt.py                              # trains the tiny preset once (about 1 minute), then every arm
    python bench/ttt.py --run-dir /tmp/tiny1         # reuse a finished tiny run
    python bench/ttt.py --arms sliding,sgd

Arms (overrides on top of the run's own config; the tiny model trains at 256 tokens, so windows and contexts are 256):
    sliding   eval.mode=sliding (stride 64): the reference every TTT arm is compared with
    sgd       score-first SGD TTT with the records' settings (chunks 32,768, 3 epochs, lr 0.005, momentum 0.9, clip 1)
    lora      03-17's LoRA TTT (rank 8 on Q, V and the head, chunks 256, Adam 0.01, batches of 64 documents), context 256
    phased    phased TTT: the LoRA above, paused after 50, 100 and 150 of the split's 193 documents (longest first) for a global SGD pass
              (04-14's 1 epoch, lr 0.005 here)

Each row records val_bpb, the gain over the same artifact's sliding score (`ttt.compare`), the receipt's verdict,
the evaluation's seconds here, and its projection to 8xH100 on the full split (`pgolf.eval_time`). Results are
appended as JSON lines to bench/results.jsonl.
"""
from __future__ import annotations
import argparse, json, os, subprocess, sys, tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from techniques import bench_meta  # noqa: E402

ARMS = {
    "sliding": ["eval.mode=sliding"],
    "sgd": ["eval.mode=sliding", "ttt.mode=sgd"],
    "lora": ["ttt.mode=lora", "ttt.lora_ctx=256", "eval.mode=sliding"],
    "phased": ["ttt.mode=phased", "ttt.lora_ctx=256", "ttt.phases=50,100,150", "ttt.epochs=1", "eval.mode=sliding"],
}


def pgolf(*args) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("pgolf")
    return subprocess.run([str(exe), *args], capture_output=True, text=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run-dir", default=None, help="a finished tiny run (default: train one in a temporary directory)")
    p.add_argument("--arms", default=",".join(ARMS), help="comma-separated, from: " + ", ".join(ARMS))
    p.add_argument("--out", default=str(HERE / "results.jsonl"))
    a = p.parse_args(argv)
    run_dir = Path(a.run_dir or tempfile.mkdtemp(prefix="pgolf-ttt-")) / ("" if a.run_dir else "tiny")
    if not (run_dir / "result.json").exists():
        r = subprocess.run([sys.executable, "-m", "pgolf.train", "--preset", "tiny", "--run-dir", str(run_dir), "--no-progress"],
                           capture_output=True, text=True)
        if r.returncode: sys.exit(r.stderr[-3000:])
    base = json.loads((run_dir / "result.json").read_text())
    for arm in a.arms.split(","):
        out = run_dir / "exports" / f"bench-{arm}"
        r = pgolf("export", str(run_dir), *ARMS[arm], "--out", str(out), "-q")
        if r.returncode: sys.exit(f"arm {arm} failed:\n{r.stderr[-3000:]}")
        res = json.loads((out / "result.json").read_text())
        led, proj = res.get("time_ledger", {}), res.get("eval_projection") or {}
        row = {"bench": "ttt", "arm": arm, "overrides": ARMS[arm], "val_bpb": res["val_bpb"], "val_bpb_standard": base["val_bpb"],
               "val_bpb_no_ttt": res.get("val_bpb_no_ttt"), "ttt_gain_bpb": res.get("ttt_gain_bpb"), "legal": res.get("legal"),
               "legal_reason": res.get("legal_reason"), "status": res["status"], "eval_seconds": res["eval_seconds"],
               "ttt_steps": res.get("ttt_steps"), "score_s": led.get("score_s"), "ttt_train_s": led.get("ttt_train_s"),
               "eval_tokens": res.get("eval_tokens"), "forward_tokens": res.get("eval_forward_tokens"),
               "train_tokens": res.get("eval_train_tokens"), "backward_tokens": res.get("eval_backward_tokens"), "projected_8xh100_s": proj.get("projected_s"),
               "source_run": str(run_dir), **bench_meta(), "loadavg_start": round(os.getloadavg()[0], 2)}
        with open(a.out, "a") as f: f.write(json.dumps(row) + "\n")
        print(json.dumps({k: v for k, v in row.items() if k not in ("host", "machine", "torch", "command", "legal_reason")}), flush=True)


if __name__ == "__main__":
    main()
