"""test_limits.py -- connection limits and descriptor exhaustion.

- `max_connections` (top level: the whole process, all workers; per frontend: that
  frontend): at the limit fulcrum stops accepting (new connections wait in the kernel's
  accept queue, unanswered) and resumes as soon as a connection closes.
- EMFILE: fulcrum's RLIMIT_NOFILE is lowered at run time (prlimit) below what the clients
  need. It must stay up, must not spin (CPU time over an idle window at the limit stays
  small), and must serve again once clients close.

Bounds are generous behaviour checks, not measurements: a spinning accept loop burns a
whole core (about 2 s of CPU in the 2 s window), a paused one almost nothing.
"""
import os
import resource
import socket
import time

from conftest import Client, build_request, free_port, proxy_config, wait_until

IDLE_WINDOW = 2.0  # seconds at the limit while CPU time is measured
CPU_BOUND = 0.5  # seconds of CPU allowed in that window
QUIET = 1.0  # a request to a paused listener must stay unanswered this long
RESUME = 5.0  # and be answered within this once a slot frees

FD_WARNING = "out of file descriptors"
LONG_TIMEOUTS = {"timeouts": {"client": "30s", "header": "30s"}}


def cpu_seconds(pid):
    """utime + stime of every thread of pid, from /proc/PID/stat."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # fields 14 and 15 of stat(5)
    return ticks / os.sysconf("SC_CLK_TCK")


def cpu_over_idle_window(pid):
    before = cpu_seconds(pid)
    time.sleep(IDLE_WINDOW)
    return cpu_seconds(pid) - before


def hold(port, n, request=True):
    """n client connections fulcrum has accepted (each served one keep-alive request),
    or just connected when request is False."""
    out = []
    for i in range(n):
        c = Client(port, timeout=10)
        if request:
            r = c.request("GET", "/hold/%d" % i)
            assert r.status == 200, r
        out.append(c)
    return out


def unanswered(c, wait=QUIET):
    """True when nothing arrives on c for `wait` seconds and it stays open."""
    c.settimeout(wait)
    try:
        c.sock.recv(1, socket.MSG_PEEK)  # bytes (answered) or b"" (closed): both wrong
        return False
    except socket.timeout:
        return True
    finally:
        c.settimeout(10)


def close_all(clients):
    for c in clients:
        c.close()


def two_frontend_config(servers, limited_max):
    cfg = proxy_config(free_port(), servers, frontend=dict(LONG_TIMEOUTS,
                                                           max_connections=limited_max))
    other = dict(cfg["frontends"][0], name="other", listen="127.0.0.1:%d" % free_port())
    del other["max_connections"]
    cfg["frontends"].append(other)
    return cfg


# ---------------------------------------------------------------- max_connections


def test_global_max_connections_pauses_accepting_and_resumes(env):
    a = env.backend("a")
    limit = 10
    f = env.proxy([a], workers=2, top={"max_connections": limit}, frontend=LONG_TIMEOUTS)
    holders = hold(f.port, limit)
    extra = Client(f.port, timeout=10)
    try:
        extra.send(build_request("GET", "/extra"))
        assert unanswered(extra), "a connection over max_connections was served"
        cpu = cpu_over_idle_window(f.pid)
        assert cpu < CPU_BOUND, "%.2f s of CPU in %.1f s at the limit" % (cpu, IDLE_WINDOW)
        assert f.alive()
        holders.pop().close()
        extra.settimeout(RESUME)
        r = extra.read_response()
        assert r.status == 200 and r.json()["target"] == "/extra"
    finally:
        extra.close()
        close_all(holders)
    # Every slot came back: a full set of new connections is accepted again.
    again = hold(f.port, limit)
    close_all(again)


def test_frontend_max_connections_limits_only_that_frontend(env):
    a = env.backend("a")
    f = env.fulcrum(two_frontend_config([(a.name, a.address)], limited_max=3))
    other_port = int(f.config["frontends"][1]["listen"].rsplit(":", 1)[1])
    holders = hold(f.port, 3)
    extra = Client(f.port, timeout=10)
    try:
        extra.send(build_request("GET", "/extra"))
        assert unanswered(extra), "a fourth connection to a frontend limited to 3 was served"
        others = hold(other_port, 5)  # the other frontend has no limit of its own
        close_all(others)
        holders.pop().close()
        extra.settimeout(RESUME)
        r = extra.read_response()
        assert r.status == 200 and r.json()["target"] == "/extra"
    finally:
        extra.close()
        close_all(holders)


# ---------------------------------------------------------------- EMFILE


def open_fds(pid):
    fds = [int(x) for x in os.listdir("/proc/%d/fd" % pid)]
    return len(fds), max(fds)


def test_out_of_descriptors_never_spins_nor_crashes_and_recovers(env):
    a = env.backend("a")
    f = env.proxy([a], frontend=LONG_TIMEOUTS)
    with Client(f.port) as c:  # warm up: one upstream connection now pooled
        assert c.request("GET", "/warm").status == 200
    spare = 8
    _, highest = open_fds(f.pid)
    limit = highest + 1 + spare
    resource.prlimit(f.pid, resource.RLIMIT_NOFILE, (limit, limit))
    clients = []
    try:
        for _ in range(5 * spare):  # five times what fulcrum can take
            clients.append(Client(f.port, timeout=10))
        # fulcrum takes what it can, logs the shortage and pauses; the rest wait in the
        # accept queue.
        assert wait_until(lambda: FD_WARNING in f.stderr(), 5), \
            "fulcrum never ran out of descriptors, or did not log it"
        assert open_fds(f.pid)[1] >= limit - 1
        warned_before = f.stderr().count(FD_WARNING)
        cpu = cpu_over_idle_window(f.pid)
        warned_during = f.stderr().count(FD_WARNING) - warned_before
        assert f.alive(), "fulcrum died out of descriptors:\n" + f.stderr()[-3000:]
        assert cpu < CPU_BOUND, "%.2f s of CPU in %.1f s out of descriptors" % (
            cpu, IDLE_WINDOW)
        # Accepting is retried every 100 ms; the shortage is logged once, not each time.
        assert warned_during == 0, "%d warnings in %.1f s: the log is flooded" % (
            warned_during, IDLE_WINDOW)
    finally:
        close_all(clients)
    # Descriptors free again: the queued (now closed) connections are drained and a new
    # client is served (it needs two descriptors: itself and a server connection).
    def served():
        try:
            with Client(f.port, timeout=3) as c:
                return c.request("GET", "/after").status == 200
        except OSError:
            return False
    assert wait_until(served, 10, interval=0.2), "fulcrum did not recover:\n" + \
        f.stderr()[-3000:]
    assert f.alive()
