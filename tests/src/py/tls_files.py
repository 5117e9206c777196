# Shared by the upstream scripts: the test CA's leaf (DER files written by the harness) as the
# PEM files Python's ssl module loads.
import base64, os


def pem_files(d):
    def pem(kind, der):
        b = base64.encodebytes(der).decode().replace("\n", "")
        lines = [b[i:i + 64] for i in range(0, len(b), 64)]
        return f"-----BEGIN {kind}-----\n" + "\n".join(lines) + f"\n-----END {kind}-----\n"

    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    with open(os.path.join(d, "cert.der"), "rb") as f:
        open(cert, "w").write(pem("CERTIFICATE", f.read()))
    with open(os.path.join(d, "key.der"), "rb") as f:
        open(key, "w").write(pem("PRIVATE KEY", f.read()))
    return cert, key
