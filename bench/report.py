#!/usr/bin/env python3
"""Turns the raw results of bench/run.sh into the printed table and the JSON file.

usage: report.py META.json RESULTS.tsv STORED.tsv OUT.json [TOTAL_SECONDS]
RESULTS.tsv: run tool figure seconds logical_bytes rss_kb user_s sys_s ok
STORED.tsv:  run tool figure bytes
"""
import json
import statistics
import sys
from collections import defaultdict

PEERS = ["restic", "borg", "casync"]
ENCRYPTION = {
    "cairn": "aes-256-gcm (the default: AES-256-GCM chunks and metadata, keyed ids, Argon2id key file)",
    "restic": "AES-256-CTR + Poly1305 (always on)",
    "borg": "repokey-blake2 (AES-256-CTR + BLAKE2b MAC)",
    "casync": "none (casync has no encryption)",
}


def encryption(tool, meta):
    """What the tool encrypts with in this run; cairn's depends on CAIRN_INIT_ARGS."""
    if not tool.startswith("cairn"):
        return ENCRYPTION[tool]
    args = meta.get("cairn_init_args", "").split()
    if "--encryption=none" in args or any(a == "--encryption" and b == "none" for a, b in zip(args, args[1:])):
        return "none (--encryption none)"
    return ENCRYPTION["cairn"] + (f"; init args: {' '.join(args)}" if args else "")


SPEED_FIGS = [  # (key, label)
    ("ingest_linux", "1 ingest linux-6.1.tar"),
    ("ingest_random", "2 ingest random1g.bin"),
    ("reingest_linux", "3 re-ingest linux (dedup)"),
    ("restore_linux", "4 restore linux, warm"),
    ("restore_cold_linux", "4 restore linux, cold"),
    ("edits_ingest", "  ingest 20-version edits"),
    ("check_data", "7 check all data (tar+rnd)"),
]
STORED_FIGS = [
    ("stored_linux", "5 stored after 1 (tar)"),
    ("stored_1_2", "5 stored after 1-2"),
    ("stored_edits", "5 stored after edit series"),
]


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def main():
    meta_p, res_p, sto_p, out_p = sys.argv[1:5]
    total_s = float(sys.argv[5]) if len(sys.argv) > 5 else None
    meta = json.load(open(meta_p))
    raw, stored_raw = [], []
    for line in open(res_p):
        run, tool, fig, sec, nbytes, rss, us, ss, ok = line.rstrip("\n").split("\t")
        raw.append(dict(run=int(run), tool=tool, figure=fig, seconds=float(sec), bytes=int(nbytes),
                        rss_kb=int(rss), user_s=float(us or 0), sys_s=float(ss or 0), ok=ok == "1"))
    for line in open(sto_p):
        run, tool, fig, nbytes = line.rstrip("\n").split("\t")
        stored_raw.append(dict(run=int(run), tool=tool, figure=fig, bytes=int(nbytes)))

    # per (tool, figure, run): sum of seconds/bytes/cpu (the edit series is 20 commands), max RSS
    agg = defaultdict(lambda: dict(seconds=0.0, bytes=0, rss_kb=0, cpu_s=0.0, ok=True, n=0))
    verify = defaultdict(list)
    for r in raw:
        if r["figure"].startswith("verify_"):
            verify[(r["tool"], r["figure"])].append(r["ok"])
            continue
        a = agg[(r["tool"], r["figure"], r["run"])]
        a["seconds"] += r["seconds"]; a["bytes"] += r["bytes"]; a["n"] += 1
        a["cpu_s"] += r["user_s"] + r["sys_s"]
        a["rss_kb"] = max(a["rss_kb"], r["rss_kb"]); a["ok"] &= r["ok"]
    per = defaultdict(lambda: defaultdict(list))  # (tool, fig) -> metric -> [per run]
    for (tool, fig, run), a in agg.items():
        p = per[(tool, fig)]
        if fig == "edits_ingest" and a["n"] != 20:
            a["ok"] = False
        p["ok"].append(a["ok"])
        if not a["ok"]:
            continue
        p["mbps"].append(a["bytes"] / a["seconds"] / 1e6)
        p["seconds"].append(a["seconds"])
        p["rss_mib"].append(a["rss_kb"] / 1024)
        p["cpu_pct"].append(100 * a["cpu_s"] / a["seconds"])
    for s in stored_raw:
        per[(s["tool"], s["figure"])]["bytes"].append(s["bytes"])

    tools = [t for t in ["cairn", "cairn-before"] + PEERS if t in meta["tools"]]
    peers = [t for t in PEERS if t in tools]
    res = {}
    for (tool, fig), p in per.items():
        res.setdefault(tool, {})[fig] = {
            "runs": {k: v for k, v in p.items()},
            "median": {k: med(v) for k, v in p.items() if k != "ok"},
            "all_ok": all(p["ok"]) if p["ok"] else True,
        }
    for (tool, fig), oks in verify.items():
        res.setdefault(tool, {}).setdefault(fig.replace("verify_", "restore_"), {})["verified"] = all(oks)

    def val(tool, fig, metric):
        return res.get(tool, {}).get(fig, {}).get("median", {}).get(metric)

    lines = []
    P = lines.append
    m = meta
    P(f"machine: nproc={m['nproc']}  cpu=\"{m['cpu_model']}\"  flags: {' '.join(m['cpu_flags']) or '-'}"
      f"  mem={m['mem_total_kb'] // 1024} MiB  kernel {m['kernel']}")
    P(f"cairn {m['cairn_commit'][:12]} ({m['cairn_binary']})  init args: '{m['cairn_init_args']}'"
      f"  | {m['versions']['restic']} | {m['versions']['borg']} | {m['versions']['casync']}")
    P(f"data: linux-6.1.tar {m['bytes']['linux'] / 1e6:.1f} MB, random1g.bin {m['bytes']['random'] / 1e6:.1f} MB,"
      f" edits v01..v20 {m['bytes']['edits'] / 1e6:.1f} MB logical   |  medians of RUNS={m['runs']}"
      + (f"  |  total {total_s / 60:.1f} min" if total_s else ""))
    P("MB = 1e6 bytes. cairn/best: best peer = fastest (MB/s) or smallest (bytes, RSS); "
      "MB/s ratio > 1 and bytes/RSS ratio < 1 favour cairn.")
    P("")

    w = 27
    colname = {"cairn-before": "before"}  # column names (cairn-before: CAIRN_BEFORE's binary)
    hdr = f"{'figure':<{w}}" + "".join(f"{colname.get(t, t):>11}" for t in tools) + f"{'best peer':>18}{'cairn/best':>11}{'cairn/restic':>13}"
    sep = "-" * len(hdr)

    def row(label, fig, metric, fmt, higher_better):
        cells = []
        for t in tools:
            v = val(t, fig, metric)
            if v is None:
                bad = res.get(t, {}).get(fig, {}).get("all_ok") is False
                cells.append(f"{'FAIL' if bad else '-':>11}")
            else:
                s = fmt(v)
                if fig.startswith("restore_") and res.get(t, {}).get(fig, {}).get("verified") is False:
                    s += "!"
                cells.append(f"{s:>11}")
        pv = {t: val(t, fig, metric) for t in peers if val(t, fig, metric) is not None}
        best = (max if higher_better else min)(pv, key=pv.get) if pv else None
        c = val("cairn", fig, metric)
        bs = f"{best} {fmt(pv[best])}" if best else "-"
        rb = f"{c / pv[best]:.2f}x" if best and c and pv[best] else "-"
        rr = f"{c / pv['restic']:.2f}x" if c and pv.get("restic") else "-"
        P(f"{label:<{w}}" + "".join(cells) + f"{bs:>18}{rb:>11}{rr:>13}")
        return dict(best_peer=best, best_peer_value=pv.get(best) if best else None, cairn=c,
                    cairn_over_best=c / pv[best] if best and c and pv[best] else None,
                    cairn_over_restic=c / pv["restic"] if c and pv.get("restic") else None)

    ratios = {}
    P("THROUGHPUT, MB/s (higher is better)")
    P(hdr); P(sep)
    for fig, label in SPEED_FIGS:
        ratios[fig + ".mbps"] = row(label, fig, "mbps", lambda v: f"{v:.1f}", True)
    P("")
    P("STORED BYTES, du -sb of the repo, MB (lower is better)")
    P(hdr); P(sep)
    for fig, label in STORED_FIGS:
        ratios[fig + ".bytes"] = row(label, fig, "bytes", lambda v: f"{v / 1e6:.1f}", False)
    for fig, label in STORED_FIGS:
        logical = {"stored_linux": m["bytes"]["linux"], "stored_1_2": m["bytes"]["linux"] + m["bytes"]["random"],
                   "stored_edits": m["bytes"]["edits"]}[fig]
        cells = "".join(f"{(logical / val(t, fig, 'bytes')):>10.2f}x" if val(t, fig, "bytes") else f"{'-':>11}"
                        for t in tools)
        P(f"{'  logical/stored ' + fig.split('_', 1)[1]:<{w}}" + cells)
    P("")
    P("PEAK RSS per command, MiB (lower is better; edit series = max of its 20 commands)")
    P(hdr); P(sep)
    for fig, label in SPEED_FIGS:
        ratios[fig + ".rss_mib"] = row(label, fig, "rss_mib", lambda v: f"{v:.1f}", False)
    P("")
    P("CPU use, (user+sys)/wall %  (200% = both cores busy)")
    P(f"{'figure':<{w}}" + "".join(f"{colname.get(t, t):>11}" for t in tools)); P("-" * (w + 11 * len(tools)))
    for fig, label in SPEED_FIGS:
        P(f"{label:<{w}}" + "".join(f"{val(t, fig, 'cpu_pct'):>10.0f}%" if val(t, fig, "cpu_pct") is not None
                                     else f"{'-':>11}" for t in tools))
    P("")
    if "cairn-before" in res:
        P(f"CAIRN AFTER/BEFORE: this binary vs CAIRN_BEFORE ({m.get('cairn_before_binary', '?')}), same run")
        P(f"{'figure':<{w + 10}}{'before':>11}{'after':>11}{'after/before':>14}  (MB/s: > 1 is faster; MB, MiB: < 1 is smaller)")
        P("-" * (w + 10 + 11 * 2 + 14))
        ba = {}
        for figs, metric, fmt in ((SPEED_FIGS, "mbps", "{:.1f}"), (STORED_FIGS, "bytes", None),
                                  (SPEED_FIGS, "rss_mib", "{:.1f}")):
            for fig, lab in figs:
                a, b = val("cairn-before", fig, metric), val("cairn", fig, metric)
                if not a or b is None:  # not measured, or failed in every run
                    continue
                f = (lambda v: f"{v / 1e6:.1f}") if fmt is None else (lambda v, s=fmt: s.format(v))
                unit = {"mbps": "MB/s", "bytes": "MB", "rss_mib": "RSS MiB"}[metric]
                P(f"{lab.strip() + ', ' + unit:<{w + 10}}{f(a):>11}{f(b):>11}{b / a:>13.2f}x")
                ba[f"{fig}.{metric}"] = dict(before=a, after=b, after_over_before=b / a)
        ratios["after_before"] = ba
        P("")
    if "cairn-t1" in res or "cairn-t2" in res:
        P("CAIRN SCALING --threads 1 vs --threads 2 (linux-6.1.tar, fresh repo each)")
        P(f"{'figure':<{w}}{'t1 MB/s':>11}{'t2 MB/s':>11}{'t2/t1':>9}{'t1 CPU%':>9}{'t2 CPU%':>9}{'t1 RSS':>9}{'t2 RSS':>9}")
        P("-" * (w + 11 * 2 + 9 * 5))
        for fig, label in [("ingest_linux", "ingest linux-6.1.tar"), ("restore_linux", "restore linux-6.1.tar")]:
            a, b = val("cairn-t1", fig, "mbps"), val("cairn-t2", fig, "mbps")
            ca, cb = val("cairn-t1", fig, "cpu_pct"), val("cairn-t2", fig, "cpu_pct")
            ra, rb_ = val("cairn-t1", fig, "rss_mib"), val("cairn-t2", fig, "rss_mib")
            f = lambda v, s="{:.1f}": s.format(v) if v is not None else "-"
            P(f"{label:<{w}}{f(a):>11}{f(b):>11}{(f'{b / a:.2f}x' if a and b else '-'):>9}"
              f"{f(ca, '{:.0f}%'):>9}{f(cb, '{:.0f}%'):>9}{f(ra):>9}{f(rb_):>9}")
            ratios[f"scaling.{fig}"] = dict(t1_mbps=a, t2_mbps=b, t2_over_t1=b / a if a and b else None)
        P("")

    # the targets, computed from the medians above (no judgement added)
    def tgt(name, ok, detail):
        P(f"  [{'PASS' if ok else 'FAIL' if ok is False else ' ?? '}] {name}: {detail}")
        return dict(target=name, pass_=ok, detail=detail)

    def ratio(fig, metric):
        c, r = val("cairn", fig, metric), val("restic", fig, metric)
        return c / r if c and r else None

    P("TARGETS (issue 14; medians above; best peer = fastest or smallest of the peers run)")
    targets = []

    def best_ratio(fig, metric, higher_better=True):
        return ratios.get(f"{fig}.{metric}", {}).get("cairn_over_best")

    def at_least(name, fig, x, metric="mbps"):
        v = best_ratio(fig, metric)
        targets.append(tgt(f"{name} >= {x}x the best peer", v >= x if v else None, f"{v:.2f}x" if v else "n/a"))

    at_least("ingest linux-6.1.tar", "ingest_linux", 2.5)
    v = best_ratio("stored_linux", "bytes")
    targets.append(tgt("  stored bytes <= 1.05x the best peer", v <= 1.05 if v else None, f"{v:.3f}x" if v else "n/a"))
    at_least("ingest 1 GiB random", "ingest_random", 4)
    at_least("re-ingest unchanged data", "reingest_linux", 3)
    at_least("restore warm", "restore_linux", 3)
    at_least("restore cold", "restore_cold_linux", 3)
    v = ratio("stored_edits", "bytes")
    targets.append(tgt("edit series stored <= restic's", v <= 1 if v else None, f"{v:.3f}x restic" if v else "n/a"))
    c, rs_ = val("cairn", "check_data", "mbps"), val("cairn", "restore_linux", "mbps")
    v = c / rs_ if c and rs_ else None
    targets.append(tgt("check --read-data >= 0.8x the restore rate", v >= 0.8 if v else None,
                       f"{v:.2f}x ({c:.0f} vs {rs_:.0f} MB/s)" if v else "n/a"))
    for fig in ("ingest_linux", "restore_linux"):
        v = ratios.get(f"scaling.{fig}", {}).get("t2_over_t1")
        targets.append(tgt(f"--threads 1 -> 2 on {fig.split('_')[0]} >= 1.8x", v >= 1.8 if v else None,
                           f"{v:.2f}x" if v else "n/a"))
    rss = [val(t, f, "rss_mib") for t in ("cairn", "cairn-t1", "cairn-t2") for f, _ in SPEED_FIGS]
    rss = [x for x in rss if x is not None]
    mx = max(rss) if rss else None
    targets.append(tgt("cairn peak RSS <= 128 MiB on every command", mx <= 128 if mx else None,
                       f"max {mx:.1f} MiB" if mx else "n/a"))
    P("  (encrypted vs --encryption none: bench/encryption.sh)")
    P("")
    P("ENCRYPTION:")
    for t in tools:
        P(f"  {t:<7} {encryption(t, m)}")
    bad = [f"{t} {f}" for t, figs in res.items() for f, d in figs.items()
           if d.get("all_ok") is False or d.get("verified") is False]
    if bad:
        P("")
        P("FAILURES (figures left out of the medians): " + ", ".join(sorted(bad)))

    text = "\n".join(lines)
    print(text)
    out = dict(meta=meta, total_seconds=total_s, results=res, ratios=ratios,
               targets=[{"target": t["target"].strip(), "pass": t["pass_"], "detail": t["detail"]} for t in targets],
               encryption={t: encryption(t, meta) for t in tools}, raw=raw, stored_raw=stored_raw, table=text)
    with open(out_p, "w") as f:
        json.dump(out, f, indent=1)
    print(f"\nJSON: {out_p}")


if __name__ == "__main__":
    main()
