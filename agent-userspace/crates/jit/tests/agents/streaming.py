"""Uploads an object the way the Java and Go SDKs stream S3 uploads:
STREAMING-AWS4-HMAC-SHA256-PAYLOAD, each aws-chunked chunk signed in a chain
from the seed signature. botocore signs the request head (the seed); the
chunk signatures are computed here, independently of Cordon's code.
Prints the HTTP status and body."""
import hashlib
import hmac
import http.client
import os
import sys
from urllib.parse import urlsplit

from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

endpoint, key, size, chunk = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
data = bytes(97 + (i * 7) % 26 for i in range(size))
creds = Credentials(os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"],
                    os.environ.get("AWS_SESSION_TOKEN"))
pieces = [data[i:i + chunk] for i in range(0, len(data), chunk)] + [b""]
encoded_len = sum(len(f"{len(p):x};chunk-signature=") + 64 + 2 + len(p) + 2 for p in pieces)
url = f"{endpoint}/docs/{key}"
req = AWSRequest(method="PUT", url=url, headers={
    "X-Amz-Content-SHA256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
    "Content-Encoding": "aws-chunked",
    "X-Amz-Decoded-Content-Length": str(size),
    "Content-Length": str(encoded_len),
})
auth = S3SigV4Auth(creds, "s3", "us-east-1")
# S3SigV4Auth replaces the payload hash with the body's; the streaming
# marker must stay, so only the generic preparation (date, token) runs.
auth._modify_request_before_signing = lambda r: SigV4Auth._modify_request_before_signing(auth, r)
auth.add_auth(req)
authz = req.headers["Authorization"]
seed = authz.split("Signature=")[1]
amz_date = req.headers["X-Amz-Date"]
scope = f"{amz_date[:8]}/us-east-1/s3/aws4_request"


def h(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


k = h(h(h(h(("AWS4" + creds.secret_key).encode(), amz_date[:8]), "us-east-1"), "s3"), "aws4_request")
body = b""
prev = seed
empty = hashlib.sha256(b"").hexdigest()
for p in pieces:
    sts = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope, prev, empty, hashlib.sha256(p).hexdigest()])
    sig = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
    body += f"{len(p):x};chunk-signature={sig}\r\n".encode() + p + b"\r\n"
    prev = sig
if os.environ.get("TAMPER_CHUNK"):
    at = body.index(b"\r\n") + 10
    body = body[:at] + bytes([body[at] ^ 1]) + body[at + 1:]
assert len(body) == encoded_len
u = urlsplit(url)
conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
conn.putrequest("PUT", u.path, skip_host=True, skip_accept_encoding=True)
for name, value in req.headers.items():
    conn.putheader(name, value)
conn.putheader("Host", u.netloc)
conn.endheaders()
# Sent in pieces, as a streaming SDK would.
for i in range(0, len(body), 8192):
    conn.send(body[i:i + 8192])
resp = conn.getresponse()
print(resp.status)
print(resp.read().decode(errors="replace"))
