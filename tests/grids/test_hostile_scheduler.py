"""Addresses of a Dask scheduler that are none: refused up front in one line when their syntax
is wrong, and within --scheduler-timeout (plus a second) when nothing there answers as a
scheduler (a closed port, a socket that accepts and stays silent, an HTTP server)."""
import http.server
import json
import socket
import threading
import time

import pytest

from fastmlp.cli import main
from fastmlp.errors import FastMLPError
from fastmlp.grids.cluster import connect

SPEC = '[fixed]\ndataset = "mnist"\nepochs = 1\nlayers = [4]\n[space]\nlr = [0.1]\n'
TIMEOUT = 0.3


def sweep(tmp_path, capsys, *flags):
    """`fastmlp sweep` in this process: (status, stderr lines); nothing may be left in OUT."""
    spec = tmp_path / "s.toml"
    spec.write_text(SPEC)
    status = main(["sweep", spec, "--out-dir", tmp_path / "out", "--quiet", *flags])
    return status, capsys.readouterr().err.strip().splitlines()


@pytest.mark.parametrize("address, words", [
    ("notanaddress", "HOST:PORT"),
    ("http://127.0.0.1:8786", "http:// is not a Dask protocol"),
    ("/tmp/dask.sock", "HOST:PORT"),
    ("tcp://[::1:8786", "host name"),
    ("tcp://[zz::1]:8786", "IPv6"),
    ("127.0.0.1:99999", "port 1-65535"),
    ("127.0.0.1:", "HOST:PORT"),
    ("tcp://bad host:8786", "host name"),
])
def test_an_address_that_is_none_is_refused_before_anything_runs(tmp_path, capsys, address,
                                                                  words):
    status, err = sweep(tmp_path, capsys, "--scheduler", address)
    assert status == 2 and len(err) == 1, err
    assert "--scheduler" in err[0] and words in err[0] and "tcp://HOST:PORT" in err[0]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("seconds", ["0", "-1", "nan", "inf", "1e9"])
def test_a_timeout_that_is_no_deadline_is_refused(tmp_path, capsys, seconds):
    status, err = sweep(tmp_path, capsys, "--scheduler", "127.0.0.1:8786",
                        "--scheduler-timeout", seconds)
    assert status == 2 and len(err) == 1 and "--scheduler-timeout" in err[0], err


@pytest.mark.parametrize("content, words", [
    (None, "No such file"),
    ("{not json", "not a Dask scheduler file"),
    (json.dumps({"address": 8786}), "not a string"),
    (json.dumps({"address": "nowhere"}), "HOST:PORT"),
])
def test_a_scheduler_file_that_holds_no_address_is_refused(tmp_path, content, words):
    path = tmp_path / "scheduler.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(FastMLPError, match=words), connect(1, 1, scheduler_file=path):
        pass


@pytest.fixture
def silent_port():
    """A port that accepts connections and never says a word."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted = []
    threading.Thread(target=lambda: accepted.append(server.accept()), daemon=True).start()
    yield server.getsockname()[1]
    server.close()


@pytest.fixture
def http_port():
    """A port of an HTTP server (each connection in a thread of its own, so that shutting it
    down does not wait for the client that never sends a request line)."""
    class Quiet(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


def closed_port():
    with socket.create_server(("127.0.0.1", 0)) as server:
        return server.getsockname()[1]


@pytest.mark.parametrize("port", ["silent", "http", "closed"])
def test_a_port_that_does_not_answer_as_a_scheduler_fails_in_bounded_time(request, port):
    number = closed_port() if port == "closed" else request.getfixturevalue(f"{port}_port")
    started = time.monotonic()
    with pytest.raises(FastMLPError, match="cannot reach the Dask scheduler"), \
            connect(1, 1, f"127.0.0.1:{number}", timeout=TIMEOUT):
        pass
    assert time.monotonic() - started < TIMEOUT + 3


def test_the_command_line_says_so_in_one_line(tmp_path, capsys, silent_port):
    status, err = sweep(tmp_path, capsys, "--scheduler", f"127.0.0.1:{silent_port}",
                        "--scheduler-timeout", str(TIMEOUT))
    assert status == 2 and len(err) == 1, err
    assert "cannot reach the Dask scheduler" in err[0] and "--scheduler-timeout" in err[0]
