"""Least privilege through the aws CLI (issue 5, item 6): a user with a path-scoped Parameter
Store policy, a role session that can read exactly one secret, tag-based access (ABAC), and a
secret's resource policy granting another principal. Every grant is checked from both sides: what
it allows succeeds, what it does not is refused with AWS's AccessDeniedException."""

import json
import time

from test_dropin import aws, aws_json
from test_iam import ACCOUNT, as_principal


def denied(env, *args):
    """Runs a call that must be refused; returns the CLI's error text."""
    p = aws(env, *args, check=False)
    assert p.returncode != 0, f"allowed: {args}"
    assert "AccessDenied" in p.stderr, p.stderr
    return p.stderr


def policy(*statements):
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def user_with_key(env, name, *, tags=None):
    args = ["iam", "create-user", "--user-name", name]
    if tags:
        args += ["--tags", *[f"Key={k},Value={v}" for k, v in tags.items()]]
    arn = aws_json(env, *args)["User"]["Arn"]
    key = aws_json(env, "iam", "create-access-key", "--user-name", name)["AccessKey"]
    return arn, as_principal(env, key["AccessKeyId"], key["SecretAccessKey"])


def eventually(check, timeout=5.0):
    """IAM is eventually consistent across nodes (about a second here); a fresh grant is
    retried briefly, as AWS's own documentation advises."""
    deadline = time.time() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.time() > deadline:
                raise
            time.sleep(0.2)


def test_path_scoped_user_reads_prod_not_dev(coffer_env):
    root = coffer_env
    for env_name in ("prod", "dev"):
        aws(root, "ssm", "put-parameter", "--name", f"/{env_name}/db/password",
            "--value", f"{env_name}-pw", "--type", "SecureString", "--key-id", "alias/aws/ssm")
    arn, alice = user_with_key(root, "path-alice")
    # The path's own ARN (parameter/prod) is what GetParametersByPath decides on; its
    # parameters are parameter/prod/...
    aws(root, "iam", "put-user-policy", "--user-name", "path-alice", "--policy-name", "prod",
        "--policy-document", policy({
            "Effect": "Allow",
            "Action": ["ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath"],
            "Resource": ["arn:aws:ssm:*:*:parameter/prod", "arn:aws:ssm:*:*:parameter/prod/*"]}))

    def reads_prod():
        got = aws(alice, "ssm", "get-parameter", "--name", "/prod/db/password",
                  "--with-decryption", check=False)
        assert got.returncode == 0, got.stderr
        return json.loads(got.stdout)

    # SecureString under the AWS managed key: its key policy lets the account's principals
    # decrypt through SSM, so no kms:Decrypt grant is needed.
    assert eventually(reads_prod)["Parameter"]["Value"] == "prod-pw"
    by_path = aws_json(alice, "ssm", "get-parameters-by-path", "--path", "/prod",
                       "--recursive", "--with-decryption")
    assert [p["Name"] for p in by_path["Parameters"]] == ["/prod/db/password"]

    msg = denied(alice, "ssm", "get-parameter", "--name", "/dev/db/password",
                 "--with-decryption")
    assert (f"User: {arn} is not authorized to perform: ssm:GetParameter on resource: "
            f"arn:aws:ssm:us-east-1:{ACCOUNT}:parameter/dev/db/password because no "
            "identity-based policy allows the ssm:GetParameter action") in msg, msg
    denied(alice, "ssm", "get-parameters-by-path", "--path", "/dev", "--recursive")
    # Granted actions only: writing under /prod is not among them.
    denied(alice, "ssm", "put-parameter", "--name", "/prod/db/password", "--value", "x",
           "--type", "SecureString", "--overwrite")
    # GetParameters reports per name: /dev is refused as a whole call, as AWS does.
    denied(alice, "ssm", "get-parameters", "--names", "/prod/db/password", "/dev/db/password")


def test_assumed_role_session_reads_exactly_one_secret(coffer_env):
    root = coffer_env
    one = aws_json(root, "secretsmanager", "create-secret", "--name", "role/one",
                   "--secret-string", "first")["ARN"]
    aws(root, "secretsmanager", "create-secret", "--name", "role/two", "--secret-string", "second")
    runner_arn, runner = user_with_key(root, "role-runner")
    aws(root, "iam", "put-user-policy", "--user-name", "role-runner", "--policy-name", "assume",
        "--policy-document", policy({"Effect": "Allow", "Action": "sts:AssumeRole",
                                     "Resource": f"arn:aws:iam::{ACCOUNT}:role/one-reader"}))
    role = aws_json(root, "iam", "create-role", "--role-name", "one-reader",
                    "--assume-role-policy-document", policy({
                        "Effect": "Allow", "Principal": {"AWS": runner_arn},
                        "Action": "sts:AssumeRole"}))["Role"]
    aws(root, "iam", "put-role-policy", "--role-name", "one-reader", "--policy-name", "one",
        "--policy-document", policy({"Effect": "Allow",
                                     "Action": "secretsmanager:GetSecretValue",
                                     "Resource": one}))
    # The user itself holds no secrets permission.
    denied(runner, "secretsmanager", "get-secret-value", "--secret-id", "role/one")

    def assume():
        p = aws(runner, "sts", "assume-role", "--role-arn", role["Arn"],
                "--role-session-name", "deploy", check=False)
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout)

    out = eventually(assume)
    creds = out["Credentials"]
    session = as_principal(root, creds["AccessKeyId"], creds["SecretAccessKey"],
                           creds["SessionToken"])
    got = aws_json(session, "secretsmanager", "get-secret-value", "--secret-id", "role/one")
    assert got["SecretString"] == "first"
    msg = denied(session, "secretsmanager", "get-secret-value", "--secret-id", "role/two")
    assert f"arn:aws:sts::{ACCOUNT}:assumed-role/one-reader/deploy" in msg, msg
    denied(session, "secretsmanager", "put-secret-value", "--secret-id", "role/one",
           "--secret-string", "changed")
    # A session without the token is not a session.
    no_token = as_principal(root, creds["AccessKeyId"], creds["SecretAccessKey"])
    p = aws(no_token, "secretsmanager", "get-secret-value", "--secret-id", "role/one",
            check=False)
    assert p.returncode != 0 and "first" not in p.stdout


def test_abac_principal_tag_must_match_resource_tag(coffer_env):
    root = coffer_env
    for name, team in (("abac/blue", "blue"), ("abac/red", "red")):
        aws(root, "secretsmanager", "create-secret", "--name", name, "--secret-string", team,
            "--tags", f"Key=team,Value={team}")
    aws(root, "secretsmanager", "create-secret", "--name", "abac/none", "--secret-string", "x")
    _, blue = user_with_key(root, "abac-blue", tags={"team": "blue"})
    aws(root, "iam", "put-user-policy", "--user-name", "abac-blue", "--policy-name", "team",
        "--policy-document", policy({
            "Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "*",
            "Condition": {"StringEquals": {
                "secretsmanager:ResourceTag/team": "${aws:PrincipalTag/team}"}}}))

    def reads_blue():
        p = aws(blue, "secretsmanager", "get-secret-value", "--secret-id", "abac/blue",
                check=False)
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout)

    assert eventually(reads_blue)["SecretString"] == "blue"
    denied(blue, "secretsmanager", "get-secret-value", "--secret-id", "abac/red")
    denied(blue, "secretsmanager", "get-secret-value", "--secret-id", "abac/none")
    # Retagging the resource moves access with it.
    aws(root, "secretsmanager", "tag-resource", "--secret-id", "abac/red",
        "--tags", "Key=team,Value=blue")
    assert aws_json(blue, "secretsmanager", "get-secret-value",
                    "--secret-id", "abac/red")["SecretString"] == "red"


def test_resource_policy_grants_and_denies_another_principal(coffer_env):
    root = coffer_env
    bob_arn, bob = user_with_key(root, "rp-bob")
    carol_arn, carol = user_with_key(root, "rp-carol")
    shared = aws_json(root, "secretsmanager", "create-secret", "--name", "rp/shared",
                      "--secret-string", "for-bob")["ARN"]
    aws(root, "secretsmanager", "create-secret", "--name", "rp/private", "--secret-string", "no")
    # Bob has no identity policy at all: the secret's resource policy alone grants him.
    aws(root, "secretsmanager", "put-resource-policy", "--secret-id", "rp/shared",
        "--resource-policy", policy(
            {"Effect": "Allow", "Principal": {"AWS": bob_arn},
             "Action": "secretsmanager:GetSecretValue", "Resource": "*"},
            {"Effect": "Deny", "Principal": {"AWS": carol_arn},
             "Action": "secretsmanager:*", "Resource": "*"}))
    got = aws_json(bob, "secretsmanager", "get-secret-value", "--secret-id", "rp/shared")
    assert got["SecretString"] == "for-bob"
    denied(bob, "secretsmanager", "get-secret-value", "--secret-id", "rp/private")
    denied(bob, "secretsmanager", "describe-secret", "--secret-id", "rp/shared")

    # Carol may read every secret by her identity policy, but the resource policy's explicit
    # Deny wins over it.
    aws(root, "iam", "put-user-policy", "--user-name", "rp-carol", "--policy-name", "all",
        "--policy-document", policy({"Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
                                     "Resource": "*"}))

    def carol_reads_private():
        p = aws(carol, "secretsmanager", "get-secret-value", "--secret-id", "rp/private",
                check=False)
        assert p.returncode == 0, p.stderr

    eventually(carol_reads_private)
    msg = denied(carol, "secretsmanager", "get-secret-value", "--secret-id", "rp/shared")
    assert "with an explicit deny in a resource-based policy" in msg, msg
    assert shared.split(":secret:")[1] in msg, msg
