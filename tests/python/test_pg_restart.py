"""PostgreSQL lost while serving (issue 8): a server on a private PostgreSQL (initdb'ed into a
temporary directory, see pg_cluster.py) keeps taking writes while the database is stopped as a
crash would stop it and started again. Calls made while it is down fail with an AWS-shaped
server error within the store's wait for a connection (5 s; then at once for a second after each
failure, instead of every store operation of a call waiting in turn), the server recovers on its own once it is back, and every write that was
acknowledged is still there afterwards."""

import os
import re
import socket
import subprocess
import threading
import time

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError

import pg_cluster

COFFER_BIN = os.environ.get("COFFER_BIN", "target/debug/coffer")
WRITERS = 3
DOWN_SECS = 8


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server(url):
    port = _free_port()
    proc = subprocess.Popen([COFFER_BIN, "server", "--dev", "--storage", url,
                             "--listen", "127.0.0.1:%d" % port],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    exports = {}
    deadline = time.time() + 30
    while time.time() < deadline and len(exports) < 3:
        line = proc.stdout.readline()
        if not line:
            break
        m = re.match(r"export (AWS_\w+)=(.*)", line.strip())
        if m:
            exports[m.group(1)] = m.group(2)
    assert set(exports) >= {"AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}, exports
    return proc, exports


def _client(exports):
    # No SDK retries: every answer the server gives is seen as it is.
    return boto3.client("secretsmanager", region_name="us-east-1",
                        endpoint_url=exports["AWS_ENDPOINT_URL"],
                        aws_access_key_id=exports["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=exports["AWS_SECRET_ACCESS_KEY"],
                        config=Config(retries={"max_attempts": 1, "mode": "standard"},
                                      connect_timeout=5, read_timeout=30))


def test_writes_survive_a_database_restart_under_load():
    if not pg_cluster.bindir():
        if os.environ.get("CI"):
            raise AssertionError("CI: PostgreSQL's server binaries (initdb, pg_ctl) are missing")
        pytest.skip("PostgreSQL's server binaries (initdb, pg_ctl) are not installed")
    with pg_cluster.scram_cluster() as pg:
        proc, exports = _server(pg.url())
        try:
            sm = _client(exports)
            for w in range(WRITERS):
                sm.create_secret(Name="restart/%d" % w, SecretString="start")
            acked = []      # (secret, value, version id) the server acknowledged
            failures = []   # (phase, error code) of refused calls
            phase = {"now": "before"}
            stop = threading.Event()

            def writer(w):
                client = _client(exports)
                i = 0
                while not stop.is_set():
                    value = "w%d-%d" % (w, i)
                    i += 1
                    started = phase["now"]
                    try:
                        r = client.put_secret_value(SecretId="restart/%d" % w, SecretString=value)
                        acked.append((w, value, r["VersionId"], started))
                    except ClientError as e:
                        failures.append((started, e.response["Error"]["Code"],
                                         e.response["ResponseMetadata"]["HTTPStatusCode"]))
                    except EndpointConnectionError as e:
                        failures.append((started, "connection", str(e)))
                    time.sleep(0.005)

            threads = [threading.Thread(target=writer, args=(w,)) for w in range(WRITERS)]
            for t in threads:
                t.start()
            time.sleep(1.5)
            phase["now"] = "down"
            pg.stop()
            # Longer than the store's wait for a connection (5 s): a short outage is ridden
            # out by calls waiting for the pool, a longer one must answer errors.
            time.sleep(DOWN_SECS)
            pg.start()
            phase["now"] = "after"
            # Recovery is the server's own: no restart, no operator action.
            deadline = time.time() + 30
            while time.time() < deadline and not any(a[3] == "after" for a in acked):
                time.sleep(0.1)
            time.sleep(1.0)
            stop.set()
            for t in threads:
                t.join(timeout=60)

            assert any(a[3] == "before" for a in acked), "no write before the outage"
            assert any(f[0] == "down" for f in failures), "no call failed while the database was down"
            for f in failures:
                # In flight when the database went, or waiting while it was away: an AWS-shaped
                # server error, never a hang or a dropped connection.
                assert f[1] in ("InternalFailure", "InternalServiceError",
                                "ServiceUnavailable"), f
                assert f[2] >= 500, f
            assert any(a[3] == "after" for a in acked), "the server did not recover on its own"

            # Every acknowledged write is there, with the value it was acknowledged for.
            for w, value, version, _ in acked:
                got = sm.get_secret_value(SecretId="restart/%d" % w, VersionId=version)
                assert got["SecretString"] == value
        finally:
            proc.terminate()
            proc.wait(timeout=20)
