"""The README's rotation walk-through, run as written (with a unique role name) through the aws
CLI against a real `coffer server --dev` and the local PostgreSQL (127.0.0.1:5432, postgres)."""

import json
import os
import re
import shutil
import subprocess
import time
import uuid

import pytest

README = os.path.join(os.path.dirname(__file__), "..", "..", "README.md")


def readme_block():
    text = open(README).read()
    start = text.index("Rotating a PostgreSQL password end to end")
    block = text[start:].split("```sh\n", 1)[1].split("```", 1)[0]
    return block


def psql(sql):
    return subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-tAc", sql],
        capture_output=True, text=True, timeout=30,
    )


def postgres_available():
    if shutil.which("psql") is None:
        return False
    return psql("SELECT 1").returncode == 0


def test_readme_postgresql_rotation_walkthrough(coffer_env):
    if not postgres_available():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL at 127.0.0.1:5432 is required under CI")
        pytest.skip("!!! PostgreSQL at 127.0.0.1:5432 not reachable: rotation walk-through not run")
    role = "app_" + uuid.uuid4().hex[:10]
    name = "prod/" + role + "/db"
    # The README's commands, with this test's role and secret names.
    script = re.sub(r"\bapp\b", role, readme_block())
    assert "rotate-secret" in script and "coffer-postgresql-single-user" in script
    try:
        p = subprocess.run(["bash", "-euo", "pipefail", "-c", script], env=coffer_env,
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr
        # The rotation runs in the background right after rotate-secret; wait for it (bounded).
        deadline = time.time() + 60
        while True:
            d = json.loads(subprocess.run(
                ["aws", "secretsmanager", "describe-secret", "--secret-id", name],
                env=coffer_env, capture_output=True, text=True, check=True).stdout)
            if "LastRotatedDate" in d or time.time() > deadline:
                break
            time.sleep(0.2)
        assert d["RotationEnabled"] is True
        assert "LastRotatedDate" in d, d
        assert "NextRotationDate" in d
        assert d["RotationRules"]["ScheduleExpression"] == "rate(30 days)"
        assert all("AWSPENDING" not in s for s in d["VersionIdsToStages"].values())
        cur = json.loads(json.loads(subprocess.run(
            ["aws", "secretsmanager", "get-secret-value", "--secret-id", name,
             "--query", "SecretString"], env=coffer_env, capture_output=True, text=True,
            check=True).stdout))
        prev = json.loads(json.loads(subprocess.run(
            ["aws", "secretsmanager", "get-secret-value", "--secret-id", name,
             "--version-stage", "AWSPREVIOUS", "--query", "SecretString"], env=coffer_env,
            capture_output=True, text=True, check=True).stdout))
        assert prev["password"] == "initial-password"
        assert cur["password"] != "initial-password" and len(cur["password"]) == 32
        assert cur["username"] == role
    finally:
        psql(f"DROP ROLE IF EXISTS {role}")
