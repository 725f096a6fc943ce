#!/usr/bin/env python3
"""stats.py -- /proc CPU and memory readings, wrk output parsing and the markdown report
for bench/proxy.sh and bench/idle.sh.

Subcommands (each prints one line, or markdown for `report`/`idle-report`):
  cputicks PID        utime+stime (clock ticks) of PID and all its descendants
  rss PID             VmRSS (KiB) of PID and all its descendants
  pids PID            PID and all its descendants, comma-separated (for perf stat -p)
  wrk FILE            "requests seconds rps p99_ms errors non2xx" parsed from wrk --latency
  report FILE [SYSCALLS]  markdown table of medians over rounds from proxy.sh's results
                      TSV, plus syscalls per request from its optional syscalls TSV
  idle-report FILE    markdown table from idle.sh's results TSV
"""

import os
import re
import statistics
import sys


def read_stat(pid):
    """Fields of /proc/PID/stat after the command name, or None if PID is gone.
    The name sits in parentheses and may hold spaces or ')', so split at the last ')'."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    return data[data.rindex(")") + 2 :].split()


def descendants(root):
    """ROOT and every live process below it (nginx: master + workers)."""
    children = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        st = read_stat(name)
        if st is not None:
            children.setdefault(int(st[1]), []).append(int(name))  # st[1] is field 4, ppid
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def cputicks(root):
    # Fields 14 and 15 (utime, stime) are indexes 11 and 12 once pid and comm are cut off.
    # /proc/PID/stat of a thread-group leader already sums all its threads.
    total = 0
    for pid in descendants(root):
        st = read_stat(pid)
        if st is not None:
            total += int(st[11]) + int(st[12])
    return total


def rss_kib(root):
    total = 0
    for pid in descendants(root):
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def to_ms(text):
    m = re.fullmatch(r"([0-9.]+)(us|ms|s|m)", text)
    if not m:
        raise ValueError(f"bad latency {text!r}")
    return float(m.group(1)) * UNIT_MS[m.group(2)]


def parse_wrk(path):
    with open(path) as f:
        text = f.read()
    m = re.search(r"^\s*(\d+) requests in ([0-9.]+)(us|ms|s|m),", text, re.M)
    if not m:
        raise ValueError(f"{path}: no request count in wrk output")
    requests = int(m.group(1))
    seconds = to_ms(m.group(2) + m.group(3)) / 1000.0
    rps = float(re.search(r"^Requests/sec:\s+([0-9.]+)", text, re.M).group(1))
    m = re.search(r"^\s+99%\s+(\S+)", text, re.M)
    p99 = to_ms(m.group(1)) if m else 0.0  # only with --latency
    errors = 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        errors = sum(int(x) for x in m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    non2xx = int(m.group(1)) if m else 0
    return requests, seconds, rps, p99, errors, non2xx


def read_tsv(path):
    with open(path) as f:
        rows = [line.rstrip("\n").split("\t") for line in f if line.strip()]
    head, body = rows[0], rows[1:]
    return [dict(zip(head, r)) for r in body]


def ratio(value, peers, best):
    """VALUE over the best of PEERS (best = min or max), as '1.23x', or '-' with no peer."""
    peers = [p for p in peers if p > 0]
    if not peers or value <= 0:
        return "-"
    return f"{value / best(peers):.2f}x"


def syscall_rates(path):
    """proxy -> syscalls per request, from proxy.sh's separate perf stat pass."""
    rates = {}
    if path and os.path.exists(path):
        for r in read_tsv(path):
            if int(r["requests"]) > 0 and r["syscalls"].isdigit():
                rates[r["proxy"]] = int(r["syscalls"]) / int(r["requests"])
    return rates


def report(path, clk_tck, syscalls_path=None):
    rows = read_tsv(path)
    sys_rate = syscall_rates(syscalls_path)
    order, per = [], {}
    for r in rows:
        if r["proxy"] not in per:
            order.append(r["proxy"])
            per[r["proxy"]] = []
        per[r["proxy"]].append(r)
    med = {}
    for name in order:
        rs = per[name]
        med[name] = {
            "rps": statistics.median(float(r["rps"]) for r in rs),
            "p99": statistics.median(float(r["p99_ms"]) for r in rs),
            # per-round CPU cost first, then the median: each round is its own experiment
            "cpu": statistics.median(
                int(r["ticks"]) * 1e6 / clk_tck / max(int(r["requests"]), 1) for r in rs
            ),
            "load": statistics.median(
                int(r["ticks"]) * 100.0 / clk_tck / max(float(r["seconds"]), 1e-9) for r in rs
            ),
            "errors": sum(int(r["errors"]) + int(r["non2xx"]) for r in rs),
            "rounds": len(rs),
        }
    extra_head, extra_rule = (" syscalls/req |", "---:|") if sys_rate else ("", "")
    print("| proxy | req/s | p99 ms | CPU µs/req | proxy CPU % | req/s vs best peer "
          "| p99 vs best peer | CPU/req vs best peer | errors |" + extra_head)
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|" + extra_rule)
    for name in order:
        m = med[name]
        peers = [med[o] for o in order if o != name]
        print(
            f"| {name} | {m['rps']:.0f} | {m['p99']:.2f} | {m['cpu']:.1f} | {m['load']:.0f} "
            f"| {ratio(m['rps'], [p['rps'] for p in peers], max)} "
            f"| {ratio(m['p99'], [p['p99'] for p in peers], min)} "
            f"| {ratio(m['cpu'], [p['cpu'] for p in peers], min)} | {m['errors']} |"
            + (f" {sys_rate[name]:.2f} |" if name in sys_rate else " - |" if sys_rate else "")
        )
    print_round_ratios(rows, order, clk_tck)


def print_round_ratios(rows, order, clk_tck):
    """CPU/req against the best peer within each round: the proxies of one round ran
    back to back, so a shared machine's load changes less inside a round than across."""
    if len(order) < 2:
        return
    cpu = {}
    for r in rows:
        cpu.setdefault(r["round"], {})[r["proxy"]] = (
            int(r["ticks"]) * 1e6 / clk_tck / max(int(r["requests"]), 1))
    print()
    for name in order:
        ratios = []
        for rnd in cpu.values():
            peers = [v for k, v in rnd.items() if k != name and v > 0]
            if name in rnd and peers:
                ratios.append(rnd[name] / min(peers))
        if ratios:
            listed = ", ".join(f"{x:.2f}" for x in ratios)
            print(f"- {name} CPU/req vs best peer, per round: {listed} "
                  f"(median {statistics.median(ratios):.2f}x)")


def idle_report(path):
    rows = read_tsv(path)
    print("| proxy | connections held | closed by proxy | RSS before (KiB) | RSS after (KiB) "
          "| bytes per idle connection | vs best peer |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    cost = {}
    for r in rows:
        held = int(r["held"])
        delta = int(r["rss_after"]) - int(r["rss_before"])
        cost[r["proxy"]] = delta * 1024.0 / held if held else 0.0
    for r in rows:
        name = r["proxy"]
        peers = [cost[o] for o in cost if o != name]
        print(f"| {name} | {r['held']} | {r['dropped']} | {r['rss_before']} | {r['rss_after']} "
              f"| {cost[name]:.0f} | {ratio(cost[name], peers, min)} |")


def main(argv):
    if len(argv) not in (3, 4):
        sys.stderr.write(__doc__)
        return 2
    cmd, arg = argv[1], argv[2]
    if cmd == "cputicks":
        print(cputicks(int(arg)))
    elif cmd == "rss":
        print(rss_kib(int(arg)))
    elif cmd == "pids":
        print(",".join(str(p) for p in descendants(int(arg))))
    elif cmd == "wrk":
        req, sec, rps, p99, err, non2xx = parse_wrk(arg)
        print(f"{req} {sec:.3f} {rps:.2f} {p99:.3f} {err} {non2xx}")
    elif cmd == "report":
        report(arg, os.sysconf("SC_CLK_TCK"), argv[3] if len(argv) > 3 else None)
    elif cmd == "idle-report":
        idle_report(arg)
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
