#!/usr/bin/env python3
"""Authorization benchmark (issue 5, item 7): GetSecretValue throughput of a non-root IAM user
holding 10 attached managed policies of 10 statements each, against the account root's, in the same run
on the same durable server. Target: user >= 80% of root.

The user's 100 statements are shaped like real ones: most name other services' actions, other
secret prefixes or carry conditions that do not hold; the grant for the load tool's secrets
(`load/*`: CreateSecret for setup, GetSecretValue, DeleteSecret for cleanup) is the last
statement of the last policy, so every decision scans all of them.

usage: authz_gate.py [--duration S] [--connections N] [--threads T] [--bin DIR] [--port P]
Needs boto3 (target/py-venv). Only loopback; the server and temp dir are removed on exit.
"""
import json, os, shutil, sys, tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gate import KEY_ID, SECRET, bench_env, measure, parser, start_server, stop_server  # noqa: E402

TARGET = 0.8


def statements(p):
    out = []
    for s in range(10):
        if p == 9 and s == 9:
            out.append({"Effect": "Allow",
                        "Action": ["secretsmanager:CreateSecret", "secretsmanager:GetSecretValue",
                                   "secretsmanager:DeleteSecret"],
                        "Resource": "arn:aws:secretsmanager:*:*:secret:load/*"})
        elif s % 3 == 0:
            out.append({"Effect": "Allow", "Action": "ssm:GetParameter*",
                        "Resource": f"arn:aws:ssm:*:*:parameter/team{p}/{s}/*"})
        elif s % 3 == 1:
            out.append({"Effect": "Allow", "Action": ["secretsmanager:Get*", "secretsmanager:List*"],
                        "Resource": f"arn:aws:secretsmanager:*:*:secret:other{p}-{s}/*"})
        else:
            out.append({"Effect": "Deny", "Action": "secretsmanager:DeleteSecret", "Resource": "*",
                        "Condition": {"StringEquals": {"aws:ResourceTag/protected": f"p{p}{s}"}}})
    return {"Version": "2012-10-17", "Statement": out}


def make_user(port):
    import boto3
    iam = boto3.client("iam", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                       aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET)
    iam.create_user(UserName="bench")
    # Customer managed policies: ten inline ones of this size exceed IAM's 2,048-character
    # inline quota per user, as on AWS.
    for p in range(10):
        arn = iam.create_policy(PolicyName=f"bench-p{p}",
                                PolicyDocument=json.dumps(statements(p)))["Policy"]["Arn"]
        iam.attach_user_policy(UserName="bench", PolicyArn=arn)
    k = iam.create_access_key(UserName="bench")["AccessKey"]
    return k["AccessKeyId"], k["SecretAccessKey"]


def main():
    ap = parser(4793)
    a = ap.parse_args()

    env = bench_env()
    data = tempfile.mkdtemp(prefix="coffer-authz-bench-")
    server = start_server(a, env, data, os.path.join(data, "server.log"))
    try:
        user_id, user_secret = make_user(a.port)
        user_env = dict(env, AWS_ACCESS_KEY_ID=user_id, AWS_SECRET_ACCESS_KEY=user_secret)
        root = measure(a, server, env, "get-secret-value")
        user = measure(a, server, user_env, "get-secret-value")
    finally:
        stop_server(server)
        shutil.rmtree(data, ignore_errors=True)
    ratio = user["rps"] / root["rps"] if root["rps"] else 0.0
    ok = ratio >= TARGET and user["errors"] == 0 and root["errors"] == 0
    print(f"GetSecretValue user(10x10 statements)/root = {100 * ratio:.1f}% "
          f"(target >= {100 * TARGET:.0f}%): {'MET' if ok else 'MISSED'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
