"""Several nodes over PostgreSQL started as the README says (issue 8): the first node's first start
(no --dev, a data directory that does not exist yet) initialises the database, writes its
auto-unseal key file and prints the root credentials once; a second node given a copy of that key
file serves the same data; a node without it refuses to start with an error naming the file."""

import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request

import boto3
import pytest

import pg_cluster

COFFER_BIN = os.environ.get("COFFER_BIN", "target/debug/coffer")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(url, data_dir):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COFFER_", "AWS_"))}
    proc = subprocess.Popen([COFFER_BIN, "server", "--storage", url, "--data-dir", data_dir,
                             "--listen", "127.0.0.1:%d" % port],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    endpoint = "http://127.0.0.1:%d" % port
    deadline = time.time() + 30
    while time.time() < deadline and proc.poll() is None:
        try:
            urllib.request.urlopen(endpoint + "/health", timeout=1).read()
            return proc, endpoint
        except OSError:
            time.sleep(0.1)
    return proc, None


def _stop(proc):
    proc.terminate()
    try:
        return proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate()


def _credentials(stdout):
    found = dict(re.findall(r"export (AWS_ACCESS_KEY_ID|AWS_SECRET_ACCESS_KEY)=(\S+)", stdout))
    assert set(found) == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}, stdout
    return found


def _sm(endpoint, creds):
    return boto3.client("secretsmanager", region_name="us-east-1", endpoint_url=endpoint,
                        aws_access_key_id=creds["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"])


def test_second_node_joins_with_a_copy_of_the_unseal_key_file():
    if not pg_cluster.bindir():
        if os.environ.get("CI"):
            raise AssertionError("CI: PostgreSQL's server binaries (initdb, pg_ctl) are missing")
        pytest.skip("PostgreSQL's server binaries (initdb, pg_ctl) are not installed")
    tmp = tempfile.mkdtemp(prefix="coffer-pg-nodes.")
    try:
        with pg_cluster.scram_cluster() as pg:
            first_dir = os.path.join(tmp, "node1", "data")   # neither directory exists yet
            first, first_url = _start(pg.url(), first_dir)
            try:
                assert first_url, "the first node did not come up: %s" % (_stop(first),)
                key_file = os.path.join(first_dir, "unseal.key")
                assert os.path.isfile(key_file)
                assert os.stat(key_file).st_mode & 0o077 == 0, "the key file is private"

                # A node without the key file cannot unseal this database: it says which file.
                lone, lone_url = _start(pg.url(), os.path.join(tmp, "lone"))
                out, err = _stop(lone)
                assert lone_url is None and lone.returncode not in (0, None)
                assert "unseal.key" in err, err

                second_dir = os.path.join(tmp, "node2")
                os.makedirs(second_dir)
                shutil.copy2(key_file, second_dir)
                os.chmod(os.path.join(second_dir, "unseal.key"), 0o600)
                second, second_url = _start(pg.url(), second_dir)
                try:
                    assert second_url, "the second node did not come up: %s" % (_stop(second),)
                    out, _ = _stop(first)
                    creds = _credentials(out)   # printed once, by the node that initialised
                    first = None
                    sm = _sm(second_url, creds)
                    created = sm.create_secret(Name="nodes/shared", SecretString="on-node-2")
                    # Node 1 again, after a restart with its own directory: same data.
                    first, first_url = _start(pg.url(), first_dir)
                    assert first_url
                    got = _sm(first_url, creds).get_secret_value(SecretId="nodes/shared")
                    assert got["SecretString"] == "on-node-2"
                    assert got["VersionId"] == created["VersionId"]
                finally:
                    out, _ = _stop(second)
                    assert "AWS_SECRET_ACCESS_KEY" not in out, "only the first start prints them"
            finally:
                if first is not None:
                    _stop(first)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_an_unreachable_database_stops_the_start_with_an_error_and_exit_status():
    tmp = tempfile.mkdtemp(prefix="coffer-pg-down.")
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("COFFER_", "AWS_"))}
        p = subprocess.run([COFFER_BIN, "server", "--data-dir", tmp, "--listen", "127.0.0.1:%d" % _free_port(),
                            "--storage", "postgres://coffer:pw-not-shown@127.0.0.1:1/coffer?sslmode=disable"],
                           capture_output=True, text=True, timeout=60, env=env)
        assert p.returncode == 1, (p.returncode, p.stderr)
        assert "cannot connect to PostgreSQL at 127.0.0.1:1/coffer" in p.stderr, p.stderr
        assert "pw-not-shown" not in p.stderr + p.stdout
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
