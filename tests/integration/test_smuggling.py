"""test_smuggling.py -- our request smuggling corpus: raw requests that each hide a second
request (GET /smuggled) behind a framing trick, plus valid controls.

An attack passes when the client gets an error status or a close (never a 200), the
connection ends, and the backend never sees the hidden request: no /smuggled in its
request log and not even the bytes "/smuggled" on any of its connections. A control
passes when every response is a 200 and the backend saw exactly the expected requests,
in order, with the expected body lengths: a proxy that refuses everything fails the
controls, one that forwards everything fails the attacks.

test_malformed.py checks status codes for malformed heads; this file is about what a
desynchronised backend would see. The score is printed in the terminal summary.
"""
import collections
import time

import pytest

from conftest import Client, ConnClosed

HIDDEN = b"GET /smuggled HTTP/1.1\r\nHost: victim.test\r\n\r\n"  # 45 bytes
HOST = b"Host: smuggle.test"


def req(*lines, body=b"", start=b"POST /upload HTTP/1.1"):
    """A request from raw header lines (bytes), CRLF-joined, after start and Host."""
    return b"\r\n".join((start, HOST) + lines) + b"\r\n\r\n" + body


def chunk(data):
    return b"%x\r\n" % len(data) + data + b"\r\n"


LAST = b"0\r\n\r\n"
N = len(HIDDEN)

# (id, raw bytes). Every raw contains HIDDEN where some reading of the framing makes it
# the start of the next request.
ATTACKS = [
    # ---- Content-Length and Transfer-Encoding together, both orders
    ("cl-te", req(b"Content-Length: %d" % (5 + N), b"Transfer-Encoding: chunked",
                  body=LAST + HIDDEN)),
    ("te-cl", req(b"Transfer-Encoding: chunked", b"Content-Length: 3",
                  body=chunk(b"x" * 3 + HIDDEN) + LAST)),
    ("cl-te-mixed-case", req(b"content-length: 5", b"TrAnSfEr-EnCoDiNg: cHuNkEd",
                             body=LAST + HIDDEN)),
    ("te-cl-zero", req(b"Transfer-Encoding: chunked", b"Content-Length: 0",
                       body=chunk(HIDDEN) + LAST)),
    # ---- Content-Length duplicated or malformed
    ("cl-differing-lines", req(b"Content-Length: 0", b"Content-Length: %d" % N, body=HIDDEN)),
    ("cl-differing-lines-reversed", req(b"Content-Length: %d" % N, b"Content-Length: 0",
                                        body=HIDDEN)),
    ("cl-list", req(b"Content-Length: 0, %d" % N, body=HIDDEN)),
    ("cl-identical-list", req(b"Content-Length: 0, 0", body=HIDDEN)),
    ("cl-plus-sign", req(b"Content-Length: +0", body=HIDDEN)),
    ("cl-negative", req(b"Content-Length: -1", body=HIDDEN)),
    ("cl-hex", req(b"Content-Length: 0x0", body=HIDDEN)),
    ("cl-inner-space", req(b"Content-Length: 0 %d" % N, body=HIDDEN)),
    ("cl-overflow-wraps-to-0", req(b"Content-Length: 18446744073709551616", body=HIDDEN)),
    ("cl-space-before-colon", req(b"Content-Length : %d" % N, body=HIDDEN)),
    ("cl-underscore", req(b"Content_Length: %d" % N, body=HIDDEN)),
    ("cl-ctl-in-value", req(b"Content-Length: 0\x0b%d" % N, body=HIDDEN)),
    # ---- Transfer-Encoding obfuscated (each with the hidden request after a 0 chunk)
    ("te-xchunked", req(b"Transfer-Encoding: xchunked", body=LAST + HIDDEN)),
    ("te-leading-space-line", req(b" Transfer-Encoding: chunked", body=LAST + HIDDEN)),
    ("te-chunked-identity", req(b"Transfer-Encoding: chunked, identity", body=LAST + HIDDEN)),
    ("te-tab-before-colon", req(b"Transfer-Encoding\t: chunked", body=LAST + HIDDEN)),
    ("te-vtab-in-value", req(b"Transfer-Encoding: \x0bchunked", body=LAST + HIDDEN)),
    ("te-quoted", req(b'Transfer-Encoding: "chunked"', body=LAST + HIDDEN)),
    ("te-twice-with-cl", req(b"Transfer-Encoding: chunked", b"Transfer-Encoding: chunked",
                             b"Content-Length: %d" % (5 + N), body=LAST + HIDDEN)),
    ("te-chunked-then-other", req(b"Transfer-Encoding: chunked", b"Transfer-Encoding: cow",
                                  body=LAST + HIDDEN)),
    ("te-parameter", req(b"Transfer-Encoding: chunked;q=1", body=LAST + HIDDEN)),
    ("te-underscore-with-cl", req(b"Transfer_Encoding: chunked", b"Content-Length: 5",
                                  body=LAST + HIDDEN)),
    ("te-nul-prefix-name", req(b"\x00Transfer-Encoding: chunked", body=LAST + HIDDEN)),
    # ---- obs-fold
    ("obs-fold-te-value", req(b"Transfer-Encoding:", b" chunked", body=LAST + HIDDEN)),
    ("obs-fold-hides-te", req(b"X-Pad: a", b"\tTransfer-Encoding: chunked",
                              b"Content-Length: %d" % (5 + N), body=LAST + HIDDEN)),
    ("obs-fold-cl-value", req(b"Content-Length: 0", b" %d" % N, body=HIDDEN)),
    # ---- bare CR and LF
    ("bare-lf-hides-te", req(b"X-Pad: a\nTransfer-Encoding: chunked",
                             b"Content-Length: %d" % (5 + N), body=LAST + HIDDEN)),
    ("bare-cr-hides-te", req(b"X-Pad: a\rTransfer-Encoding: chunked",
                             b"Content-Length: %d" % (5 + N), body=LAST + HIDDEN)),
    ("bare-lf-head", b"POST /upload HTTP/1.1\nHost: smuggle.test\nContent-Length: 0\n\n"
     + HIDDEN),
    ("bare-lf-ends-head", b"POST /upload HTTP/1.1\r\nHost: smuggle.test\r\n"
     b"Content-Length: %d\r\n\n" % N + HIDDEN),
    # ---- invalid chunk sizes and chunk lines (the head is valid: the body is not)
    ("chunk-size-0x-prefix", req(b"Transfer-Encoding: chunked",
                                 body=b"0x2d\r\n" + HIDDEN + b"\r\n" + LAST)),
    ("chunk-size-plus", req(b"Transfer-Encoding: chunked", body=b"+0\r\n\r\n" + HIDDEN)),
    ("chunk-size-minus", req(b"Transfer-Encoding: chunked", body=b"-1\r\n\r\n" + HIDDEN)),
    ("chunk-size-overflow", req(b"Transfer-Encoding: chunked",
                                body=b"10000000000000000\r\n\r\n" + HIDDEN)),
    ("chunk-size-leading-space", req(b"Transfer-Encoding: chunked",
                                     body=b" 0\r\n\r\n" + HIDDEN)),
    ("chunk-size-bare-lf", req(b"Transfer-Encoding: chunked", body=b"0\n\n" + HIDDEN)),
    ("chunk-data-overrun", req(b"Transfer-Encoding: chunked",
                               body=b"1\r\nxx\r\n0\r\n\r\n" + HIDDEN)),
    ("chunk-ext-bare-cr", req(b"Transfer-Encoding: chunked",
                              body=b"0;a\rb\r\n\r\n" + HIDDEN)),
    ("chunk-trailer-obs-fold", req(b"Transfer-Encoding: chunked",
                                   body=b"0\r\nX: a\r\n b\r\n\r\n" + HIDDEN)),
    # ---- HTTP/1.0 with Transfer-Encoding
    ("http10-te", req(b"Transfer-Encoding: chunked", body=LAST + HIDDEN,
                      start=b"POST /upload HTTP/1.0")),
    ("http10-te-cl", req(b"Transfer-Encoding: chunked", b"Content-Length: %d" % (5 + N),
                         body=LAST + HIDDEN, start=b"POST /upload HTTP/1.0")),
    # ---- the request line
    ("request-line-in-target", b"GET /a\tHTTP/1.1\r\nHost: smuggle.test\r\n\r\n" + HIDDEN
     + b" HTTP/1.1\r\nHost: smuggle.test\r\n\r\n"),
]

# (id, raw bytes, [(method, path, body_len)] the backend must see, in order)
CONTROLS = [
    ("plain-content-length", req(b"Content-Length: 5", body=b"hello"),
     [("POST", "/upload", 5)]),
    ("chunked", req(b"Transfer-Encoding: chunked", body=chunk(b"hello") + LAST),
     [("POST", "/upload", 5)]),
    ("pipelined-pair", req(start=b"GET /first HTTP/1.1") + req(start=b"GET /second HTTP/1.1"),
     [("GET", "/first", 0), ("GET", "/second", 0)]),
    ("chunked-with-extension", req(b"Transfer-Encoding: chunked",
                                   body=b"5;name=value\r\nhello\r\n" + LAST),
     [("POST", "/upload", 5)]),
    ("chunked-with-trailers", req(b"Transfer-Encoding: chunked",
                                  body=chunk(b"hello") + b"0\r\nX-Trailer: t\r\n\r\n"),
     [("POST", "/upload", 5)]),
    ("request-text-inside-a-body", req(b"Content-Length: %d" % N, body=HIDDEN),
     [("POST", "/upload", N)]),
    ("chunked-then-pipelined", req(b"Transfer-Encoding: chunked", body=chunk(b"hello") + LAST)
     + req(start=b"GET /next HTTP/1.1"),
     [("POST", "/upload", 5), ("GET", "/next", 0)]),
    ("identical-content-length-lines", req(b"Content-Length: 5", b"Content-Length: 5",
                                           body=b"hello"),
     [("POST", "/upload", 5)]),
    ("gzip-then-chunked", req(b"Transfer-Encoding: gzip, chunked",
                              body=chunk(b"hello") + LAST),
     [("POST", "/upload", 5)]),
]

RESULTS = collections.defaultdict(lambda: [0, 0])  # "attacks"/"controls" -> [passed, run]


class SmugglingReport:
    def pytest_terminal_summary(self, terminalreporter):
        if not RESULTS:
            return
        terminalreporter.section("smuggling corpus score")
        for kind in ("attacks", "controls"):
            ok, n = RESULTS[kind]
            terminalreporter.write_line("  %-8s %3d/%d" % (kind, ok, n))


@pytest.fixture(scope="module", autouse=True)
def score_report(request):
    pm = request.config.pluginmanager
    if not pm.has_plugin("smuggling-score"):
        pm.register(SmugglingReport(), "smuggling-score")


def read_all_responses(c):
    """Every response until the connection closes (bounded by the client timeout)."""
    out = []
    while True:
        try:
            out.append(c.read_response())
        except ConnClosed as e:
            if e.partial is not None:
                out.append(e.partial)
            return out, True
        except OSError:
            return out, False


def test_corpus_sizes():
    """The issue asks for at least 30 attacks and 5 valid controls."""
    assert len(ATTACKS) >= 30 and len(CONTROLS) >= 5
    assert all(HIDDEN in raw for _, raw in ATTACKS)
    assert len({name for name, _ in ATTACKS} | {c[0] for c in CONTROLS}) == \
        len(ATTACKS) + len(CONTROLS)


@pytest.mark.parametrize("raw", [a[1] for a in ATTACKS], ids=[a[0] for a in ATTACKS])
def test_attack_is_refused_and_hidden_request_never_reaches_the_backend(proxy, raw):
    f, a = proxy
    RESULTS["attacks"][1] += 1
    with Client(f.port, timeout=5) as c:
        try:
            c.send(raw)
        except OSError:
            pass  # refused while we were still sending
        responses, closed = read_all_responses(c)
    statuses = [r.status for r in responses]
    assert closed, "the connection stayed open (responses %r)" % statuses
    assert all(s >= 400 for s in statuses), "a request was answered: %r" % responses
    assert len(responses) <= 1, "more than one response: %r" % responses
    time.sleep(0.1)  # the backend logs in its own threads: let a late arrival show
    log = a.log()
    paths = [r.get("path") or r.get("raw", "")[:60] for r in log["requests"]]
    assert not any("smuggled" in p for p in paths), "the backend saw: %r" % paths
    for conn in log["connections"]:
        assert "/smuggled" not in conn["first_bytes"], \
            "the hidden request's bytes reached the backend: %r" % conn["first_bytes"]
    RESULTS["attacks"][0] += 1


@pytest.mark.parametrize("raw,expected", [c[1:] for c in CONTROLS], ids=[c[0] for c in CONTROLS])
def test_valid_control_is_served(proxy, raw, expected):
    f, a = proxy
    RESULTS["controls"][1] += 1
    with Client(f.port, timeout=5) as c:
        c.send(raw)
        responses = [c.read_response() for _ in expected]
        assert c.is_open(), "fulcrum closed a keep-alive connection after valid requests"
    assert [r.status for r in responses] == [200] * len(expected), responses
    got = [(r["method"], r["path"], r["body_len"]) for r in a.requests()]
    assert got == expected
    assert all(r["complete"] for r in a.requests())
    RESULTS["controls"][0] += 1
