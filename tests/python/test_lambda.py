"""A rotation function deployed the way AWS users deploy one: `aws lambda create-function
--zip-file fileb://...`, invoked with `aws lambda invoke`, then named by RotateSecret. The
server runs functions with COFFER_LAMBDA_PYTHON or the `python3` on its PATH (scripts/test puts
the venv's, which has boto3, first)."""

import importlib
import json
import os
import pathlib
import subprocess
import time
import zipfile

import pytest

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


def _psql(sql, check=True):
    p = subprocess.run(["psql", "-h", "127.0.0.1", "-p", "5432", "-U", "postgres", "-d", "postgres",
                        "-v", "ON_ERROR_STOP=1", "-tAc", sql], capture_output=True, text=True, timeout=30)
    if check:
        assert p.returncode == 0, p.stderr
    return p.stdout.strip()


def _postgres_available():
    try:
        _psql("SELECT 1")
        return True
    except (OSError, AssertionError):
        if os.environ.get("CI"):
            raise
        return False


def _bundle(zip_path, handler_file, modules):
    """The handler plus its dependencies' packages from this interpreter, as `pip install -t`
    and `zip -r` would put them in a function's zip."""
    with zipfile.ZipFile(zip_path, "w") as z:
        z.write(handler_file, handler_file.name)
        for name in modules:
            mod = importlib.import_module(name)
            path = pathlib.Path(mod.__file__)
            if path.name == "__init__.py":
                root = path.parent
                for f in root.rglob("*.py"):
                    z.write(f, str(pathlib.Path(name) / f.relative_to(root)))
            else:
                z.write(path, path.name)
    return "fileb://%s" % zip_path


def test_postgresql_single_user_rotation_with_a_deployed_function(coffer_env, tmp_path):
    if not _postgres_available():
        pytest.skip("PostgreSQL at 127.0.0.1:5432 (and psql) is not available")
    env = coffer_env
    user = "lambda_rot_%d" % (time.time_ns() % 10**9)
    _psql("CREATE ROLE %s LOGIN PASSWORD 'initial-password-1'" % user)
    try:
        before = _psql("SELECT rolpassword FROM pg_authid WHERE rolname = '%s'" % user)
        role = aws_json(env, "iam", "create-role", "--role-name", "pg-rotation",
                        "--assume-role-policy-document", json.dumps(TRUST))["Role"]["Arn"]
        aws(env, "iam", "put-role-policy", "--role-name", "pg-rotation", "--policy-name", "sm",
            "--policy-document", json.dumps(POLICY))
        code = _bundle(tmp_path / "pg.zip", pathlib.Path(__file__).with_name("pg_rotator.py"),
                       ["pg8000", "scramp", "asn1crypto", "dateutil", "six"])
        fn = aws_json(env, "lambda", "create-function", "--function-name", "pg-single-user",
                      "--runtime", "python3.12", "--role", role, "--timeout", "30",
                      "--handler", "pg_rotator.lambda_handler", "--zip-file", code)
        aws(env, "secretsmanager", "create-secret", "--name", "prod/pg/app", "--secret-string",
            json.dumps({"engine": "postgres", "host": "127.0.0.1", "port": 5432, "username": user,
                        "password": "initial-password-1", "dbname": "postgres"}))
        aws(env, "secretsmanager", "rotate-secret", "--secret-id", "prod/pg/app",
            "--rotation-lambda-arn", fn["FunctionArn"],
            "--rotation-rules", "AutomaticallyAfterDays=30")
        deadline = time.time() + 60
        while time.time() < deadline:
            d = aws_json(env, "secretsmanager", "describe-secret", "--secret-id", "prod/pg/app")
            if "LastRotatedDate" in d:
                break
            time.sleep(0.5)
        assert "LastRotatedDate" in d, d
        new = json.loads(aws_json(env, "secretsmanager", "get-secret-value",
                                  "--secret-id", "prod/pg/app")["SecretString"])
        assert new["password"] != "initial-password-1"
        previous = json.loads(aws_json(env, "secretsmanager", "get-secret-value", "--secret-id",
                                       "prod/pg/app", "--version-stage", "AWSPREVIOUS")["SecretString"])
        assert previous["password"] == "initial-password-1"
        # Under `trust` authentication (this suite's database) any password logs in, so the
        # template's setSecret finds the pending one already valid and leaves the role alone,
        # as AWS's would; with password authentication the change must show.
        trusting = _psql("SELECT count(*) FROM pg_hba_file_rules WHERE auth_method = 'trust' "
                         "AND type = 'host'") != "0"
        after = _psql("SELECT rolpassword FROM pg_authid WHERE rolname = '%s'" % user)
        assert trusting or after != before, "the database password did not change"
    finally:
        _psql("DROP ROLE IF EXISTS %s" % user, check=False)
