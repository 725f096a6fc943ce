"""test_tcp.py -- `mode: tcp` frontends: bytes round-trip both ways, half-close, round robin
over connections, and connect failures retried on another server."""
import os
import socket
import threading

from conftest import free_port


def connect(port, timeout=10):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_line(s, limit=256):
    out = b""
    while not out.endswith(b"\n"):
        data = s.recv(1)
        assert data, "connection closed before a full line: %r" % out
        out += data
        assert len(out) <= limit
    return out


def read_exact(s, n):
    out = bytearray()
    while len(out) < n:
        data = s.recv(min(1 << 20, n - len(out)))
        assert data, "connection closed after %d of %d bytes" % (len(out), n)
        out += data
    return bytes(out)


def greeting_of(port):
    with connect(port) as s:
        name = read_line(s).decode().strip()
        s.sendall(b"bye")
        assert read_exact(s, 3) == b"bye"
    return name


def test_tcp_bytes_round_trip_and_half_close(env):
    t = env.tcp_backend("t1")
    f = env.proxy([t], mode="tcp")
    with connect(f.port) as s:
        assert read_line(s) == b"t1\n"
        data = os.urandom(1 << 20)
        s.sendall(data)
        assert read_exact(s, len(data)) == data
        s.shutdown(socket.SHUT_WR)  # our FIN must reach the server, whose FIN comes back
        s.settimeout(5)
        assert s.recv(1) == b"", "no EOF after the half-close"


def test_tcp_client_speaks_first(env):
    t = env.tcp_backend("t1", "--no-greeting")
    f = env.proxy([t], mode="tcp")
    with connect(f.port) as s:
        s.sendall(b"hello\n")
        assert read_exact(s, 6) == b"hello\n"


def test_tcp_large_transfer_both_directions_at_once(env):
    t = env.tcp_backend("t1", "--no-greeting")
    f = env.proxy([t], mode="tcp")
    size = 32 << 20
    block = os.urandom(1 << 20)
    double = block * 2
    with connect(f.port, timeout=30) as s:
        def writer():
            for _ in range(size // len(block)):
                s.sendall(block)

        w = threading.Thread(target=writer, daemon=True)
        w.start()
        got = 0
        mismatch = None
        while got < size:
            data = s.recv(1 << 20)
            assert data, "closed after %d of %d bytes" % (got, size)
            off = got % len(block)
            expect = double[off:off + len(data)] if len(data) <= len(block) else None
            if expect is not None and data != expect and mismatch is None:
                mismatch = got
            got += len(data)
        w.join(30)
        assert not w.is_alive()
    assert mismatch is None, "echoed bytes differ at offset %d" % mismatch


def test_tcp_round_robin_over_connections(env):
    servers = [env.tcp_backend(n) for n in ("a", "b", "c")]
    f = env.proxy(servers, mode="tcp", strategy="round_robin")
    seq = [greeting_of(f.port) for _ in range(9)]
    assert seq == ["a", "b", "c"] * 3


def test_tcp_dead_server_is_retried_around(env):
    a, c = env.tcp_backend("a"), env.tcp_backend("c")
    dead = ("b", "127.0.0.1:%d" % free_port())
    f = env.proxy([a, dead, c], mode="tcp", backend={"retries": 2})
    seq = [greeting_of(f.port) for _ in range(8)]
    assert set(seq) == {"a", "c"}


def test_tcp_all_servers_dead_closes_the_client(env):
    dead = [("x", "127.0.0.1:%d" % free_port()), ("y", "127.0.0.1:%d" % free_port())]
    f = env.proxy(dead, mode="tcp")
    with connect(f.port) as s:
        s.settimeout(8)
        try:
            data = s.recv(100)
        except ConnectionResetError:
            data = b""
        assert data == b""


def test_tcp_source_ip_hash_is_sticky(env):
    servers = [env.tcp_backend(n) for n in ("a", "b", "c")]
    f = env.proxy(servers, mode="tcp", strategy="maglev", backend={"hash_key": "source_ip"})
    seen = {}
    for src in ["127.0.0.%d" % i for i in range(2, 14)] * 2:
        s = socket.create_connection(("127.0.0.1", f.port), timeout=10, source_address=(src, 0))
        with s:
            name = read_line(s).decode().strip()
        assert seen.setdefault(src, name) == name, "%s moved from %s to %s" % (
            src, seen[src], name)
    assert len(set(seen.values())) > 1
