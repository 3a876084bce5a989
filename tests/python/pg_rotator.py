"""A PostgreSQL single-user rotation function in the style of AWS's rotation templates
(SecretsManagerRDSPostgreSQLRotationSingleUser), written for this suite on pg8000 (pure Python,
bundled into the function's zip as a user would bundle their dependencies). Same protocol: the
entry checks on RotationEnabled and the token's stages, then createSecret (a new password from
GetRandomPassword, staged AWSPENDING), setSecret (ALTER USER as the user itself), testSecret
(log in with the pending password) and finishSecret (move AWSCURRENT)."""
import json
import logging
import os

import boto3
import pg8000.native

logger = logging.getLogger()
logger.setLevel(logging.INFO)


def lambda_handler(event, context):
    arn = event["SecretId"]
    token = event["ClientRequestToken"]
    step = event["Step"]
    service_client = boto3.client("secretsmanager", endpoint_url=os.environ["SECRETS_MANAGER_ENDPOINT"])

    metadata = service_client.describe_secret(SecretId=arn)
    if "RotationEnabled" in metadata and not metadata["RotationEnabled"]:
        raise ValueError("Secret %s is not enabled for rotation" % arn)
    versions = metadata["VersionIdsToStages"]
    if token not in versions:
        raise ValueError("Secret version %s has no stage for rotation of secret %s." % (token, arn))
    if "AWSCURRENT" in versions[token]:
        logger.info("Secret version %s already set as AWSCURRENT for secret %s.", token, arn)
        return
    elif "AWSPENDING" not in versions[token]:
        raise ValueError("Secret version %s not set as AWSPENDING for rotation of secret %s." % (token, arn))

    if step == "createSecret":
        create_secret(service_client, arn, token)
    elif step == "setSecret":
        set_secret(service_client, arn, token)
    elif step == "testSecret":
        test_secret(service_client, arn, token)
    elif step == "finishSecret":
        finish_secret(service_client, arn, token)
    else:
        raise ValueError("Invalid step parameter")


def get_secret_dict(service_client, arn, stage, token=None):
    if token:
        value = service_client.get_secret_value(SecretId=arn, VersionId=token, VersionStage=stage)
    else:
        value = service_client.get_secret_value(SecretId=arn, VersionStage=stage)
    secret = json.loads(value["SecretString"])
    for field in ["engine", "host", "username", "password"]:
        if field not in secret:
            raise KeyError("%s key is missing from secret JSON" % field)
    return secret


def connect(secret):
    try:
        return pg8000.native.Connection(user=secret["username"], password=secret["password"],
                                        host=secret["host"], port=int(secret.get("port", 5432)),
                                        database=secret.get("dbname", "postgres"), timeout=5)
    except pg8000.native.DatabaseError:
        return None


def create_secret(service_client, arn, token):
    current = get_secret_dict(service_client, arn, "AWSCURRENT")
    try:
        get_secret_dict(service_client, arn, "AWSPENDING", token)
        logger.info("createSecret: Successfully retrieved secret for %s.", arn)
    except service_client.exceptions.ResourceNotFoundException:
        current["password"] = service_client.get_random_password(
            ExcludeCharacters=os.environ.get("EXCLUDE_CHARACTERS", "/@\"'\\"))["RandomPassword"]
        service_client.put_secret_value(SecretId=arn, ClientRequestToken=token,
                                        SecretString=json.dumps(current), VersionStages=["AWSPENDING"])
        logger.info("createSecret: Successfully put secret for ARN %s and version %s.", arn, token)


def set_secret(service_client, arn, token):
    pending = get_secret_dict(service_client, arn, "AWSPENDING", token)
    conn = connect(pending)
    if conn:
        conn.close()
        logger.info("setSecret: AWSPENDING secret is already set as password in PostgreSQL DB for secret arn %s.", arn)
        return
    current = get_secret_dict(service_client, arn, "AWSCURRENT")
    if current["username"] != pending["username"]:
        raise ValueError("Attempting to modify user %s other than current user %s" % (pending["username"], current["username"]))
    conn = connect(current)
    if not conn:
        raise ValueError("Unable to log into database with previous, current, or pending secret of secret arn %s" % arn)
    try:
        conn.run("ALTER USER %s WITH PASSWORD %s" % (pg8000.native.identifier(pending["username"]),
                                                      pg8000.native.literal(pending["password"])))
        logger.info("setSecret: Successfully set password for user %s in PostgreSQL DB for secret arn %s.", pending["username"], arn)
    finally:
        conn.close()


def test_secret(service_client, arn, token):
    conn = connect(get_secret_dict(service_client, arn, "AWSPENDING", token))
    if not conn:
        raise ValueError("Unable to log into database with pending secret of secret ARN %s" % arn)
    try:
        conn.run("SELECT NOW()")
        logger.info("testSecret: Successfully signed into PostgreSQL DB with AWSPENDING secret in %s.", arn)
    finally:
        conn.close()


def finish_secret(service_client, arn, token):
    metadata = service_client.describe_secret(SecretId=arn)
    current_version = None
    for version in metadata["VersionIdsToStages"]:
        if "AWSCURRENT" in metadata["VersionIdsToStages"][version]:
            if version == token:
                logger.info("finishSecret: Version %s already marked as AWSCURRENT for %s", version, arn)
                return
            current_version = version
            break
    service_client.update_secret_version_stage(SecretId=arn, VersionStage="AWSCURRENT",
                                               MoveToVersionId=token, RemoveFromVersionId=current_version)
    logger.info("finishSecret: Successfully set AWSCURRENT stage to version %s for secret %s.", token, arn)
