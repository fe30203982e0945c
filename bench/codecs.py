"""The export's coders and the byte ledger at full size, on this machine: bytes and seconds per coder, per
serializer and byte shuffle, and what each ledger method costs and how far its split is from the exact one.

Usage:
    python bench/codecs.py                                # the default table (about 15 minutes on a 2-core CPU)
    python bench/codecs.py --scale 0.1                    # a tenth of the rows of every matrix: a quick look
    python bench/codecs.py --coders zstd-22,brotli-11 --layouts torch:0,raw:2,pergroup:0 --ledger alone,sample,exact
    python bench/codecs.py --scale 0.25 --coders zlib-9 --layouts torch:0 --ledger alone,exact \
        --ledger-on brotli-11:torch:0,brotli-11:raw:0,lzma-9:torch:0,lzma-9:raw:0,zstd-22:torch:0,zstd-22:raw:0

The payload is an export object at the r0409 shapes (`resolve("r0409")`: 11 blocks of width 512, a 4x MLP, an
8192 x 512 tied embedding), quantised as the 04-05 ... 04-09 records do it but without GPTQ's error feedback
(which moves values, not their distribution): every block matrix Gaussian, int6 at SDClip's k = 12.85, the
embedding int8 at k = 20, fp16 scales, the small tensors passed through in fp16. GPTQ's values compress
within a few tenths of a percent of these (techniques/gptq measures the entropy argument on real Hessians); a
trained model's rows are less alike than Gaussian ones, so `sample` is further off on real weights than here.

Stages:
  coders   `pgolf.export.pack_artifact` of the whole object with each coder and layout (serializer:shuffle),
           the bytes, the seconds to pack, the seconds to unpack, and a check that unpacking gives the object back
  ledger   `byte_ledger` with each method on the first coder and layout, given `model_bytes` (so no method packs
           the whole model once more); seconds, and each group's marginal bytes minus the exact method's

Results are appended as JSON lines to bench/results.jsonl, with the machine, command, date and load average.
"""
from __future__ import annotations
import argparse, json, os, sys, time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from techniques import bench_meta  # noqa: E402  (the shared machine/command/date fields)

from pgolf.config import resolve
from pgolf.export import LEDGER_GROUPS, byte_ledger, pack_artifact, unpack_artifact
from pgolf.model import GPT
from pgolf.quantize import INTN_FORMAT, quant_category
from pgolf.techniques.gptq import SDCLIP_K_EMBED, SDCLIP_K_MATRIX, round_to_nearest, sdclip_scale

HERE = Path(__file__).resolve().parent


def payload(scale: float = 1.0, seed: int = 0) -> dict:
    "An intN export object at the r0409 shapes: SDClip int6 matrices, an int8 embedding, fp16 small tensors."
    g = torch.Generator().manual_seed(seed)
    with torch.device("meta"): sd = GPT(resolve("r0409").model).state_dict()
    obj = {"__quant_format__": INTN_FORMAT, "quantized": {}, "scales": {}, "dtypes": {}, "passthrough": {},
           "passthrough_orig_dtypes": {}, "bits": {}, "methods": {}}
    for name, t in sd.items():
        if t.ndim == 2 and t.numel() > 65536:
            rows = max(1, round(t.shape[0] * scale))
            W = torch.randn(rows, t.shape[1], generator=g)
            embed = quant_category(name) == "embed"
            bits, k = (8, SDCLIP_K_EMBED) if embed else (6, SDCLIP_K_MATRIX)
            s = sdclip_scale(W, bits, k)
            obj["quantized"][name] = round_to_nearest(W, s, bits)
            obj["scales"][name], obj["dtypes"][name] = s, "float32"
            obj["bits"][name], obj["methods"][name] = bits, "sdclip_rtn"
        else:
            obj["passthrough"][name] = torch.randn(t.shape, generator=g).half() if t.is_floating_point() else torch.zeros(t.shape, dtype=t.dtype)
            if t.is_floating_point(): obj["passthrough_orig_dtypes"][name] = "float32"
    return obj


def same(a, b) -> bool:
    "Whether two export objects hold the same tensors and fields."
    if isinstance(a, dict): return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, torch.Tensor): return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    return a == b


def record(row: dict, out: Path):
    row = {"bench": "codecs", **row, **bench_meta(), "loadavg_start": round(os.getloadavg()[0], 2)}
    with open(out, "a") as f: f.write(json.dumps(row) + "\n")
    print(json.dumps({k: v for k, v in row.items() if k not in ("host", "machine", "torch", "command")}), flush=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scale", type=float, default=1.0, help="fraction of every large matrix's rows (1.0: full size)")
    p.add_argument("--coders", default="zlib-9,zstd-22,lzma-6,lzma-9,brotli-11", help="coder-level, comma-separated")
    p.add_argument("--layouts", default="torch:0,torch:2,raw:2,pergroup:0",
                   help="serializer:shuffle_stride pairs for the last coder (the others run torch:0)")
    p.add_argument("--ledger", default="sample,alone,exact", help="ledger methods, on the last coder and first layout")
    p.add_argument("--ledger-on", default=None,
                   help="coder-level:serializer:shuffle triples to run the ledger on (default: the last coder, first layout)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (the coders are single-threaded)")
    p.add_argument("--out", default=str(HERE / "results.jsonl"))
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    obj = payload(a.scale)
    n = sum(int(q.numel()) for q in obj["quantized"].values())
    print(f"payload: {len(obj['quantized'])} quantised matrices, {n:,} values (scale {a.scale})", flush=True)
    coders = [c.rsplit("-", 1) for c in a.coders.split(",")]
    layouts = [tuple(x.split(":")) for x in a.layouts.split(",")]
    jobs = [(c, int(l), "torch", 0) for c, l in coders[:-1]] + [(coders[-1][0], int(coders[-1][1]), s, int(k)) for s, k in layouts]
    sizes = {}
    for coder, level, ser, stride in jobs:
        t0 = time.perf_counter(); blob = pack_artifact(obj, coder, level, ser, stride); t1 = time.perf_counter()
        back = unpack_artifact(blob, coder); t2 = time.perf_counter()
        sizes[(coder, level, ser, stride)] = len(blob)
        record(dict(stage="coder", scale=a.scale, values=n, coder=f"{coder}-{level}", serializer=ser, shuffle_stride=stride,
                    bytes=len(blob), pack_s=t1 - t0, unpack_s=t2 - t1, roundtrip=same(obj, back)), Path(a.out))
    targets = ([(c.rsplit("-", 1)[0], int(c.rsplit("-", 1)[1]), sr, int(k)) for c, sr, k in (t.split(":") for t in a.ledger_on.split(","))]
               if a.ledger_on else [(coders[-1][0], int(coders[-1][1]), layouts[0][0], int(layouts[0][1]))])
    for coder, level, ser, stride in targets:
        if (coder, level, ser, stride) not in sizes: sizes[(coder, level, ser, stride)] = len(pack_artifact(obj, coder, level, ser, stride))
        ledgers(obj, coder, level, ser, stride, sizes[(coder, level, ser, stride)], a)


def ledgers(obj, coder, level, ser, stride, model_bytes, a):
    "Each ledger method on one packing, its seconds, and each method's marginals minus the exact ones."
    out = {}
    for m in a.ledger.split(","):
        t0 = time.perf_counter()
        out[m] = byte_ledger(obj, coder, level, serializer=ser, shuffle_stride=stride, method=m, model_bytes=model_bytes)
        record(dict(stage="ledger", scale=a.scale, coder=f"{coder}-{level}", serializer=ser, shuffle_stride=stride, method=m,
                    seconds=time.perf_counter() - t0, model_bytes=model_bytes,
                    marginal={g: out[m]["groups"][g]["marginal_bytes"] for g in LEDGER_GROUPS}), Path(a.out))
    if "exact" not in out: return
    ex = out["exact"]["groups"]
    for m, led in out.items():
        if m == "exact": continue
        diff = {g: led["groups"][g]["marginal_bytes"] - ex[g]["marginal_bytes"] for g in LEDGER_GROUPS}
        record(dict(stage="ledger_error", scale=a.scale, coder=f"{coder}-{level}", serializer=ser, shuffle_stride=stride, method=m,
                    minus_exact=diff, abs_sum=sum(abs(v) for v in diff.values()),
                    of_model=sum(abs(v) for v in diff.values()) / model_bytes), Path(a.out))

if __name__ == "__main__":
    main()
