"""test_failures.py -- servers that are dead, slow, full or broken: retries, 502/503/504, the
queue, timeouts, and draining on SIGTERM."""
import signal

import pytest

from conftest import Client, ConnClosed, build_request, free_port, http_get, wait_until


def dead_address():
    return "127.0.0.1:%d" % free_port()  # nothing listens there: connect is refused


def logged(backend, path, timeout=5.0):
    """Wait (bounded) until the backend has received a request for path."""
    return wait_until(lambda: any(r.get("path") == path for r in backend.requests()), timeout,
                      interval=0.05)


# ---------------------------------------------------------------- dead servers


def test_dead_server_is_retried_around(env):
    a, c = env.backend("a"), env.backend("c")
    f = env.proxy([a, ("b", dead_address()), c], backend={"retries": 2})
    names = []
    for i in range(12):
        r = http_get(f.port, "/r/%d" % i)
        assert r.status == 200, "request %d: %r" % (i, r)
        names.append(r.backend)
    assert set(names) == {"a", "c"}


def test_all_servers_dead_gives_503_with_a_body(env):
    f = env.proxy([("x", dead_address()), ("y", dead_address())])
    for i in range(3):
        r = http_get(f.port, "/dead/%d" % i)
        assert r.status == 503
        assert r.body_len > 0, "a 503 should explain itself"


def test_backend_without_servers_gives_503(env):
    f = env.proxy([])
    r = http_get(f.port, "/none")
    assert r.status == 503
    assert r.body_len > 0


def test_503_keeps_the_client_connection_usable(env):
    f = env.proxy([("x", dead_address())])
    with Client(f.port) as c:
        r = c.request("GET", "/one")
        assert r.status == 503
        if "close" not in (r.header("Connection") or "").lower():
            r = c.request("GET", "/two")
            assert r.status == 503


# ---------------------------------------------------------------- slow and full servers


def test_slow_server_gives_504(env):
    a = env.backend("a", "--delay", "3")
    f = env.proxy([a], backend={"timeouts": {"connect": "2s", "server": "1s"}})
    r = http_get(f.port, "/slow")
    assert r.status == 504
    assert r.body_len > 0


def test_server_timeout_is_inactivity_not_total_time(env):
    a = env.backend("a")
    f = env.proxy([a], backend={"timeouts": {"connect": "2s", "server": "1s"}})
    # 6 pieces 0.3 s apart: 1.8 s in all, never 1 s without a byte.
    r = http_get(f.port, "/?mode=slow-body&pieces=6&piece=100&gap=0.3")
    assert r.status == 200
    assert r.body_len == 600


def test_full_server_queues_then_503(env):
    a = env.backend("a")
    f = env.proxy([{"name": "a", "address": a.address, "max_connections": 1}],
                  backend={"queue_timeout": "1s",
                           "timeouts": {"connect": "2s", "server": "3s"}})
    holder = Client(f.port)
    try:
        holder.send(build_request("GET", "/hold?mode=hang"))
        assert logged(a, "/hold"), "the first request never reached the server"
        r = http_get(f.port, "/queued")
        assert r.status == 503, "a request queued behind a full server: %r" % r
        assert r.body_len > 0
        assert not any(x["path"] == "/queued" for x in a.requests())
        # The holder ends with the server timeout; then the server is free again.
        assert holder.read_response().status == 504
    finally:
        holder.close()
    r = http_get(f.port, "/after")
    assert r.status == 200


def test_full_server_queues_then_serves(env):
    a = env.backend("a")
    f = env.proxy([{"name": "a", "address": a.address, "max_connections": 1}],
                  backend={"queue_timeout": "5s"})
    with Client(f.port) as holder:
        holder.send(build_request("GET", "/hold?delay=0.5"))
        assert logged(a, "/hold")
        r = http_get(f.port, "/queued")
        assert r.status == 200
        assert r.json()["target"] == "/queued"
        assert holder.read_response().status == 200


# ---------------------------------------------------------------- broken servers


def test_post_is_not_retried_once_it_may_have_reached_a_server(env):
    a = env.backend("a", "--mode", "close-after-request")
    b = env.backend("b", "--mode", "close-after-request")
    f = env.proxy([a, b], backend={"retries": 3})
    with Client(f.port) as c:
        r = c.request("POST", "/submit", body=b"pay once")
    assert r.status == 502
    posts = [x for x in a.requests() + b.requests() if x["method"] == "POST"]
    assert len(posts) == 1, "the POST was sent %d times: %r" % (len(posts), posts)


def test_a_connections_first_post_gets_a_new_server_connection(env):
    """http-reuse safe: if a reused server connection failed under a client connection's
    first request, the client could not retry it; so that request never reuses one."""
    a = env.backend("a")
    f = env.proxy([a])
    with Client(f.port) as c:
        assert c.request("GET", "/warm").status == 200  # leaves an idle server connection
        assert c.request("POST", "/second", body=b"x").status == 200  # may reuse it
    with Client(f.port) as c:
        assert c.request("POST", "/first", body=b"x").status == 200
    conn = {r["target"]: r["conn"] for r in a.requests()}
    assert conn["/second"] == conn["/warm"], conn
    assert conn["/first"] != conn["/warm"], "a first POST reused a server connection: %r" % conn


def test_post_on_a_reused_connection_the_server_drops_is_left_to_the_client(env):
    """The keep-alive race: the server closes a reused connection under a later POST
    without answering. fulcrum must not resend it, and a 502 would end it for good: the
    client connection closes without an answer, as a kept-alive connection does, which
    clients retry. A GET in the same place is resent by fulcrum itself."""
    a = env.backend("a")
    f = env.proxy([a], backend={"retries": 0})
    with Client(f.port) as c:
        assert c.request("GET", "/warm").status == 200
        c.send(build_request("POST", "/drop?mode=close-after-request", [("Content-Length", "1")])
               + b"x")
        with pytest.raises(ConnClosed):
            c.read_response()
    posts = [r for r in a.requests() if r["method"] == "POST"]
    assert len(posts) == 1, posts  # sent once, never resent by fulcrum
    with Client(f.port) as c:
        assert c.request("GET", "/warm2").status == 200
        r = c.request("GET", "/drop2?mode=close-after-request")
        assert r.status == 502  # one server, no retries left: the resend met the same fate


@pytest.mark.parametrize("kind", ["cl-te", "garbage", "bad-status", "space-colon", "bad-cl"])
def test_malformed_response_head_gives_502(env, kind):
    a = env.backend("a")
    f = env.proxy([a])
    r = http_get(f.port, "/?mode=malformed&kind=%s" % kind)
    assert r.status == 502


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_server_closing_mid_response_closes_the_client(env, chunked):
    """The response head may already be relayed; then the only honest signal is to close
    the client connection before the body's end. Never a complete (spliced) response."""
    a = env.backend("a")
    f = env.proxy([a])
    with Client(f.port) as c:
        c.send(build_request("GET", "/?mode=close-mid&size=1000&chunked=%d" % int(chunked)))
        try:
            r = c.read_response()
        except ConnClosed as e:
            if e.partial is not None:
                assert e.partial.status == 200
                assert e.partial.body_len <= 1000
            return
        # Nothing relayed yet: a 502 is the other acceptable answer.
        assert r.status == 502, "a truncated response was completed: %r" % r


# ---------------------------------------------------------------- client-side timeouts


def test_header_timeout_closes_a_slow_client(env):
    a = env.backend("a")
    f = env.proxy([a], frontend={"timeouts": {"client": "10s", "header": "1s"}})
    with Client(f.port) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: slow.test\r\n")  # never finished
        c.settimeout(6)
        try:
            r = c.read_response()
            assert r.status == 408
        except ConnClosed:
            pass  # closing without a response is fine too
        assert c.wait_closed(5)
    assert a.requests() == []


def test_idle_keepalive_connection_closed_after_client_timeout(env):
    a = env.backend("a")
    f = env.proxy([a], frontend={"timeouts": {"client": "1s", "header": "1s"}})
    with Client(f.port) as c:
        assert c.request("GET", "/").status == 200
        assert c.wait_closed(6), "an idle connection outlived the client timeout"


# ---------------------------------------------------------------- draining


def test_sigterm_lets_the_in_flight_request_finish_then_exits_0(env):
    a = env.backend("a")
    f = env.proxy([a])
    with Client(f.port) as c:
        c.send(build_request("GET", "/inflight?delay=1.5"))
        assert logged(a, "/inflight")
        f.proc.send_signal(signal.SIGTERM)
        r = c.read_response()
        assert r.status == 200
        assert r.json()["target"] == "/inflight?delay=1.5"
    assert f.stop(sig=None) == 0, "fulcrum did not exit 0 after draining"


def test_sigterm_with_an_idle_keepalive_client_exits_0(env):
    a = env.backend("a")
    f = env.proxy([a], frontend={"timeouts": {"client": "60s", "header": "5s"}})
    with Client(f.port) as c:
        assert c.request("GET", "/").status == 200
        f.proc.send_signal(signal.SIGTERM)
        # Draining closes idle connections instead of waiting out the 60 s client timeout.
        assert c.wait_closed(8)
        assert f.stop(sig=None, timeout=8) == 0


def test_sigint_exits_0(env):
    a = env.backend("a")
    f = env.proxy([a])
    assert http_get(f.port, "/").status == 200
    assert f.stop(sig=signal.SIGINT) == 0
