# Generates the Python stubs of echo.proto with grpcio-tools' protoc into argv[1].
import os, sys

from grpc_tools import protoc

here = os.path.dirname(os.path.abspath(__file__))
out = sys.argv[1]
code = protoc.main(["protoc", f"-I{here}", f"--python_out={out}", f"--grpc_python_out={out}",
                    os.path.join(here, "echo.proto")])
sys.exit(code)
