"""test_admin.py -- the admin API, /metrics and the dashboard against a real fulcrum.

Statistics from real traffic, runtime changes (add, drain, weight, remove while in flight)
seen in where requests go, the bearer token, /metrics read by Debian's Prometheus text
parser, the startup refusal of an open admin without a token, and the dashboard in headless
chromium (tests/browser/dashboard.test.mjs, driven by playwright-core).
"""
import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import (REPO, Client, build_request, free_port, fulcrum_bin, listening, to_yaml,
                      wait_until)

TOKEN = "t0ken-for-tests"
TOKEN_ENV = "FULCRUM_TEST_ADMIN_TOKEN"
DESIGN_STATS = ("total_requests", "successful_requests", "failed_requests",
                "average_response_time", "total_servers", "healthy_servers", "server_details")
DESIGN_SERVER = ("id", "endpoint", "status", "current_connections", "average_response_time",
                 "connection_utilization", "weight")


# ---------------------------------------------------------------- fixtures and helpers


class Admin:
    """A client for one fulcrum's admin API (a fresh connection per call)."""

    def __init__(self, port, token=TOKEN):
        self.port = port
        self.token = token

    def call(self, method, path, body=None, token=None, headers=()):
        hdrs = list(headers)
        tok = self.token if token is None else token
        if tok:
            hdrs.append(("Authorization", "Bearer %s" % tok))
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            hdrs.append(("Content-Type", "application/json"))
        hdrs.append(("Connection", "close"))
        with Client(self.port) as c:
            return c.request(method, path, headers=hdrs, body=data,
                             host="127.0.0.1:%d" % self.port)

    def get(self, path):
        r = self.call("GET", path)
        assert r.status == 200, "GET %s: %r %r" % (path, r, r.body[:300])
        return r.json()

    def stats(self, backend="app"):
        return self.get("/api/backends/%s/stats" % backend)

    def server(self, name, backend="app"):
        return self.get("/api/backends/%s/servers/%s" % (backend, name))


def start(env, backends, token=True, **kw):
    """fulcrum over these backends with an admin listener; returns (fulcrum, Admin)."""
    aport = free_port()
    admin = {"listen": "127.0.0.1:%d" % aport}
    if token:
        admin["token_env"] = TOKEN_ENV
    top = dict(kw.pop("top", {}))
    top["admin"] = admin
    f = env.proxy(backends, env={TOKEN_ENV: TOKEN}, top=top, **kw)
    assert wait_until(lambda: listening(aport), 10), "the admin API is not listening"
    return f, Admin(aport, TOKEN if token else None)


def names_of(f, n, path="/x"):
    """The backends that answered n requests, in order (a new connection each)."""
    out = []
    for i in range(n):
        with Client(f.port) as c:
            r = c.request("GET", "%s/%d" % (path, i), headers=[("Connection", "close")])
            assert r.status == 200, r
            out.append(r.backend)
    return out


# ---------------------------------------------------------------- reading


def test_stats_count_real_traffic(env):
    a, b = env.backend("a"), env.backend("b")
    f, adm = start(env, [a, b])
    names_of(f, 10)
    st = adm.stats()
    for key in DESIGN_STATS:
        assert key in st, "stats lack %s: %s" % (key, st)
    assert st["total_requests"] == 10
    assert st["successful_requests"] == 10
    assert st["failed_requests"] == 0
    assert st["total_servers"] == 2 and st["healthy_servers"] == 2
    assert 0 < st["average_response_time"] < 10
    by_id = {s["id"]: s for s in st["server_details"]}
    assert set(by_id) == {"a", "b"}
    for s in by_id.values():
        for key in DESIGN_SERVER:
            assert key in s, "server lacks %s: %s" % (key, s)
        assert s["status"] == "healthy"
        assert s["total_requests"] == 5  # round robin
        assert s["current_connections"] == 0
        assert 0 < s["p50_response_time"] <= s["p99_response_time"]
    assert by_id["a"]["endpoint"] == a.address

    listing = adm.get("/api/backends")
    assert [x["name"] for x in listing["backends"]] == ["app"]
    assert listing["backends"][0]["total_requests"] == 10


def test_in_flight_requests_show_while_workers_are_busy(env):
    """The admin thread answers while every request of the worker is still in flight."""
    a = env.backend("a")
    f, adm = start(env, [a])
    clients = []
    try:
        for i in range(20):
            c = Client(f.port)
            c.send(build_request("GET", "/slow/%d?delay=2" % i))
            clients.append(c)
        busy = wait_until(lambda: adm.stats()["server_details"][0]["current_connections"] == 20,
                          5, interval=0.05)
        assert busy, adm.stats()
        for c in clients:
            assert c.read_response().status == 200
    finally:
        for c in clients:
            c.close()
    assert wait_until(lambda: adm.stats()["server_details"][0]["current_connections"] == 0, 5)


def test_unknown_names_are_404_with_a_json_error(env):
    f, adm = start(env, [env.backend("a")])
    for path in ("/api/backends/nope", "/api/backends/nope/stats",
                 "/api/backends/app/servers/zz", "/api/whatever"):
        r = adm.call("GET", path)
        assert r.status == 404, path
        assert "error" in r.json()


# ---------------------------------------------------------------- changing


def test_changes_without_a_valid_token_are_401_and_change_nothing(env):
    a, b = env.backend("a"), env.backend("b")
    f, adm = start(env, [a])
    attempts = [
        ("POST", "/api/backends/app/servers", {"name": "b", "address": b.address}),
        ("PUT", "/api/backends/app/servers/a", {"status": "maintenance"}),
        ("PUT", "/api/backends/app/servers/a", {"weight": 0}),
        ("DELETE", "/api/backends/app/servers/a", None),
        ("POST", "/api/reload", None),
    ]
    for token in ("", "wrong", TOKEN + "x"):
        for method, path, body in attempts:
            r = adm.call(method, path, body, token=token or "")
            assert r.status == 401, (method, path, token, r)
    st = adm.stats()
    assert [s["id"] for s in st["server_details"]] == ["a"]
    assert st["server_details"][0]["status"] == "healthy"
    assert set(names_of(f, 4)) == {"a"}


def test_added_server_takes_traffic_at_once(env):
    a, b = env.backend("a"), env.backend("b")
    f, adm = start(env, [a], workers=2)
    r = adm.call("POST", "/api/backends/app/servers",
                 {"name": "b", "address": b.address, "weight": 1})
    assert r.status == 201, r.body
    assert r.json()["id"] == "b"
    assert set(names_of(f, 8)) == {"a", "b"}
    r = adm.call("POST", "/api/backends/app/servers", {"name": "b", "address": b.address})
    assert r.status == 409
    r = adm.call("POST", "/api/backends/app/servers", {"name": "c", "address": "nope"})
    assert r.status == 400 and "error" in r.json()
    r = adm.call("POST", "/api/backends/app/servers", b"{not json")
    assert r.status == 400


def test_maintenance_drains_and_healthy_restores(env):
    a, b = env.backend("a"), env.backend("b")
    f, adm = start(env, [a, b])
    r = adm.call("PUT", "/api/backends/app/servers/a", {"status": "maintenance"})
    assert r.status == 200 and r.json()["status"] == "maintenance"
    assert set(names_of(f, 6)) == {"b"}
    assert adm.stats()["healthy_servers"] == 1
    r = adm.call("PUT", "/api/backends/app/servers/a", {"status": "healthy"})
    assert r.status == 200
    assert set(names_of(f, 6)) == {"a", "b"}
    r = adm.call("PUT", "/api/backends/app/servers/a", {"status": "overloaded"})
    assert r.status == 400


def test_weight_changes_the_spread(env):
    a, b = env.backend("a"), env.backend("b")
    f, adm = start(env, [a, b], strategy="weighted_round_robin")
    r = adm.call("PUT", "/api/backends/app/servers/a", {"weight": 0})
    assert r.status == 200 and r.json()["weight"] == 0
    assert set(names_of(f, 6)) == {"b"}
    r = adm.call("PUT", "/api/backends/app/servers/a", {"weight": 3})
    assert r.status == 200
    got = names_of(f, 8)
    assert got.count("a") == 6 and got.count("b") == 2, got
    r = adm.call("PUT", "/api/backends/app/servers/a", {"weight": 257})
    assert r.status == 400


def test_delete_drains_then_removes_while_a_request_is_in_flight(env):
    a, b = env.backend("a"), env.backend("b")
    f, adm = start(env, [a, b])
    with Client(f.port) as c:
        # round robin: the first request goes to a
        c.send(build_request("GET", "/inflight?delay=1.5"))
        assert wait_until(lambda: any(r["path"] == "/inflight" for r in a.requests()), 5)
        r = adm.call("DELETE", "/api/backends/app/servers/a")
        assert r.status == 200, r.body
        assert r.json()["removed"] == "a" and r.json()["in_flight"] == 1
        assert [s["id"] for s in adm.stats()["server_details"]] == ["b"]
        resp = c.read_response()
        assert resp.status == 200 and resp.backend == "a"  # finished on the removed server
    assert set(names_of(f, 4)) == {"b"}
    assert adm.call("DELETE", "/api/backends/app/servers/a").status == 404


def test_reload_needs_the_token(env):
    f, adm = start(env, [env.backend("a")])
    assert adm.call("POST", "/api/reload", token="").status == 401
    assert adm.call("GET", "/api/reload").status == 405


# ---------------------------------------------------------------- /metrics


def families(adm):
    r = adm.call("GET", "/metrics")
    assert r.status == 200
    assert r.header("Content-Type").startswith("text/plain; version=0.0.4")
    return {f.name: f for f in text_string_to_metric_families(r.body.decode())}


def sample(fams, family, suffix="", **labels):
    for s in fams[family].samples:
        if s.name == family + suffix and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    raise AssertionError("no sample %s%s%s" % (family, suffix, labels))


def test_metrics_parse_with_the_prometheus_parser(env):
    a, b = env.backend("a"), env.backend("b")
    f, adm = start(env, [a, b])
    names_of(f, 6)
    with Client(f.port) as c:  # one failure on a: 502 from a malformed response
        c.request("GET", "/bad?mode=malformed&kind=garbage", headers=[("Connection", "close")])
    fams = families(adm)
    # the parser drops the _total of counters from family names
    assert fams["fulcrum_server_requests"].type == "counter"
    assert fams["fulcrum_server_response_seconds"].type == "histogram"
    assert fams["fulcrum_backend_response_seconds"].type == "histogram"
    assert fams["fulcrum_server_state"].type == "gauge"
    assert fams["fulcrum_reloads"].type == "counter"
    total = sum(sample(fams, "fulcrum_server_requests", "_total", server=s) for s in "ab")
    assert total == 7
    assert sample(fams, "fulcrum_backend_requests", "_total", backend="app") == 7
    assert sample(fams, "fulcrum_backend_failures", "_total", backend="app") == 1
    for s in "ab":
        count = sample(fams, "fulcrum_server_response_seconds", "_count", server=s)
        inf = sample(fams, "fulcrum_server_response_seconds", "_bucket", server=s, le="+Inf")
        assert count == inf == 3
        assert sample(fams, "fulcrum_server_state", server=s, state="healthy") == 1
        assert sample(fams, "fulcrum_server_state", server=s, state="maintenance") == 0
        assert sample(fams, "fulcrum_server_active_connections", server=s) == 0
    buckets = [x for x in fams["fulcrum_server_response_seconds"].samples
               if x.name.endswith("_bucket") and x.labels["server"] == "a"]
    values = [x.value for x in buckets]
    assert values == sorted(values), "histogram buckets must be cumulative"

    adm.call("PUT", "/api/backends/app/servers/b", {"status": "maintenance"})
    fams = families(adm)
    assert sample(fams, "fulcrum_server_state", server="b", state="maintenance") == 1
    assert sample(fams, "fulcrum_backend_servers", backend="app", state="maintenance") == 1


# ---------------------------------------------------------------- counters never go down


def backend_counts(adm):
    """(stats totals, /metrics backend samples) of backend app, read back to back."""
    st = adm.stats()
    fams = families(adm)
    return st, {
        "requests": sample(fams, "fulcrum_backend_requests", "_total", backend="app"),
        "failures": sample(fams, "fulcrum_backend_failures", "_total", backend="app"),
        "count": sample(fams, "fulcrum_backend_response_seconds", "_count", backend="app"),
        "inf": sample(fams, "fulcrum_backend_response_seconds", "_bucket", backend="app",
                      le="+Inf"),
        "sum": sample(fams, "fulcrum_backend_response_seconds", "_sum", backend="app"),
        "servers": sorted({x.labels["server"] for x in fams["fulcrum_server_requests"].samples}),
    }


class Monotonic:
    """Every read of the backend's counters must be >= the one before: a dip is what
    Prometheus takes for a counter reset (and rate() spikes)."""

    KEYS = ("total_requests", "successful_requests", "failed_requests")

    def __init__(self, adm):
        self.adm, self.last = adm, None

    def read(self):
        st, m = backend_counts(self.adm)
        now = {k: st[k] for k in self.KEYS}
        now.update((k, m[k]) for k in ("requests", "failures", "count", "inf", "sum"))
        if self.last:
            for k, v in now.items():
                assert v >= self.last[k], "%s went down: %s -> %s" % (k, self.last, now)
        # /metrics is read just after the stats: a request may finish in between
        assert now["requests"] >= now["total_requests"]
        assert now["count"] == now["inf"] >= now["successful_requests"]
        self.last = now
        return st, m


def test_backend_counters_survive_a_deleted_server(env):
    """DELETE takes a server's own series away, not its share of the backend's totals --
    also for the request still in flight on it."""
    a, b = env.backend("a"), env.backend("b")
    f, adm = start(env, [a, b])
    mono = Monotonic(adm)
    names_of(f, 10)
    with Client(f.port) as c:  # one failure on a: 502 from a malformed response
        r = c.request("GET", "/bad?mode=malformed&kind=garbage", headers=[("Connection", "close")])
        assert r.status == 502
    st, m = mono.read()
    assert st["total_requests"] == 11 and st["failed_requests"] == 1
    assert m["servers"] == ["a", "b"]
    with Client(f.port) as c:
        c.send(build_request("GET", "/inflight?delay=1.5"))
        assert wait_until(lambda: any(r["path"] == "/inflight" for r in a.requests() +
                                      b.requests()), 5)
        victim, other = ("a", "b") if any(r["path"] == "/inflight" for r in a.requests()) \
            else ("b", "a")
        r = adm.call("DELETE", "/api/backends/app/servers/%s" % victim)
        assert r.status == 200 and r.json()["in_flight"] == 1, r.body
        st, m = mono.read()
        assert st["total_requests"] == 11 and st["failed_requests"] == 1
        assert [s["id"] for s in st["server_details"]] == [other]
        assert m["servers"] == [other]
        assert c.read_response().status == 200
    # the request that was in flight counts once it is over
    assert wait_until(lambda: adm.stats()["total_requests"] == 12, 5), adm.stats()
    st, m = mono.read()
    assert st["successful_requests"] == 11
    names_of(f, 3)
    st, m = mono.read()
    assert st["total_requests"] == 15 and st["total_servers"] == 1


def test_backend_counters_survive_a_strategy_change(env):
    """A reload that changes the strategy gives the backend a new pool: its totals go on
    from the old pool's, including the servers the file dropped, one deleted before, and a
    request that finishes on the old pool after the reload."""
    a, b, c = env.backend("a"), env.backend("b"), env.backend("c")
    f, adm = start(env, [a, b, c], top={"log_level": "debug"})
    mono = Monotonic(adm)
    names_of(f, 9)
    assert adm.call("DELETE", "/api/backends/app/servers/c").status == 200
    st, _ = mono.read()
    assert st["total_requests"] == 9
    slow = Client(f.port)
    try:
        slow.send(build_request("GET", "/slow?delay=1.5", headers=[("Connection", "close")]))
        assert wait_until(lambda: any(r["path"] == "/slow" for r in a.requests() +
                                      b.requests()), 5)
        cfg = f.config
        cfg["backends"][0]["strategy"] = "least_connections"
        cfg["backends"][0]["servers"] = [s for s in cfg["backends"][0]["servers"]
                                         if s["name"] == "a"]  # b dropped, c already gone
        f.config_path.write_text(to_yaml(cfg))
        r = adm.call("POST", "/api/reload")
        assert r.status == 200, r.body
        st, m = mono.read()
        assert st["strategy"] == "least_connections"
        assert [s["id"] for s in st["server_details"]] == ["a"]
        assert st["server_details"][0]["total_requests"] == 3
        assert st["total_requests"] == 9
        assert m["servers"] == ["a"]
        assert slow.read_response().status == 200  # finished on the old pool
    finally:
        slow.close()
    assert wait_until(lambda: adm.stats()["total_requests"] == 10, 5), adm.stats()
    mono.read()
    # The old pool is freed once its generation's last connection is gone; its counts stay.
    assert wait_until(lambda: "a replaced round_robin pool" in f.stderr(), 10), \
        f.stderr()[-2000:]
    st, _ = mono.read()
    assert st["total_requests"] == 10
    names_of(f, 2)
    st, _ = mono.read()
    assert st["total_requests"] == 12 and st["successful_requests"] == 12


def test_backend_counters_survive_a_re_created_server(env):
    """A reload that changes a server's max_connections re-creates it in the same pool: its
    counts move to the new one, counted once, and a request finishing on the old one is
    added."""
    a, b = env.backend("a"), env.backend("b")
    f, adm = start(env, [a, b])
    mono = Monotonic(adm)
    names_of(f, 6)
    slow = Client(f.port)
    try:
        slow.send(build_request("GET", "/slow?delay=1.5", headers=[("Connection", "close")]))
        assert wait_until(lambda: any(r["path"] == "/slow" for r in a.requests() +
                                      b.requests()), 5)
        busy = 0 if any(r["path"] == "/slow" for r in a.requests()) else 1
        cfg = f.config
        cfg["backends"][0]["servers"][busy]["max_connections"] = 10  # re-created
        f.config_path.write_text(to_yaml(cfg))
        assert adm.call("POST", "/api/reload").status == 200
        st, _ = mono.read()
        assert st["total_requests"] == 6
        s = {x["id"]: x for x in st["server_details"]}["ab"[busy]]
        assert s["total_requests"] == 3 and s["max_connections"] == 10
        assert slow.read_response().status == 200
    finally:
        slow.close()
    assert wait_until(lambda: adm.stats()["total_requests"] == 7, 5), adm.stats()
    names_of(f, 2)
    st, _ = mono.read()
    assert st["total_requests"] == 9 and st["successful_requests"] == 9


# ---------------------------------------------------------------- startup refusals


def test_open_admin_without_a_token_is_refused(env, tmp_path):
    a = env.backend("a")
    cfg = tmp_path / "open.yaml"
    cfg.write_text("frontends:\n  - {name: web, listen: 127.0.0.1:%d, backend: app}\n"
                   "backends:\n  - name: app\n    servers:\n      - {name: a, address: %s}\n"
                   "admin:\n  listen: 0.0.0.0:%d\n" % (free_port(), a.address, free_port()))
    for cmd in ("check", "run"):
        p = subprocess.run([fulcrum_bin(), cmd, str(cfg)], capture_output=True, text=True,
                           timeout=20)
        assert p.returncode == 1, (cmd, p)
        assert "token_env" in p.stdout + p.stderr


def test_token_env_naming_an_unset_variable_is_refused(env, tmp_path):
    a = env.backend("a")
    port, aport = free_port(), free_port()
    cfg = tmp_path / "unset.yaml"
    cfg.write_text("frontends:\n  - {name: web, listen: 127.0.0.1:%d, backend: app}\n"
                   "backends:\n  - name: app\n    servers:\n      - {name: a, address: %s}\n"
                   "admin:\n  listen: 127.0.0.1:%d\n  token_env: FULCRUM_TEST_UNSET_VAR\n"
                   % (port, a.address, aport))
    penv = dict(os.environ)
    penv.pop("FULCRUM_TEST_UNSET_VAR", None)
    p = subprocess.run([fulcrum_bin(), "run", str(cfg)], capture_output=True, text=True,
                       timeout=20, env=penv)
    assert p.returncode == 1, p
    assert "FULCRUM_TEST_UNSET_VAR" in p.stderr
    assert not listening(port) and not listening(aport)


# ---------------------------------------------------------------- the dashboard in chromium


class Traffic:
    """Requests through fulcrum from a thread, one every few ms, until stopped (at most
    `limit` seconds), so the dashboard has numbers to move."""

    def __init__(self, port, limit=120):
        self.port = port
        self.limit = limit
        self.count = 0
        self.errors = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        end = time.monotonic() + self.limit
        while not self._stop.is_set() and time.monotonic() < end:
            try:
                with Client(self.port, timeout=5) as c:
                    for _ in range(20):
                        r = c.request("GET", "/traffic/%d" % self.count)
                        self.count += 1
                        if r.status not in (200, 503):
                            self.errors.append(r.status)
                        if self._stop.wait(0.005):
                            return
            except OSError as e:
                self.errors.append(repr(e))

    def stop(self):
        self._stop.set()
        self._t.join(10)


def test_dashboard_in_headless_chromium(env):
    node = shutil.which("node")
    chromium = "/usr/bin/chromium"
    browser = REPO / "tests" / "browser"
    assert node, "node is missing: run scripts/deps.sh"
    assert os.path.exists(chromium), "chromium is missing: run scripts/deps.sh"
    assert (browser / "node_modules" / "playwright-core").is_dir(), \
        "playwright-core is missing: run scripts/deps.sh (npm ci in tests/browser)"
    a, b, c = env.backend("a"), env.backend("b"), env.backend("c")
    f, adm = start(env, [a, b, c], strategy="weighted_round_robin")
    shot = REPO / "build" / "artifacts" / "dashboard.png"
    traffic = Traffic(f.port)
    try:
        p = subprocess.run([node, str(browser / "dashboard.test.mjs"),
                            "http://127.0.0.1:%d/" % adm.port, "--token", TOKEN,
                            "--backend", "app", "--screenshot", str(shot), "--timeout", "90"],
                           capture_output=True, text=True, timeout=120, cwd=str(browser))
    finally:
        traffic.stop()
    print(p.stdout)
    assert p.returncode == 0, "browser test failed:\n%s\n%s" % (p.stdout, p.stderr[-3000:])
    assert "0 failed" in p.stdout
    assert shot.is_file() and shot.stat().st_size > 10000
    assert traffic.count > 0 and not traffic.errors, traffic.errors[:5]
    # what the clicks did is in the balancer, not only in the page
    assert all(s["status"] == "healthy" for s in adm.stats()["server_details"])
