"""conftest.py -- fixtures for fulcrum's integration tests: backends, fulcrum, raw HTTP client.

Every wait below is bounded in count and time; nothing measures speed.
"""
import hashlib
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
BACKEND_PY = HERE / "backend.py"

sys.path.insert(0, str(HERE))
import backend as backend_mod  # noqa: E402  (pattern helpers shared with the backend)

pattern_chunks = backend_mod.pattern_chunks
pattern_sha256 = backend_mod.pattern_sha256

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer",
                     "ERROR: UndefinedBehaviorSanitizer", "WARNING: ThreadSanitizer")
START_TIMEOUT = 10.0  # fulcrum or a backend must be listening within this
STOP_TIMEOUT = 10.0  # and exit within this after SIGTERM
IO_TIMEOUT = 10.0  # default socket timeout for the test client


def fulcrum_bin():
    return os.environ.get("FULCRUM_BIN") or str(REPO / "build" / "asan" / "fulcrum")


def pytest_sessionstart(session):
    """Every test needs the binary: say so once instead of failing 160 times."""
    path = fulcrum_bin()
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.exit("no fulcrum binary at %s (run `make build/asan/fulcrum`, or set "
                    "FULCRUM_BIN)" % path, returncode=2)


# ---------------------------------------------------------------- small helpers


def free_port():
    """A port nothing listens on right now (bound, then released)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_until(pred, timeout, interval=0.02):
    """Poll pred() until true or timeout seconds pass; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


def listening(port):
    """True when some socket LISTENs on port (from /proc/net/tcp, without connecting: a
    probe connection would count as a client, and in tcp mode would reach a backend)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    local, state = parts[1], parts[3]
                    if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                        return True
        except FileNotFoundError:
            continue
    return False


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class RssSampler:
    """Samples a process's VmRSS every 20 ms in a thread; .max_kib after stop()."""

    def __init__(self, pid):
        self.pid = pid
        self.base_kib = rss_kib(pid)
        self.max_kib = self.base_kib
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop.wait(0.02):
            try:
                self.max_kib = max(self.max_kib, rss_kib(self.pid))
            except OSError:
                return

    def stop(self):
        self._stop.set()
        self._t.join(5)
        self.max_kib = max(self.max_kib, rss_kib(self.pid))
        return self.max_kib - self.base_kib


# ---------------------------------------------------------------- raw HTTP client


class ConnClosed(Exception):
    """The peer closed (or reset) the connection before the message was complete."""

    def __init__(self, msg, partial=None):
        super().__init__(msg)
        self.partial = partial


class Response:
    def __init__(self, version, status, reason, headers):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers  # [(name, value)] in order, as received
        self.body = b""
        self.body_len = 0
        self.chunked = False

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def header_all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def json(self):
        return json.loads(self.body)

    @property
    def backend(self):
        return self.header("X-Backend-Name")

    def __repr__(self):
        return "<Response %s %s %r body=%d>" % (self.status, self.reason, self.headers,
                                                self.body_len)


class Client:
    """One TCP connection speaking exact bytes, with a strict response reader."""

    def __init__(self, port, timeout=IO_TIMEOUT, source=None, host="127.0.0.1"):
        src = (source, 0) if source else None
        self.sock = socket.create_connection((host, port), timeout=timeout, source_address=src)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.eof = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data):
        self.sock.sendall(data)

    def settimeout(self, t):
        self.sock.settimeout(t)

    def _fill(self):
        if self.eof:
            return False
        try:
            data = self.sock.recv(262144)
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def _read_until(self, marker, what):
        start = 0
        while True:
            i = self.buf.find(marker, start)
            if i >= 0:
                out = bytes(self.buf[:i + len(marker)])
                del self.buf[:i + len(marker)]
                return out
            start = max(0, len(self.buf) - len(marker) + 1)
            if not self._fill():
                raise ConnClosed("connection closed while reading %s (got %r)"
                                 % (what, bytes(self.buf[:200])))

    def _read_exact(self, n, sink):
        while n > 0:
            if not self.buf and not self._fill():
                raise ConnClosed("connection closed with %d body bytes missing" % n)
            take = min(n, len(self.buf))
            sink(bytes(self.buf[:take]))
            del self.buf[:take]
            n -= take

    def read_head(self):
        """The next response head, 1xx other than 101 skipped (100 Continue)."""
        while True:
            raw = self._read_until(b"\r\n\r\n", "a response head")
            lines = raw[:-4].decode("latin-1").split("\r\n")
            m = re.fullmatch(r"(HTTP/1\.[01]) (\d{3}) ?(.*)", lines[0])
            assert m, "bad status line from fulcrum: %r" % lines[0]
            headers = []
            for line in lines[1:]:
                name, sep, value = line.partition(":")
                assert sep and name and name == name.strip(), \
                    "bad header line from fulcrum: %r" % line
                headers.append((name, value.strip(" \t")))
            resp = Response(m.group(1), int(m.group(2)), m.group(3), headers)
            if 100 <= resp.status < 200 and resp.status != 101:
                continue
            return resp

    def read_response(self, method="GET", sink=None):
        """Reads one whole response. Its body goes to sink(bytes) if given, else into
        resp.body. Raises ConnClosed (with .partial = the response so far) when the
        connection ends before the body does."""
        resp = self.read_head()
        if sink is None:
            parts = []
            keep = parts.append
        else:
            keep = sink

        def collect(data):
            resp.body_len += len(data)
            keep(data)

        try:
            self._read_body(resp, method, collect)
        except ConnClosed as e:
            if sink is None:
                resp.body = b"".join(parts)
            e.partial = resp
            raise
        if sink is None:
            resp.body = b"".join(parts)
        return resp

    def _read_body(self, resp, method, collect):
        te = resp.header("Transfer-Encoding")
        cl = resp.header_all("Content-Length")
        if method == "HEAD" or resp.status in (101, 204, 304) or resp.status < 200:
            return
        if te is not None:
            assert not cl, "fulcrum sent both Transfer-Encoding and Content-Length"
            assert te.lower().replace(" ", "").endswith("chunked"), "TE %r" % te
            resp.chunked = True
            self._read_chunked(collect)
        elif cl:
            assert len(cl) == 1 and cl[0].isdigit(), "bad Content-Length %r" % cl
            self._read_exact(int(cl[0]), collect)
        else:
            while self._fill():
                collect(bytes(self.buf))
                self.buf.clear()
            if self.buf:
                collect(bytes(self.buf))
                self.buf.clear()

    def _read_chunked(self, collect):
        while True:
            line = self._read_until(b"\r\n", "a chunk size line")[:-2]
            size_txt = line.split(b";", 1)[0]
            assert re.fullmatch(rb"[0-9A-Fa-f]+", size_txt), "bad chunk size %r" % line
            size = int(size_txt, 16)
            if size == 0:
                while self._read_until(b"\r\n", "the trailer") != b"\r\n":
                    pass
                return
            self._read_exact(size, collect)
            crlf = self._read_until(b"\r\n", "a chunk's CRLF")
            assert crlf == b"\r\n", "chunk data not followed by CRLF: %r" % crlf[:50]

    def request(self, method, target, headers=(), body=None, host="test.local",
                version="HTTP/1.1"):
        """Sends one request and returns its response (read as `method`)."""
        self.send(build_request(method, target, headers, body, host, version))
        return self.read_response(method)

    def wait_closed(self, timeout=5.0):
        """True when the peer closes (FIN or RST) within timeout and sends nothing more;
        raises AssertionError if it sends bytes instead."""
        self.sock.settimeout(timeout)
        try:
            while not self.eof:
                before = len(self.buf)
                if not self._fill():
                    break
                assert False, "unexpected bytes after the response: %r" % bytes(
                    self.buf[before:before + 200])
        except socket.timeout:
            return False
        finally:
            try:
                self.sock.settimeout(IO_TIMEOUT)
            except OSError:
                pass
        return True

    def is_open(self, wait=0.3):
        """True if the connection is still open after `wait` seconds with nothing sent."""
        self.sock.settimeout(wait)
        try:
            data = self.sock.recv(1, socket.MSG_PEEK)
            return bool(data)
        except socket.timeout:
            return True
        except OSError:
            return False
        finally:
            self.sock.settimeout(IO_TIMEOUT)


def build_request(method, target, headers=(), body=None, host="test.local", version="HTTP/1.1"):
    lines = ["%s %s %s" % (method, target, version)]
    if host is not None:
        lines.append("Host: %s" % host)
    names = {k.lower() for k, _ in headers}
    lines += ["%s: %s" % (k, v) for k, v in headers]
    if body is not None and "content-length" not in names and "transfer-encoding" not in names:
        lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


def http_get(port, target, headers=(), timeout=IO_TIMEOUT):
    """One request on a fresh connection, closed afterwards."""
    with Client(port, timeout=timeout) as c:
        return c.request("GET", target, headers=list(headers) + [("Connection", "close")])


def chunked_encode(pieces):
    out = b""
    for p in pieces:
        if p:
            out += b"%x\r\n" % len(p) + p + b"\r\n"
    return out + b"0\r\n\r\n"


# ---------------------------------------------------------------- processes


class BackendProc:
    """One backend.py process; `name` answers in X-Backend-Name (or the TCP greeting)."""

    def __init__(self, workdir, name, args=()):
        self.name = name
        self.stderr_path = Path(workdir) / ("backend-%s.stderr" % name)
        cmd = [sys.executable, str(BACKEND_PY), "--port", "0", "--name", name, *args]
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err,
                                         stdin=subprocess.DEVNULL)
        self.port = self._read_ready()

    def _read_ready(self):
        ready, _, _ = select.select([self.proc.stdout], [], [], START_TIMEOUT)
        line = self.proc.stdout.readline().decode() if ready else ""
        if not line.startswith("READY "):
            self.stop()
            raise RuntimeError("backend %s did not start: %r %s" % (
                self.name, line, self.stderr_path.read_text(errors="replace")))
        return int(line.split()[1])

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port

    def log(self):
        r = http_get(self.port, "/__log")
        assert r.status == 200
        return r.json()

    def requests(self):
        return self.log()["requests"]

    def reset(self):
        assert http_get(self.port, "/__reset").status == 200

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc.stdout.close()

    def problems(self):
        text = self.stderr_path.read_text(errors="replace")
        return ["backend %s stderr:\n%s" % (self.name, text)] if "Traceback" in text else []


class Fulcrum:
    """`fulcrum run CONFIG` with stdout and stderr in files under workdir."""

    def __init__(self, workdir, config, env=None, tag="fulcrum"):
        self.workdir = Path(workdir)
        self.config_path = self.workdir / ("%s.yaml" % tag)
        text = config if isinstance(config, str) else to_yaml(config)
        self.config_path.write_text(text)
        self.config = config
        self.stderr_path = self.workdir / ("%s.stderr" % tag)
        self.stdout_path = self.workdir / ("%s.stdout" % tag)
        penv = dict(os.environ)
        penv.update(env or {})
        with open(self.stderr_path, "wb") as err, open(self.stdout_path, "wb") as out:
            self.proc = subprocess.Popen([fulcrum_bin(), "run", str(self.config_path)],
                                         stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                         env=penv)
        self.returncode = None
        ports = [int(fe["listen"].rsplit(":", 1)[1]) for fe in config["frontends"]] \
            if isinstance(config, dict) else []
        self.port = ports[0] if ports else None
        ok = wait_until(lambda: self.proc.poll() is not None or all(map(listening, ports)),
                        START_TIMEOUT)
        if self.proc.poll() is not None or not ok:
            self.stop()
            raise RuntimeError("fulcrum did not start (exit %s); config:\n%s\nstderr:\n%s" % (
                self.returncode, text, self.stderr()))

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def stderr(self):
        try:
            return self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT):
        """Send sig (None: the test already did) and wait; returns the exit code, or a
        string saying it hung (then it is killed)."""
        if self.returncode is not None:
            return self.returncode
        if sig is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            self.returncode = "hung: killed after %.0f s" % timeout
        return self.returncode

    def problems(self):
        """Stops fulcrum; returns what is wrong with its exit (code, sanitizer reports)."""
        rc = self.stop()
        out = []
        text = self.stderr()
        if rc != 0:
            out.append("fulcrum exited with %r" % (rc,))
        for marker in SANITIZER_MARKERS:
            if marker in text:
                out.append("fulcrum stderr has a sanitizer report (%r)" % marker)
        if out:
            tail = text[-6000:]
            out.append("fulcrum stderr (last 6000 chars):\n" + tail)
        return out


# ---------------------------------------------------------------- config


_PLAIN = re.compile(r"[A-Za-z0-9_./][A-Za-z0-9_./:@-]*")
_RESERVED = {"true", "false", "yes", "no", "on", "off", "null", "~", "y", "n"}


def _scalar(v):
    if v is True:
        return "true"
    if v is False:
        return "false"
    if v is None:
        return "null"
    if isinstance(v, (int, float)):
        return repr(v)
    s = str(v)
    if _PLAIN.fullmatch(s) and s.lower() not in _RESERVED:
        return s
    return json.dumps(s)  # a JSON string is a valid YAML double-quoted scalar


def _emit(obj, ind, out):
    pad = "  " * ind
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, (dict, list)) and v:
                out.append("%s%s:" % (pad, k))
                _emit(v, ind + 1, out)
            elif isinstance(v, (dict, list)):
                out.append("%s%s: %s" % (pad, k, "{}" if isinstance(v, dict) else "[]"))
            else:
                out.append("%s%s: %s" % (pad, k, _scalar(v)))
    else:
        for item in obj:
            if isinstance(item, (dict, list)) and item:
                sub = []
                _emit(item, ind + 1, sub)
                out.append("%s- %s" % (pad, sub[0].lstrip()))
                out.extend(sub[1:])
            else:
                out.append("%s- %s" % (pad, _scalar(item)))


def to_yaml(obj):
    out = []
    _emit(obj, 0, out)
    return "\n".join(out) + "\n"


def proxy_config(port, servers, strategy="round_robin", mode="http", workers=1, backend=None,
                 frontend=None, top=None):
    """A config with one frontend on 127.0.0.1:port and one backend "app".
    servers: [(name, address)] or [dict]; backend/frontend/top: extra keys merged in."""
    srv = [s if isinstance(s, dict) else {"name": s[0], "address": s[1]} for s in servers]
    be = {"name": "app", "strategy": strategy,
          "timeouts": {"connect": "2s", "server": "10s"}}
    be.update(backend or {})
    be["servers"] = srv
    fe = {"name": "web", "listen": "127.0.0.1:%d" % port, "mode": mode, "backend": "app",
          "timeouts": {"client": "10s", "header": "5s"}}
    fe.update(frontend or {})
    cfg = {"workers": workers}
    cfg.update(top or {})
    cfg["frontends"] = [fe]
    cfg["backends"] = [be]
    return cfg


class Env:
    """Processes of one test (or module): backends and fulcrum instances, stopped and
    checked in close()."""

    def __init__(self, workdir):
        self.workdir = Path(workdir)
        self.backends = []
        self.fulcrums = []

    def backend(self, name, *args):
        b = BackendProc(self.workdir, name, args)
        self.backends.append(b)
        return b

    def tcp_backend(self, name, *args):
        return self.backend(name, "--tcp", *args)

    def fulcrum(self, config, env=None):
        f = Fulcrum(self.workdir, config, env=env, tag="fulcrum%d" % len(self.fulcrums))
        self.fulcrums.append(f)
        return f

    def proxy(self, backends, env=None, **kw):
        """Start fulcrum over these BackendProcs (or (name, address) pairs) on a free port;
        kw goes to proxy_config, env to the fulcrum process."""
        servers = [(b.name, b.address) if isinstance(b, BackendProc) else b for b in backends]
        return self.fulcrum(proxy_config(free_port(), servers, **kw), env=env)

    def close(self):
        problems = []
        for f in self.fulcrums:
            problems += f.problems()
        for b in self.backends:
            b.stop()
            problems += b.problems()
        return problems


@pytest.fixture
def env(tmp_path):
    e = Env(tmp_path)
    yield e
    problems = e.close()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture(scope="module")
def module_env(tmp_path_factory):
    e = Env(tmp_path_factory.mktemp("module"))
    yield e
    problems = e.close()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)



@pytest.fixture(scope="module")
def stack(module_env):
    """fulcrum in front of one backend "a", shared by a module's tests (for the corpora of
    raw requests, where starting a proxy per case would dominate the run)."""
    a = module_env.backend("a")
    f = module_env.fulcrum(proxy_config(free_port(), [(a.name, a.address)]))
    return f, a


@pytest.fixture
def proxy(stack):
    """The shared stack, its backend's log reset, fulcrum checked alive before and after."""
    f, a = stack
    assert f.alive(), "fulcrum died during an earlier test:\n" + f.stderr()[-3000:]
    a.reset()
    yield f, a
    assert f.alive(), "fulcrum died:\n" + f.stderr()[-3000:]

def sha256(data):
    return hashlib.sha256(data).hexdigest()
