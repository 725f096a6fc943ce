#!/usr/bin/env python3
"""close_client.py -- the per-connection client of bench/soak.sh: one new TCP connection
per request, so fulcrum's accept and close paths are soaked beside wrk's keep-alive load.

usage: close_client.py PORT SECONDS RATE OUT_JSON FAIL_LOG

For SECONDS, at most RATE requests a second (one after another), cycling through:
  GET /small   HTTP/1.1, Connection: close
  GET /large   HTTP/1.0 (closes by default), 64 KiB expected
  POST /post   HTTP/1.1, Connection: close, a 32 KiB body with Content-Length
  POST /post   HTTP/1.1, Connection: close, the same body chunked (8 chunks of 4 KiB)
Each answer is read to EOF and checked: status 2xx, Content-Length equal to the bytes
received, the body the backend writes for that kind (a POST's byte count must match).
Every failure gets one line in FAIL_LOG (unix time, kind, what went wrong); the counts
per kind and outcome go to OUT_JSON at the end. Only 127.0.0.1 is ever contacted.
"""

import json
import socket
import sys
import time

TIMEOUT = 15.0  # fulcrum's server timeout is 10 s: a 504 arrives before this fires
POST_BYTES = 32768
LARGE_BYTES = 65536


def requests():
    body = b"c" * POST_BYTES
    chunked = b"".join(b"1000\r\n" + body[i : i + 4096] + b"\r\n" for i in range(0, POST_BYTES, 4096))
    host = b"Host: 127.0.0.1\r\n"
    return [
        ("get_small", b"GET /small HTTP/1.1\r\n" + host + b"Connection: close\r\n\r\n"),
        ("get_large", b"GET /large HTTP/1.0\r\n" + host + b"\r\n"),
        (
            "post",
            b"POST /post HTTP/1.1\r\n" + host + b"Connection: close\r\n"
            b"Content-Type: application/octet-stream\r\n"
            b"Content-Length: %d\r\n\r\n" % POST_BYTES + body,
        ),
        (
            "post_chunked",
            b"POST /post HTTP/1.1\r\n" + host + b"Connection: close\r\n"
            b"Content-Type: application/octet-stream\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n" + chunked + b"0\r\n\r\n",
        ),
    ]


def exchange(port, raw):
    """Sends RAW on a new connection and reads to EOF: (status, headers dict, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
        s.sendall(raw)
        data = bytearray()
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, sep, body = bytes(data).partition(b"\r\n\r\n")
    if not sep:
        raise ValueError(f"no complete response head ({len(data)} bytes before EOF)")
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
        raise ValueError(f"bad status line {lines[0][:60]!r}")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    return int(parts[1]), headers, body


def check(kind, status, headers, body):
    """None when the answer is right for KIND, else what is wrong."""
    if not 200 <= status <= 299:
        return f"status {status}: {body[:80]!r}"
    cl = headers.get(b"content-length")
    if cl is None or int(cl) != len(body):
        return f"Content-Length {cl!r} but {len(body)} body bytes"
    if kind == "get_small" and not body.startswith(b"small "):
        return f"unexpected body {body[:60]!r}"
    if kind == "get_large" and len(body) != LARGE_BYTES:
        return f"{len(body)} bytes, not {LARGE_BYTES}"
    if kind == "post" and (not body.startswith(b"post ") or b" got %d bytes" % POST_BYTES not in body):
        return f"unexpected body {body[:60]!r}"
    if kind == "post_chunked" and not body.startswith(b"post "):
        return f"unexpected body {body[:60]!r}"
    return None


def main(argv):
    port, seconds, rate = int(argv[1]), float(argv[2]), float(argv[3])
    out_path, fail_path = argv[4], argv[5]
    reqs = requests()
    counts = {kind: {"ok": 0, "status": {}, "error": {}, "bad": 0} for kind, _ in reqs}
    start = time.monotonic()
    end = start + seconds
    gap = 1.0 / rate if rate > 0 else 0.0
    i = 0
    with open(fail_path, "a", buffering=1) as fail:
        while time.monotonic() < end:
            due = start + i * gap
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)
            kind, raw = reqs[i % len(reqs)]
            i += 1
            c = counts[kind]
            try:
                status, headers, body = exchange(port, raw)
            except (OSError, ValueError) as e:
                name = type(e).__name__
                c["error"][name] = c["error"].get(name, 0) + 1
                fail.write(f"{time.time():.3f}\t{kind}\terror\t{name}: {e}\n")
                continue
            what = check(kind, status, headers, body)
            if what is None:
                c["ok"] += 1
            elif not 200 <= status <= 299:
                c["status"][str(status)] = c["status"].get(str(status), 0) + 1
                fail.write(f"{time.time():.3f}\t{kind}\tstatus\t{what}\n")
            else:
                c["bad"] += 1
                fail.write(f"{time.time():.3f}\t{kind}\tbad\t{what}\n")
    with open(out_path, "w") as f:
        json.dump({"seconds": time.monotonic() - start, "requests": i, "kinds": counts}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
