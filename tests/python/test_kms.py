"""KMS drop-in: the aws CLI's kms commands (fileb:// blobs, aliases) and boto3 against Coffer,
with only AWS_ENDPOINT_URL, keys and region in the environment."""

import base64

import boto3
import pytest
from botocore.exceptions import ClientError

from test_dropin import aws, aws_json


def test_cli_encrypt_decrypt_with_fileb_and_aliases(coffer_env, tmp_path):
    env = coffer_env
    key = aws_json(env, "kms", "create-key", "--description", "cli key")["KeyMetadata"]
    assert key["KeyState"] == "Enabled"
    assert key["KeyManager"] == "CUSTOMER"
    aws(env, "kms", "create-alias", "--alias-name", "alias/cli-app",
        "--target-key-id", key["KeyId"])

    plain = tmp_path / "plain.txt"
    plain.write_bytes(b"top secret \x00\xff bytes")
    # The documented pattern: encrypt a file, keep the raw ciphertext, decrypt it back.
    out = aws_json(env, "kms", "encrypt", "--key-id", "alias/cli-app",
                   "--plaintext", f"fileb://{plain}",
                   "--encryption-context", "purpose=test")
    assert out["KeyId"] == key["Arn"]
    blob = tmp_path / "cipher.bin"
    blob.write_bytes(base64.b64decode(out["CiphertextBlob"]))
    dec = aws_json(env, "kms", "decrypt", "--ciphertext-blob", f"fileb://{blob}",
                   "--encryption-context", "purpose=test")
    assert base64.b64decode(dec["Plaintext"]) == plain.read_bytes()
    assert dec["KeyId"] == key["Arn"]

    # --query/--output text piped through base64, as the KMS docs show.
    text = aws(env, "kms", "decrypt", "--ciphertext-blob", f"fileb://{blob}",
               "--encryption-context", "purpose=test",
               "--query", "Plaintext", "--output", "text").stdout.strip()
    assert base64.b64decode(text) == plain.read_bytes()

    # The wrong context fails with KMS's error.
    p = aws(env, "kms", "decrypt", "--ciphertext-blob", f"fileb://{blob}", check=False)
    assert p.returncode != 0
    assert "InvalidCiphertextException" in p.stderr

    aliases = aws_json(env, "kms", "list-aliases")["Aliases"]
    names = {a["AliasName"]: a.get("TargetKeyId") for a in aliases}
    assert names["alias/cli-app"] == key["KeyId"]
    assert "alias/aws/secretsmanager" in names and "alias/aws/ssm" in names

    p = aws(env, "kms", "create-alias", "--alias-name", "alias/aws/mine",
            "--target-key-id", key["KeyId"], check=False)
    assert p.returncode != 0
    assert "InvalidAliasNameException" in p.stderr


def test_boto3_data_keys_and_states(use_env):
    kms = boto3.client("kms")
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    dk = kms.generate_data_key(KeyId=key_id, KeySpec="AES_256")
    assert len(dk["Plaintext"]) == 32
    assert kms.decrypt(CiphertextBlob=dk["CiphertextBlob"])["Plaintext"] == dk["Plaintext"]

    kms.disable_key(KeyId=key_id)
    with pytest.raises(ClientError) as e:
        kms.decrypt(CiphertextBlob=dk["CiphertextBlob"])
    assert e.value.response["Error"]["Code"] == "DisabledException"
    kms.enable_key(KeyId=key_id)

    with pytest.raises(ClientError) as e:
        kms.encrypt(KeyId=key_id, Plaintext=b"x" * 4097)
    assert e.value.response["Error"]["Code"] == "ValidationException"

    # Secrets Manager on the customer key, through boto3.
    sm = boto3.client("secretsmanager")
    sm.create_secret(Name="kms-backed", KmsKeyId=key_id, SecretString="v")
    assert sm.get_secret_value(SecretId="kms-backed")["SecretString"] == "v"
    kms.disable_key(KeyId=key_id)
    with pytest.raises(ClientError) as e:
        sm.get_secret_value(SecretId="kms-backed")
    assert e.value.response["Error"]["Code"] == "DecryptionFailure"
    kms.enable_key(KeyId=key_id)
    assert sm.get_secret_value(SecretId="kms-backed")["SecretString"] == "v"

    # Paginators work over ListKeys/ListAliases.
    ids = [k["KeyId"] for page in kms.get_paginator("list_keys").paginate(PaginationConfig={"PageSize": 1})
           for k in page["Keys"]]
    assert key_id in ids
