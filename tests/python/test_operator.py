"""`coffer operator` as an operator meets it: the real binary against a real server started with
--no-auto-init: init with shares, unseal from stdin (bad shares refused), seal, restart, rekey,
rotate-root, and a crash (abort) just before and just after rekey's and rotate-root's commit."""

import os
import re
import signal
import subprocess

import boto3
import botocore.config
import botocore.exceptions
import pytest

from test_server import COFFER_BIN, start, stop


def operator(port, *args, stdin=None, creds=None, check=True):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(creds or {})
    r = subprocess.run([COFFER_BIN, "operator", "--address", f"http://127.0.0.1:{port}", *args],
                       input=stdin, capture_output=True, text=True, env=env, timeout=60)
    if check:
        assert r.returncode == 0, r.stderr + r.stdout
    return r


def sm(port, creds):
    return boto3.client(
        "secretsmanager", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
        aws_access_key_id=creds["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"],
        config=botocore.config.Config(retries={"max_attempts": 1}))


def shares_of(text):
    return re.findall(r"Unseal share \d+: (\S+)", text)


def creds_of(text):
    return dict(re.findall(r"export (AWS_ACCESS_KEY_ID|AWS_SECRET_ACCESS_KEY)=(\S+)", text))


def unseal(port, shares):
    r = operator(port, "unseal", stdin="".join(s + "\n" for s in shares))
    assert "Status: unsealed" in r.stdout, r.stdout
    return r


@pytest.fixture
def initialized(tmp_path):
    data = tmp_path / "data"
    proc, port = start(["--data-dir", str(data), "--no-auto-init"])
    r = operator(port, "status")
    assert "Status: uninitialized" in r.stdout
    r = operator(port, "init", "--key-shares", "3", "--key-threshold", "2")
    shares, creds = shares_of(r.stdout), creds_of(r.stdout)
    assert len(shares) == 3 and creds["AWS_ACCESS_KEY_ID"].startswith("AKIA"), r.stdout
    assert "Status: sealed" in r.stdout
    yield data, proc, port, shares, creds
    if proc.poll() is None:
        stop(proc)


def test_init_unseal_seal_restart_with_the_cli(initialized):
    data, proc, port, shares, creds = initialized
    # Sealed: the aws tools get ServiceUnavailable.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sm(port, creds).list_secrets()
    assert e.value.response["Error"]["Code"] == "ServiceUnavailable"

    # Bad shares are refused with a reason and leave the progress unchanged.
    bad = operator(port, "unseal", "not-a-share", check=False)
    assert bad.returncode != 0 and "not a Coffer unseal share" in bad.stderr
    r = operator(port, "unseal", shares[0])
    assert "progress 1/2" in r.stdout
    dup = operator(port, "unseal", shares[0], check=False)
    assert dup.returncode != 0 and "already given" in dup.stderr
    flipped = shares[1][:-3] + ("A" if shares[1][-3] != "A" else "B") + shares[1][-2:]
    corrupt = operator(port, "unseal", flipped, check=False)
    assert corrupt.returncode != 0 and "InvalidShareException" in corrupt.stderr
    assert "progress 1/2" in operator(port, "status").stdout
    r = operator(port, "unseal", shares[1])
    assert "Status: unsealed" in r.stdout

    sm(port, creds).create_secret(Name="db", SecretString="pw")
    # Seal needs the root credentials.
    assert operator(port, "seal", check=False).returncode != 0
    r = operator(port, "seal", creds=creds)
    assert "Status: sealed" in r.stdout
    with pytest.raises(botocore.exceptions.ClientError):
        sm(port, creds).get_secret_value(SecretId="db")

    stop(proc)
    proc, port = start(["--data-dir", str(data)])
    try:
        assert "Status: sealed" in operator(port, "status").stdout
        unseal(port, [shares[2], shares[0]])
        assert sm(port, creds).get_secret_value(SecretId="db")["SecretString"] == "pw"
        # Rekey (current quorum on stdin), then rotate the root key with the new shares.
        r = operator(port, "rekey", "--key-shares", "4", "--key-threshold", "3",
                     stdin=f"{shares[0]}\n{shares[1]}\n")
        new = shares_of(r.stdout)
        assert len(new) == 4 and "in force" in r.stdout, r.stdout
        r = operator(port, "rotate-root", stdin="\n".join(new[:3]) + "\n", creds=creds)
        assert "Root key rotated" in r.stdout, r.stdout
        assert sm(port, creds).get_secret_value(SecretId="db")["SecretString"] == "pw"
    finally:
        stop(proc)
    proc, port = start(["--data-dir", str(data)])
    try:
        old = operator(port, "unseal", shares[0], check=False)
        assert old.returncode != 0 and "another share set" in old.stderr
        unseal(port, new[1:4])
        assert sm(port, creds).get_secret_value(SecretId="db")["SecretString"] == "pw"
    finally:
        stop(proc)


@pytest.mark.parametrize("point", ["before", "after"])
def test_crash_during_rotate_root_leaves_old_or_new_state(initialized, point):
    data, proc, port, shares, creds = initialized
    unseal(port, shares[:2])
    sm(port, creds).create_secret(Name="db", SecretString="pw")
    stop(proc)
    proc, port = start(["--data-dir", str(data)],
                       env={"COFFER_TEST_CRASH_POINT": f"rotate-root-{point}-commit"})
    unseal(port, shares[1:3])
    r = operator(port, "rotate-root", stdin="\n".join(shares[:2]) + "\n", creds=creds, check=False)
    assert r.returncode != 0
    assert proc.wait(timeout=20) == -signal.SIGABRT
    # Old state (before) or new state (after): either way the same shares open a root key that
    # opens every record, and the data reads.
    proc, port = start(["--data-dir", str(data)])
    try:
        unseal(port, [shares[2], shares[0]])
        assert sm(port, creds).get_secret_value(SecretId="db")["SecretString"] == "pw"
    finally:
        stop(proc)


@pytest.mark.parametrize("point", ["before", "after"])
def test_crash_during_rekey_leaves_a_working_share_set(initialized, point):
    data, proc, port, shares, creds = initialized
    stop(proc)
    proc, port = start(["--data-dir", str(data)],
                       env={"COFFER_TEST_CRASH_POINT": f"rekey-{point}-commit"})
    r = operator(port, "rekey", "--key-shares", "2", "--key-threshold", "2",
                 stdin="\n".join(shares[:2]) + "\n", check=False)
    assert r.returncode != 0
    new = shares_of(r.stdout)
    assert len(new) == 2, r.stdout  # printed before they were put in force
    assert proc.wait(timeout=20) == -signal.SIGABRT
    proc, port = start(["--data-dir", str(data)])
    try:
        in_force, stale = (shares[1:3], new) if point == "before" else (new, shares[:2])
        refused = operator(port, "unseal", stale[0], check=False)
        assert refused.returncode != 0, refused.stdout
        unseal(port, in_force)
        sm(port, creds).list_secrets()
    finally:
        stop(proc)
