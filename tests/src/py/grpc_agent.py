# A gRPC client (grpcio) as an agent. argv: TARGET STUBS. Calls Say (unary, reading its
# trailing metadata), Count (server streaming, timing each message) and Drop; one JSON line each.
# With RPC_TOKEN set (a placeholder), every call carries it as `authorization: Bearer ...`.
import json, os, sys, time

sys.path.insert(0, sys.argv[2])
import grpc
import echo_pb2, echo_pb2_grpc

roots = open(os.environ["SSL_CERT_FILE"], "rb").read()
channel = grpc.secure_channel(sys.argv[1], grpc.ssl_channel_credentials(root_certificates=roots))
stub = echo_pb2_grpc.EchoStub(channel)
token = os.environ.get("RPC_TOKEN")
meta = (("authorization", f"Bearer {token}"),) if token else None

reply, call = stub.Say.with_call(echo_pb2.Msg(text="hello"), timeout=20, metadata=meta)
print(json.dumps({"rpc": "Say", "text": reply.text, "trailers": dict(call.trailing_metadata())}), flush=True)

started, got = time.monotonic(), []
for msg in stub.Count(echo_pb2.Msg(n=3), timeout=20, metadata=meta):
    got.append([msg.text, round(time.monotonic() - started, 3)])
print(json.dumps({"rpc": "Count", "messages": got}), flush=True)

try:
    stub.Drop(echo_pb2.Msg(text="x"), timeout=20, metadata=meta)
    print(json.dumps({"rpc": "Drop", "ok": True}), flush=True)
except grpc.RpcError as e:
    print(json.dumps({"rpc": "Drop", "ok": False, "code": e.code().name, "details": e.details()}), flush=True)
