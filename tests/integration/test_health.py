"""test_health.py -- active and passive health checks, maintenance drain and slow start,
against real fulcrum and backend processes.

Intervals are short (100-300 ms) to keep the suite fast. Every wait is bounded; the only
time bound asserted is the one the issue sets for detection (interval x fall + one interval),
measured with fulcrum's own log timestamps so the test's polling adds nothing to it.
"""
import calendar
import json
import re
import signal
import threading
import time

import pytest

from conftest import Client, free_port, wait_until

INTERVAL = 0.3  # seconds: the health_check interval of most tests below
FALL, RISE = 3, 2

LOG_TS = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{3})Z ")


def check_cfg(interval=INTERVAL, timeout=0.2, path="/health", **extra):
    cfg = {"path": path, "interval": "%dms" % round(interval * 1000),
           "timeout": "%dms" % round(timeout * 1000), "rise": RISE, "fall": FALL}
    cfg.update(extra)
    return cfg


def log_lines(f, needle):
    return [line for line in f.stderr().splitlines() if needle in line]


def wait_log(f, needle, timeout=10.0):
    """The first log line containing needle, waiting (bounded) for it."""
    found = wait_until(lambda: log_lines(f, needle), timeout, interval=0.02)
    assert found, "fulcrum never logged %r; stderr:\n%s" % (needle, f.stderr()[-4000:])
    return found[0]


def log_time(line):
    """The wall-clock time (epoch seconds) in a fulcrum log line's timestamp (UTC)."""
    m = LOG_TS.match(line)
    assert m, "no timestamp in %r" % line
    return calendar.timegm(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S")) + \
        int(m.group(2)) / 1000.0


def names_of(port, n, path="/x"):
    """n sequential requests on one keep-alive connection; the answering backend of each."""
    out = []
    with Client(port) as c:
        for i in range(n):
            r = c.request("GET", "%s/%d" % (path, i))
            assert r.status == 200, "request %d: %r" % (i, r)
            out.append(r.backend)
    return out


def restart_on(env, name, port, *args):
    """A fresh backend process named name on the same port (SO_REUSEADDR)."""
    return env.backend(name, *args, "--port", str(port))


# ---------------------------------------------------------------- active checks


def test_stopped_backend_marked_unhealthy_then_healthy_again(env):
    a, b, c = env.backend("a"), env.backend("b"), env.backend("c")
    f = env.proxy([a, b, c], backend={"health_check": check_cfg()})
    wait_log(f, "backend app: http checks of /health every 300ms")
    assert set(names_of(f.port, 6)) == {"a", "b", "c"}

    b.stop()
    stopped = time.time()
    line = wait_log(f, "backend app: server b healthy -> unhealthy "
                       "(3 failed checks: connection refused)")
    detection = log_time(line) - stopped
    print("\ndetection time after stop: %.3f s (bound %.1f s)" % (
        detection, INTERVAL * (FALL + 1)))
    assert detection <= INTERVAL * (FALL + 1), "marked unhealthy after %.3f s" % detection

    # From then on no request is even tried on b: all succeed, and no connect to b fails.
    before = len(log_lines(f, "server b (%s): connect failed" % b.address))
    names = names_of(f.port, 30)
    assert set(names) == {"a", "c"}
    assert len(log_lines(f, "server b (%s): connect failed" % b.address)) == before

    b2 = restart_on(env, "b", b.port)
    wait_log(f, "backend app: server b unhealthy -> healthy (2 successful checks)")
    assert "b" in names_of(f.port, 6)
    assert b2.requests(), "b gets traffic again"


def test_backend_whose_health_hangs_does_not_slow_the_others(env):
    """One server's check hangs until its timeout, every time; the checks of the others
    (same backend, and another backend with a long timeout) keep their pace."""
    good = [env.backend("g%d" % i) for i in range(2)]
    hang = env.backend("h", "--mode", "hang")  # /hc is not its control path: it hangs
    slow = env.backend("s", "--mode", "hang")
    port = free_port()
    cfg = {
        "workers": 1,
        "frontends": [{"name": "web", "listen": "127.0.0.1:%d" % port, "backend": "app"}],
        "backends": [
            {"name": "app", "health_check": check_cfg(interval=0.1, timeout=0.1, path="/hc"),
             "servers": [{"name": b.name, "address": b.address} for b in good + [hang]]},
            # A check that takes a whole second to time out, three times in a row.
            {"name": "other", "health_check": check_cfg(interval=1.0, timeout=1.0, path="/hc"),
             "servers": [{"name": "s", "address": slow.address}]},
        ],
    }
    f = env.fulcrum(cfg)
    wait_log(f, "backend other: server s healthy -> unhealthy "
                "(3 failed checks: timed out after 1s)", timeout=15)
    wait_log(f, "backend app: server h healthy -> unhealthy (3 failed checks: timed out after "
                "100ms)")
    for g in good:
        checks = [r for r in g.requests() if r["path"] == "/hc"]
        # Three 1 s checks hung meanwhile; at a 100 ms interval the good servers were checked
        # about 30 times. A checker that waited on the hanging ones would manage 3 or 4.
        assert len(checks) >= 10, "%s was checked only %d times" % (g.name, len(checks))
        assert all(r["method"] == "GET" and r["version"] == "HTTP/1.1" for r in checks)
    assert not log_lines(f, "server g0 healthy -> unhealthy")
    assert not log_lines(f, "server g1 healthy -> unhealthy")


def test_tcp_mode_uses_connect_checks(env):
    a, b = env.tcp_backend("a"), env.tcp_backend("b")
    f = env.proxy([a, b], mode="tcp", backend={"health_check": {
        "type": "tcp", "interval": "200ms", "timeout": "150ms", "rise": 2, "fall": 3}})
    wait_log(f, "backend app: tcp checks every 200ms")
    b.stop()
    wait_log(f, "backend app: server b healthy -> unhealthy (3 failed checks: connection refused)")
    for _ in range(4):
        with Client(f.port) as c:
            c.settimeout(5)
            assert c.sock.recv(64) == b"a\n"


# ---------------------------------------------------------------- passive checks and kills


class Load:
    """`threads` clients, each sending GETs on its own keep-alive connection until `total`
    requests are done; counts the failures (another status or a broken connection).

    The backends answer 204, a response the backend writes with one send. With a body,
    backend.py writes head and body separately, and a kill -9 between the two cuts a
    response whose head the proxy has already relayed: no proxy can retry that (nginx and
    HAProxy stream heads too), and it is not what this test is about."""

    def __init__(self, port, total, threads=4):
        self.port, self.total = port, total
        self.lock = threading.Lock()
        self.done = 0
        self.failures = []
        self.by_name = {}
        self.workers = [threading.Thread(target=self._run, args=(i,), daemon=True)
                        for i in range(threads)]
        for t in self.workers:
            t.start()

    def _take(self):
        with self.lock:
            if self.done >= self.total:
                return None
            self.done += 1
            return self.done

    def _run(self, tid):
        c = None
        while True:
            n = self._take()
            if n is None:
                break
            try:
                if c is None:
                    c = Client(self.port, timeout=10)
                r = c.request("GET", "/load/%d/%d?status=204" % (tid, n))
                with self.lock:
                    self.by_name[r.backend] = self.by_name.get(r.backend, 0) + 1
                if r.status != 204:
                    self.failures.append("request %d: status %d" % (n, r.status))
                if "close" in (r.header("Connection") or "").lower():
                    c.close()
                    c = None
            except Exception as e:  # a broken connection is a failed request too
                self.failures.append("request %d: %r" % (n, e))
                if c is not None:
                    c.close()
                c = None
        if c is not None:
            c.close()

    def join(self, timeout=120):
        for t in self.workers:
            t.join(timeout)
        assert not any(t.is_alive() for t in self.workers), "load did not finish"


def test_kill_9_under_load_loses_no_request(env):
    backs = [env.backend("s%d" % i) for i in range(4)]
    f = env.proxy(backs, workers=2, backend={
        "retries": 2,
        "health_check": check_cfg(),
        "outlier": {"consecutive_failures": 3, "ejection_time": "10s",
                    "max_ejection_percent": 50}})
    assert set(names_of(f.port, 8)) == {"s0", "s1", "s2", "s3"}
    load = Load(f.port, total=3000)
    assert wait_until(lambda: load.done >= 600, 60, interval=0.01)
    victim = backs[3]
    victim.proc.send_signal(signal.SIGKILL)
    killed = time.time()
    victim.proc.wait(5)
    load.join()
    down = wait_log(f, "backend app: server s3 healthy -> unhealthy")
    detection = log_time(down) - killed
    print("\nkill -9 under load: %d requests, %d failed; s3 out after %.3f s (%s)" % (
        load.total, len(load.failures), detection, down.split("(", 1)[1].rstrip(")")))
    assert load.failures == [], "%d failed requests: %s" % (len(load.failures),
                                                            load.failures[:10])
    assert sum(load.by_name.values()) == load.total
    assert detection <= INTERVAL * (FALL + 1)


def test_backend_answering_500_is_ejected_then_readmitted(env):
    a, b = env.backend("a"), env.backend("b", "--status", "500")
    f = env.proxy([a, b], backend={
        "health_check": check_cfg(interval=0.2, timeout=0.15),
        "outlier": {"consecutive_failures": 3, "ejection_time": "1s",
                    "max_ejection_percent": 50}})
    statuses = []
    with Client(f.port) as c:
        for i in range(6):  # round robin: b answers 3 of them, all 500
            statuses.append(c.request("GET", "/r/%d" % i).status)
    assert sorted(statuses) == [200, 200, 200, 500, 500, 500]
    wait_log(f, "backend app: server b healthy -> unhealthy "
                "(ejected for 1s: 3 consecutive failures on live traffic)")
    n_b = len(b.requests())
    assert set(names_of(f.port, 10)) == {"a"}  # out: nothing more reaches b
    assert len(b.requests()) == n_b
    # Its /health still answers 200, so the first check after the second is over lets it in.
    wait_log(f, "backend app: server b unhealthy -> healthy (ejection of 1s over, check passed)")
    with Client(f.port) as c:
        got = [c.request("GET", "/again/%d" % i).status for i in range(4)]
    assert 500 in got, "b is back in the rotation"
    assert len(b.requests()) > n_b
    # Still failing: out again, for twice as long.
    with Client(f.port) as c:
        for i in range(6):
            c.request("GET", "/more/%d" % i)
    wait_log(f, "backend app: server b healthy -> unhealthy "
                "(ejected for 2s: 3 consecutive failures on live traffic)")


# ---------------------------------------------------------------- maintenance and slow start


def admin_call(port, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    headers = [("Content-Type", "application/json")] if data is not None else []
    with Client(port) as c:
        return c.request(method, path, headers=headers + [("Connection", "close")], body=data,
                         host="127.0.0.1:%d" % port)


def start_with_admin(env, backs, backend, **kw):
    admin_port = free_port()
    f = env.proxy(backs, backend=backend,
                  top={"admin": {"listen": "127.0.0.1:%d" % admin_port}}, **kw)
    if not wait_until(lambda: _admin_up(admin_port), 3):
        pytest.skip("fulcrum does not serve the admin API yet (admin not wired into the "
                    "runtime): maintenance is tested in the unit tests (test_check.c)")
    return f, admin_port


def _admin_up(port):
    try:
        return admin_call(port, "GET", "/api/backends").status == 200
    except OSError:
        return False


def test_maintenance_drains_in_flight_and_sends_new_requests_elsewhere(env):
    a, b = env.backend("a"), env.backend("b")
    f, admin = start_with_admin(env, [a, b], {"health_check": check_cfg()})
    result = {}

    def slow():
        with Client(f.port) as c:
            result["r"] = c.request("GET", "/in-flight?delay=1.5")

    t = threading.Thread(target=slow, daemon=True)
    t.start()
    # Whichever server got the slow request goes into maintenance while it is on it.
    busy = wait_until(lambda: [s for s in (a, b)
                               if any(r["path"] == "/in-flight" for r in s.requests())], 5)
    assert busy, "the slow request never reached a server"
    drained, other = busy[0], (b if busy[0] is a else a)
    url = "/api/backends/app/servers/%s" % drained.name
    r = admin_call(admin, "PUT", url, {"status": "maintenance"})
    assert r.status == 200, r.body
    wait_log(f, "backend app: server %s healthy -> maintenance (maintenance set by operator)"
             % drained.name)
    assert set(names_of(f.port, 8)) == {other.name}  # new requests go elsewhere at once
    t.join(10)
    assert result["r"].status == 200 and result["r"].backend == drained.name  # finished
    # Its idle keep-alive connections close too (the proxy's sweep, once a second).
    assert wait_until(lambda: established_to(drained.port) == 0, 5), \
        "fulcrum keeps idle connections to a server in maintenance"
    # Checks keep passing, but never take it out of maintenance.
    time.sleep(INTERVAL * (RISE + 1))
    assert set(names_of(f.port, 4)) == {other.name}
    r = admin_call(admin, "PUT", url, {"status": "healthy"})
    assert r.status == 200, r.body
    wait_log(f, "backend app: server %s maintenance -> healthy (back in service by operator)"
             % drained.name)
    assert drained.name in names_of(f.port, 4)


def established_to(port):
    """TCP connections in state ESTABLISHED whose remote end is 127.0.0.1:port: fulcrum's
    connections to a backend listening there."""
    n = 0
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            parts = line.split()
            if parts[3] == "01" and int(parts[2].rsplit(":", 1)[1], 16) == port:
                n += 1
    return n


def share_of(port, name, n):
    names = names_of(port, n, path="/share")
    return names.count(name) / float(n)


def weights_of(admin):
    """The effective weight of each server, as the pool holds it now (admin API)."""
    r = admin_call(admin, "GET", "/api/backends/app/stats")
    assert r.status == 200, r.body[:300]
    return {s["id"]: s["weight"] for s in r.json()["server_details"]}


def weight_share(w):
    return w["b"] / float(w["a"] + w["b"])


RAMPS_BY_WEIGHT = {"weighted_round_robin": True, "round_robin": False,
                   "least_connections": False}


@pytest.mark.parametrize("strategy", ["weighted_round_robin", "round_robin", "least_connections"])
def test_slow_start_share_grows_over_the_window(env, strategy):
    """Each strategy ramps exactly once. weighted_round_robin ramps through weights alone, so
    b's share of the smooth sequence is its effective weight's share, read from the admin
    API around each sample; a second ramp by admission on top would leave it far below that
    (share x share). round_robin and least_connections, which ignore weights, ramp through
    the per-server admission share in the pool alone: their weights stay as configured."""
    a, b = env.backend("a"), env.backend("b")
    window = 6.0
    f, admin = start_with_admin(env, [a, b], {
        "slow_start": "%ds" % window, "health_check": check_cfg(interval=0.2, timeout=0.15)},
        strategy=strategy)
    assert share_of(f.port, "b", 20) == 0.5  # equal weights at start: no ramp at boot
    b.stop()
    wait_log(f, "backend app: server b healthy -> unhealthy")
    restart_on(env, "b", b.port)
    up = wait_log(f, "backend app: server b unhealthy -> healthy (2 successful checks)")
    shares, weights = [], []
    # Sample until two samples lie past the window (bounded: a slow machine may take longer
    # per sample, so the count of samples, not the clock, decides when we have enough).
    while time.time() < log_time(up) + window + 8.0:
        # Stamped when the sample ends: on a slow build (TSan) 34 requests take a while,
        # and the ramp has moved on meanwhile. The weights bracket the sample: b's weight
        # share only grows during a ramp, so the one in force lay between the two reads.
        before = weights_of(admin)
        share = share_of(f.port, "b", 34)
        after = weights_of(admin)
        shares.append((time.time() - log_time(up), share))
        weights.append((before, after))
        if len([t for t, _ in shares if t > window + 0.3]) >= 2:
            break
        time.sleep(0.5)
    print("\nslow start (%s), b's share by seconds since healthy%s: %s" % (
        strategy, " [b's weight share]" if RAMPS_BY_WEIGHT[strategy] else "", ", ".join(
            "%.1fs:%.2f" % (t, s) + ("[%.2f-%.2f]" % (weight_share(w0), weight_share(w1))
                                     if RAMPS_BY_WEIGHT[strategy] else "")
            for (t, s), (w0, w1) in zip(shares, weights))))
    early = [s for t, s in shares if t < 1.0]
    late = [s for t, s in shares if t > window + 0.3]
    assert early and late
    assert max(early) < 0.3, "b got %.2f of the traffic right after recovery" % max(early)
    assert min(late) >= 0.45, "b never reached its full share: %s" % shares
    # It grows in steps rather than jumping: several distinct shares on the way up.
    assert len({round(s, 2) for t, s in shares if t < window}) >= 3
    if not RAMPS_BY_WEIGHT[strategy]:
        assert all(w == {"a": 1, "b": 1} for pair in weights for w in pair), \
            "weights moved for a strategy that ignores them: %s" % weights
        return
    assert any(w0["b"] < w0["a"] for w0, _ in weights), "no weight ramp seen: %s" % weights
    # Within one table the smooth sequence gives b its exact share, +-2 over any 34 picks;
    # a table swap inside a sample adds as much again. The old double ramp gave about
    # share x (b's weight / 16): 0.18 instead of 0.33 at mid-window.
    tol = 4 / 34.0
    for (t, s), (w0, w1) in zip(shares, weights):
        assert weight_share(w0) - tol <= s <= weight_share(w1) + tol, \
            "at %.1fs b got %.2f, its weight share was %.2f-%.2f" % (
                t, s, weight_share(w0), weight_share(w1))
    # And on average over the ramp (the +-2 errors do not add up; a second ramp would).
    off = [s - (weight_share(w0) + weight_share(w1)) / 2
           for (t, s), (w0, w1) in zip(shares, weights) if w0["b"] < w0["a"]]
    assert abs(sum(off) / len(off)) < 0.05, "b's share is off its weight share by %s" % off
