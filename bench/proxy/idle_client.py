#!/usr/bin/env python3
"""idle_client.py -- open N keep-alive connections to a proxy, send one request on each,
read its response, then hold them all idle until stdin closes (or HOLD seconds pass).

Usage: idle_client.py PORT N [BATCH] [HOLD]
Prints "held K" on stdout once K connections (K <= N) have each had a full 200 response,
then waits; at the end prints "dropped D", the connections the proxy closed meanwhile.
Connections are opened BATCH at a time (default 200) so neither the proxy's accept
backlog nor the backends see a burst of N. Every wait is bounded.
"""

import select
import socket
import sys
import time

REQUEST = b"GET / HTTP/1.1\r\nHost: bench\r\nUser-Agent: fulcrum-idle\r\n\r\n"


def read_response(sock, deadline):
    """True once a full 200 response (head + Content-Length body) has arrived."""
    data = b""
    while True:
        head_end = data.find(b"\r\n\r\n")
        if head_end >= 0:
            head = data[:head_end].decode("latin-1").lower()
            if not head.startswith("http/1.1 200"):
                return False
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip() == "content-length":
                    length = int(value)
            if len(data) - head_end - 4 >= length:
                return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        sock.settimeout(left)
        chunk = sock.recv(4096)
        if not chunk:
            return False
        data += chunk


def open_batch(port, count):
    socks = []
    for _ in range(count):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(5)
        s.connect(("127.0.0.1", port))
        s.sendall(REQUEST)
        socks.append(s)
    deadline = time.monotonic() + 10
    good = []
    for s in socks:
        try:
            ok = read_response(s, deadline)
        except OSError:
            ok = False
        if ok:
            good.append(s)
        else:
            s.close()
    return good


def main(argv):
    if len(argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    port, n = int(argv[1]), int(argv[2])
    batch = int(argv[3]) if len(argv) > 3 else 200
    hold = float(argv[4]) if len(argv) > 4 else 120.0
    held = []
    failed = 0
    try:
        while len(held) + failed < n:
            want = min(batch, n - len(held) - failed)
            got = open_batch(port, want)
            failed += want - len(got)
            held.extend(got)
    except OSError as e:
        sys.stderr.write(f"idle_client: stopped after {len(held)} connections: {e}\n")
    if failed:
        sys.stderr.write(f"idle_client: {failed} connections got no full 200 response\n")
    print(f"held {len(held)}", flush=True)
    # Hold until the caller closes our stdin; a connection the proxy closes meanwhile
    # shows as readable (EOF) and is counted, so the caller knows the figure is honest.
    # select() stops at fd 1024; poll() does not.
    waiter = select.poll()
    waiter.register(sys.stdin, select.POLLIN | select.POLLHUP)
    waiter.poll(hold * 1000)
    watch = select.poll()
    for s in held:
        watch.register(s, select.POLLIN)
    dropped = len(watch.poll(0))
    for s in held:
        s.close()
    print(f"dropped {dropped}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
