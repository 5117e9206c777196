"""Sets moto up as an AWS account would be before Cordon runs: a base IAM
user that may only assume the agent role, the role (trusting that user,
allowed to read and write S3, use DynamoDB and invoke Bedrock models, never
to delete objects), a bucket and a table. Runs while moto still accepts unauthenticated calls; the caller
then turns IAM enforcement on. Prints the base key and role ARN as JSON."""
import json
import sys

import boto3

url = sys.argv[1]
kw = dict(endpoint_url=url, region_name="us-east-1",
          aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap")
iam = boto3.client("iam", **kw)
iam.create_user(UserName="cordon")
iam.put_user_policy(UserName="cordon", PolicyName="assume-only", PolicyDocument=json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}],
}))
key = iam.create_access_key(UserName="cordon")["AccessKey"]
trust = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                   "Principal": {"AWS": "arn:aws:iam::123456789012:user/cordon"}}],
}
role = iam.create_role(RoleName="agent", AssumeRolePolicyDocument=json.dumps(trust))["Role"]
iam.put_role_policy(RoleName="agent", PolicyName="work", PolicyDocument=json.dumps({
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Resource": "*",
         "Action": ["s3:*", "dynamodb:*", "sts:GetCallerIdentity", "bedrock:InvokeModel"]},
        {"Effect": "Deny", "Resource": "*", "Action": ["s3:DeleteObject"]},
    ],
}))
boto3.client("s3", **kw).create_bucket(Bucket="docs")
boto3.client("dynamodb", **kw).create_table(
    TableName="notes", BillingMode="PAY_PER_REQUEST",
    KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
    AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}])
print(json.dumps({"access_key_id": key["AccessKeyId"],
                  "secret_access_key": key["SecretAccessKey"],
                  "role_arn": role["Arn"]}))

# From here on moto checks every request's signature and IAM permissions.
import urllib.request  # noqa: E402

urllib.request.urlopen(urllib.request.Request(
    url + "/moto-api/reset-auth", data=b"0", method="POST", headers={"Content-Type": "text/plain"})).read()
