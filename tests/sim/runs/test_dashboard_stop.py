"""``veilcast dashboard`` leaves no server behind: killing the command by its pid frees the port.

The command replaces itself with the Streamlit server, so the signal reaches the server itself;
before, Streamlit ran as a child that kept listening after the parent was killed.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from sim.runs.cli import main

REPO = Path(__file__).resolve().parents[3]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_free(port: int) -> bool:
    """Nothing listens on the port: a connection is refused and a new server could bind it.

    ``SO_REUSEADDR`` as every server sets it: the health checks' closed connections linger in
    TIME_WAIT, which is not a listener.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            return False
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"dashboard exited with {proc.returncode}"
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"dashboard did not answer on {url} within {timeout} s")


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_killing_the_command_by_its_pid_frees_the_port(tmp_path: Path, sig: signal.Signals) -> None:
    port = _free_port()
    command = [sys.executable, "-m", "sim", "dashboard", "--results", str(tmp_path)]
    proc = subprocess.Popen(
        [*command, "--port", str(port)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # so that cleanup below can reach anything left behind
    )
    try:
        _wait_healthy(f"http://127.0.0.1:{port}", proc)
        assert not _port_free(port)
        os.kill(proc.pid, sig)  # the command's own pid, as a user or a supervisor would
        proc.wait(timeout=30)
        deadline = time.monotonic() + 10
        while not _port_free(port) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _port_free(port), "a server still listens after the command was killed"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            pass
        else:  # something of the group survived: stop it, and fail
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail("a process started by veilcast dashboard outlived it")


def test_a_bad_port_is_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dashboard", "--port", "70000"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--port" in err[0] and "Traceback" not in err[0]
