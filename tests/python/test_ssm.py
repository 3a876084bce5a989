"""Parameter Store drop-in: the issue's seed command verbatim through the aws CLI, and boto3's
GetParametersByPath paginator, with only AWS_ENDPOINT_URL, keys and region in the environment."""

import base64
import binascii
import json
import subprocess

from test_dropin import aws, aws_json

SEED = ('aws ssm put-parameter --name "/prod/db/password" '
        '--value "mysecret123" --type "SecureString" --key-id "alias/aws/ssm"')


def sh(env, command):
    """Runs `command` exactly as typed into a shell."""
    p = subprocess.run(["bash", "-c", command], env=env, capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def test_seed_command_verbatim(coffer_env):
    env = coffer_env
    put = sh(env, SEED)
    assert put["Version"] == 1
    assert put["Tier"] == "Standard"

    got = sh(env, "aws ssm get-parameter --name /prod/db/password --with-decryption")
    p = got["Parameter"]
    assert p["Name"] == "/prod/db/password"
    assert p["Type"] == "SecureString"
    assert p["Value"] == "mysecret123"
    assert p["Version"] == 1
    assert p["ARN"].startswith("arn:aws:ssm:us-east-1:")
    assert p["ARN"].endswith(":parameter/prod/db/password")

    hidden = sh(env, "aws ssm get-parameter --name /prod/db/password")["Parameter"]
    assert hidden["Type"] == "SecureString"
    assert hidden["Value"] != "mysecret123"
    try:
        blob = base64.b64decode(hidden["Value"], validate=True)
    except binascii.Error as e:
        raise AssertionError(f"not base64: {hidden['Value']!r}") from e
    assert b"mysecret123" not in blob
    assert len(blob) > len("mysecret123")

    desc = aws_json(env, "ssm", "describe-parameters",
                    "--parameter-filters", "Key=Name,Values=/prod/db/password")
    assert [m["KeyId"] for m in desc["Parameters"]] == ["alias/aws/ssm"]

    # The same put again is refused without --overwrite.
    p = aws(env, "ssm", "put-parameter", "--name", "/prod/db/password", "--value", "other",
            "--type", "SecureString", check=False)
    assert p.returncode != 0 and "ParameterAlreadyExists" in p.stderr
    p = aws(env, "ssm", "get-parameter", "--name", "/prod/db/missing", check=False)
    assert p.returncode != 0 and "ParameterNotFound" in p.stderr


def test_get_parameters_by_path_paginator(use_env):
    import boto3
    ssm = boto3.client("ssm")
    names = []
    for i in range(25):
        names.append(f"/py/app/p{i:02d}")
    for i in range(12):
        names.append(f"/py/app/nested/q{i:02d}")
    for n in names:
        ssm.put_parameter(Name=n, Value=f"value-of-{n}", Type="String")
    ssm.put_parameter(Name="/py/apple", Value="outside", Type="String")
    ssm.put_parameter(Name="/py/app/secret", Value="s3", Type="SecureString")

    pages = ssm.get_paginator("get_parameters_by_path").paginate(
        Path="/py/app", Recursive=True, WithDecryption=True,
        PaginationConfig={"PageSize": 10})
    seen = []
    page_count = 0
    for page in pages:
        page_count += 1
        assert len(page["Parameters"]) <= 10
        seen.extend(page["Parameters"])
    got = sorted(p["Name"] for p in seen)
    assert got == sorted(names + ["/py/app/secret"])
    assert page_count >= 4
    by_name = {p["Name"]: p["Value"] for p in seen}
    assert by_name["/py/app/secret"] == "s3"
    assert by_name["/py/app/p07"] == "value-of-/py/app/p07"

    one_level = [p["Name"]
                 for page in ssm.get_paginator("get_parameters_by_path").paginate(
                     Path="/py/app", PaginationConfig={"PageSize": 7})
                 for p in page["Parameters"]]
    assert sorted(one_level) == sorted([n for n in names if "/nested/" not in n]
                                       + ["/py/app/secret"])

    # The CLI pages through on its own too.
    env = use_env
    listed = aws_json(env, "ssm", "get-parameters-by-path", "--path", "/py/app/nested",
                      "--page-size", "5")
    assert sorted(p["Name"] for p in listed["Parameters"]) == sorted(
        n for n in names if "/nested/" in n)
