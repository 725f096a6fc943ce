"""test_slowloris.py -- thousands of clients trickling a request head a line at a time.

Each slow client sends a request line and then one more header line every TRICKLE
seconds, forever. fulcrum must close every one of them at the header timeout (which
counts from the accept and is not extended by the trickle), with a 408 or a bare close,
while a normal client is served at the same time. Nothing may reach the backend but the
normal request.

The client count is bounded (CLIENTS, or what RLIMIT_NOFILE allows: the soft limit is
raised to the hard one first, and fulcrum inherits it). Times below are generous bounds
on a shared machine, not measurements.
"""
import resource
import selectors
import socket
import threading
import time

import pytest

from conftest import free_port, http_get, proxy_config

CLIENTS = 2000
HEADER_TIMEOUT = 2.0  # seconds, in fulcrum's config below
TRICKLE = 0.5  # seconds between two header lines of one slow client
CLOSE_SLACK = 10.0  # every slow client must be closed by connect + timeout + this
EARLY_SLACK = 0.3  # ... and none before connect + timeout - this (timer granularity)
FD_RESERVE = 64  # descriptors kept for the harness (backend, pytest, pipes)


def raise_nofile():
    """Raises the soft RLIMIT_NOFILE to the hard limit; returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class SlowClient:
    __slots__ = ("sock", "started", "lines", "closed_at", "received")

    def __init__(self, sock, started):
        self.sock = sock
        self.started = started  # before connect(): fulcrum accepted it no earlier
        self.lines = 0
        self.closed_at = None
        self.received = b""


def open_slow_clients(port, n, sel):
    clients = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        c = SlowClient(s, time.monotonic())
        s.connect_ex(("127.0.0.1", port))
        sel.register(s, selectors.EVENT_READ, c)
        clients.append(c)
    return clients


def trickle(c):
    """One more piece of the head that never ends."""
    if c.lines == 0:
        data = b"GET /slow HTTP/1.1\r\nHost: slowloris.test\r\n"
    else:
        data = b"X-Trickle-%d: keep waiting\r\n" % c.lines
    try:
        c.sock.send(data)
        c.lines += 1
    except (BlockingIOError, InterruptedError):
        pass  # not connected yet, or a full buffer: try again next round
    except OSError:
        pass  # closed or reset: the read side will see it


def on_readable(c, now):
    try:
        data = c.sock.recv(4096)
    except (BlockingIOError, InterruptedError):
        return False
    except OSError:
        data = b""
    if data:
        c.received += data
        return False
    c.closed_at = now
    return True


def run_until_all_closed(clients, sel, deadline, during):
    """Trickles and reads until every slow client is closed or the deadline passes.
    during() runs once, in a thread, after the first trickle round."""
    open_left = len(clients)
    next_trickle = 0.0
    helper = None
    while open_left and time.monotonic() < deadline:
        now = time.monotonic()
        if now >= next_trickle:
            for c in clients:
                if c.closed_at is None:
                    trickle(c)
            next_trickle = now + TRICKLE
            if helper is None:
                helper = threading.Thread(target=during, daemon=True)
                helper.start()
        for key, _ in sel.select(timeout=0.05):
            c = key.data
            if on_readable(c, time.monotonic()):
                sel.unregister(c.sock)
                c.sock.close()
                open_left -= 1
    return helper


@pytest.fixture
def nofile():
    before = resource.getrlimit(resource.RLIMIT_NOFILE)
    yield raise_nofile()
    resource.setrlimit(resource.RLIMIT_NOFILE, before)


def test_slowloris_clients_closed_at_header_timeout_while_a_normal_client_is_served(
        env, nofile):
    n = min(CLIENTS, nofile - FD_RESERVE)
    assert n >= 500, "RLIMIT_NOFILE too low for a meaningful slowloris test (%d)" % nofile
    a = env.backend("a")
    f = env.fulcrum(proxy_config(free_port(), [(a.name, a.address)], frontend={
        "timeouts": {"client": "30s", "header": "%ds" % HEADER_TIMEOUT}}))
    sel = selectors.DefaultSelector()
    normal = {}

    def normal_client():
        try:
            r = http_get(f.port, "/normal", timeout=15)
            normal["status"] = r.status
            normal["target"] = r.json()["target"]
        except Exception as e:  # noqa: BLE001 -- reported by the assertion below
            normal["error"] = repr(e)

    clients = []
    try:
        clients = open_slow_clients(f.port, n, sel)
        deadline = time.monotonic() + HEADER_TIMEOUT + CLOSE_SLACK
        helper = run_until_all_closed(clients, sel, deadline, normal_client)
        helper.join(20)
    finally:
        for c in clients:
            if c.closed_at is None:
                c.sock.close()
        sel.close()

    still_open = [c for c in clients if c.closed_at is None]
    assert not still_open, "%d of %d slow clients outlived the header timeout" % (
        len(still_open), n)
    early = [c for c in clients if c.closed_at - c.started < HEADER_TIMEOUT - EARLY_SLACK]
    assert not early, "%d slow clients were closed before the header timeout (first after "\
        "%.2f s)" % (len(early), min(c.closed_at - c.started for c in early))
    trickled = sum(1 for c in clients if c.lines >= 2)
    assert trickled >= n // 2, "only %d clients got to trickle: not a slowloris" % trickled
    answers = {c.received.split(b"\r\n", 1)[0] for c in clients if c.received}
    assert answers <= {b"HTTP/1.1 408 Request Timeout"}, answers

    assert normal.get("status") == 200 and normal.get("target") == "/normal", normal
    assert f.alive()
    assert [r["path"] for r in a.requests()] == ["/normal"]
