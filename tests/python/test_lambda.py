"""A rotation function deployed the way AWS users deploy one: `aws lambda create-function
--zip-file fileb://...`, invoked with `aws lambda invoke`, then named by RotateSecret. The
server runs functions with COFFER_LAMBDA_PYTHON or the `python3` on its PATH (scripts/test puts
the venv's, which has boto3, first)."""

import json
import pathlib
import time
import zipfile

from test_dropin import aws, aws_json

FIXTURE = pathlib.Path(__file__).resolve().parents[1] / "e2e/tests/e2e/fixtures/file_rotator.py"
TRUST = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
         "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "secretsmanager:*",
          "Resource": "*"}]}

HELLO = '''
import os
def handler(event, context):
    print("hello log")
    return {"echo": event, "function": context.function_name, "greeting": os.environ["GREETING"]}
def fail(event, context):
    raise KeyError("missing")
'''


def _zip(path, name, source):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(name, source)
    return "fileb://%s" % path


def test_create_function_from_a_zip_file_and_rotate_with_it(coffer_env, tmp_path):
    env = coffer_env
    role = aws_json(env, "iam", "create-role", "--role-name", "lambda-rotation",
                    "--assume-role-policy-document", json.dumps(TRUST))["Role"]["Arn"]
    aws(env, "iam", "put-role-policy", "--role-name", "lambda-rotation", "--policy-name", "sm",
        "--policy-document", json.dumps(POLICY))

    created = aws_json(env, "lambda", "create-function", "--function-name", "hello",
                       "--runtime", "python3.12", "--role", role, "--handler", "app.handler",
                       "--zip-file", _zip(tmp_path / "hello.zip", "app.py", HELLO),
                       "--environment", "Variables={GREETING=hi}")
    assert created["FunctionArn"].endswith(":function:hello")
    assert created["Timeout"] == 3
    out = tmp_path / "out.json"
    result = aws_json(env, "lambda", "invoke", "--function-name", "hello",
                      "--payload", '{"a": 1}', "--log-type", "Tail", str(out))
    assert result["StatusCode"] == 200 and "FunctionError" not in result
    assert json.loads(out.read_text()) == {"echo": {"a": 1}, "function": "hello", "greeting": "hi"}
    aws(env, "lambda", "update-function-configuration", "--function-name", "hello",
        "--handler", "app.fail")
    result = aws_json(env, "lambda", "invoke", "--function-name", "hello", str(out))
    assert result["FunctionError"] == "Unhandled"
    assert json.loads(out.read_text())["errorType"] == "KeyError"
    p = aws(env, "lambda", "get-function", "--function-name", "nope", check=False)
    assert p.returncode != 0 and "ResourceNotFoundException" in p.stderr

    # A rotation function in AWS's template style, deployed with the CLI.
    fn = aws_json(env, "lambda", "create-function", "--function-name", "file-rotator",
                  "--runtime", "python3.12", "--role", role,
                  "--handler", "file_rotator.lambda_handler", "--timeout", "30",
                  "--zip-file", _zip(tmp_path / "rot.zip", "file_rotator.py", FIXTURE.read_text()))
    aws(env, "lambda", "add-permission", "--function-name", "file-rotator",
        "--statement-id", "sm", "--action", "lambda:InvokeFunction",
        "--principal", "secretsmanager.amazonaws.com")
    keyfile = tmp_path / "service.key"
    keyfile.write_text("initial-key")
    aws(env, "secretsmanager", "create-secret", "--name", "svc/api-key", "--secret-string",
        json.dumps({"apikey": "initial-key", "keyfile": str(keyfile)}))
    aws(env, "secretsmanager", "rotate-secret", "--secret-id", "svc/api-key",
        "--rotation-lambda-arn", fn["FunctionArn"],
        "--rotation-rules", "AutomaticallyAfterDays=7")
    deadline = time.time() + 60
    while time.time() < deadline:
        value = json.loads(aws_json(env, "secretsmanager", "get-secret-value",
                                    "--secret-id", "svc/api-key")["SecretString"])
        if value["apikey"] != "initial-key":
            break
        time.sleep(0.5)
    assert value["apikey"] != "initial-key", "not rotated"
    assert keyfile.read_text() == value["apikey"]
