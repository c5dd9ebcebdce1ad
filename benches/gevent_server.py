"""gevent's side of net-bench: `gevent_server.py echo|hello ADDR` runs a
gevent StreamServer, `gevent_server.py http ADDR` gevent's pywsgi
WSGIServer answering every request with `Hello, world!`; each prints
`listening on ADDR` once it listens."""
import sys

from gevent.pywsgi import WSGIServer
from gevent.server import StreamServer


def echo(sock, _addr):
    try:
        while True:
            data = sock.recv(4096)
            if not data:
                break
            sock.sendall(data)
    except ConnectionError:
        pass  # the load client resets its connections when it is done


def hello(sock, _addr):
    sock.sendall(b"hello world\r\n")


def app(_environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "13")])
    return [b"Hello, world!"]


if __name__ == "__main__":
    kind, addr = sys.argv[1], sys.argv[2]
    host, port = addr.rsplit(":", 1)
    if kind == "http":
        server = WSGIServer((host, int(port)), app, log=None)
    else:
        server = StreamServer((host, int(port)), echo if kind == "echo" else hello)
    server.start()
    print("listening on %s:%d" % server.address[:2], flush=True)
    server.serve_forever()
