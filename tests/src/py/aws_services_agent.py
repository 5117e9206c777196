"""An agent using DynamoDB, STS and Bedrock runtime with boto3 and the
placeholder keys Cordon put in its environment, at AWS's own endpoint names
(Cordon's DNS points them at the test's moto). Prints one JSON object per
step of what AWS (or Cordon) answered.

  aws_services_agent.py dynamodb   put and get in `notes`; a put in `secrets`
                                   and DeleteTable (refused by policy)
  aws_services_agent.py tamper     sign a PutItem, change the body, send it
  aws_services_agent.py sts        GetCallerIdentity; AssumeRole (refused)
  aws_services_agent.py bedrock    InvokeModel on haiku; on opus (refused)
  aws_services_agent.py spend N    N InvokeModel calls, one line each
"""
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
from botocore.parsers import ResponseParserError  # noqa: E402

REGION = "us-east-1"
HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
OPUS = "anthropic.claude-3-opus-20240229-v1:0"

# The status of the last answer, seen before botocore parses it: Cordon's
# refusals are JSON, which botocore's XML (query protocol) parser cannot read.
last = {}


def client(service):
    c = boto3.client(service, region_name=REGION, config=Config(retries={"max_attempts": 1}))
    c.meta.events.register("before-parse.*.*",
                           lambda response_dict, **_: last.update(status=response_dict["status_code"]))
    return c


def attempt(f):
    try:
        return f()
    except ClientError as e:
        return {"status": e.response["ResponseMetadata"].get("HTTPStatusCode"),
                "code": e.response["Error"].get("Code")}
    except ResponseParserError as e:
        return {"status": last.get("status"), "unparsed": str(e)[-400:]}


def dynamodb():
    ddb = client("dynamodb")
    return {
        "put": attempt(lambda: ddb.put_item(
            TableName="notes", Item={"id": {"S": "1"}, "text": {"S": "hello"}}) and "ok"),
        "get": attempt(lambda: ddb.get_item(
            TableName="notes", Key={"id": {"S": "1"}})["Item"]["text"]["S"]),
        "put_secrets": attempt(lambda: ddb.put_item(
            TableName="secrets", Item={"id": {"S": "1"}}) and "ok"),
        "drop": attempt(lambda: ddb.delete_table(TableName="notes") and "dropped"),
        "after_drop": attempt(lambda: ddb.get_item(
            TableName="notes", Key={"id": {"S": "1"}})["Item"]["text"]["S"]),
    }


def send(url, headers, body):
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req) as r:
            return {"status": r.status, "body": r.read().decode(errors="replace")}
    except urllib.error.HTTPError as e:
        return {"status": e.code, "body": e.read().decode(errors="replace")}


def tamper():
    """A PutItem signed with the placeholder, then its body changed: the
    signature covers the body's hash, so Cordon must refuse it."""
    url = "https://dynamodb.%s.amazonaws.com/" % REGION
    creds = botocore.session.get_session().get_credentials()

    def signed(item_text):
        body = json.dumps({"TableName": "notes",
                           "Item": {"id": {"S": "2"}, "text": {"S": item_text}}}).encode()
        req = botocore.awsrequest.AWSRequest(method="POST", url=url, data=body, headers={
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": "DynamoDB_20120810.PutItem"})
        botocore.auth.SigV4Auth(creds, "dynamodb", REGION).add_auth(req)
        return dict(req.headers.items()), body

    headers, body = signed("as signed")
    altered = body.replace(b"as signed", b"as altered")
    out = {"altered": send(url, headers, altered)}
    out["stored"] = attempt(lambda: client("dynamodb").get_item(
        TableName="notes", Key={"id": {"S": "2"}}).get("Item"))
    headers, body = signed("as signed")
    out["untouched"] = send(url, headers, body)
    return out


def sts():
    c = client("sts")
    return {
        "arn": attempt(lambda: c.get_caller_identity()["Arn"]),
        "assume": attempt(lambda: c.assume_role(
            RoleArn="arn:aws:iam::123456789012:role/agent", RoleSessionName="escape")
            and "assumed"),
    }


def invoke(model, words, max_tokens):
    body = json.dumps({
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": max_tokens,
        "messages": [{"role": "user", "content": " ".join(["word"] * words)}],
    })
    answer = client("bedrock-runtime").invoke_model(
        modelId=model, body=body, contentType="application/json", accept="application/json")
    return json.loads(answer["body"].read())


def bedrock():
    return {
        "haiku": attempt(lambda: invoke(HAIKU, 1000, 4000)),
        "opus": attempt(lambda: invoke(OPUS, 10, 10)),
    }


def spend(n):
    for i in range(n):
        print(json.dumps({"call": i, "answer": attempt(lambda: invoke(HAIKU, 1000, 4000))}),
              flush=True)


mode = sys.argv[1]
if mode == "spend":
    spend(int(sys.argv[2]))
else:
    print(json.dumps({"dynamodb": dynamodb, "tamper": tamper, "sts": sts, "bedrock": bedrock}[mode]()))
