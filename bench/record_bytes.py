"""pgolf's export against the records' own export code, on the same weights: the compressed bytes of each, and how
many quantised values agree.

Usage:
    python bench/record_bytes.py --records /work/.mirror/openai+parameter-golf/repo           # both records, full size
    python bench/record_bytes.py --records REPO --only pr414 --scale 0.25                      # a quarter of the rows

`--records` is a checkout (or a bare mirror: files are read with `git show HEAD:...`) of openai/parameter-golf. The
records' files are read, never copied into pgolf: from each record's `train_gpt.py` (the 04-09 one is an
LZMA+base85 wrapper, decoded here) the export functions are taken out by name with `ast` and executed in a
namespace of their own, then called on the weights the way the record's `serialize` calls them:

  pr414   2026-03-22_11L_EMA_GPTQ-lite_warmdown3500_QAT015_1.1233 (PR #414): `mixed_quantize_int6(sd, {"mlp", "attn"})`
          (GPTQ-lite clip search, int6; the embedding through the baseline's int8), torch.save({"w", "m"}), zstd-22.
          pgolf: export.quant=intn export.method=gptq_lite export.control_dtype=fp16 export.compressor=zstd
          export.level=22.
  pr1658  2026-04-09_SP8192_3LayerRecur_ParResid_QK525_LegalTTT (PR #1658): `gptq_mixed_quantize(sd, H, h)` (SDClip
          GPTQ, int6 at k = 12.85, the embedding int8 at k = 20), torch.save({"w", "m"}), `_compress` (byte shuffle 2
          behind its BSHF magic, brotli-11). pgolf: export.quant=intn export.method=gptq_sdclip
          export.embed_method=gptq export.control_dtype=fp16 export.shuffle_stride=2 export.compressor=brotli
          export.level=11, serialised with torch.save (no pgolf header, so that the two files hold the same things).

The weights are the r0409 model at its init with Gaussian noise on every matrix (std 0.02), the same state dict for
both sides. Two comparisons: pgolf's file as pgolf writes it (`pgolf_bytes`), and pgolf's quantised values written
in the record's own layout and coder (`pgolf_values_record_layout_bytes`), which isolates the quantiser from the
container (zstd in particular is sensitive to what the stream holds where). The Hessians (for pr1658) are the same tensors on both sides: XᵀX/n of n = 4096 Gaussian rows per input
width. Results go to bench/results.jsonl.
"""
from __future__ import annotations
import argparse, ast, base64, collections, io, json, lzma, math, os, re, subprocess, sys, time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from techniques import bench_meta  # noqa: E402

from pgolf.config import resolve
from pgolf.export import pack_artifact
from pgolf.model import GPT
from pgolf.quantize import export_pipeline

HERE = Path(__file__).resolve().parent
RECORDS = {
    "pr414": dict(folder="records/track_10min_16mb/2026-03-22_11L_EMA_GPTQ-lite_warmdown3500_QAT015_1.1233",
                  names=["CONTROL_TENSOR_NAME_PATTERNS", "INT8_CLIP_PERCENTILE", "INT8_CLIP_Q", "INT8_PER_ROW_SCALE_DTYPE",
                         "quantize_float_tensor", "_classify_param", "quantize_int6_per_row", "mixed_quantize_int6"],
                  recipe=["export.quant=intn", "export.method=gptq_lite", "export.control_dtype=fp16", "export.compressor=zstd",
                          "export.level=22"]),
    "pr1658": dict(folder="records/track_10min_16mb/2026-04-09_SP8192_3LayerRecur_ParResid_QK525_LegalTTT",
                   names=["gptq_quantize_weight", "gptq_mixed_quantize", "_BSHF_MAGIC", "_byte_shuffle", "_compress"],
                   recipe=["export.quant=intn", "export.method=gptq_sdclip", "export.embed_method=gptq", "export.control_dtype=fp16",
                           "export.shuffle_stride=2", "export.compressor=brotli", "export.level=11"]),
}


def record_source(repo: Path, folder: str) -> str:
    "A record's train_gpt.py, decoded when it is an LZMA+base85 wrapper."
    src = subprocess.run(["git", "-C", str(repo), "show", f"HEAD:{folder}/train_gpt.py"], capture_output=True, text=True, check=True).stdout
    m = re.search(r'b85decode\("(.*?)"\)', src, re.S)
    if m and "exec(" in src[:400]:
        raw = base64.b85decode(m.group(1))
        try: src = lzma.decompress(raw).decode()
        except lzma.LZMAError: src = lzma.decompress(raw, format=lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA2}]).decode()
    # Python 3.12 lets an f-string reuse its quotes inside; 3.11 does not. 04-09 does it on lines that only log:
    return src.replace('{", ".join(', "{', '.join(")


def top_level_chunks(src: str) -> dict:
    "The source of each top-level def, class and assignment, by name (textually: a whole record may not parse here)."
    chunks, cur = {}, None
    for line in src.splitlines(keepends=True):
        starts = line[:1] not in ("", " ", "\t", "\n", ")", "]", "}", "#")
        if starts:
            m = re.match(r"(?:def|class)\s+(\w+)|(\w+)\s*(?::[^=]*)?=(?!=)", line)
            cur = (m.group(1) or m.group(2)) if m else None
            if cur: chunks[cur] = ""
        if cur: chunks[cur] += line
    return chunks


def record_namespace(src: str, names: list[str]) -> dict:
    "Execute only the named top-level functions and assignments of a record's source, in its order."
    chunks = top_level_chunks(src)
    missing = [n for n in names if n not in chunks]
    if missing: raise KeyError(f"the record's train_gpt.py has no top-level {missing}")
    ns = dict(torch=torch, np=np, os=os, re=re, io=io, math=math, lzma=lzma, collections=collections, Tensor=torch.Tensor,
              log=lambda *a, **k: None, __name__="record")
    for n in sorted(names, key=lambda n: src.index(chunks[n])):
        exec(compile(ast.parse(chunks[n]), f"<record {n}>", "exec"), ns)
    return ns


def weights(scale: float, seed: int = 0) -> dict:
    torch.manual_seed(seed)
    m = GPT(resolve("r0409").model)
    sd = {}
    for k, v in m.state_dict().items():
        v = v.detach().float().clone()
        if v.ndim == 2 and v.numel() > 65536:
            v = v[: max(1, round(v.shape[0] * scale))].clone() + torch.randn(max(1, round(v.shape[0] * scale)), v.shape[1]) * 0.02
        sd[k] = v.contiguous()
    return sd


def hessians(sd: dict, seed: int = 1) -> dict:
    g, by_width, out = torch.Generator().manual_seed(seed), {}, {}
    for k, v in sd.items():
        if v.ndim == 2 and v.numel() > 65536:
            d = v.shape[1]
            if d not in by_width:
                X = torch.randn(4096, d, generator=g)
                by_width[d] = X.T @ X / 4096
            out[k] = by_width[d]
    return out


def record_file(name: str, ns: dict, res: dict, meta: dict) -> int:
    'The bytes of the record\'s file for its {"w", "m"} object: torch.save, then the record\'s own coder.'
    buf = io.BytesIO(); torch.save({"w": res, "m": meta}, buf)
    if name == "pr414":
        import zstandard
        return len(zstandard.ZstdCompressor(level=22).compress(buf.getvalue()))
    return len(ns["_compress"](buf.getvalue(), "brotli"))


def record_quantize(name: str, ns: dict, sd: dict, H: dict) -> tuple[dict, dict]:
    "The record's own quantiser, called as its `serialize` calls it: (result, meta)."
    if name == "pr414": return ns["mixed_quantize_int6"](sd, {"mlp", "attn"})
    h = SimpleNamespace(embed_clip_sigmas=20.0, matrix_clip_sigmas=12.85, embed_bits=8, matrix_bits=6)
    return ns["gptq_mixed_quantize"](sd, H, h)


def in_record_layout(obj: dict, sd: dict) -> dict:
    "pgolf's export object rewritten in the records' flat layout: name.q and name.scale per matrix, passthrough by name."
    w = {}
    for n in sd:
        if n in obj["quantized"]: w[n + ".q"], w[n + ".scale"] = obj["quantized"][n], obj["scales"][n]
        else: w[n] = obj["passthrough"][n]
    return w


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--records", required=True, help="a clone or bare mirror of openai/parameter-golf")
    p.add_argument("--only", default="pr414,pr1658")
    p.add_argument("--scale", type=float, default=1.0, help="fraction of every large matrix's rows")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--sensitivity", action="store_true",
                   help="also compress the record's own object with 5 embedding values +1, and with 1 in 7 embedding scales x1.001")
    p.add_argument("--out", default=str(HERE / "results.jsonl"))
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    sd = weights(a.scale)
    for name in a.only.split(","):
        spec = RECORDS[name]
        ns = record_namespace(record_source(Path(a.records), spec["folder"]), spec["names"])
        H = hessians(sd) if name == "pr1658" else None
        t0 = time.perf_counter(); rres, rmeta = record_quantize(name, ns, sd, H); rb = record_file(name, ns, rres, rmeta)
        t1 = time.perf_counter()
        x = resolve("r0409", spec["recipe"]).export
        obj, _ = export_pipeline(sd, x, H)
        ob = len(pack_artifact(obj, x.compressor, x.level, "torch", x.shuffle_stride, header=False)); t2 = time.perf_counter()
        layout_b = record_file(name, ns, in_record_layout(obj, sd), rmeta)   # pgolf's values, the record's layout and coder
        agree = total = 0
        for n, q in obj["quantized"].items():
            if n + ".q" in rres and rres[n + ".q"].shape == q.shape:
                agree += int((rres[n + ".q"] == q).sum()); total += q.numel()
        row = dict(bench="record_bytes", record=name, folder=spec["folder"].rsplit("/", 1)[1], scale=a.scale,
                   record_bytes=rb, pgolf_bytes=ob, diff_bytes=ob - rb, diff_frac=(ob - rb) / rb,
                   pgolf_values_record_layout_bytes=layout_b, layout_diff_frac=(layout_b - rb) / rb,
                   values_equal=agree / total if total else None, values=total, record_s=t1 - t0, pgolf_s=t2 - t1,
                   recipe=" ".join(spec["recipe"]), **bench_meta(), loadavg_start=round(os.getloadavg()[0], 2))
        if a.sensitivity:   # how far the coder moves for (almost) nothing: the record's object, barely changed
            q = rres["tok_emb.weight.q"].clone(); q.view(-1)[[10, 5000, 90000, 700000, 3000000]] += 1
            sc = rres["tok_emb.weight.scale"].clone(); sc[::7] = (sc[::7].float() * 1.001).half()
            row["five_values_plus_one_bytes"] = record_file(name, ns, {**rres, "tok_emb.weight.q": q}, rmeta)
            row["scales_nudged_bytes"] = record_file(name, ns, {**rres, "tok_emb.weight.scale": sc}, rmeta)
        with open(a.out, "a") as f: f.write(json.dumps(row) + "\n")
        print(json.dumps({k: v for k, v in row.items() if k not in ("host", "machine", "torch", "command", "recipe")}), flush=True)


if __name__ == "__main__":
    main()
