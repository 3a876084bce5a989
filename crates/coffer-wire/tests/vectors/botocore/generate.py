"""Writes requests signed by botocore's own SigV4 signer (the one boto3 and the aws CLI use), as
fixtures for coffer-wire's verifier. Re-run with the suite's venv:
    target/py-venv/bin/python crates/coffer-wire/tests/vectors/botocore/generate.py
"""

import datetime
import json
import os
import botocore.auth
import botocore.awsrequest
import botocore.credentials

HERE = os.path.dirname(os.path.abspath(__file__))
AKID = "AKIDEXAMPLEBOTOCORE1"
SECRET = "botocore/fixture/secret+key/000000000000"

CASES = [
    ("get-secret-value", "us-east-1", "secretsmanager", "/",
     {"X-Amz-Target": "secretsmanager.GetSecretValue"}, b'{"SecretId": "MySecret"}', None),
    ("create-secret-unicode", "eu-west-3", "secretsmanager", "/",
     {"X-Amz-Target": "secretsmanager.CreateSecret", "X-Extra": "  spaced   value  "},
     '{"Name": "caf\u00e9/db", "SecretString": "p\u00e4ss"}'.encode(), None),
    ("with-session-token", "cn-north-1", "secretsmanager", "/",
     {"X-Amz-Target": "secretsmanager.ListSecrets"}, b"{}", "session-token-value"),
]


def main():
    for name, region, service, path, headers, body, token in CASES:
        creds = botocore.credentials.Credentials(AKID, SECRET, token)
        req = botocore.awsrequest.AWSRequest(
            method="POST", url=f"https://secrets.example.com{path}", data=body,
            headers={"Content-Type": "application/x-amz-json-1.1", **headers})
        botocore.auth.SigV4Auth(creds, service, region).add_auth(req)
        # The verifier is given the signing time as "now".
        signed_at = datetime.datetime.strptime(req.headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ")
        fixture = {
            "secret_access_key": SECRET,
            "now_unix_secs": int(signed_at.replace(tzinfo=datetime.timezone.utc).timestamp()),
            "method": "POST",
            "path": path,
            "headers": [[k.lower(), v] for k, v in req.headers.items()] + [["host", "secrets.example.com"]],
            "body_hex": body.hex(),
            "expect": {"access_key_id": AKID, "region": region, "service": service,
                       "session_token": token},
        }
        with open(os.path.join(HERE, f"{name}.json"), "w") as f:
            json.dump(fixture, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
