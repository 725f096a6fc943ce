"""test_malformed.py -- malformed and ambiguous requests: each gets its status, the
connection is closed afterwards, and the backend receives nothing (RFC 9112 strictness;
request smuggling needs a proxy that forwards what it should have refused)."""
import pytest

from conftest import Client, ConnClosed, build_request


def assert_backend_got_nothing(a):
    log = a.log()
    assert log["requests"] == [], "the backend received: %r" % log["requests"]
    sent = [c for c in log["connections"] if c["bytes"]]
    assert sent == [], "bytes reached the backend: %r" % sent


def H(*lines, body=b""):
    """A request from raw lines (str or bytes), CRLF-joined, plus the empty line."""
    raw = [x if isinstance(x, bytes) else x.encode("latin-1") for x in lines]
    return b"\r\n".join(raw) + b"\r\n\r\n" + body


POST = "POST / HTTP/1.1"
GET = "GET / HTTP/1.1"
HOST = "Host: example.test"

CASES = [
    # framing: the smuggling classics
    ("cl-and-te", H(POST, HOST, "Content-Length: 5", "Transfer-Encoding: chunked",
                    body=b"0\r\n\r\n"), {400}),
    ("te-and-cl", H(POST, HOST, "Transfer-Encoding: chunked", "Content-Length: 5",
                    body=b"0\r\n\r\n"), {400}),
    ("cl-and-te-smuggled-get", H(POST, HOST, "Content-Length: 35",
                                 "Transfer-Encoding: chunked",
                                 body=b"0\r\n\r\nGET /admin HTTP/1.1\r\nX: X"), {400}),
    ("differing-cl", H(POST, HOST, "Content-Length: 5", "Content-Length: 6",
                       body=b"hello!"), {400}),
    ("differing-cl-list", H(POST, HOST, "Content-Length: 5, 6", body=b"hello!"), {400}),
    ("cl-non-digit", H(POST, HOST, "Content-Length: 5a", body=b"hello"), {400}),
    ("cl-plus-sign", H(POST, HOST, "Content-Length: +5", body=b"hello"), {400}),
    ("cl-negative", H(POST, HOST, "Content-Length: -1", body=b"hello"), {400}),
    ("cl-hex", H(POST, HOST, "Content-Length: 0x5", body=b"hello"), {400}),
    ("cl-empty", H(POST, HOST, "Content-Length: ", body=b"hello"), {400}),
    ("cl-inner-space", H(POST, HOST, "Content-Length: 1 0", body=b"helloworld"), {400}),
    ("cl-overflow", H(POST, HOST, "Content-Length: 99999999999999999999999"), {400}),
    ("te-chunked-not-last", H(POST, HOST, "Transfer-Encoding: chunked, gzip",
                              body=b"0\r\n\r\n"), {400, 501}),
    ("te-gzip-only", H(POST, HOST, "Transfer-Encoding: gzip", body=b"0\r\n\r\n"), {400, 501}),
    ("te-unknown", H(POST, HOST, "Transfer-Encoding: identity", body=b"0\r\n\r\n"),
     {400, 501}),
    ("te-chunked-twice", H(POST, HOST, "Transfer-Encoding: chunked",
                           "Transfer-Encoding: chunked", body=b"0\r\n\r\n"), {400, 501}),
    ("te-with-garbage", H(POST, HOST, "Transfer-Encoding: xchunked", body=b"0\r\n\r\n"),
     {400, 501}),
    ("te-in-http10", H("POST / HTTP/1.0", HOST, "Transfer-Encoding: chunked",
                       body=b"0\r\n\r\n"), {400}),
    # header syntax
    ("space-before-colon", H(GET, HOST, "X-Foo : bar"), {400}),
    ("tab-before-colon", H(GET, HOST, "X-Foo\t: bar"), {400}),
    ("space-before-colon-in-te", H(POST, HOST, "Transfer-Encoding : chunked",
                                   body=b"0\r\n\r\n"), {400}),
    ("obs-fold-space", H(GET, HOST, "X-Foo: bar", " baz"), {400}),
    ("obs-fold-tab", H(GET, HOST, "X-Foo: bar", "\tbaz"), {400}),
    ("bare-cr-in-value", H(GET, HOST, b"X-Foo: a\rb"), {400}),
    ("nul-in-value", H(GET, HOST, b"X-Foo: a\x00b"), {400}),
    ("ctl-in-value", H(GET, HOST, b"X-Foo: a\x01b"), {400}),
    ("bare-lf-line-ends", b"GET / HTTP/1.1\nHost: example.test\n\n", {400}),
    ("bare-lf-one-line", b"GET / HTTP/1.1\r\nHost: example.test\nX-Foo: bar\r\n\r\n", {400}),
    ("header-name-not-token", H(GET, HOST, "X(Foo): bar"), {400}),
    ("empty-header-name", H(GET, HOST, ": bar"), {400}),
    ("header-without-colon", H(GET, HOST, "X-Foo bar"), {400}),
    # Host
    ("missing-host", H(GET, "X-Foo: bar"), {400}),
    ("repeated-host", H(GET, HOST, "Host: other.test"), {400}),
    ("repeated-host-same-value", H(GET, HOST, HOST), {400}),
    ("host-with-space", H(GET, "Host: exa mple.test"), {400}),
    ("host-with-userinfo", H(GET, "Host: user@example.test"), {400}),
    # request line
    ("invalid-method-char", H("G(T / HTTP/1.1", HOST), {400}),
    ("empty-method", H(" / HTTP/1.1", HOST), {400}),
    ("double-space", H("GET  / HTTP/1.1", HOST), {400}),
    ("space-in-target", H("GET /a b HTTP/1.1", HOST), {400}),
    ("fragment-in-target", H("GET /a#frag HTTP/1.1", HOST), {400}),
    ("missing-version", H("GET /", HOST), {400}),
    ("invalid-version", H("GET / HTTP/1.x", HOST), {400, 505}),
    ("lowercase-version", H("GET / http/1.1", HOST), {400, 505}),
    ("version-2", H("GET / HTTP/2.0", HOST), {400, 505}),
    ("asterisk-with-get", H("GET * HTTP/1.1", HOST), {400}),
    ("userinfo-in-absolute-target", H("GET http://u@example.test/ HTTP/1.1", HOST), {400}),
    # sizes
    ("over-long-header-section", H(GET, HOST, *["X-Pad-%02d: %s" % (i, "p" * 300)
                                                 for i in range(70)]), {431}),
    ("one-huge-header", H(GET, HOST, "X-Big: " + "b" * 20000), {431}),
    ("too-many-headers", H(GET, HOST, *["X-N%d: 1" % i for i in range(300)]), {431}),
    ("over-long-target", H("GET /" + "t" * 9000 + " HTTP/1.1", HOST), {414}),
]


@pytest.mark.parametrize("raw,statuses", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_malformed_request_is_refused_and_never_forwarded(proxy, raw, statuses):
    f, a = proxy
    with Client(f.port, timeout=5) as c:
        c.send(raw)
        try:
            r = c.read_response()
        except ConnClosed as e:
            pytest.fail("no complete response, want %s: %s" % (sorted(statuses), e))
        assert r.status in statuses, "got %d, want %s" % (r.status, sorted(statuses))
        assert c.wait_closed(5), "connection left open after a %d" % r.status
    assert_backend_got_nothing(a)


BAD_CHUNKS = [
    ("non-hex-size", b"5\r\nhello\r\nzz\r\nworld\r\n0\r\n\r\n"),
    ("negative-size", b"5\r\nhello\r\n-5\r\nworld\r\n0\r\n\r\n"),
    ("hex-prefix-size", b"5\r\nhello\r\n0x5\r\nworld\r\n0\r\n\r\n"),
    ("overflowing-size", b"5\r\nhello\r\n1ffffffffffffffff\r\nworld\r\n0\r\n\r\n"),
    ("space-inside-size", b"5\r\nhello\r\n5 5\r\nworld\r\n0\r\n\r\n"),
    ("data-longer-than-size", b"5\r\nhelloworld\r\n0\r\n\r\n"),
    ("bare-lf-after-size", b"5\r\nhello\r\n5\nworld\r\n0\r\n\r\n"),
    ("empty-size", b"5\r\nhello\r\n\r\nworld\r\n0\r\n\r\n"),
]


@pytest.mark.parametrize("body", [c[1] for c in BAD_CHUNKS], ids=[c[0] for c in BAD_CHUNKS])
def test_bad_chunk_is_never_forwarded(proxy, body):
    """The head and the valid first chunk may already be on their way to the server (the
    body is streamed), but nothing after the bad chunk line may be, the server must never
    see a complete request, and the client gets a 400 or a closed connection."""
    f, a = proxy
    raw = build_request("POST", "/chunks", [("Transfer-Encoding", "chunked")]) + body
    with Client(f.port, timeout=5) as c:
        c.send(raw)
        try:
            r = c.read_response()
        except ConnClosed:
            r = None  # closed without a response: allowed
        if r is not None:
            assert r.status == 400, "got %d" % r.status
            assert c.wait_closed(5), "connection left open after a bad chunk"
    log = a.log()
    for req in log["requests"]:
        assert not req["complete"], "the server received a complete request: %r" % req
        assert req["body_len"] <= 5, "body beyond the bad chunk reached the server: %r" % req
    for conn in log["connections"]:
        assert "world" not in conn["first_bytes"], \
            "bytes after the bad chunk reached the server: %r" % conn["first_bytes"]


def test_valid_request_then_malformed_in_one_pipeline(proxy):
    """The valid request is answered; the malformed one after it gets a 400 and the
    connection closes; the server sees only the first."""
    f, a = proxy
    with Client(f.port, timeout=5) as c:
        c.send(build_request("GET", "/first") +
               H(POST, HOST, "Content-Length: 5", "Content-Length: 6", body=b"hello!"))
        r = c.read_response()
        assert r.status == 200 and r.json()["target"] == "/first"
        r = c.read_response()
        assert r.status == 400
        assert c.wait_closed(5)
    reqs = a.requests()
    assert [x["target"] for x in reqs] == ["/first"]


def test_well_formed_request_still_served(proxy):
    """A sanity check of this module's setup, and that fulcrum survived every case above."""
    f, a = proxy
    with Client(f.port) as c:
        r = c.request("GET", "/fine", headers=[("X-Foo", "bar baz\tqux")])
        assert r.status == 200
        assert r.json()["target"] == "/fine"
    assert [x["target"] for x in a.requests()] == ["/fine"]
