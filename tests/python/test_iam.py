"""IAM and STS with the aws CLI and boto3: users and access keys that sign requests, roles
assumed through STS, and AWS's errors."""

import json

import boto3
import pytest

from test_dropin import aws, aws_json

ACCOUNT = "000000000000"


def as_principal(env, akid, secret, token=None):
    e = dict(env)
    e["AWS_ACCESS_KEY_ID"] = akid
    e["AWS_SECRET_ACCESS_KEY"] = secret
    if token:
        e["AWS_SESSION_TOKEN"] = token
    else:
        e.pop("AWS_SESSION_TOKEN", None)
    return e


def test_cli_user_access_key_and_caller_identity(coffer_env):
    env = coffer_env
    user = aws_json(env, "iam", "create-user", "--user-name", "cli-alice", "--path", "/cli/")
    assert user["User"]["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/cli/cli-alice"
    key = aws_json(env, "iam", "create-access-key", "--user-name", "cli-alice")["AccessKey"]
    assert key["AccessKeyId"].startswith("AKIA") and key["Status"] == "Active"
    alice = as_principal(env, key["AccessKeyId"], key["SecretAccessKey"])
    me = aws_json(alice, "sts", "get-caller-identity")
    assert me == {"UserId": user["User"]["UserId"], "Account": ACCOUNT,
                  "Arn": f"arn:aws:iam::{ACCOUNT}:user/cli/cli-alice"}

    keys = aws_json(env, "iam", "list-access-keys", "--user-name", "cli-alice")
    assert [k["AccessKeyId"] for k in keys["AccessKeyMetadata"]] == [key["AccessKeyId"]]

    aws(env, "iam", "update-access-key", "--user-name", "cli-alice",
        "--access-key-id", key["AccessKeyId"], "--status", "Inactive")
    p = aws(alice, "sts", "get-caller-identity", check=False)
    assert p.returncode != 0 and "InvalidClientTokenId" in p.stderr, p.stderr

    aws(env, "iam", "delete-access-key", "--user-name", "cli-alice",
        "--access-key-id", key["AccessKeyId"])
    p = aws(alice, "sts", "get-caller-identity", check=False)
    assert "InvalidClientTokenId" in p.stderr, p.stderr
    aws(env, "iam", "delete-user", "--user-name", "cli-alice")
    p = aws(env, "iam", "get-user", "--user-name", "cli-alice", check=False)
    assert "NoSuchEntity" in p.stderr, p.stderr


def test_cli_assume_role_and_session_credentials(coffer_env):
    env = coffer_env
    trust = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/cli-bob"},
        "Action": "sts:AssumeRole"}]})
    aws(env, "iam", "create-user", "--user-name", "cli-bob")
    key = aws_json(env, "iam", "create-access-key", "--user-name", "cli-bob")["AccessKey"]
    role = aws_json(env, "iam", "create-role", "--role-name", "cli-reader",
                    "--assume-role-policy-document", trust)["Role"]
    # The CLI decodes the URL-encoded trust policy back into JSON.
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Action"] == "sts:AssumeRole"

    bob = as_principal(env, key["AccessKeyId"], key["SecretAccessKey"])
    out = aws_json(bob, "sts", "assume-role", "--role-arn", role["Arn"],
                   "--role-session-name", "nightly", "--duration-seconds", "900")
    creds = out["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA")
    assert out["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/cli-reader/nightly"
    session = as_principal(env, creds["AccessKeyId"], creds["SecretAccessKey"],
                           creds["SessionToken"])
    me = aws_json(session, "sts", "get-caller-identity")
    assert me["Arn"] == out["AssumedRoleUser"]["Arn"]

    p = aws(env, "sts", "assume-role", "--role-arn", role["Arn"], "--role-session-name", "xx",
            check=False)
    assert "AccessDenied" in p.stderr, "root is not in this trust policy"


def test_boto3_errors_are_aws_shaped(use_env):
    iam = boto3.client("iam")
    iam.create_user(UserName="b3-user")
    with pytest.raises(iam.exceptions.EntityAlreadyExistsException):
        iam.create_user(UserName="b3-user")
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_user(UserName="b3-nobody")
    with pytest.raises(iam.exceptions.MalformedPolicyDocumentException):
        iam.put_user_policy(UserName="b3-user", PolicyName="p", PolicyDocument="{not json")
    with pytest.raises(iam.exceptions.MalformedPolicyDocumentException):
        iam.create_role(RoleName="b3-role", AssumeRolePolicyDocument=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]}))
    doc = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "ssm:GetParameter", "Resource": "*"}]}
    iam.put_user_policy(UserName="b3-user", PolicyName="p", PolicyDocument=json.dumps(doc))
    got = iam.get_user_policy(UserName="b3-user", PolicyName="p")
    assert got["PolicyDocument"] == doc, "boto3 decodes the URL-encoded document"
    with pytest.raises(iam.exceptions.DeleteConflictException):
        iam.delete_user(UserName="b3-user")
    sts = boto3.client("sts")
    assert sts.get_caller_identity()["Arn"] == f"arn:aws:iam::{ACCOUNT}:root"


def test_cli_permissions_boundary_caps_a_user(coffer_env):
    env = coffer_env
    boundary = aws_json(env, "iam", "create-policy", "--policy-name", "cli-ssm-only",
                        "--policy-document", json.dumps({
                            "Version": "2012-10-17", "Statement": [{
                                "Effect": "Allow", "Action": "ssm:GetParameter",
                                "Resource": "*"}]}))["Policy"]["Arn"]
    aws(env, "ssm", "put-parameter", "--name", "/cli-bounded/p", "--value", "v",
        "--type", "String")
    user = aws_json(env, "iam", "create-user", "--user-name", "cli-carol",
                    "--permissions-boundary", boundary)["User"]
    assert user["PermissionsBoundary"] == {
        "PermissionsBoundaryType": "PermissionsBoundaryPolicy",
        "PermissionsBoundaryArn": boundary}
    aws(env, "iam", "put-user-policy", "--user-name", "cli-carol", "--policy-name", "admin",
        "--policy-document", json.dumps({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    key = aws_json(env, "iam", "create-access-key", "--user-name", "cli-carol")["AccessKey"]
    carol = as_principal(env, key["AccessKeyId"], key["SecretAccessKey"])

    got = aws_json(carol, "ssm", "get-parameter", "--name", "/cli-bounded/p")
    assert got["Parameter"]["Value"] == "v"
    p = aws(carol, "ssm", "get-parameters-by-path", "--path", "/cli-bounded", check=False)
    assert p.returncode != 0 and "no permissions boundary allows" in p.stderr, p.stderr

    used = aws_json(env, "iam", "list-entities-for-policy", "--policy-arn", boundary,
                    "--policy-usage-filter", "PermissionsBoundary")
    assert [u["UserName"] for u in used["PolicyUsers"]] == ["cli-carol"]
    p = aws(env, "iam", "delete-policy", "--policy-arn", boundary, check=False)
    assert "DeleteConflict" in p.stderr, p.stderr

    aws(env, "iam", "delete-user-permissions-boundary", "--user-name", "cli-carol")
    aws_json(carol, "ssm", "get-parameters-by-path", "--path", "/cli-bounded")
    assert "PermissionsBoundary" not in aws_json(
        env, "iam", "get-user", "--user-name", "cli-carol")["User"]
    aws(env, "iam", "delete-policy", "--policy-arn", boundary)


def test_boto3_audit_tools_read_authorization_details_and_simulate(use_env):
    """What IAM auditing tools do: page through GetAccountAuthorizationDetails with boto3's
    paginator, then ask the simulator about a principal they found."""
    iam = boto3.client("iam")
    deny = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Deny", "Action": "secretsmanager:DeleteSecret", "Resource": "*"}]}
    arn = iam.create_policy(PolicyName="b3-no-delete",
                            PolicyDocument=json.dumps(deny))["Policy"]["Arn"]
    for n in range(3):
        iam.create_user(UserName=f"b3-audit-{n}", Path="/audit/")
        iam.put_user_policy(UserName=f"b3-audit-{n}", PolicyName="sm", PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Action": "secretsmanager:*", "Resource": "*"}]}))
    iam.attach_user_policy(UserName="b3-audit-0", PolicyArn=arn)

    users, policies = [], []
    for page in iam.get_paginator("get_account_authorization_details").paginate(
            PaginationConfig={"PageSize": 2}):
        users += page["UserDetailList"]
        policies += page["Policies"]
    names = [u["UserName"] for u in users]
    assert len(names) == len(set(names)), "a page boundary repeated or lost an entity"
    mine = {u["UserName"]: u for u in users if u["Path"] == "/audit/"}
    assert sorted(mine) == ["b3-audit-0", "b3-audit-1", "b3-audit-2"]
    assert mine["b3-audit-0"]["AttachedManagedPolicies"] == [
        {"PolicyName": "b3-no-delete", "PolicyArn": arn}]
    assert mine["b3-audit-1"]["UserPolicyList"][0]["PolicyDocument"]["Statement"][0][
        "Action"] == "secretsmanager:*", "boto3 decodes the URL-encoded documents"
    assert [p["PolicyVersionList"][0]["Document"] for p in policies if p["Arn"] == arn] == [deny]

    results = iam.simulate_principal_policy(
        PolicySourceArn=mine["b3-audit-0"]["Arn"],
        ActionNames=["secretsmanager:GetSecretValue", "secretsmanager:DeleteSecret"],
    )["EvaluationResults"]
    assert [(r["EvalActionName"], r["EvalDecision"]) for r in results] == [
        ("secretsmanager:GetSecretValue", "allowed"),
        ("secretsmanager:DeleteSecret", "explicitDeny"),
    ]
    assert results[1]["MatchedStatements"][0]["SourcePolicyId"] == "b3-no-delete"


def test_cli_federation_token_credential_report_and_account_summary(coffer_env):
    env = coffer_env
    aws(env, "iam", "create-user", "--user-name", "cli-broker")
    aws(env, "iam", "put-user-policy", "--user-name", "cli-broker", "--policy-name", "b",
        "--policy-document", json.dumps({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": ["sts:GetFederationToken", "ssm:*"],
            "Resource": "*"}]}))
    key = aws_json(env, "iam", "create-access-key", "--user-name", "cli-broker")["AccessKey"]
    broker = as_principal(env, key["AccessKeyId"], key["SecretAccessKey"])
    out = aws_json(broker, "sts", "get-federation-token", "--name", "cli-fed",
                   "--policy", json.dumps({"Version": "2012-10-17", "Statement": [{
                       "Effect": "Allow", "Action": "ssm:DescribeParameters",
                       "Resource": "*"}]}))
    assert out["FederatedUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT}:federated-user/cli-fed"
    c = out["Credentials"]
    fed = as_principal(env, c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])
    aws_json(fed, "ssm", "describe-parameters")
    p = aws(fed, "ssm", "get-parameters-by-path", "--path", "/", check=False)
    assert p.returncode != 0 and "no session policy allows" in p.stderr, p.stderr

    aws_json(env, "iam", "generate-credential-report")
    report = aws_json(env, "iam", "get-credential-report")
    import base64
    csv = base64.b64decode(report["Content"]).decode()
    assert csv.splitlines()[0].startswith("user,arn,user_creation_time,")
    row = next(line for line in csv.splitlines() if line.startswith("cli-broker,"))
    assert row.split(",")[8] == "true", row  # access_key_1_active

    summary = aws_json(env, "iam", "get-account-summary")["SummaryMap"]
    assert summary["Users"] >= 1 and summary["AccessKeysPerUserQuota"] == 2
