# The fairness scenario's flooding agent (run inside `cordon run`):
# argv: PORT SECS. For SECS seconds, against 127.0.0.1:PORT through Cordon:
# - up to 3,000 idle connections (nothing sent), held;
# - up to 1,000 slow-head connections (a request head that never ends), held;
# - garbage connections (64 random bytes, then close), ~200 a second;
# - a keep-alive HTTP request loop, as fast as one connection goes.
# Prints what it managed as one JSON line. Openers pause 1 ms between
# attempts, so the flooder's own CPU does not crowd the measured agent
# out of the two cores.
import json, os, resource, socket, sys, threading, time

port, secs = int(sys.argv[1]), float(sys.argv[2])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
end = time.monotonic() + secs
stats = {"idle_held": 0, "slow_held": 0, "refused": 0, "garbage": 0, "requests": 0, "request_errors": 0}
lock = threading.Lock()


def count(key, n=1):
    with lock:
        stats[key] += n


def alive(s):
    s.setblocking(False)
    try:
        return s.recv(1, socket.MSG_PEEK) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False


def opener(key, limit, head):
    held = []
    while time.monotonic() < end:
        if len(held) >= limit:
            held = [s for s in held if alive(s)]
            time.sleep(0.2)
            continue
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=2)
            if head:
                s.sendall(b"GET /slow HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
            held.append(s)
        except OSError:
            count("refused")
        time.sleep(0.001)
        if len(held) % 100 == 0:
            held = [s for s in held if alive(s)]
    held = [s for s in held if alive(s)]
    count(key, len(held))
    for s in held:
        s.close()


def garbage():
    while time.monotonic() < end:
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=2)
            s.sendall(os.urandom(64))
            s.close()
            count("garbage")
        except OSError:
            count("refused")
        time.sleep(0.005)


def requests():
    import http.client
    conn = None
    while time.monotonic() < end:
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/")
            r = conn.getresponse()
            r.read()
            count("requests")
        except Exception:
            count("request_errors")
            conn = None
            time.sleep(0.01)


threads = [
    threading.Thread(target=opener, args=("idle_held", 3000, False)),
    threading.Thread(target=opener, args=("slow_held", 1000, True)),
    threading.Thread(target=garbage),
    threading.Thread(target=requests),
]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps(stats), flush=True)
