"""Starts a real `coffer server --dev` per test module on a free port and hands tests the
environment a user would export (endpoint, keys, region) — nothing else."""

import os
import re
import socket
import subprocess
import time

import pytest

COFFER_BIN = os.environ.get("COFFER_BIN", "target/debug/coffer")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def coffer_env():
    port = _free_port()
    proc = subprocess.Popen(
        [COFFER_BIN, "server", "--dev", "--listen", f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    exports = {}
    deadline = time.time() + 20
    while time.time() < deadline and len(exports) < 4:
        line = proc.stdout.readline()
        if not line:
            break
        m = re.match(r"export (\w+)=(.*)", line.strip())
        if m:
            exports[m.group(1)] = m.group(2)
    assert set(exports) >= {"AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}, exports
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(exports)
    env["AWS_DEFAULT_REGION"] = "us-east-1"
    env["AWS_PAGER"] = ""
    yield env
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def use_env(coffer_env, monkeypatch):
    """Puts the exported variables into this process's environment (for boto3)."""
    for k in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(k)
    for k, v in coffer_env.items():
        if k.startswith("AWS_"):
            monkeypatch.setenv(k, v)
    return coffer_env
