# A gRPC server (grpcio) over TLS for the end-to-end test. argv: DIR HOST PORT STUBS. Every RPC
# it runs is appended to DIR/calls.log. Say answers with trailing metadata, and an `authorization`
# it got comes back in them as `x-auth`.
import os, sys, time
from concurrent import futures

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
d, host, port, stubs = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
sys.path.insert(0, stubs)
import grpc
import echo_pb2, echo_pb2_grpc
from tls_files import pem_files


def ran(what):
    with open(os.path.join(d, "calls.log"), "a") as f:
        f.write(what + "\n")


class Echo(echo_pb2_grpc.EchoServicer):
    def Say(self, request, context):
        ran(f"Say {request.text}")
        trailing = [("x-echo", "trailer")]
        # Hands the call's credential back, as a server echoing its metadata might.
        trailing += [("x-auth", v) for k, v in context.invocation_metadata() if k == "authorization"]
        context.set_trailing_metadata(tuple(trailing))
        return echo_pb2.Msg(text=f"echo: {request.text}")

    def Count(self, request, context):
        ran(f"Count {request.n}")
        for i in range(request.n):
            yield echo_pb2.Msg(text=f"{i + 1}", n=i + 1)
            time.sleep(0.4)

    def Drop(self, request, context):
        ran(f"Drop {request.text}")
        return echo_pb2.Msg(text="dropped")


cert, key = pem_files(d)
server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
echo_pb2_grpc.add_EchoServicer_to_server(Echo(), server)
creds = grpc.ssl_server_credentials([(open(key, "rb").read(), open(cert, "rb").read())])
server.add_secure_port(f"{host}:{port}", creds)
server.start()
server.wait_for_termination()
