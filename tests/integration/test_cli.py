"""test_cli.py -- the command line: --version, --help, unknown flags, `fulcrum check`."""
import re
import subprocess
import textwrap

import pytest

from conftest import REPO, fulcrum_bin


def run(*args, timeout=30):
    return subprocess.run([fulcrum_bin(), *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version_exits_0_with_one_line(flag):
    r = run(flag)
    assert r.returncode == 0, r.stderr
    assert re.fullmatch(r"fulcrum \S+\n", r.stdout), repr(r.stdout)
    assert r.stderr == ""


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_exits_0_with_usage_on_stdout(flag):
    r = run(flag)
    assert r.returncode == 0, r.stderr
    assert "usage" in r.stdout.lower()
    for command in ("run", "check", "demo", "simulate"):
        assert command in r.stdout
    assert r.stderr == ""


@pytest.mark.parametrize("args", [["--bogus"], ["-x"], ["frobnicate"], []],
                         ids=["long-flag", "short-flag", "unknown-command", "no-arguments"])
def test_unknown_flag_exits_2_with_usage_on_stderr(args):
    r = run(*args)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "usage" in r.stderr.lower()
    assert r.stdout == ""


# A valid file; the broken cases below each change one line, so the expected line number
# is that line's number here (1-based).
GOOD = textwrap.dedent("""\
    workers: 1
    frontends:
      - name: web
        listen: 127.0.0.1:18080
        mode: http
        backend: app
        timeouts: {client: 30s, header: 10s}
    backends:
      - name: app
        strategy: round_robin
        retries: 2
        timeouts:
          connect: 2s
          server: 30s
        servers:
          - {name: s1, address: 127.0.0.1:9001, weight: 1}
          - name: s2
            address: 127.0.0.1:9002
            weight: 2
    """)


def with_line(lineno, new):
    lines = GOOD.splitlines(keepends=True)
    old = lines[lineno - 1]
    indent = old[:len(old) - len(old.lstrip())]
    lines[lineno - 1] = indent + new + "\n"
    return "".join(lines)


def test_check_good_file_exits_0_with_a_short_ok_line(tmp_path):
    path = tmp_path / "good.yaml"
    path.write_text(GOOD)
    r = run("check", str(path))
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    lines = r.stdout.splitlines()
    assert len(lines) == 1 and "ok" in lines[0].lower(), r.stdout


# (id, line number, replacement line, a word the message must name)
BROKEN = [
    ("unknown-key", 11, "retires: 2", "retires"),
    ("unknown-top-level-key", 1, "wrokers: 1", "wrokers"),
    ("unknown-key-in-server", 19, "wieght: 2", "wieght"),
    ("bad-duration-unit", 13, "connect: 2x", "2x"),
    ("bad-duration-no-unit", 14, "server: 30", "30"),
    ("bad-duration-in-flow-map", 7, "timeouts: {client: 30s, header: soon}", "soon"),
    ("bad-server-port", 18, "address: 127.0.0.1:99999", "99999"),
    ("server-address-without-port", 18, "address: 127.0.0.1", "127.0.0.1"),
    ("bad-listen-address", 4, "listen: 127.0.0.1:http", "127.0.0.1:http"),
    ("unknown-strategy", 10, "strategy: fastest", "fastest"),
    ("frontend-names-missing-backend", 6, "backend: nope", "nope"),
    ("bad-weight", 19, "weight: heavy", "heavy"),
]


@pytest.mark.parametrize("line,new,word", [c[1:] for c in BROKEN], ids=[c[0] for c in BROKEN])
def test_check_broken_file_prints_file_line_message_and_exits_1(tmp_path, line, new, word):
    path = tmp_path / "broken.yaml"
    path.write_text(with_line(line, new))
    r = run("check", str(path))
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert r.stdout == ""
    m = re.fullmatch(re.escape(str(path)) + r":(\d+): (\S.*)\n", r.stderr)
    assert m, "stderr is not exactly 'FILE:LINE: message': %r" % r.stderr
    assert int(m.group(1)) == line, "wrong line in %r" % r.stderr
    assert word in m.group(2), "the message should name %r: %r" % (word, r.stderr)


def test_check_missing_file_exits_1_with_file_message(tmp_path):
    path = tmp_path / "absent.yaml"
    r = run("check", str(path))
    assert r.returncode == 1
    assert r.stdout == ""
    assert re.fullmatch(re.escape(str(path)) + r": \S.*\n", r.stderr), repr(r.stderr)


def test_run_with_a_broken_file_exits_1_with_file_line_message(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text(with_line(10, "strategy: fastest"))
    r = run("run", str(path))
    assert r.returncode == 1
    assert re.fullmatch(re.escape(str(path)) + r":10: \S.*\n", r.stderr), repr(r.stderr)


EXAMPLES = sorted((REPO / "examples").glob("*.yaml")) if (REPO / "examples").is_dir() else []


@pytest.mark.skipif(not EXAMPLES, reason="no examples/*.yaml yet")
@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_check_accepts_every_example(path):
    r = run("check", str(path))
    assert r.returncode == 0, r.stderr
