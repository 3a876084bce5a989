"""A rotation function deployed the way AWS users deploy one: `aws lambda create-function
--zip-file fileb://...`, invoked with `aws lambda invoke`, then named by RotateSecret. The
server runs functions with COFFER_LAMBDA_PYTHON or the `python3` on its PATH (scripts/test puts
the venv's, which has boto3, first)."""

import importlib
import importlib.util
import json
import os
import pathlib
import time
import zipfile

import pytest

import pg_cluster
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


def _cluster_available():
    if pg_cluster.bindir():
        return True
    if os.environ.get("CI"):
        raise AssertionError("CI: PostgreSQL's server binaries (initdb, pg_ctl) are missing")
    return False


def _bundle(zip_path, handler_file, modules):
    """The handler plus its dependencies' packages from this interpreter (compiled extensions
    included), as `pip install -t` and `zip -r` would put them in a function's zip."""
    with zipfile.ZipFile(zip_path, "w") as z:
        z.write(handler_file, handler_file.name)
        for name in modules:
            mod = importlib.import_module(name)
            path = pathlib.Path(mod.__file__)
            if path.name == "__init__.py":
                root = path.parent
                for f in root.rglob("*"):
                    if f.is_file() and "__pycache__" not in f.parts:
                        z.write(f, str(pathlib.Path(name) / f.relative_to(root)))
            else:
                z.write(path, path.name)
    return "fileb://%s" % zip_path


def _rotate_a_database_user(env, tmp_path, handler_file, modules):
    """Deploys `handler_file` (with `modules`) as a rotation function, rotates a login role of a
    private password-authenticated PostgreSQL with it, and checks the change took effect in
    the database: the new AWSCURRENT logs in, the old password (now AWSPREVIOUS) does not."""
    user = "lambda_rot_%d" % (time.time_ns() % 10**9)
    with pg_cluster.scram_cluster() as pg:
        admin = pg.connect()
        admin.run("CREATE ROLE %s LOGIN PASSWORD 'initial-password-1'" % user)
        admin.close()
        assert pg.logs_in(user, "initial-password-1")
        # The suite shares one server: names are this test's own.
        role = aws_json(env, "iam", "create-role", "--role-name", user,
                        "--assume-role-policy-document", json.dumps(TRUST))["Role"]["Arn"]
        aws(env, "iam", "put-role-policy", "--role-name", user, "--policy-name", "sm",
            "--policy-document", json.dumps(POLICY))
        secret = "prod/pg/" + user
        code = _bundle(tmp_path / "pg.zip", handler_file, modules)
        handler = handler_file.stem + ".lambda_handler"
        fn = aws_json(env, "lambda", "create-function", "--function-name", user,
                      "--runtime", "python3.12", "--role", role, "--timeout", "30",
                      "--handler", handler, "--zip-file", code)
        aws(env, "secretsmanager", "create-secret", "--name", secret, "--secret-string",
            json.dumps({"engine": "postgres", "host": pg.host, "port": pg.port, "username": user,
                        "password": "initial-password-1", "dbname": "postgres"}))
        aws(env, "secretsmanager", "rotate-secret", "--secret-id", secret,
            "--rotation-lambda-arn", fn["FunctionArn"],
            "--rotation-rules", "AutomaticallyAfterDays=30")
        deadline = time.time() + 60
        while time.time() < deadline:
            d = aws_json(env, "secretsmanager", "describe-secret", "--secret-id", secret)
            if "LastRotatedDate" in d:
                break
            time.sleep(0.5)
        assert "LastRotatedDate" in d, d
        new = json.loads(aws_json(env, "secretsmanager", "get-secret-value",
                                  "--secret-id", secret)["SecretString"])
        assert new["password"] != "initial-password-1"
        previous = json.loads(aws_json(env, "secretsmanager", "get-secret-value", "--secret-id",
                                       secret, "--version-stage", "AWSPREVIOUS")["SecretString"])
        assert previous["password"] == "initial-password-1"
        assert pg.logs_in(user, new["password"]), "the new AWSCURRENT does not log in"
        assert not pg.logs_in(user, "initial-password-1"), "the old password still logs in"


def test_postgresql_single_user_rotation_with_a_deployed_function(coffer_env, tmp_path):
    if not _cluster_available():
        pytest.skip("PostgreSQL's server binaries (initdb, pg_ctl) are not installed")
    _rotate_a_database_user(coffer_env, tmp_path,
                            pathlib.Path(__file__).with_name("pg_rotator.py"),
                            ["pg8000", "scramp", "asn1crypto", "dateutil", "six"])


def test_aws_published_postgresql_rotation_function_runs_unchanged(coffer_env, tmp_path):
    """AWS's own SecretsManagerRDSPostgreSQLRotationSingleUser (aws-samples/
    aws-secrets-manager-rotation-lambdas), which this repository does not carry: point
    COFFER_AWS_ROTATION_FUNCTION at its lambda_function.py and install its dependency (PyGreSQL)
    in the suite's venv; the file is deployed as is, with PyGreSQL bundled as in its zip."""
    path = os.environ.get("COFFER_AWS_ROTATION_FUNCTION")
    if not path:
        pytest.skip("COFFER_AWS_ROTATION_FUNCTION (AWS's lambda_function.py) is not set")
    pytest.importorskip("pgdb", reason="PyGreSQL is not installed in the suite's venv")
    if not _cluster_available():
        pytest.skip("PostgreSQL's server binaries (initdb, pg_ctl) are not installed")
    # PyGreSQL 5 (the template's pin) is two modules and their C extension; 6 is one package.
    modules = ["pg", "pgdb"] + (["_pg"] if importlib.util.find_spec("_pg") else [])
    _rotate_a_database_user(coffer_env, tmp_path, pathlib.Path(path), modules)
