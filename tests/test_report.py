"""End to end: a fake batch -> `render_report` -> one standalone `report.html` whose figures render in a browser.

The batch is written the way `pgolf ablate` lays it out (an expanded plan, one run directory per run with
`result.json` and `metrics.jsonl`, then `results.parquet`), with made-up but plausible numbers: three arms x three
seeds, one failed run, one degenerate run (no better than the unigram yardstick) and an arm over the size cap. The browser checks need Debian's `chromium` (`apt-get install -y chromium`); without it
they are skipped.
"""
import html, json, math, os, re, shutil, subprocess, sys
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest

from pgolf.lab.plans import expanded, parse_plan
from pgolf.lab.results import collect_results, save_results
from pgolf.lab.report import render_report

CHROMIUM = shutil.which("chromium")
VAL_TOKENS, VAL_BYTES = 62_021_632, 151_080_891  # about the challenge's SP1024 val split (2.44 bytes per token)
EFFECT = {"baseline": 0.0, "polar": -0.004, "adam": 0.03}  # each arm's true bpb delta against the control
N_FIGURES = 6  # the template's plots (the sixth: what averaging and QAT did, for the polar arm)
OVER_CAP = 200_000  # adam's extra model bytes: 15.8 MB + 0.2 MB + 48 kB of code is over the 16,000,000-byte cap
EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//|@import|url\(\s*["']?(?:https?:)?//""", re.I)


def write_batch(d: Path) -> Path:
    "A fake batch directory with plausible numbers; adam's third seed failed, polar's third is degenerate, adam is over the cap."
    plan = parse_plan({"name": "report-fx", "description": "Does Polar Express help Muon, and is Adam worse?", "base": "tiny",
                       "arms": {"baseline": {}, "polar": {"optim.muon_coeffs": "polar_express"}, "adam": {"optim.matrix_optimizer": "adam"}},
                       "control": "baseline", "seeds": [1, 2, 3]})
    exp = expanded(plan)
    d.mkdir(parents=True, exist_ok=True)
    (d / "plan.expanded.json").write_text(json.dumps(exp))
    rng = np.random.default_rng(0)
    for r in exp["runs"]:
        rd = d / "runs" / r["run_id"]; rd.mkdir(parents=True)
        arm, failed, flat = r["arm"], (r["arm"], r["seed"]) == ("adam", 3), (r["arm"], r["seed"]) == ("polar", 3)
        bpb = 1.2244 + EFFECT[arm] + rng.normal(0, 0.0008) if not flat else 4.9
        model = int(15_800_000 + {"baseline": 0, "polar": 9_000, "adam": OVER_CAP}[arm] + rng.integers(-5000, 5000))
        prov = dict(git_sha="0123456789abcdef", pgolf_version="0.1.0", torch_version="2.13.0", device="NVIDIA H100 80GB HBM3",
                    device_count=8, hostname="node-1", start_time="2026-04-01T10:00:00", end_time="2026-04-01T10:12:00")
        res = dict(run_id=r["run_id"], config_hash=r["config_hash"], preset="tiny", overrides=r["overrides"], seed=r["seed"], **prov)
        if failed:
            res.update(status="failed", error="RuntimeError: timed out after 1800s (launch.timeout_seconds)")
        else:
            ms = 43.5 + {"baseline": 0, "polar": 0.8, "adam": -1.5}[arm] + rng.normal(0, 0.3)
            groups = {g: f for g, f in zip(("embed", "attn", "mlp", "control", "other"), (0.12, 0.30, 0.56, 0.001, 0.019))}
            res.update(status="degenerate" if flat else "ok", error=None, val_loss_pre_export=(bpb - 0.007) * math.log(2) * VAL_BYTES / VAL_TOKENS,
                       val_bpb_pre_export=bpb - 0.007, val_loss=bpb * math.log(2) * VAL_BYTES / VAL_TOKENS, val_bpb=bpb,
                       val_unigram_bpb=4.81, steps=int(600_000 / ms), stopped_by="wallclock", ms_per_step=ms, train_seconds=600.0,
                       export_seconds=11.2, eval_seconds=71.5, model_bytes=model, code_bytes=48_000, total_bytes=model + 48_000,
                       headroom_bytes=16_000_000 - model - 48_000, size_cap_bytes=16_000_000, fits=model + 48_000 <= 16_000_000, val_tokens=VAL_TOKENS, val_bytes=VAL_BYTES,
                       params=17_059_912, peak_mem_mib=10_240.0,
                       bytes_by_group={g: dict(params=int(17e6 * f), payload_bytes=int(17e6 * f), alone_bytes=int(model * f * 1.1),
                                               share_bytes=int(model * f), share=f) for g, f in groups.items()})
            if flat: res["flag"] = f"no better than unigram ({bpb:.4f} bpb >= 4.8100 bpb)"
            if arm == "polar":  # this arm also records EMA and late QAT (issue 9's keys); the others are old-style runs
                res.update(val_bpb_pre_average=bpb - 0.007 + 0.01, val_bpb_post_average=bpb - 0.007, averaging_gain_bpb=-0.01,
                           averaged=["ema"], ema_decay=0.997, qat_enabled_step=9000,
                           switches=[{"step": 9000, "what": "qat", "value": True, "elapsed_ms": 4e5}],
                           step_ms=[{"after": None, "steps": [0, 9000], "ms_per_step": 43.0},
                                    {"after": "qat=True", "steps": [9000, 13000], "ms_per_step": 47.3}])
        (rd / "result.json").write_text(json.dumps(res))
        rows = []
        for step in range(100, 13_001 if not failed else 6_001, 100):
            loss = 2.05 + EFFECT[arm] + 4.9 * math.exp(-step / 900) + rng.normal(0, 0.02)
            rows.append(dict(kind="train", step=step, train_loss=loss, lr_mult=1.0, train_time_ms=step * 43.5, ms_per_step=43.5,
                             tokens_seen=step * 524_288))
            if step % 2000 == 0:
                rows.append(dict(kind="val", step=step, val_loss=loss + 0.02, val_bpb=(loss + 0.02) / math.log(2) * VAL_TOKENS / VAL_BYTES,
                                 train_time_ms=step * 43.5))
        (rd / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in rows))
    save_results(collect_results(d), d)
    return d


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    batch = write_batch(tmp_path_factory.mktemp("batch") / "report-fx")
    return render_report(batch)


def test_report_is_written_and_standalone(report):
    batch = report.parent
    assert report == batch / "report.html" and (batch / "report.ipynb").is_file()
    nb = nbformat.read(batch / "report.ipynb", as_version=4)
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors, errors
    page = report.read_text(encoding="utf-8")
    pngs = re.findall(r'<img [^>]*src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(pngs) == N_FIGURES and all(len(p) > 10_000 for p in pngs), [len(p) for p in pngs]
    assert not EXTERNAL.search(page), EXTERNAL.search(page).group(0)  # nothing is fetched from the network
    assert "<script" not in page and "<link" not in page
    for arm in EFFECT: assert arm in page
    assert "What averaging and QAT did" in page, "the polar arm records averaging and QAT: the report shows them"
    assert "report-fx" in page and "Polar Express" in page and "timed out after 1800s" in page
    bar = 0.005 / math.log(2) * VAL_TOKENS / VAL_BYTES  # the 0.005-nat bar in bpb, by hand
    assert f"the 0.005-nat bar is <strong>{bar:.4f} bpb</strong>" in page


def test_report_shows_what_is_not_a_plain_ok_result(report):
    "The degenerate run and the arm over the cap are named, left out or denied a verdict, never passed off as ok."
    page = html.unescape(report.read_text(encoding="utf-8"))
    assert "1 degenerate, 0 illegal, 1 failed, 0 pending" in page and "no better than unigram (4.9000 bpb >= 4.8100 bpb)" in page
    assert re.search(r"degenerate, left out of the statistics: no better than unigram", page)
    assert "does not fit: " in page and "its arm gets no record or leaderboard verdict" in page
    verdict = re.search(r"<strong>adam</strong>: ([^<]*)", page).group(1)
    assert verdict.startswith("does not fit (up to ") and "no record or leaderboard verdict" in verdict, verdict
    df = pd.read_parquet(report.parent / "results.parquet")
    assert df.status.value_counts().to_dict() == {"ok": 7, "failed": 1, "degenerate": 1}
    assert df.loc[df.arm == "adam", "fits"].dropna().eq(False).all() and df.loc[df.arm != "adam", "fits"].eq(True).all()


def test_pgolf_results_prints_the_notes(report):
    "`pgolf results` on the same batch: the statuses in the table, one note per run that is not a plain ok result."
    r = subprocess.run([sys.executable, "-c", "import sys; from pgolf.cli import main; sys.exit(main(sys.argv[1:]))", "results",
                        str(report.parent)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    df = pd.read_parquet(report.parent / "results.parquet"); ids = dict(zip(zip(df.arm, df.seed), df.run_id))
    out = r.stdout
    assert f"note: {ids['polar', 3]}: degenerate, left out of the statistics: no better than unigram (4.9000 bpb >= 4.8100 bpb)" in out, out
    assert f"note: {ids['adam', 3]}: failed: RuntimeError: timed out after 1800s (launch.timeout_seconds)" in out
    for s in (1, 2): assert f"note: {ids['adam', s]}: does not fit: " in out
    arms = {l.split()[0]: l for l in out.split("\n\n")[-1].splitlines()[2:]}  # the per-arm table after the notes
    assert "does not fit (up to " in arms["adam"] and "False" in arms["adam"] and "1 failed" in arms["adam"], arms
    assert "1 degenerate" in arms["polar"] and " 2 " in arms["polar"], arms["polar"]


def _chromium(args, tmp, timeout=90):
    profile = tmp / "chromium-profile"; profile.mkdir(exist_ok=True)
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile}", *args]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout


PROBE = """<script>
window.addEventListener("load", () => document.documentElement.setAttribute("data-probe",
  JSON.stringify([...document.images].map(i => [i.complete, i.naturalWidth, i.naturalHeight]))));
</script>"""  # records, for each <img>, whether it decoded and its size


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install -y chromium)")
def test_figures_render_in_chromium(report, tmp_path):
    probe = tmp_path / "probe.html"
    probe.write_text(report.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), encoding="utf-8")
    dom = _chromium(["--virtual-time-budget=10000", "--dump-dom", probe.as_uri()], tmp_path)
    m = re.search(r'data-probe="([^"]*)"', dom)
    assert m, "the probe did not run: " + dom[:500]
    imgs = json.loads(html.unescape(m.group(1)))
    assert len(imgs) >= N_FIGURES and all(ok and w > 0 and h > 0 for ok, w, h in imgs), imgs


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install -y chromium)")
def test_screenshot_is_not_blank(report, tmp_path):
    from PIL import Image  # pillow: a dependency of matplotlib
    shot = tmp_path / "report.png"
    _chromium(["--window-size=1200,2400", "--hide-scrollbars", f"--screenshot={shot}", report.as_uri()], tmp_path)
    img = np.asarray(Image.open(shot).convert("L"), dtype=np.float64)
    assert img.shape == (2400, 1200)
    dark = (img < 200).mean()  # text, lines, bars
    assert img.std() > 20 and 0.01 < dark < 0.6, (img.std(), dark)
