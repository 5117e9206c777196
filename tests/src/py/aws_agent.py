"""An agent using S3 with boto3 and the placeholder keys Cordon put in its
environment. Prints one JSON object describing what AWS answered.

  aws_agent.py work            put, list, get, then try to delete (refused)
  aws_agent.py tamper          sign a GET, then change the key before sending
  aws_agent.py as-other FILE   use the AWS_* variables another instance wrote
"""
import hashlib
import json
import os
import sys
import urllib.error
import urllib.request

os.environ["AWS_CONFIG_FILE"] = "/dev/null"
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = "/dev/null"
os.environ.pop("AWS_PROFILE", None)

import boto3  # noqa: E402
import botocore.auth  # noqa: E402
import botocore.awsrequest  # noqa: E402
import botocore.session  # noqa: E402
from botocore.config import Config  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402

ENDPOINT = "https://s3.amazonaws.com"
BUCKET = "docs"


def s3():
    return boto3.client("s3", region_name="us-east-1", endpoint_url=ENDPOINT,
                        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))


def error_of(e):
    return {"status": e.response["ResponseMetadata"].get("HTTPStatusCode"),
            "code": e.response["Error"].get("Code")}


def work():
    c = s3()
    out = {"key_prefix": os.environ.get("AWS_ACCESS_KEY_ID", "")[:8]}
    c.put_object(Bucket=BUCKET, Key="report.txt", Body=b"q3 numbers")
    out["put"] = "ok"
    out["list"] = [o["Key"] for o in c.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    out["get"] = c.get_object(Bucket=BUCKET, Key="report.txt")["Body"].read().decode()
    try:
        c.delete_object(Bucket=BUCKET, Key="report.txt")
        out["delete"] = "deleted"
    except ClientError as e:
        out["delete"] = error_of(e)
    out["after_delete"] = c.get_object(Bucket=BUCKET, Key="report.txt")["Body"].read().decode()
    return out


def signed_get(path):
    creds = botocore.session.get_session().get_credentials()
    req = botocore.awsrequest.AWSRequest(
        method="GET", url=ENDPOINT + path,
        headers={"x-amz-content-sha256": hashlib.sha256(b"").hexdigest()})
    botocore.auth.S3SigV4Auth(creds, "s3", "us-east-1").add_auth(req)
    return dict(req.headers.items())


def send(path, headers):
    try:
        with urllib.request.urlopen(urllib.request.Request(ENDPOINT + path, headers=headers)) as r:
            return {"status": r.status, "body": r.read().decode(errors="replace")}
    except urllib.error.HTTPError as e:
        return {"status": e.code, "body": e.read().decode(errors="replace")}


def tamper():
    headers = signed_get("/docs/report.txt")
    # The same signed head, sent for another object: altered after signing.
    return {"untouched": send("/docs/report.txt", headers), "altered": send("/docs/secret.txt", headers)}


def as_other(path):
    with open(path) as f:
        for line in f:
            name, _, value = line.strip().partition("=")
            if name.startswith("AWS_") and name != "AWS_CA_BUNDLE":
                os.environ[name] = value
    try:
        s3().list_objects_v2(Bucket=BUCKET)
        return {"list": "ok"}
    except ClientError as e:
        return {"list": error_of(e)}


mode = sys.argv[1]
result = {"work": work, "tamper": tamper}.get(mode, lambda: as_other(sys.argv[2]))()
print(json.dumps(result))
