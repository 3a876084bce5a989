"""Drop-in compatibility: the seed snippet verbatim with boto3, and the aws CLI commands a user
would type, with only AWS_ENDPOINT_URL, keys and region in the environment."""

import json
import subprocess

import pytest


def aws(env, *args, check=True):
    p = subprocess.run(["aws", *args], env=env, capture_output=True, text=True, timeout=60)
    if check:
        assert p.returncode == 0, p.stderr
    return p


def aws_json(env, *args):
    return json.loads(aws(env, *args, "--output", "json").stdout)


def test_seed_snippet_runs_verbatim(use_env):
    env = use_env
    aws(env, "secretsmanager", "create-secret", "--name", "MySecret",
        "--secret-string", '{"username":"admin","password":"s3cr3t!"}')

    # --- the seed document's snippet, verbatim ---
    import boto3
    import json
    client = boto3.client('secretsmanager')
    response = client.get_secret_value(SecretId='MySecret')
    secret = json.loads(response['SecretString'])
    # ---------------------------------------------

    assert secret == {"username": "admin", "password": "s3cr3t!"}
    assert response["VersionStages"] == ["AWSCURRENT"]
    assert response["ARN"].startswith("arn:aws:secretsmanager:us-east-1:")


def test_cli_lifecycle(coffer_env):
    env = coffer_env
    created = aws_json(env, "secretsmanager", "create-secret", "--name", "prod/db",
                       "--description", "db creds", "--secret-string", "one",
                       "--tags", "Key=team,Value=platform")
    arn = created["ARN"]
    v2 = aws_json(env, "secretsmanager", "put-secret-value", "--secret-id", "prod/db",
                  "--secret-string", "two")
    assert v2["VersionStages"] == ["AWSCURRENT"]

    got = aws_json(env, "secretsmanager", "get-secret-value", "--secret-id", arn)
    assert got["SecretString"] == "two"
    prev = aws_json(env, "secretsmanager", "get-secret-value", "--secret-id", "prod/db",
                    "--version-stage", "AWSPREVIOUS")
    assert prev["SecretString"] == "one"

    desc = aws_json(env, "secretsmanager", "describe-secret", "--secret-id", "prod/db")
    assert desc["Description"] == "db creds"
    assert desc["Tags"] == [{"Key": "team", "Value": "platform"}]
    stages = sorted(s for v in desc["VersionIdsToStages"].values() for s in v)
    assert stages == ["AWSCURRENT", "AWSPREVIOUS"]

    listed = aws_json(env, "secretsmanager", "list-secrets", "--filters", "Key=name,Values=prod/")
    assert [s["Name"] for s in listed["SecretList"]] == ["prod/db"]

    versions = aws_json(env, "secretsmanager", "list-secret-version-ids", "--secret-id", "prod/db")
    assert len(versions["Versions"]) == 2

    pw = aws_json(env, "secretsmanager", "get-random-password", "--password-length", "24",
                  "--exclude-punctuation")
    assert len(pw["RandomPassword"]) == 24 and pw["RandomPassword"].isalnum()

    deleted = aws_json(env, "secretsmanager", "delete-secret", "--secret-id", "prod/db",
                       "--recovery-window-in-days", "7")
    assert "DeletionDate" in deleted
    p = aws(env, "secretsmanager", "get-secret-value", "--secret-id", "prod/db", check=False)
    assert p.returncode != 0 and "InvalidRequestException" in p.stderr
    aws_json(env, "secretsmanager", "restore-secret", "--secret-id", "prod/db")
    assert aws_json(env, "secretsmanager", "get-secret-value",
                    "--secret-id", "prod/db")["SecretString"] == "two"


def test_cli_errors_are_aws_shaped(coffer_env):
    p = aws(coffer_env, "secretsmanager", "get-secret-value", "--secret-id", "does/not/exist",
            check=False)
    assert p.returncode != 0
    assert "ResourceNotFoundException" in p.stderr

    bad = dict(coffer_env, AWS_SECRET_ACCESS_KEY="wrong")
    p = aws(bad, "secretsmanager", "list-secrets", check=False)
    assert p.returncode != 0 and "InvalidSignatureException" in p.stderr


def test_boto3_binary_and_pagination(use_env):
    import boto3
    client = boto3.client("secretsmanager")
    client.create_secret(Name="bin/key", SecretBinary=b"\x00\x01\xffbinary")
    assert client.get_secret_value(SecretId="bin/key")["SecretBinary"] == b"\x00\x01\xffbinary"
    for i in range(7):
        client.create_secret(Name=f"page/{i}", SecretString=str(i))
    names = []
    for page in client.get_paginator("list_secrets").paginate(
            Filters=[{"Key": "name", "Values": ["page/"]}], PaginationConfig={"PageSize": 3}):
        names += [s["Name"] for s in page["SecretList"]]
    assert sorted(names) == [f"page/{i}" for i in range(7)]
    with pytest.raises(client.exceptions.ResourceExistsException):
        client.create_secret(Name="bin/key", SecretString="x")


def test_session_token_with_long_term_keys_is_refused(coffer_env):
    env = dict(coffer_env, AWS_SESSION_TOKEN="not-a-real-session-token")
    p = aws(env, "secretsmanager", "list-secrets", check=False)
    assert p.returncode != 0 and "UnrecognizedClientException" in p.stderr
