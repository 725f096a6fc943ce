"""test_desync_corpus.py -- the http-desync-guardian corpus (159 cases written by others,
each with an expected tier) sent through fulcrum as raw requests.

The corpus is read at test time from <repo>/../shared/corpora/http-desync-guardian/*.yaml
(see SOURCE.md there); it is never copied into the project. Each case is one test id,
"<file>:<index>:<name>". What each tier must get:

  Severe      400, the client connection closed, nothing forwarded.
  Ambiguous   400 and nothing forwarded, or forwarded in a normalised form with exactly
              one framing: the backend sees one complete request with the body we meant,
              at most one Content-Length, not both Content-Length and Transfer-Encoding,
              and no header whose name only looks like a framing header
              (Transfer_Encoding, Content-Length\\t, ...).
  Compliant,  forwarded and answered: 200, the backend saw exactly this one request,
  Acceptable  complete, with the body we sent.

A rejection is a 400; a request whose HTTP version is not 1.0 or 1.1 may also get the 505
RFC 9110 section 15.6.6 names for an unsupported version. Cases fulcrum fails on purpose
are xfail (strict) with the reason; docs/hardening.md explains each. The score per tier is
printed at the end of the module.
"""
import collections
import re

import pytest

from conftest import REPO, Client, ConnClosed

yaml = pytest.importorskip("yaml", reason="python3-yaml is needed to read the corpus")

CORPUS = REPO.parent / "shared" / "corpora" / "http-desync-guardian"
TIERS = ("Compliant", "Acceptable", "Ambiguous", "Severe")
BODY_CAP = 8 * 1024 * 1024  # a Content-Length above this is not meant to be sent
CHUNKED_BODY = b"5\r\nhello\r\n0\r\n\r\n"

# Cases fulcrum refuses on purpose, by case name: the reason is the xfail reason. Each is
# argued in docs/hardening.md ("Corpus cases fulcrum fails on purpose").
WS_BEFORE_COLON = ("RFC 9112 5.1: a server MUST reject whitespace between a field name "
                   "and the colon (400)")
CTL_IN_NAME = ("a field name is a token (RFC 9110 5.1); a control byte in it is a "
               "malformed request (400), as in HAProxy, nginx and Varnish")
CTL_IN_VALUE = ("RFC 9110 5.5: CTLs in a field value are invalid; keeping them is only a "
                "MAY, and a backend that splits lines on VT/FF/FS (Python's splitlines) "
                "would see a new header line: fulcrum rejects them (400)")
HTTP09 = ("HTTP/0.9 has no headers and no status line: outside HTTP/1.1 proxying; "
          "fulcrum answers 505 (version) or 400 (no version)")
TE_PARAMS = ("no registered transfer coding takes parameters and 'chunked;x' or 'gzip ;' "
             "are not valid transfer-coding syntax; forwarding them would hand the backend "
             "a framing it may not read as chunked: 400")
EMPTY_TARGET = ("RFC 9112 3.2: the request-target is never empty (origin-form starts "
                "with '/'); two spaces in a request line are a malformed request")
SPACE_IN_TARGET = ("RFC 9112 3.2: a request-target with raw spaces is an invalid "
                   "request-line; a recipient SHOULD NOT autocorrect it (smuggling past "
                   "filters): 400")
FRAGMENT = ("a fragment ('#...') is never sent on the wire (RFC 9112 3.2.1, RFC 3986 3.5); "
            "a '#' in a request-target is refused, as HAProxy does since CVE-2023-45539")
NON_ASCII_TARGET = ("RFC 3986: a URI is ASCII, other bytes are percent-encoded; fulcrum "
                    "refuses raw bytes >= 0x80 in a request-target (HAProxy by default "
                    "and Tomcat do too): 400")

EXPECTED_FAIL = {
    "No TE/CL headers, some others are non-compliant": WS_BEFORE_COLON,
    "TE and some others are non-compliant": WS_BEFORE_COLON,
    "CL and some others are non-compliant": WS_BEFORE_COLON,
    "A non-essential header with a non-printable character (x01)": CTL_IN_NAME,
    "Some-Header\\x01": CTL_IN_NAME,
    "\\x01Some-Header": CTL_IN_NAME,
    "Some-Header: \\x01value": CTL_IN_VALUE,
    "Some-Header: value\\x01": CTL_IN_VALUE,
    "Non-RFC, but OK HTTP/0.9": HTTP09,
    "Empty version, which means HTTP/0.9": HTTP09,
    "Transfer-Encoding with a param: chunked;custom_param": TE_PARAMS,
    "TE with custom parameters OK": TE_PARAMS,
    "Empty URI": EMPTY_TARGET,
    "[space] in URI": SPACE_IN_TARGET,
    "Compliant URL": FRAGMENT,
    "International in URI": NON_ASCII_TARGET,
}


# ---------------------------------------------------------------- the cases


def _text(v):
    return "" if v is None else str(v)


def load_cases():
    """[(id, case dict)] from every YAML file, in file order. BaseLoader keeps every
    scalar a string (a Content-Length of 1000 stays "1000", "1_000" is not a number)."""
    out = []
    for path in sorted(CORPUS.glob("*.yaml")):
        with open(path, encoding="utf-8") as f:
            docs = yaml.load(f, Loader=yaml.BaseLoader) or []
        for i, case in enumerate(docs):
            name = _text(case.get("name"))
            out.append(("%s:%02d:%s" % (path.stem, i, name), case))
    return out


def enc(s):
    """The corpus is UTF-8 text (written for a Rust harness that sends .as_bytes())."""
    return _text(s).encode("utf-8")


def case_headers(case):
    return [(_text(h.get("name")), _text(h.get("value"))) for h in case.get("headers") or []]


def intended_body(headers):
    """The body a client meaning this request would send, read leniently: chunked when an
    exact Transfer-Encoding line ends in chunked, else Content-Length bytes. Returns
    (raw bytes to send, decoded length)."""
    te = [v for k, v in headers if k.lower() == "transfer-encoding"]
    cl = [v for k, v in headers if k.lower() == "content-length"]
    codings = [c.split(";")[0].strip(" \t").lower() for v in te for c in v.split(",")]
    codings = [c for c in codings if c]
    if codings and codings[-1] == "chunked":
        return CHUNKED_BODY, 5
    if cl:
        v = cl[0].strip(" \t")
        if v.isdigit() and int(v) <= BODY_CAP:
            return b"x" * int(v), int(v)
    return b"", 0


def raw_request(case):
    """The request bytes. A Host line is added first when the case has none (HTTP/1.1
    requires one; the corpus leaves it out): it does not touch framing."""
    method, uri, version = enc(case.get("method")), enc(case.get("uri")), enc(case.get("version"))
    line = method + b" " + uri + (b" " + version if version else b"")
    headers = case_headers(case)
    lines = [line]
    if not any(k.strip().lower() == "host" for k, _ in headers):
        lines.append(b"Host: desync.test")
    lines += [enc(k) + b": " + enc(v) for k, v in headers]
    body, body_len = intended_body(headers)
    return b"\r\n".join(lines) + b"\r\n\r\n" + body, body_len


def version_is_http1x(case):
    return _text(case.get("version")) in ("HTTP/1.0", "HTTP/1.1")


ALL = load_cases() if CORPUS.is_dir() else []


def params():
    if not ALL:
        return [pytest.param(None, id="corpus-absent",
                             marks=pytest.mark.skip(reason="corpus not found at %s: the "
                                                    "shared corpora are not checked out "
                                                    "beside the repo" % CORPUS))]
    out = []
    for cid, case in ALL:
        name = _text(case.get("name"))
        marks = []
        if name in EXPECTED_FAIL:
            marks.append(pytest.mark.xfail(reason=EXPECTED_FAIL[name], strict=True))
        out.append(pytest.param(case, id=cid, marks=marks))
    return out


# ---------------------------------------------------------------- the stack


SCORE = collections.defaultdict(lambda: [0, 0])  # tier -> [passed, run]
OUTCOMES = collections.defaultdict(collections.Counter)  # tier -> {"rejected 400": n, ...}


class ScoreReport:
    """Prints the score per tier in pytest's terminal summary (also under -q)."""

    def pytest_terminal_summary(self, terminalreporter):
        if not SCORE:
            return
        terminalreporter.section("http-desync-guardian corpus score")
        terminalreporter.write_line("passed/run per tier (an xfail counts as not passed):")
        for tier in TIERS:
            ok, n = SCORE[tier]
            how = ", ".join("%s %d" % kv for kv in sorted(OUTCOMES[tier].items()))
            terminalreporter.write_line("  %-10s %3d/%-3d (%s)" % (tier, ok, n, how))


@pytest.fixture(scope="module", autouse=True)
def score_report(request):
    pm = request.config.pluginmanager
    if not pm.has_plugin("desync-corpus-score"):
        pm.register(ScoreReport(), "desync-corpus-score")


# ---------------------------------------------------------------- checks


FRAMING = {"contentlength": "content-length", "transferencoding": "transfer-encoding"}


def framing_of(headers):
    """(Content-Length lines, Transfer-Encoding lines) of a forwarded head; fails on a
    name that is not exactly a framing header but reads as one once case, '_', '-',
    whitespace and other bytes are ignored (what CGI/WSGI or a lax parser would do)."""
    cl, te = [], []
    for name, value in headers:
        squashed = re.sub(r"[^a-z]", "", name.lower())
        if squashed in FRAMING:
            assert name.lower() == FRAMING[squashed], \
                "a look-alike framing header was forwarded: %r: %r" % (name, value)
            (cl if squashed == "contentlength" else te).append(value)
    return cl, te


def send_and_read(port, raw, method):
    """Sends raw and reads one response: (response or None, closed afterwards)."""
    with Client(port, timeout=5) as c:
        try:
            c.send(raw)
        except OSError:
            pass  # refused early (a reset while we were still sending the body)
        try:
            r = c.read_response("HEAD" if method == "HEAD" else "GET")
        except ConnClosed:
            return None, True
        closed = c.wait_closed(3) if r.status >= 400 else None
        return r, closed


def assert_nothing_forwarded(a):
    log = a.log()
    assert log["requests"] == [], "the backend received: %r" % log["requests"]
    sent = [c for c in log["connections"] if c["bytes"]]
    assert sent == [], "bytes reached the backend: %r" % sent


def assert_forwarded_once(a, r, body_len):
    assert r.status == 200, "want 200 from the backend, got %d %r" % (r.status, r.body[:200])
    reqs = a.requests()
    assert len(reqs) == 1, "the backend saw %d requests: %r" % (len(reqs), reqs)
    got = reqs[0]
    assert got["complete"] and not got["error"], "backend: %r" % got
    assert got["body_len"] == body_len, "body %d bytes at the backend, %d sent" % (
        got["body_len"], body_len)
    cl, te = framing_of(got["headers"])
    assert not (cl and te), "both Content-Length and Transfer-Encoding forwarded: %r" % got
    assert len(cl) <= 1, "Content-Length forwarded %d times" % len(cl)
    return got


def check_rejected(case, r, closed):
    allowed = {400} if version_is_http1x(case) else {400, 505}
    assert r is not None, "closed without a response (want %s)" % sorted(allowed)
    assert r.status in allowed, "got %d, want %s" % (r.status, sorted(allowed))
    assert closed, "connection left open after the %d" % r.status


@pytest.mark.parametrize("case", params())
def test_desync_corpus_case(proxy, case):
    f, a = proxy
    tier = _text(case["expected"]["tier"])
    assert tier in TIERS, "unknown tier %r" % tier
    SCORE[tier][1] += 1
    raw, body_len = raw_request(case)
    r, closed = send_and_read(f.port, raw, _text(case.get("method")))
    OUTCOMES[tier]["no response" if r is None else
                   "forwarded" if r.status == 200 else "rejected %d" % r.status] += 1
    if tier == "Severe":
        check_rejected(case, r, closed)
        assert_nothing_forwarded(a)
    elif tier == "Ambiguous":
        if r is not None and r.status != 200:
            check_rejected(case, r, closed)
            assert_nothing_forwarded(a)
        else:
            assert r is not None, "closed without a response"
            assert_forwarded_once(a, r, body_len)
    else:
        assert r is not None, "closed without a response"
        assert_forwarded_once(a, r, body_len)
    SCORE[tier][0] += 1
