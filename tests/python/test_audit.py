"""The audit trail as operators and tools meet it: `aws cloudtrail lookup-events` (filters,
pagination, errors) against a dev server, and `coffer audit export/verify` on a durable data
directory, before and after tampering with the export and with the database itself."""

import json
import os
import subprocess

from test_dropin import aws, aws_json
from test_server import start, stop

COFFER_BIN = os.environ.get("COFFER_BIN", "target/debug/coffer")
ROOT = {"COFFER_ROOT_ACCESS_KEY_ID": "AKIAAUDITTEST0000001",
        "COFFER_ROOT_SECRET_ACCESS_KEY": "audittestsecretaudittestsecretaudit0001"}


def lookup(env, *args):
    return aws_json(env, "cloudtrail", "lookup-events", *args)


def test_lookup_events_through_the_cli(coffer_env):
    env = coffer_env
    for i in range(3):
        aws(env, "secretsmanager", "create-secret", "--name", f"ct/{i}", "--secret-string", "v")
    for _ in range(3):
        aws(env, "secretsmanager", "get-secret-value", "--secret-id", "ct/2")

    out = lookup(env, "--lookup-attributes", "AttributeKey=EventName,AttributeValue=CreateSecret")
    names = [json.loads(e["CloudTrailEvent"])["requestParameters"]["name"] for e in out["Events"]]
    assert names == ["ct/2", "ct/1", "ct/0"], "newest first"
    assert all(e["Username"] == "root" and e["EventSource"] == "secretsmanager.amazonaws.com"
               for e in out["Events"])

    by_res = lookup(env, "--lookup-attributes", "AttributeKey=ResourceName,AttributeValue=ct/2")
    assert [e["EventName"] for e in by_res["Events"]] == ["GetSecretValue"] * 3 + ["CreateSecret"]
    assert by_res["Events"][0]["Resources"][0]["ResourceType"] == "AWS::SecretsManager::Secret"

    # The CLI's own pagination (--page-size drives MaxResults/NextToken underneath).
    paged = lookup(env, "--lookup-attributes", "AttributeKey=ReadOnly,AttributeValue=false",
                   "--page-size", "1")
    assert [e["EventName"] for e in paged["Events"]] == ["CreateSecret"] * 3
    first = lookup(env, "--lookup-attributes", "AttributeKey=ReadOnly,AttributeValue=false",
                   "--max-items", "2")
    assert len(first["Events"]) == 2 and "NextToken" in first
    rest = lookup(env, "--lookup-attributes", "AttributeKey=ReadOnly,AttributeValue=false",
                  "--starting-token", first["NextToken"])
    assert len(rest["Events"]) == 1

    # Time range in the past: nothing.
    old = lookup(env, "--start-time", "2001-01-01T00:00:00Z", "--end-time", "2001-01-02T00:00:00Z")
    assert old["Events"] == []

    for args, code in [
        (["--lookup-attributes", "AttributeKey=EventName,AttributeValue=a",
          "AttributeKey=EventName,AttributeValue=b"], "InvalidLookupAttributesException"),
        (["--start-time", "2001-01-02T00:00:00Z", "--end-time", "2001-01-01T00:00:00Z"],
         "InvalidTimeRangeException"),
        (["--max-results", "51"], "InvalidMaxResultsException"),
        (["--next-token", "not-a-token"], "InvalidNextTokenException"),
    ]:
        p = aws(env, "cloudtrail", "lookup-events", *args, check=False)
        assert p.returncode != 0 and code in p.stderr, (args, p.stderr)


def coffer(*args, check=True):
    p = subprocess.run([COFFER_BIN, *args], capture_output=True, text=True, timeout=60)
    if check:
        assert p.returncode == 0, p.stdout + p.stderr
    return p


def test_export_and_verify_catch_tampering(tmp_path):
    data = tmp_path / "data"
    proc, port = start(["--data-dir", str(data)], ROOT)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_ACCESS_KEY_ID": ROOT["COFFER_ROOT_ACCESS_KEY_ID"],
                "AWS_SECRET_ACCESS_KEY": ROOT["COFFER_ROOT_SECRET_ACCESS_KEY"], "AWS_PAGER": ""})
    aws(env, "secretsmanager", "create-secret", "--name", "v", "--secret-string", "s3cr3t-value")
    for _ in range(4):
        aws(env, "secretsmanager", "get-secret-value", "--secret-id", "v")
    # Verify works beside the running server (read-only).
    assert "OK" in coffer("audit", "verify", "--data-dir", str(data)).stdout
    stop(proc)  # seals the chain with a digest

    key = tmp_path / "key.json"
    key.write_text(coffer("audit", "public-key", "--data-dir", str(data)).stdout)
    ok = coffer("audit", "verify", "--data-dir", str(data), "--public-key", str(key)).stdout
    assert "OK" in ok and "records: 5 (1..5)" in ok and "sealed through: 5" in ok, ok

    jsonl = tmp_path / "trail.jsonl"
    coffer("audit", "export", "--data-dir", str(data), "--output", str(jsonl))
    ct = tmp_path / "trail.json"
    coffer("audit", "export", "--data-dir", str(data), "--format", "cloudtrail", "-o", str(ct))
    assert "s3cr3t-value" not in jsonl.read_text() + ct.read_text()
    assert len(json.loads(ct.read_text())["Records"]) == 5
    for f in (jsonl, ct):
        assert "OK" in coffer("audit", "verify", "--file", str(f), "--public-key", str(key)).stdout

    lines = jsonl.read_text().splitlines(keepends=True)
    header, records, digests = lines[0], lines[1:6], lines[6:]

    def verdict(recs):
        f = tmp_path / "t.jsonl"
        f.write_text(header + "".join(recs) + "".join(digests))
        p = coffer("audit", "verify", "--file", str(f), "--public-key", str(key), check=False)
        assert p.returncode == 1, p.stdout
        return p.stdout

    edited = records[:]
    edited[2] = edited[2].replace("GetSecretValue", "DescribeSecret")
    assert "record 3 was modified" in verdict(edited)
    assert "record 4 is missing" in verdict(records[:3] + records[4:])
    assert "record 3 is out of order" in verdict(records[:2] + [records[3], records[2]] + records[4:])
    assert "record 3 was inserted" in verdict(records[:3] + [records[2]] + records[3:])
    assert "records 5 to 5 are missing" in verdict(records[:4])

    # The CloudTrail-shaped file: edit one record's requestParameters.
    doc = json.loads(ct.read_text())
    doc["Records"][1]["requestParameters"]["secretId"] = "other"
    f = tmp_path / "t.json"
    f.write_text(json.dumps(doc))
    p = coffer("audit", "verify", "--file", str(f), "--public-key", str(key), check=False)
    assert p.returncode == 1 and "record 2 was modified" in p.stdout, p.stdout

    # The trail on disk itself: delete record 2's line from its segment file (JSON Lines,
    # zero-filled past the end).
    (seg,) = (data / "audit").glob("seg-*.log")
    raw = seg.read_bytes()
    text = raw[: raw.index(b"\0")] if b"\0" in raw else raw
    lines = text.splitlines(keepends=True)
    assert json.loads(lines[1])["seq"] == 2
    kept = b"".join(lines[:1] + lines[2:])
    seg.write_bytes(kept + b"\0" * (len(raw) - len(kept)))
    p = coffer("audit", "verify", "--data-dir", str(data), "--public-key", str(key), check=False)
    assert p.returncode == 1 and "record 2 is missing" in p.stdout, p.stdout
