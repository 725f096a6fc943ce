"""test_hostile_servers.py -- servers that die under load, answer before reading the
request body, or send response heads fulcrum must refuse. What test_failures.py already
covers (dead, hanging, slow, closing mid-response, malformed heads, CL+TE in that order)
is not repeated here.

Most servers here are HostileServer, a small threaded server in this file whose behaviour
is chosen per request path, with its own log of every request line it parsed: a body that
hides "GET /smuggled" must never show up there, nor reach a client as a response.
"""
import json
import socket
import threading
import time

import pytest

from conftest import Client, ConnClosed, build_request, http_get, wait_until

HIDDEN = b"GET /smuggled HTTP/1.1\r\nHost: victim.test\r\n\r\n"
MIB = 1024 * 1024


def hidden_body(n):
    """n bytes made of HIDDEN over and over: a request body that is a request flood if a
    hop ever reads it as requests."""
    return (HIDDEN * (n // len(HIDDEN) + 1))[:n]


# ---------------------------------------------------------------- a scriptable server


class HostileServer:
    """Threaded HTTP/1.1-ish server on 127.0.0.1:0. Paths (before '?'):
      /early-413        answer 413 + close right after the head, then read and drop what
                        comes (a polite lingering close) until EOF
      /early-413-abort  answer 413 + close right after the head and close at once (the
                        unread body turns the close into a reset)
      /early-200        answer 200 right after the head, then read the body (by its
                        Content-Length) and go on with the next request (keep-alive)
      /huge-head        read the request, answer a head with one 20000-byte field
      /many-headers     read the request, answer a head with 200 field lines
      /te-cl            read the request, answer Transfer-Encoding and Content-Length
      anything else     read the request, answer 200 with JSON {"target": ..., "body_len"}
    """

    def __init__(self):
        self.log = []  # request targets, in the order parsed
        self.lock = threading.Lock()
        self.ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(64)
        self.port = self.ls.getsockname()[1]
        self.closing = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port

    def targets(self):
        with self.lock:
            return list(self.log)

    def stop(self):
        self.closing = True
        self.ls.close()

    def _accept(self):
        while not self.closing:
            try:
                conn, _ = self.ls.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        conn.settimeout(15)
        buf = bytearray()
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                head, _, rest = bytes(buf).partition(b"\r\n\r\n")
                buf = bytearray(rest)
                lines = head.decode("latin-1").split("\r\n")
                target = lines[0].split(" ")[1] if lines[0].count(" ") >= 2 else lines[0]
                with self.lock:
                    self.log.append(target)
                length = 0
                for line in lines[1:]:
                    k, _, v = line.partition(":")
                    if k.strip().lower() == "content-length":
                        length = int(v.strip())
                if not self._answer(conn, target.split("?")[0], target, length, buf):
                    return
        except OSError:
            return
        finally:
            conn.close()

    @staticmethod
    def _read_body(conn, buf, length):
        while len(buf) < length:
            data = conn.recv(65536)
            if not data:
                raise OSError("peer closed in the body")
            buf += data
        del buf[:length]

    def _answer(self, conn, path, target, length, buf):
        """Serves one request; False when the connection is done."""
        if path in ("/early-413", "/early-413-abort"):
            conn.sendall(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 9\r\n"
                         b"Connection: close\r\n\r\ntoo large")
            if path == "/early-413":
                conn.shutdown(socket.SHUT_WR)
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline and conn.recv(65536):
                    pass
            return False
        if path == "/early-200":
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nearly")
            self._read_body(conn, buf, length)
            return True
        self._read_body(conn, buf, length)
        if path == "/huge-head":
            conn.sendall(b"HTTP/1.1 200 OK\r\nX-Huge: " + b"h" * 20000 +
                         b"\r\nContent-Length: 0\r\n\r\n")
        elif path == "/many-headers":
            conn.sendall(b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-N%d: 1\r\n" % i
                                                          for i in range(200)) +
                         b"Content-Length: 0\r\n\r\n")
        elif path == "/te-cl":
            conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                         b"Content-Length: 10\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
        else:
            body = json.dumps({"target": target, "body_len": length}).encode()
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n" % len(body) + body)
            return True
        return False


@pytest.fixture
def hostile():
    s = HostileServer()
    yield s
    s.stop()


def send_in_background(c, data):
    """sendall in a thread: fulcrum may stop reading a body it will not forward."""
    def run():
        try:
            c.sock.sendall(data)
        except OSError:
            pass
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def assert_never_smuggled(hostile):
    assert not any("smuggled" in t for t in hostile.targets()), hostile.targets()


def assert_next_request_is_answered_as_itself(c, target):
    """On a connection fulcrum kept open, the next request gets its own response."""
    c.send(build_request("GET", target))
    r = c.read_response()
    assert r.status == 200 and r.json()["target"] == target, r


def assert_in_sync_after(c, r, target="/next"):
    """After response r, fulcrum either closes the connection (and said so) or keeps it
    in sync: the next request gets its own response, never one for leftover bytes."""
    if "close" in (r.header("Connection") or "").lower():
        assert c.wait_closed(5), "'Connection: close' sent but the connection stayed open"
    else:
        assert_next_request_is_answered_as_itself(c, target)


# ---------------------------------------------------------------- a server dies under load


def test_server_killed_under_load_fails_no_request_that_could_be_retried(env):
    """GETs are idempotent: those in flight on the killed server, and those that meet its
    closed port, are resent to the other one. Every single one must succeed."""
    a, b = env.backend("a"), env.backend("b")
    f = env.proxy([a, b], backend={"retries": 2})
    stop = threading.Event()
    results, errors = [], []
    lock = threading.Lock()

    def client(k):
        i = 0
        try:
            with Client(f.port, timeout=10) as c:
                while not stop.is_set():
                    r = c.request("GET", "/load/%d/%d?delay=0.02" % (k, i))
                    with lock:
                        results.append((r.status, r.backend))
                    i += 1
                    if "close" in (r.header("Connection") or "").lower():
                        return
        except Exception as e:  # noqa: BLE001 -- any failure is reported below
            with lock:
                errors.append("client %d request %d: %r" % (k, i, e))

    threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(6)]
    for t in threads:
        t.start()
    assert wait_until(lambda: sum(1 for s, n in results if n == "b") >= 10, 10), \
        "no load reached b"
    b.proc.kill()
    b.proc.wait(5)
    killed_at = len(results)
    assert wait_until(lambda: len(results) >= killed_at + 60, 15), "load stopped after the kill"
    stop.set()
    for t in threads:
        t.join(15)
    assert not errors, errors
    bad = [r for r in results if r[0] != 200]
    assert not bad, "%d of %d requests failed: %r" % (len(bad), len(results), bad[:10])
    assert all(n == "a" for _, n in results[killed_at + 12:]), "b answered after its death?"
    assert f.alive()


# ---------------------------------------------------------------- early responses


@pytest.mark.parametrize("size", [1024, 2 * MIB], ids=["small-body", "large-body"])
def test_early_413_reaches_the_client_and_the_body_is_never_taken_for_requests(
        env, hostile, size):
    f = env.proxy([("h", hostile.address)])
    with Client(f.port, timeout=10) as c:
        head = build_request("POST", "/early-413", [("Content-Length", str(size))])
        sender = send_in_background(c, head + hidden_body(size))
        r = c.read_response()
        assert r.status == 413 and r.body == b"too large", r
        sender.join(15)
        # fulcrum either keeps the connection (the whole body had been read) or closes it
        # (the rest of the body cannot be told from requests): never a desync.
        assert_in_sync_after(c, r)
    assert http_get(f.port, "/after").json()["target"] == "/after"
    assert_never_smuggled(hostile)
    assert hostile.targets()[0] == "/early-413"


def test_early_413_then_reset_is_a_413_or_502_never_a_desync(env, hostile):
    f = env.proxy([("h", hostile.address)])
    with Client(f.port, timeout=10) as c:
        head = build_request("POST", "/early-413-abort", [("Content-Length", str(2 * MIB))])
        sender = send_in_background(c, head + hidden_body(2 * MIB))
        try:
            r = c.read_response()
            # The reset may reach fulcrum before the 413 is read: then it is a 502.
            assert r.status in (413, 502), r
            sender.join(15)
            # Loopback buffers can take the whole body before the server closes: then the
            # request was complete and the connection may stay; else it must close.
            assert_in_sync_after(c, r)
        except ConnClosed:
            pass  # the reset cut the response already relayed: the client sees the cut
        sender.join(15)
    assert http_get(f.port, "/after").json()["target"] == "/after"
    assert_never_smuggled(hostile)


@pytest.mark.parametrize("size", [1024, 2 * MIB], ids=["small-body", "large-body"])
def test_early_200_from_a_keepalive_server_leaves_both_sides_in_sync(env, hostile, size):
    """The server answers before the body and reads the body afterwards, keeping its
    connection: the next requests (same client connection if fulcrum keeps it, and a new
    one, possibly over the same server connection) get their own responses."""
    f = env.proxy([("h", hostile.address)])
    with Client(f.port, timeout=10) as c:
        head = build_request("POST", "/early-200", [("Content-Length", str(size))])
        sender = send_in_background(c, head + hidden_body(size))
        r = c.read_response()
        assert r.status == 200 and r.body == b"early", r
        sender.join(15)
        assert_in_sync_after(c, r)
    for i in range(3):
        target = "/after/%d" % i
        assert http_get(f.port, target).json()["target"] == target
    assert_never_smuggled(hostile)


# ---------------------------------------------------------------- refused response heads


@pytest.mark.parametrize("path", ["/huge-head", "/many-headers", "/te-cl"])
def test_refused_response_head_is_a_502_and_never_relayed(env, hostile, path):
    f = env.proxy([("h", hostile.address)])
    with Client(f.port, timeout=10) as c:
        r = c.request("GET", path)
        assert r.status == 502, r
        assert r.header("X-Huge") is None and r.header("X-N1") is None
        assert b"hello" not in r.body, "part of the refused response reached the client"
        assert_in_sync_after(c, r)
    assert f.alive()
