#!/usr/bin/python3
"""backend.py -- a test backend for fulcrum's integration tests: HTTP/1.1 or TCP echo.

Run as a separate process per backend (standard library only):

    backend.py --port 0 --name a [--mode MODE] [--delay S] [--status N] [--health PATH]
    backend.py --port 0 --name t1 --tcp

With --port 0 it binds a free port. Either way it prints "READY <port>" on stdout once it
accepts, so the test harness never races the bind.

HTTP: every request is read in full (Content-Length or chunked, streamed and hashed, never
held in memory) and answered per its mode. The defaults come from the command line; a
request overrides them with query parameters on its target, e.g. `/x?delay=3&status=204`:

    mode=echo         (default) answer status with a JSON body describing the request:
                      name, method, target, version, headers, body_len, body_sha256,
                      conn, req, peer. `size=N` answers N pattern bytes instead,
                      `chunked=1` uses chunked coding (`chunk=N` bytes per chunk),
                      `close=1` closes after the response, `eof=1` sends neither
                      Content-Length nor chunked: the close ends the body.
                      Expect: 100-continue gets a 100 Continue before the body is read.
    mode=hang         read the request, never answer; wait until the peer closes.
    mode=close-after-request   read the request, then close without answering.
    mode=close-mid    send a head promising 2*half bytes (half=`size`, default 1000), send
                      half of them and close (`chunked=1`: one chunk, no last chunk).
    mode=malformed    send a malformed response head (`kind=` cl-te, garbage, bad-status,
                      space-colon, bad-cl) and close.
    mode=slow-body    Content-Length body in `pieces` pieces (default 5) of `piece` bytes
                      (default 100), `gap` seconds apart (default 0.3).
    mode=upgrade      a request with Upgrade gets 101 (with Sec-WebSocket-Accept when it
                      sent Sec-WebSocket-Key), a greeting line ("hello from NAME\\n"),
                      then every byte is echoed until EOF.
    delay=S           sleep S seconds (float) before answering.
    status=N          the status code (204, 304 and 1xx get no body).

Every response carries X-Backend-Name, X-Backend-Conn (this process's connection number,
from 1) and X-Backend-Req (the request's number on that connection, from 1), so tests can
tell which server answered and whether upstream connections were reused.

Control paths, always served normally and never logged: `GET /__log` returns
{"requests": [...], "connections": [...]} -- every request received (logged as soon as its
head is read, `complete` once its body is) and every connection with its byte count;
`GET /__reset` clears the requests and zeroes the byte counts. The health path (--health,
default /health) answers 200 "ok" and is not logged either. A connection whose first
request is a control or health request is left out of "connections".

TCP (--tcp): on accept send "NAME\\n" (unless --no-greeting), then echo every byte; on EOF
from the peer, shut down the write side and close.
"""
import argparse
import base64
import hashlib
import json
import os
import random
import signal
import socket
import sys
import threading
import time
import urllib.parse

# The body pattern: a fixed pseudo-random block whose odd length makes offset bugs visible.
PATTERN = random.Random(20240601).randbytes(65521)
_BLOCK = PATTERN * 16  # about 1 MiB; a whole number of periods, so every block starts at 0


def pattern_chunks(n, chunk=None):
    """Yield the first n bytes of the endless pattern, in pieces of at most `chunk` bytes
    (default about 1 MiB). Each piece continues where the previous ended."""
    # A piece starts at offset < len(PATTERN) into _BLOCK, so it must be that much shorter.
    step = min(chunk, len(_BLOCK) - len(PATTERN)) if chunk else len(_BLOCK)
    pos = 0
    while pos < n:
        take = min(step, n - pos)
        off = pos % len(PATTERN)
        yield _BLOCK[off:off + take]
        pos += take


def pattern_sha256(n, chunk=None):
    h = hashlib.sha256()
    for piece in pattern_chunks(n, chunk):
        h.update(piece)
    return h.hexdigest()


class BadRequest(Exception):
    pass


class PeerClosed(Exception):
    pass


class State:
    """What the backend saw, for GET /__log."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests = []
        self.connections = []
        self.next_conn = 0

    def new_conn(self, peer):
        with self.lock:
            self.next_conn += 1
            c = {"id": self.next_conn, "peer": peer, "bytes": 0, "control": False,
                 "first_bytes": ""}
            self.connections.append(c)
            return c

    def add_request(self, entry):
        with self.lock:
            self.requests.append(entry)

    def snapshot(self):
        with self.lock:
            return {"requests": [dict(r) for r in self.requests],
                    "connections": [dict(c) for c in self.connections if not c["control"]]}

    def reset(self):
        """Forget the requests; zero the byte counts but keep the connections, so bytes that
        arrive later on an already open (pooled) connection still show."""
        with self.lock:
            self.requests = []
            for c in self.connections:
                c["bytes"] = 0
                c["first_bytes"] = ""


class Reader:
    """Buffered reads from a socket, counting every byte for the connection record."""

    def __init__(self, sock, conn):
        self.sock = sock
        self.conn = conn
        self.buf = bytearray()

    def fill(self):
        data = self.sock.recv(262144)
        if not data:
            raise PeerClosed()
        self.conn["bytes"] += len(data)
        if len(self.conn["first_bytes"]) < 2048:
            self.conn["first_bytes"] += data[:2048].decode("latin-1")
        self.buf += data

    def read_until(self, marker, limit):
        start = 0
        while True:
            i = self.buf.find(marker, start)
            if i >= 0:
                out = bytes(self.buf[:i + len(marker)])
                del self.buf[:i + len(marker)]
                return out
            if len(self.buf) > limit:
                raise BadRequest("line or head too long")
            start = max(0, len(self.buf) - len(marker) + 1)
            self.fill()

    def read_exact_into(self, n, sink):
        """Pass exactly n bytes to sink(bytes) without keeping them."""
        while n > 0:
            if not self.buf:
                self.fill()
            take = min(n, len(self.buf))
            sink(bytes(self.buf[:take]))
            del self.buf[:take]
            n -= take

    def take_buffered(self):
        out = bytes(self.buf)
        self.buf.clear()
        return out


def parse_head(raw):
    """Lenient parse of a request head; returns (method, target, version, headers)."""
    lines = raw[:-4].split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3:
        raise BadRequest("bad request line %r" % lines[0][:100])
    headers = []
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep:
            raise BadRequest("header line without colon %r" % line[:100])
        headers.append([name.decode("latin-1"), value.strip(b" \t").decode("latin-1")])
    return (parts[0].decode("latin-1"), parts[1].decode("latin-1"), parts[2].decode("latin-1"),
            headers)


def header(headers, name):
    for k, v in headers:
        if k.lower() == name:
            return v
    return None


def header_tokens(headers, name):
    out = []
    for k, v in headers:
        if k.lower() == name:
            out += [t.strip().lower() for t in v.split(",") if t.strip()]
    return out


def read_chunked(reader, sink):
    while True:
        line = reader.read_until(b"\r\n", 4096)[:-2]
        size_txt = line.split(b";", 1)[0].strip()
        try:
            size = int(size_txt, 16)
        except ValueError:
            raise BadRequest("bad chunk size %r" % line[:50])
        if size_txt.startswith((b"-", b"+", b"0x", b"0X")):
            raise BadRequest("bad chunk size %r" % line[:50])
        if size == 0:
            while reader.read_until(b"\r\n", 65536) != b"\r\n":
                pass  # trailer fields are accepted and dropped
            return
        reader.read_exact_into(size, sink)
        if reader.read_until(b"\r\n", 2) != b"\r\n":
            raise BadRequest("chunk data not followed by CRLF")


def read_body(reader, headers, entry):
    h = hashlib.sha256()
    count = [0]

    def sink(data):
        h.update(data)
        count[0] += len(data)
        entry["body_len"] = count[0]

    te = header_tokens(headers, "transfer-encoding")
    cl = header(headers, "content-length")
    if te:
        if te[-1] != "chunked":
            raise BadRequest("transfer-encoding not ending in chunked")
        read_chunked(reader, sink)
    elif cl is not None:
        if not cl.isdigit():
            raise BadRequest("bad content-length %r" % cl)
        reader.read_exact_into(int(cl), sink)
    entry["body_sha256"] = h.hexdigest()


class Backend:
    def __init__(self, args):
        self.args = args
        self.state = State()

    # ---- HTTP ----

    def handle_http(self, sock, peer):
        conn = self.state.new_conn("%s:%d" % peer)
        reader = Reader(sock, conn)
        req_no = 0
        try:
            while True:
                try:
                    raw = reader.read_until(b"\r\n\r\n", 1 << 20)
                except PeerClosed:
                    return
                req_no += 1
                try:
                    method, target, version, headers = parse_head(raw)
                except BadRequest as e:
                    self.state.add_request({"name": self.args.name, "conn": conn["id"],
                                            "req": req_no, "error": str(e),
                                            "complete": False, "raw": raw[:500].decode("latin-1")})
                    return
                if not self.serve_one(sock, reader, conn, req_no, method, target, version,
                                      headers):
                    return
        except (OSError, PeerClosed, BadRequest):
            return
        finally:
            try:
                sock.close()
            except OSError:
                pass

    def serve_one(self, sock, reader, conn, req_no, method, target, version, headers):
        """Serve one request; returns False when the connection must close."""
        url = urllib.parse.urlsplit(target)
        q = dict(urllib.parse.parse_qsl(url.query))
        control = url.path in ("/__log", "/__reset", self.args.health)
        if control and req_no == 1:
            conn["control"] = True
        entry = {"name": self.args.name, "conn": conn["id"], "req": req_no, "method": method,
                 "target": target, "path": url.path, "version": version, "headers": headers,
                 "body_len": 0, "body_sha256": None, "complete": False, "error": None}
        if not control:
            self.state.add_request(entry)
        if "100-continue" in header_tokens(headers, "expect") and version == "HTTP/1.1":
            sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")  # RFC 9110 section 10.1.1
        try:
            read_body(reader, headers, entry)
        except BadRequest as e:
            entry["error"] = str(e)
            return False
        except PeerClosed:
            entry["error"] = "peer closed during the body"
            return False
        entry["complete"] = True
        keep = self.keep_alive(version, headers)
        if control:
            return self.serve_control(sock, url.path, keep)

        mode = q.get("mode", self.args.mode)
        delay = float(q.get("delay", self.args.delay))
        status = int(q.get("status", self.args.status))
        if mode == "close-after-request":
            return False
        if mode == "hang":
            self.hang(sock)
            return False
        if delay > 0:
            time.sleep(delay)
        if mode == "malformed":
            sock.sendall(MALFORMED[q.get("kind", "cl-te")])
            return False
        if mode == "close-mid":
            self.close_mid(sock, conn, req_no, q)
            return False
        if mode == "slow-body":
            return self.slow_body(sock, conn, req_no, q, keep)
        if mode == "upgrade" and header(headers, "upgrade") is not None:
            self.upgrade(sock, reader, conn, req_no, headers)
            return False
        if q.get("close") == "1" or q.get("eof") == "1":
            keep = False
        body = None
        size = q.get("size")
        if size is None:
            body = json.dumps({
                "name": self.args.name, "method": method, "target": target, "version": version,
                "headers": headers, "body_len": entry["body_len"],
                "body_sha256": entry["body_sha256"], "conn": conn["id"], "req": req_no,
                "peer": conn["peer"]}).encode()
        self.respond(sock, conn, req_no, method, status, body, int(size or 0),
                     q.get("chunked") == "1", int(q.get("chunk", 0)) or None, keep,
                     q.get("eof") == "1")
        return keep

    @staticmethod
    def keep_alive(version, headers):
        tokens = header_tokens(headers, "connection")
        if version == "HTTP/1.1":
            return "close" not in tokens
        return "keep-alive" in tokens

    def base_head(self, status, reason, conn, req_no):
        return ["HTTP/1.1 %d %s" % (status, reason),
                "X-Backend-Name: %s" % self.args.name,
                "X-Backend-Conn: %d" % conn["id"],
                "X-Backend-Req: %d" % req_no]

    def respond(self, sock, conn, req_no, method, status, body, size, chunked, chunk, keep,
                eof=False):
        lines = self.base_head(status, REASONS.get(status, "Whatever"), conn, req_no)
        no_body = status in (204, 304) or status < 200
        length = len(body) if body is not None else size
        if not keep:
            lines.append("Connection: close")
        if body is not None:
            lines.append("Content-Type: application/json")
        if not no_body and not eof:  # eof: the body ends where the connection does
            if chunked:
                lines.append("Transfer-Encoding: chunked")
            else:
                lines.append("Content-Length: %d" % length)
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        if no_body or method == "HEAD":
            return
        pieces = [body] if body is not None else pattern_chunks(size, chunk)
        if body is not None and chunk:
            pieces = [body[i:i + chunk] for i in range(0, len(body), chunk)]
        for piece in pieces:
            if chunked:
                sock.sendall(b"%x\r\n" % len(piece) + piece + b"\r\n")
            else:
                sock.sendall(piece)
        if chunked:
            sock.sendall(b"0\r\n\r\n")

    def serve_control(self, sock, path, keep):
        if path == "/__log":
            body = json.dumps(self.state.snapshot()).encode()
        elif path == "/__reset":
            self.state.reset()
            body = b"reset\n"
        else:
            body = b"ok\n"
        head = "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n" % (
            len(body), "" if keep else "Connection: close\r\n")
        sock.sendall(head.encode() + body)
        return keep

    @staticmethod
    def hang(sock):
        """Never answer; return when the peer closes (bounded: 300 s)."""
        deadline = time.monotonic() + 300
        sock.settimeout(1.0)
        while time.monotonic() < deadline:
            try:
                if not sock.recv(65536):
                    return
            except socket.timeout:
                continue
            except OSError:
                return

    def close_mid(self, sock, conn, req_no, q):
        half = int(q.get("size", 1000))
        lines = self.base_head(200, "OK", conn, req_no)
        data = next(pattern_chunks(half)) if half else b""
        if q.get("chunked") == "1":
            lines.append("Transfer-Encoding: chunked")
            payload = b"%x\r\n" % len(data) + data + b"\r\n"
        else:
            lines.append("Content-Length: %d" % (2 * half))
            payload = data
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + payload)
        time.sleep(0.2)  # let the partial response reach the client before the close

    def slow_body(self, sock, conn, req_no, q, keep):
        pieces = int(q.get("pieces", 5))
        piece = int(q.get("piece", 100))
        gap = float(q.get("gap", 0.3))
        lines = self.base_head(200, "OK", conn, req_no)
        lines.append("Content-Length: %d" % (pieces * piece))
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = next(pattern_chunks(pieces * piece)) if pieces * piece else b""
        for i in range(pieces):
            time.sleep(gap)
            sock.sendall(data[i * piece:(i + 1) * piece])
        return keep

    def upgrade(self, sock, reader, conn, req_no, headers):
        lines = self.base_head(101, "Switching Protocols", conn, req_no)
        lines += ["Connection: Upgrade", "Upgrade: %s" % header(headers, "upgrade")]
        key = header(headers, "sec-websocket-key")
        if key is not None:  # RFC 6455 section 4.2.2
            digest = hashlib.sha1((key + WS_GUID).encode()).digest()
            lines.append("Sec-WebSocket-Accept: %s" % base64.b64encode(digest).decode())
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        sock.sendall(b"hello from %s\n" % self.args.name.encode())
        pending = reader.take_buffered()
        if pending:
            sock.sendall(pending)
        self.echo(sock, conn)

    @staticmethod
    def echo(sock, conn):
        sock.settimeout(300)
        while True:
            data = sock.recv(65536)
            if not data:
                sock.shutdown(socket.SHUT_WR)
                return
            conn["bytes"] += len(data)
            sock.sendall(data)

    # ---- TCP ----

    def handle_tcp(self, sock, peer):
        conn = self.state.new_conn("%s:%d" % peer)
        try:
            if not self.args.no_greeting:
                sock.sendall(b"%s\n" % self.args.name.encode())
            self.echo(sock, conn)
        except OSError:
            pass
        finally:
            sock.close()

    def serve(self):
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", self.args.port))
        ls.listen(256)
        print("READY %d" % ls.getsockname()[1], flush=True)
        handler = self.handle_tcp if self.args.tcp else self.handle_http
        while True:
            sock, peer = ls.accept()
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=handler, args=(sock, peer), daemon=True).start()


REASONS = {100: "Continue", 101: "Switching Protocols", 200: "OK", 201: "Created",
           204: "No Content", 301: "Moved Permanently", 304: "Not Modified",
           400: "Bad Request", 404: "Not Found", 500: "Internal Server Error",
           503: "Service Unavailable"}

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

MALFORMED = {
    "cl-te": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
             b"0\r\n\r\n",
    "garbage": b"this is not an HTTP response\r\n\r\n",
    "bad-status": b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n",
    "space-colon": b"HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n",
    "bad-cl": b"HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n",
}


def main(argv):
    p = argparse.ArgumentParser(description="fulcrum integration-test backend")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--name", default="backend")
    p.add_argument("--mode", default="echo",
                   choices=["echo", "hang", "close-after-request", "close-mid", "malformed",
                            "slow-body", "upgrade"])
    p.add_argument("--delay", type=float, default=0.0)
    p.add_argument("--status", type=int, default=200)
    p.add_argument("--health", default="/health")
    p.add_argument("--tcp", action="store_true", help="TCP echo server")
    p.add_argument("--no-greeting", action="store_true", help="TCP: do not send NAME\\n")
    args = p.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    signal.signal(signal.SIGINT, lambda *_: os._exit(0))
    try:
        Backend(args).serve()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main(sys.argv[1:])
