#!/usr/bin/env python3
"""report.py -- the markdown report of bench/soak.sh, from the files of its scratch dir.

usage: report.py DIR WARMUP_SECONDS SOAK_SECONDS FLAP_SIGNAL DRAIN_STATUS

Reads DIR/wrk.txt (the "soak-wrk" line of mix.lua), client.json and client-fail.log
(close_client.py), samples.tsv, events.tsv, access-counts.tsv and access-fail.log (the
access log digests) and fulcrum.log. Prints the report's tables and verdict lines.
"""

import collections
import datetime
import json
import os
import re
import sys

# RSS is "flat" when the last window's peak is within this of the first window's peak.
FLAT_KIB = 256
FLAT_PCT = 2.0


def read_tsv(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        lines = f.read().splitlines()
    if not lines:
        return []
    head = lines[0].split("\t")
    return [dict(zip(head, line.split("\t"))) for line in lines[1:] if line]


def parse_wrk(path):
    """The key=value pairs of the soak-wrk line, {} if wrk printed none."""
    out = {}
    if not os.path.exists(path):
        return out
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith("soak-wrk first_bad_body="):
                out["first_bad_body"] = line.split("=", 1)[1].strip()
            elif line.startswith("soak-wrk "):
                for kv in line.split()[1:]:
                    k, _, v = kv.partition("=")
                    out[k] = int(v)
    return out


def wrk_section(w, path):
    print("### wrk, keep-alive mix")
    print()
    if not w:
        print(f"wrk printed no summary; its output: `{open(path, errors='replace').read()[:300]!r}`")
        print()
        return 0
    statuses = {k[5:]: v for k, v in w.items() if k.startswith("http_")}
    sock = w["connect"] + w["read"] + w["write"] + w["timeout"]
    failed = sock + sum(statuses.values()) + w["bad_body"]
    secs = w["duration_us"] / 1e6
    print("| requests | req/s | GET /small ok | GET /large ok | POST ok | socket errors "
          "(connect/read/write/timeout) | non-2xx | bad 2xx body | p50 / p99 / max ms |")
    print("|---:|---:|---:|---:|---:|---|---|---:|---|")
    non2xx = ", ".join(f"{v} × {k}" for k, v in sorted(statuses.items())) or "0"
    print(f"| {w['requests']} | {w['requests'] / secs:.0f} | {w['ok_small']} | {w['ok_large']} "
          f"| {w['ok_post']} | {w['connect']} / {w['read']} / {w['write']} / {w['timeout']} "
          f"| {non2xx} | {w['bad_body']} | {w['p50_us'] / 1000:.2f} / {w['p99_us'] / 1000:.2f}"
          f" / {w['max_us'] / 1000:.1f} |")
    print()
    if "first_bad_body" in w:
        print(f"First bad body: `{w['first_bad_body']}`")
        print()
    return failed


def client_section(d):
    print("### One connection per request")
    print()
    path = os.path.join(d, "client.json")
    if not os.path.exists(path):
        print("The client was off (CLOSE_RATE=0) or wrote no summary.")
        print()
        return 0, 0
    with open(path) as f:
        c = json.load(f)
    print("| kind | requests | ok | non-2xx | connection errors | bad 2xx answer |")
    print("|---|---:|---:|---|---|---:|")
    failed = 0
    for kind, k in c["kinds"].items():
        st = ", ".join(f"{v} × {s}" for s, v in sorted(k["status"].items())) or "0"
        er = ", ".join(f"{v} × {e}" for e, v in sorted(k["error"].items())) or "0"
        n_fail = sum(k["status"].values()) + sum(k["error"].values()) + k["bad"]
        failed += n_fail
        print(f"| {kind} | {k['ok'] + n_fail} | {k['ok']} | {st} | {er} | {k['bad']} |")
    print()
    print(f"{c['requests']} requests in {c['seconds']:.0f} s "
          f"({c['requests'] / max(c['seconds'], 1e-9):.0f}/s), each on a new connection.")
    print()
    fails = os.path.join(d, "client-fail.log")
    if failed and os.path.exists(fails):
        with open(fails) as f:
            lines = f.read().splitlines()
        print("First failures (unix time, kind, what):")
        print()
        print("```")
        print("\n".join(lines[:10]))
        print("```")
        print()
    return c["requests"], failed


def access_section(d):
    """fulcrum's own view: every logged request by request line and status. Returns the
    non-2xx counts by method."""
    rows = read_tsv_noheader(os.path.join(d, "access-counts.tsv"))
    if not rows:
        return {}
    total = collections.Counter()
    for req, st, n in rows:
        total[(req, st)] += int(n)
    logged = sum(total.values())
    bad = {k: v for k, v in total.items() if not k[1].startswith("2")}
    print("### fulcrum's access log")
    print()
    print(f"{logged} requests logged; not 2xx: {sum(bad.values())}.")
    print()
    if bad:
        print("| request | status | count |")
        print("|---|---|---:|")
        for (req, st), n in sorted(bad.items(), key=lambda kv: -kv[1]):
            print(f"| `{req}` | {st} | {n} |")
        print()
        with open(os.path.join(d, "access-fail.log"), errors="replace") as f:
            notes = collections.Counter()
            for line in f:
                parts = line.rstrip("\n").split('"')
                tail = parts[2].split() if len(parts) > 2 else []
                note = " ".join(tail[4:]) if len(tail) > 4 else "(no note)"
                server = line.split()[3] if len(line.split()) > 3 else "?"
                notes[(server, note)] += 1
        print("By server and note: " + "; ".join(
            f"{srv} {note}: {n}" for (srv, note), n in notes.most_common(8)) + ".")
        print()
    by_method = collections.Counter()
    for (req, st), n in bad.items():
        by_method[req.split(" ")[0]] += n
    return by_method


def access_fail_times(d):
    """Unix times (s) of the access log's non-2xx lines."""
    out = []
    path = os.path.join(d, "access-fail.log")
    if not os.path.exists(path):
        return out
    with open(path, errors="replace") as f:
        for line in f:
            try:
                t = datetime.datetime.strptime(line.split()[0], "%Y-%m-%dT%H:%M:%S.%fZ")
            except (ValueError, IndexError):
                continue
            out.append(t.replace(tzinfo=datetime.timezone.utc).timestamp())
    return out


def client_fail_times(d):
    """Unix times of the client's failures that fulcrum did not log with a status of its
    own (a non-2xx answer is in the access log already)."""
    out = []
    path = os.path.join(d, "client-fail.log")
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                parts = line.split("\t")
                if len(parts) < 3 or parts[2] == "status":
                    continue
                try:
                    out.append(float(parts[0]))
                except ValueError:
                    pass
    return out


def correlate(d, events):
    """How long after the last backend stop each failure came: shows whether failures are
    the requests a dying server took with it."""
    try:
        with open(os.path.join(d, "t0")) as f:
            t0 = int(f.read()) / 1000.0
    except (OSError, ValueError):
        return
    stops = sorted(t0 + float(e["t_s"]) for e in events if e["event"] == "stop")
    times = sorted(access_fail_times(d) + client_fail_times(d))
    if not times:
        return
    lags = []
    for t in times:
        before = [s for s in stops if s <= t + 0.05]  # clocks: the log stamps ms, events too
        lags.append(t - before[-1] if before else None)
    near = [x for x in lags if x is not None and x < 2.0]
    print(f"- timing of the {len(times)} failures (access log non-2xx, and the client's "
          "connection errors and bad answers): "
          f"{len(near)} within 2 s after a backend was stopped"
          + (f" (at most {max(near) * 1000:.0f} ms after)" if near else "")
          + f", {len(times) - len(near)} at other times")


def read_tsv_noheader(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [line.split("\t") for line in f.read().splitlines() if line.count("\t") == 2]


def events_section(d, flap_signal):
    ev = read_tsv(os.path.join(d, "events.tsv"))
    reloads = [e for e in ev if e["event"] == "reload"]
    ok = sum(e["result"] == "ok" for e in reloads)
    by = collections.Counter(e["detail"].split()[0] for e in reloads)
    stops = [e for e in ev if e["event"] == "stop"]
    starts = [e for e in ev if e["event"] == "start"]
    bad_starts = sum(e["result"] != "ok" for e in starts)
    print("### Reloads and flaps")
    print()
    ms = sorted(int(e["ms"]) for e in reloads)
    took = f"; took median {ms[len(ms) // 2]} ms, max {ms[-1]} ms (signal or request until " \
        "fulcrum_reloads_total moved)" if ms else ""
    print(f"- reloads: {len(reloads)} done ({by.get('sighup', 0)} SIGHUP, {by.get('api', 0)} "
          f"POST /api/reload), {ok} succeeded, {len(reloads) - ok} failed{took}")
    if flap_signal == "NONE":
        print("- flaps: off")
    else:
        print(f"- flaps: {len(stops)} backends stopped (SIG{flap_signal}), {len(starts)} "
              f"started again ({bad_starts} failed to start)")
    correlate(d, ev)
    return len(reloads) - ok


def fulcrum_log_section(d):
    path = os.path.join(d, "fulcrum.log")
    if not os.path.exists(path):
        return
    c = collections.Counter()
    pats = [
        ("connect failed", r"connect failed"),
        ("failed before the response", r"connection failed before the response"),
        ("-> unhealthy", r"-> unhealthy"),
        ("-> healthy", r"unhealthy -> healthy"),
        ("ejected", r"eject"),
        ("reload live", r"reload: .* is live"),
        ("reload failed", r"reload failed"),
        ("error lines", r"\berror\b"),
    ]
    with open(path, errors="replace") as f:
        for line in f:
            for name, pat in pats:
                if re.search(pat, line):
                    c[name] += 1
    print("- fulcrum's log: " + ", ".join(f"{name} {c[name]}" for name, _ in pats))


def rss_section(samples, warmup, soak):
    rows = [r for r in samples if r["rss_kib"] not in ("NA", "")]
    if not rows:
        print("No RSS samples.")
        return
    t = [int(r["t_s"]) for r in rows]
    rss = [int(r["rss_kib"]) for r in rows]
    fds = [int(r["fds"]) for r in rows]
    after = [i for i, x in enumerate(t) if x >= warmup] or list(range(len(t)))
    i0 = after[0]
    span = t[-1] - t[i0]
    window = min(60, max(span // 3, 1))
    first = [rss[i] for i in after if t[i] < t[i0] + window]
    last = [rss[i] for i in after if t[i] > t[-1] - window]
    growth = max(last) - max(first)
    pct = 100.0 * growth / max(first)
    slope = None
    if len(after) >= 3:
        xs = [t[i] / 60 for i in after]
        ys = [rss[i] for i in after]
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        den = sum((x - mx) ** 2 for x in xs)
        if den > 0:
            slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den
    print("### Memory and file descriptors")
    print()
    print("| RSS KiB at start (0 s) | after warm-up | min | max | end | fds after warm-up | "
          "fds min / max | fds end | threads |")
    print("|---:|---:|---:|---:|---:|---:|---|---:|---:|")
    fa = [fds[i] for i in after]
    print(f"| {rss[0]} | {rss[i0]} ({t[i0]} s) | {min(rss[i] for i in after)} | "
          f"{max(rss[i] for i in after)} | {rss[-1]} ({t[-1]} s) | {fds[i0]} | {min(fa)} / "
          f"{max(fa)} | {fds[-1]} | {rows[-1]['threads']} |")
    print()
    flat = growth <= max(FLAT_KIB, max(first) * FLAT_PCT / 100)
    verdict = "flat" if flat else "GROWING"
    slope_txt = f"; least-squares slope after warm-up {slope:+.1f} KiB/min" if slope is not None else ""
    print(f"**RSS: {verdict}**: peak of the last {window} s {max(last)} KiB vs peak of the "
          f"first {window} s after warm-up {max(first)} KiB: {growth:+d} KiB ({pct:+.2f} %)"
          f"{slope_txt}. (Flat means within {FLAT_KIB} KiB or {FLAT_PCT:g} %.)")
    print()
    print(f"**fds: {fds[i0]} after warm-up, {fds[-1]} at the end** "
          f"({len(rows)} samples over {t[-1]} s).")
    print()


def main(argv):
    d, warmup, soak, flap_signal, drain = argv[1], int(argv[2]), int(argv[3]), argv[4], argv[5]
    w = parse_wrk(os.path.join(d, "wrk.txt"))
    wrk_failed = wrk_section(w, os.path.join(d, "wrk.txt"))
    client_n, client_failed = client_section(d)
    by_method = access_section(d)
    failed_reloads = events_section(d, flap_signal)
    samples = read_tsv(os.path.join(d, "samples.tsv"))
    if samples:
        last = samples[-1]
        print(f"- fulcrum's counters at the end (admin /metrics): "
              f"fulcrum_backend_requests_total {last['total_requests']}, "
              f"fulcrum_backend_failures_total {last['failed_requests']} (server-side failures:"
              f" refused connects and resets count even when a retry saved the request)")
    fulcrum_log_section(d)
    print(f"- fulcrum on SIGTERM at the end: {drain}")
    print()
    rss_section(samples, warmup, soak)
    total = w.get("requests", 0) + client_n
    failed = wrk_failed + client_failed
    split = ", ".join(f"{m} {n}" for m, n in sorted(by_method.items()))
    split = f"; not 2xx in fulcrum's access log by method: {split}" if split else ""
    print(f"**Requests: {total}, failed: {failed}** (wrk {wrk_failed}, one-connection client "
          f"{client_failed}{split}); reloads failed: {failed_reloads}.")
    if by_method.get("POST"):
        print()
        print("A POST is answered 502 when its server connection fails after the request was "
              "sent and before any response byte (reset by a server that was stopped): fulcrum "
              "resends only idempotent requests, as a POST may already have been acted on. "
              "GETs in the same situation are resent to another server.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
