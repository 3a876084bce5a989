"""The `coffer server` binary as an operator meets it: first start, restart, TLS, refusing unsafe
listen addresses, and kill -9 in the middle of writes."""

import os
import re
import signal
import socket
import ssl
import subprocess
import threading
import time

import boto3
import botocore.config
import pytest

COFFER_BIN = os.environ.get("COFFER_BIN", "target/debug/coffer")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(args, env=None, wait_for=None):
    """Starts the server, returns (process, stdout lines read until it serves)."""
    port = free_port()
    proc = subprocess.Popen([COFFER_BIN, "server", "--listen", f"127.0.0.1:{port}", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if proc.poll() is not None:
                raise AssertionError(f"server exited: {proc.stderr.read()}")
            time.sleep(0.05)
    return proc, port


def stop(proc, sig=signal.SIGTERM):
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=20)
    return out


def client(port, akid, secret, scheme="http", verify=None):
    return boto3.client(
        "secretsmanager", endpoint_url=f"{scheme}://127.0.0.1:{port}", region_name="us-east-1",
        aws_access_key_id=akid, aws_secret_access_key=secret, verify=verify,
        config=botocore.config.Config(retries={"max_attempts": 1}))


def exports(text):
    return dict(re.findall(r"export (\w+)=(\S+)", text))


def test_first_start_prints_credentials_once_and_restart_reuses_data(tmp_path):
    data = tmp_path / "data"
    proc, port = start(["--data-dir", str(data)])
    creds = None
    try:
        # The credentials are printed before the server serves; read what is there.
        time.sleep(0.2)
    finally:
        out = stop(proc)
    creds = exports(out)
    assert creds["AWS_ACCESS_KEY_ID"].startswith("AKIA") and len(creds["AWS_ACCESS_KEY_ID"]) == 20
    assert len(creds["AWS_SECRET_ACCESS_KEY"]) == 40
    # The data directory initialised itself with an auto-unseal key file (README "Sealing").
    assert oct((data / "unseal.key").stat().st_mode & 0o777) == "0o600"
    assert not (data / "root.key").exists()

    proc, port = start(["--data-dir", str(data)])
    try:
        sm = client(port, creds["AWS_ACCESS_KEY_ID"], creds["AWS_SECRET_ACCESS_KEY"])
        sm.create_secret(Name="kept", SecretString="v1")
    finally:
        out = stop(proc)
    assert "AWS_SECRET_ACCESS_KEY" not in out, "credentials printed twice"

    proc, port = start(["--data-dir", str(data)])
    try:
        sm = client(port, creds["AWS_ACCESS_KEY_ID"], creds["AWS_SECRET_ACCESS_KEY"])
        assert sm.get_secret_value(SecretId="kept")["SecretString"] == "v1"
    finally:
        stop(proc)


def test_root_credentials_from_environment(tmp_path):
    env = {"COFFER_ROOT_ACCESS_KEY_ID": "AKIAENVPROVIDED00001",
           "COFFER_ROOT_SECRET_ACCESS_KEY": "env-provided-secret-access-key-000000000"}
    proc, port = start(["--data-dir", str(tmp_path / "d"), "--account-id", "111122223333"], env)
    try:
        sm = client(port, env["COFFER_ROOT_ACCESS_KEY_ID"], env["COFFER_ROOT_SECRET_ACCESS_KEY"])
        arn = sm.create_secret(Name="x", SecretString="y")["ARN"]
        assert ":111122223333:secret:x-" in arn
    finally:
        out = stop(proc)
    assert env["COFFER_ROOT_SECRET_ACCESS_KEY"] not in out


def test_self_signed_tls(tmp_path):
    data = tmp_path / "tls"
    proc, port = start(["--data-dir", str(data), "--tls-self-signed"])
    try:
        cert = str(data / "tls-cert.pem")
        sm = client(port, "unused", "unused", scheme="https", verify=cert)
        # An unknown key over TLS still reaches the signature check.
        with pytest.raises(sm.exceptions.ClientError) as e:
            sm.list_secrets()
        assert e.value.response["Error"]["Code"] == "UnrecognizedClientException"
        der = ssl.PEM_cert_to_DER_cert(open(cert).read())
    finally:
        out = stop(proc)
    import hashlib
    fp = ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())
    assert fp in out, out


@pytest.mark.parametrize("args", [["--dev"], ["--data-dir", "unused-never-created"]])
def test_non_loopback_needs_an_explicit_flag(args, tmp_path):
    p = subprocess.run([COFFER_BIN, "server", "--listen", "0.0.0.0:0", *args],
                       capture_output=True, text=True, timeout=20, cwd=tmp_path)
    assert p.returncode != 0
    assert "--insecure-allow-remote" in p.stderr
    assert not (tmp_path / "unused-never-created").exists()


def test_kill_9_during_writes_leaves_whole_versions(tmp_path):
    data = tmp_path / "crash"
    env = {"COFFER_ROOT_ACCESS_KEY_ID": "AKIACRASHTEST0000001",
           "COFFER_ROOT_SECRET_ACCESS_KEY": "crash-test-secret-access-key-00000000000"}
    proc, port = start(["--data-dir", str(data)], env)
    sm = client(port, env["COFFER_ROOT_ACCESS_KEY_ID"], env["COFFER_ROOT_SECRET_ACCESS_KEY"])
    sm.create_secret(Name="crash", SecretString="v-0")
    acked = []
    stop_flag = threading.Event()

    def writer(n):
        i = 0
        while not stop_flag.is_set():
            value = f"w{n}-{i}"
            try:
                out = client(port, env["COFFER_ROOT_ACCESS_KEY_ID"],
                             env["COFFER_ROOT_SECRET_ACCESS_KEY"]).put_secret_value(
                    SecretId="crash", SecretString=value)
                acked.append((out["VersionId"], value))
            except Exception:
                return
            i += 1

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    stop_flag.set()
    for t in threads:
        t.join(timeout=30)
    assert len(acked) > 10, "too few writes acknowledged to prove anything"

    proc, port = start(["--data-dir", str(data)], env)
    try:
        sm = client(port, env["COFFER_ROOT_ACCESS_KEY_ID"], env["COFFER_ROOT_SECRET_ACCESS_KEY"])
        versions, kwargs = {}, {"SecretId": "crash", "IncludeDeprecated": True}
        while True:
            page = sm.list_secret_version_ids(**kwargs)
            for v in page["Versions"]:
                versions[v["VersionId"]] = v.get("VersionStages", [])
            if "NextToken" not in page:
                break
            kwargs["NextToken"] = page["NextToken"]
        stages = [s for st in versions.values() for s in st]
        assert stages.count("AWSCURRENT") == 1 and stages.count("AWSPREVIOUS") == 1
        # Every acknowledged write is there (unless cleaned as deprecated) and decrypts whole.
        for vid, value in acked[-50:]:
            if vid in versions:
                got = sm.get_secret_value(SecretId="crash", VersionId=vid)["SecretString"]
                assert got == value
        current = sm.get_secret_value(SecretId="crash")["SecretString"]
        assert re.fullmatch(r"w\d+-\d+|v-0", current)
        # The newest acknowledged write from each writer is durable.
        assert acked[-1][0] in versions
    finally:
        stop(proc)


def test_secret_values_never_reach_the_log(tmp_path):
    """Every write and read path at debug log level, including failures: the server's whole log
    (stdout + stderr) never contains a value."""
    marker = "LOGMARKER-5c1e0a9b-never-logged"
    env = {"COFFER_LOG": "debug",
           "COFFER_ROOT_ACCESS_KEY_ID": "AKIALOGTEST000000001",
           "COFFER_ROOT_SECRET_ACCESS_KEY": "log-test-secret-access-key-0000000000000"}
    proc, port = start(["--data-dir", str(tmp_path / "d")], env)
    try:
        sm = client(port, env["COFFER_ROOT_ACCESS_KEY_ID"], env["COFFER_ROOT_SECRET_ACCESS_KEY"])
        sm.create_secret(Name="logged", SecretString=marker)
        sm.put_secret_value(SecretId="logged", SecretString=marker + "-2")
        sm.get_secret_value(SecretId="logged")
        with pytest.raises(Exception):
            sm.create_secret(Name="bad name with spaces", SecretString=marker)
        with pytest.raises(Exception):
            sm.put_secret_value(SecretId="logged", SecretString=marker, SecretBinary=b"x")
        ssm = boto3.client("ssm", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                           aws_access_key_id=env["COFFER_ROOT_ACCESS_KEY_ID"],
                           aws_secret_access_key=env["COFFER_ROOT_SECRET_ACCESS_KEY"])
        ssm.put_parameter(Name="/log/p", Value=marker, Type="SecureString")
        ssm.get_parameter(Name="/log/p", WithDecryption=True)
        with pytest.raises(Exception):
            ssm.put_parameter(Name="/log/p", Value=marker, Type="SecureString")  # exists
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert "DEBUG" in err and "GetSecretValue" in err, "per-request debug logging was not on"
    assert marker not in out and marker not in err
