"""test_http.py -- HTTP/1.1 through fulcrum: keep-alive and upstream reuse, Content-Length
and chunked bodies both ways (large ones streamed), pipelining, hop-by-hop and forwarding
headers, HEAD/204/304, HTTP/1.0, and Upgrade tunnels."""
import hashlib
import os
import socket
import threading
import time

import pytest

from conftest import (Client, RssSampler, build_request, chunked_encode, http_get,
                      pattern_chunks, pattern_sha256, sha256)

MIB = 1024 * 1024
RSS_LIMIT_KIB = 64 * 1024  # fulcrum may not grow more than this while streaming

_sha_cache = {}


def expected_sha(n):
    if n not in _sha_cache:
        _sha_cache[n] = pattern_sha256(n)
    return _sha_cache[n]


def streaming_env():
    """ASan keeps freed blocks in a quarantine (256 MiB by default) that stays resident:
    shrink it so VmRSS measures what fulcrum buffers, not what ASan holds back."""
    opts = os.environ.get("ASAN_OPTIONS", "")
    return {"ASAN_OPTIONS": (opts + ":" if opts else "") + "quarantine_size_mb=8"}


# ---------------------------------------------------------------- connection reuse


def test_keepalive_connection_serves_many_requests_and_upstream_is_reused(env):
    a = env.backend("a")
    f = env.proxy([a])
    n = 20
    conns = []
    with Client(f.port) as c:
        for i in range(n):
            r = c.request("GET", "/ka/%d" % i)
            assert r.status == 200
            assert r.json()["target"] == "/ka/%d" % i
            assert "close" not in (r.header("Connection") or "").lower()
            conns.append(r.header("X-Backend-Conn"))
        assert c.is_open(), "fulcrum closed an idle keep-alive connection at once"
    assert None not in conns
    assert len(set(conns)) < n, "every request opened a new upstream connection"
    upstream = [x for x in a.log()["connections"] if x["bytes"] > 0]
    assert len(upstream) < n


def test_keepalive_post_bodies_in_sequence(env):
    a = env.backend("a")
    f = env.proxy([a])
    with Client(f.port) as c:
        for i in range(10):
            body = os.urandom(1000 + i * 37)
            r = c.request("POST", "/p/%d" % i, body=body)
            assert r.status == 200
            seen = r.json()
            assert (seen["body_len"], seen["body_sha256"]) == (len(body), sha256(body))


def test_client_connection_close_is_honoured(env):
    a = env.backend("a")
    f = env.proxy([a])
    with Client(f.port) as c:
        r = c.request("GET", "/", headers=[("Connection", "close")])
        assert r.status == 200
        assert c.wait_closed(5), "fulcrum kept the connection after Connection: close"


def test_http10_request_is_served_and_closed(env):
    a = env.backend("a")
    f = env.proxy([a])
    with Client(f.port) as c:
        c.send(b"GET /old HTTP/1.0\r\n\r\n")
        r = c.read_response()
        assert r.status == 200
        assert r.json()["target"] == "/old"
        assert c.wait_closed(5), "an HTTP/1.0 request without keep-alive must be closed"


# ---------------------------------------------------------------- bodies


def test_content_length_request_body(env):
    a = env.backend("a")
    f = env.proxy([a])
    body = os.urandom(300_000)
    with Client(f.port) as c:
        r = c.request("PUT", "/cl", body=body)
    assert r.status == 200
    seen = r.json()
    assert seen["method"] == "PUT"
    assert (seen["body_len"], seen["body_sha256"]) == (len(body), sha256(body))
    cl = [v for k, v in seen["headers"] if k.lower() == "content-length"]
    assert cl == [str(len(body))]


def test_empty_post_body(env):
    a = env.backend("a")
    f = env.proxy([a])
    with Client(f.port) as c:
        r = c.request("POST", "/empty", body=b"")
        assert r.status == 200
        assert r.json()["body_len"] == 0
        r = c.request("GET", "/after")
        assert r.status == 200 and r.json()["target"] == "/after"


def test_chunked_request_body(env):
    a = env.backend("a")
    f = env.proxy([a])
    pieces = [os.urandom(n) for n in (1, 15, 16, 4096, 70_000, 3)]
    body = b"".join(pieces)
    encoded = chunked_encode(pieces)
    # A chunk extension and a trailer are legal and must not break the framing.
    encoded = encoded.replace(b"f\r\n", b"f;ext=1\r\n", 1)
    encoded = encoded[:-2] + b"X-Trailer: 1\r\n\r\n"
    with Client(f.port) as c:
        c.send(build_request("POST", "/chunked", [("Transfer-Encoding", "chunked")]) + encoded)
        r = c.read_response()
        assert r.status == 200
        seen = r.json()
        assert (seen["body_len"], seen["body_sha256"]) == (len(body), sha256(body))
        # The connection is still in sync: the next request is answered as itself.
        r = c.request("GET", "/next")
        assert r.status == 200 and r.json()["target"] == "/next"


def test_request_sent_in_tiny_pieces(env):
    a = env.backend("a")
    f = env.proxy([a])
    body = b"0123456789" * 10
    raw = build_request("POST", "/frag", [("X-Long", "v" * 300)], body)
    with Client(f.port) as c:
        for i in range(0, len(raw), 7):
            c.send(raw[i:i + 7])
            time.sleep(0.002)
        r = c.read_response()
    assert r.status == 200
    assert r.json()["body_sha256"] == sha256(body)


def test_expect_100_continue(env):
    """The client waits for an interim 100 before sending its body (curl does, for a
    second); whoever sends it, fulcrum or the server, it must reach the client."""
    a = env.backend("a")
    f = env.proxy([a])
    body = os.urandom(50_000)
    with Client(f.port, timeout=5) as c:
        c.send(build_request("POST", "/expect", [("Expect", "100-continue"),
                                                ("Content-Length", str(len(body)))]))
        c._read_until(b"\r\n\r\n", "an interim response")
        assert c.buf == b"" or c.buf.startswith(b"HTTP/1.1 ")
        c.send(body)
        r = c.read_response()
        assert r.status == 200
        assert r.json()["body_sha256"] == sha256(body)
        assert c.request("GET", "/after").json()["target"] == "/after"


def test_response_delimited_by_close_is_relayed_whole(env):
    a = env.backend("a")
    f = env.proxy([a])
    size = 200_003
    with Client(f.port) as c:
        c.send(build_request("GET", "/?size=%d&eof=1" % size))
        r = c.read_response()
        assert r.status == 200
        assert r.body_len == size
        assert sha256(r.body) == expected_sha(size)
        if r.header("Content-Length") is None and not r.chunked:
            assert c.eof  # close-delimited to the client too: it must have closed


def test_large_but_legal_header_section_is_forwarded(env):
    a = env.backend("a")
    f = env.proxy([a])
    headers = [("X-Pad-%02d" % i, "v" * 200) for i in range(50)]  # ~11 KiB, under 16 KiB
    with Client(f.port) as c:
        r = c.request("GET", "/big-head", headers=headers)
    assert r.status == 200
    seen = {k.lower(): v for k, v in r.json()["headers"]}  # names are case-insensitive
    assert all(seen.get(k.lower()) == v for k, v in headers)


def test_concurrent_clients_each_get_their_own_answers(env):
    servers = [env.backend(n) for n in ("a", "b")]
    f = env.proxy(servers)
    errors = []

    def client(i):
        try:
            with Client(f.port) as c:
                for j in range(10):
                    body = b"%d-%d" % (i, j)
                    r = c.request("POST", "/c/%d/%d" % (i, j), body=body)
                    seen = r.json()
                    if r.status != 200 or seen["target"] != "/c/%d/%d" % (i, j) or \
                            seen["body_sha256"] != sha256(body):
                        errors.append((i, j, r.status, seen["target"]))
        except Exception as e:  # reported below, with the others
            errors.append((i, repr(e)))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(20)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    assert not any(th.is_alive() for th in threads), "a client hung"
    assert errors == []


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_response_body_relayed(env, chunked):
    a = env.backend("a")
    f = env.proxy([a])
    size = 300_007
    target = "/?size=%d&chunked=%d&chunk=4099" % (size, int(chunked))
    with Client(f.port) as c:
        r = c.request("GET", target)
        assert r.status == 200
        assert r.body_len == size
        assert sha256(r.body) == expected_sha(size)
        r = c.request("GET", "/?size=10&chunked=1&chunk=1")
        assert r.body == b"".join(pattern_chunks(10))


def test_large_content_length_upload_is_streamed(env):
    a = env.backend("a")
    f = env.proxy([a], env=streaming_env())
    size = 128 * MIB
    with Client(f.port, timeout=60) as c:
        # Warm up so the baseline includes fulcrum's steady-state buffers.
        assert c.request("POST", "/warm", body=b"x" * 100_000).status == 200
        rss = RssSampler(f.pid)
        c.send(build_request("POST", "/big", [("Content-Length", str(size))]))
        for piece in pattern_chunks(size):
            c.send(piece)
        r = c.read_response()
        growth = rss.stop()
    assert r.status == 200
    seen = r.json()
    assert seen["body_len"] == size
    assert seen["body_sha256"] == expected_sha(size)
    assert growth < RSS_LIMIT_KIB, "fulcrum's RSS grew by %d KiB during a %d MiB upload" % (
        growth, size // MIB)


def test_large_chunked_upload_is_streamed(env):
    a = env.backend("a")
    f = env.proxy([a], env=streaming_env())
    size = 64 * MIB
    with Client(f.port, timeout=60) as c:
        assert c.request("POST", "/warm", body=b"x" * 100_000).status == 200
        rss = RssSampler(f.pid)
        c.send(build_request("POST", "/bigchunked", [("Transfer-Encoding", "chunked")]))
        for piece in pattern_chunks(size, 100_003):
            c.send(b"%x\r\n" % len(piece) + piece + b"\r\n")
        c.send(b"0\r\n\r\n")
        r = c.read_response()
        growth = rss.stop()
    assert r.status == 200
    seen = r.json()
    assert seen["body_len"] == size
    assert seen["body_sha256"] == expected_sha(size)
    assert growth < RSS_LIMIT_KIB, "RSS grew by %d KiB" % growth


def test_large_download_applies_backpressure(env):
    """The client stops reading for a second while the backend pushes 128 MiB: a streaming
    proxy stops reading from the server instead of buffering the body."""
    a = env.backend("a")
    f = env.proxy([a], env=streaming_env())
    size = 128 * MIB
    with Client(f.port, timeout=60) as c:
        assert c.request("GET", "/?size=100000").status == 200
        rss = RssSampler(f.pid)
        c.send(build_request("GET", "/?size=%d" % size))
        head = c.read_head()
        assert head.status == 200
        assert head.header("Content-Length") == str(size)
        time.sleep(1.0)  # not reading: the sockets fill up and fulcrum must stop reading
        h = hashlib.sha256()
        got = 0
        remaining = size - len(c.buf)
        h.update(bytes(c.buf))
        got += len(c.buf)
        c.buf.clear()
        while remaining > 0:
            data = c.sock.recv(min(remaining, 1 << 20))
            assert data, "connection closed after %d of %d bytes" % (got, size)
            h.update(data)
            got += len(data)
            remaining -= len(data)
        growth = rss.stop()
    assert got == size
    assert h.hexdigest() == expected_sha(size)
    assert growth < RSS_LIMIT_KIB, "RSS grew by %d KiB" % growth


# ---------------------------------------------------------------- pipelining


def test_pipelined_requests_answered_in_order(env):
    a = env.backend("a")
    f = env.proxy([a])
    with Client(f.port) as c:
        c.send(build_request("GET", "/p1") + build_request("POST", "/p2", body=b"hello") +
               build_request("GET", "/p3"))
        rs = [c.read_response() for _ in range(3)]
    assert [r.status for r in rs] == [200, 200, 200]
    assert [r.json()["target"] for r in rs] == ["/p1", "/p2", "/p3"]
    assert rs[1].json()["body_sha256"] == sha256(b"hello")


def test_pipelined_requests_stay_in_order_when_the_first_is_slow(env):
    servers = [env.backend(n) for n in ("a", "b", "c")]
    f = env.proxy(servers)
    with Client(f.port) as c:
        c.send(build_request("GET", "/p1?delay=0.5") + build_request("GET", "/p2") +
               build_request("GET", "/p3", headers=[("Connection", "close")]))
        rs = [c.read_response() for _ in range(3)]
        assert c.wait_closed(5)
    assert [r.json()["target"] for r in rs] == ["/p1?delay=0.5", "/p2", "/p3"]


# ---------------------------------------------------------------- headers


def header_values(seen, name):
    return [v for k, v in seen["headers"] if k.lower() == name.lower()]


def test_hop_by_hop_headers_removed_and_forwarding_headers_added(env):
    a = env.backend("a")
    f = env.proxy([a])
    headers = [("Connection", "keep-alive, X-Hop-A"),
               ("X-Hop-A", "secret"),
               ("Keep-Alive", "timeout=5"),
               ("TE", "trailers"),
               ("Proxy-Connection", "keep-alive"),
               ("X-Forwarded-For", "10.1.2.3"),
               ("X-Forwarded-Proto", "https"),
               ("X-End-To-End", "kept")]
    with Client(f.port) as c:
        r = c.request("GET", "/hop", headers=headers)
        assert r.status == 200
        seen = r.json()
        names = {k.lower() for k, _ in seen["headers"]}
        for hop in ("x-hop-a", "keep-alive", "te", "proxy-connection"):
            assert hop not in names, "backend received hop-by-hop header %r" % hop
        for value in header_values(seen, "Connection"):
            assert "x-hop-a" not in value.lower()
        assert header_values(seen, "X-End-To-End") == ["kept"]
        xff = ", ".join(header_values(seen, "X-Forwarded-For"))
        assert xff == "10.1.2.3, 127.0.0.1"
        assert header_values(seen, "X-Forwarded-Proto") == ["http"]
        # Still a keep-alive connection for the client.
        assert c.request("GET", "/again").status == 200


def test_forwarded_for_set_when_absent(env):
    a = env.backend("a")
    f = env.proxy([a])
    seen = http_get(f.port, "/xff").json()
    assert header_values(seen, "X-Forwarded-For") == ["127.0.0.1"]
    assert header_values(seen, "X-Forwarded-Proto") == ["http"]


# ---------------------------------------------------------------- bodiless responses


def test_head_response_has_no_body_and_connection_stays_usable(env):
    a = env.backend("a")
    f = env.proxy([a])
    with Client(f.port) as c:
        r = c.request("HEAD", "/thing")
        assert r.status == 200
        assert r.body == b""
        # The backend announced the GET body's length; a proxy that waits for those bytes
        # or forwards them would desynchronise the next response.
        r = c.request("GET", "/next")
        assert r.status == 200
        assert r.json()["method"] == "GET" and r.json()["target"] == "/next"
        r = c.request("HEAD", "/?size=5000&chunked=1")
        assert r.status == 200 and r.body == b""
        assert c.request("GET", "/last").json()["target"] == "/last"


@pytest.mark.parametrize("status", [204, 304])
def test_bodiless_status_relayed_and_connection_stays_usable(env, status):
    a = env.backend("a")
    f = env.proxy([a])
    with Client(f.port) as c:
        r = c.request("GET", "/?status=%d" % status)
        assert r.status == status
        assert r.body == b""
        assert r.header("Transfer-Encoding") is None
        r = c.request("GET", "/next")
        assert r.status == 200 and r.json()["target"] == "/next"


def test_backend_error_status_relayed(env):
    a = env.backend("a")
    f = env.proxy([a])
    r = http_get(f.port, "/?status=404")
    assert r.status == 404
    assert r.json()["target"] == "/?status=404"


# ---------------------------------------------------------------- upgrade


WS_KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455's example key and its accept value
WS_HEADERS = [("Connection", "Upgrade"), ("Upgrade", "websocket"),
              ("Sec-WebSocket-Key", WS_KEY), ("Sec-WebSocket-Version", "13")]


def test_upgrade_tunnel_carries_bytes_both_ways(env):
    a = env.backend("a", "--mode", "upgrade")
    f = env.proxy([a])
    with Client(f.port) as c:
        c.send(build_request("GET", "/ws", WS_HEADERS))
        head = c.read_head()
        assert head.status == 101
        assert (head.header("Upgrade") or "").lower() == "websocket"
        assert "upgrade" in (head.header("Connection") or "").lower()
        assert head.header("Sec-WebSocket-Accept") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        greeting = c._read_until(b"\n", "the greeting")
        assert greeting == b"hello from a\n"
        for msg in (b"ping", os.urandom(200_000), b"last"):
            c.send(msg)
            got = bytearray()
            while len(got) < len(msg):
                if not c.buf and not c._fill():
                    break
                got += c.buf
                c.buf.clear()
            assert bytes(got) == msg
        # Half-close: our FIN reaches the backend, which closes; we then see EOF.
        c.sock.shutdown(socket.SHUT_WR)
        assert c.wait_closed(5)


def test_upgrade_request_to_a_plain_backend_gets_a_normal_response(env):
    a = env.backend("a")
    f = env.proxy([a])
    with Client(f.port) as c:
        r = c.request("GET", "/no-ws", headers=WS_HEADERS)
        assert r.status == 200
        assert r.json()["target"] == "/no-ws"
