"""An agent using boto3 as agents do: credentials from the AWS_* variables
Cordon set (placeholders), the endpoint from argv. Runs one scenario and
prints what happened as JSON; AWS errors are results, not crashes."""
import io
import json
import sys

import boto3
import botocore.exceptions
from botocore.config import Config

endpoint, scenario = sys.argv[1], sys.argv[2]
# Path-style addressing: the endpoint is an IP and port, not a bucket host.
# SigV4 for presigned URLs too (botocore's default there is the legacy
# SigV2, which Cordon refuses as unsigned).
s3cfg = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, signature_version="s3v4")
cfg = Config(retries={"max_attempts": 1})
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", config=s3cfg)


def attempt(fn):
    try:
        return {"ok": fn()}
    except botocore.exceptions.ClientError as e:
        return {"error": e.response["Error"].get("Code"), "message": e.response["Error"].get("Message")}


out = {}
if scenario == "s3":
    out["put"] = attempt(lambda: s3.put_object(Bucket="docs", Key="notes/hello.txt", Body=b"hello from the agent")["ETag"])
    # A non-seekable stream: boto3 sends it as it reads it.
    out["upload"] = attempt(lambda: s3.upload_fileobj(io.BytesIO(b"x" * 300000), "docs", "big.bin") or "done")
    out["list"] = attempt(lambda: sorted(o["Key"] for o in s3.list_objects_v2(Bucket="docs")["Contents"]))
    out["get"] = attempt(lambda: s3.get_object(Bucket="docs", Key="notes/hello.txt")["Body"].read().decode())
    out["get_big"] = attempt(lambda: len(s3.get_object(Bucket="docs", Key="big.bin")["Body"].read()))
    out["delete"] = attempt(lambda: s3.delete_object(Bucket="docs", Key="notes/hello.txt") and "deleted")
elif scenario == "who":
    sts = boto3.client("sts", endpoint_url=endpoint, region_name="us-east-1", config=cfg)
    out["arn"] = attempt(lambda: sts.get_caller_identity()["Arn"])
elif scenario == "dynamodb":
    ddb = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1", config=cfg)
    out["create"] = attempt(lambda: ddb.create_table(
        TableName="orders", KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST")["TableDescription"]["TableName"])
    out["put"] = attempt(lambda: ddb.put_item(TableName="orders", Item={"id": {"S": "1"}, "n": {"N": "7"}}) and "put")
    out["get"] = attempt(lambda: ddb.get_item(TableName="orders", Key={"id": {"S": "1"}})["Item"]["n"]["N"])
elif scenario == "put":
    out["put"] = attempt(lambda: s3.put_object(Bucket="docs", Key=sys.argv[3], Body=sys.argv[4].encode())["ETag"])
elif scenario == "get":
    out["get"] = attempt(lambda: s3.get_object(Bucket="docs", Key=sys.argv[3])["Body"].read().decode())
elif scenario == "presign":
    print(s3.generate_presigned_url("get_object", Params={"Bucket": "docs", "Key": "k"}, ExpiresIn=300))
    sys.exit(0)
print(json.dumps(out))
