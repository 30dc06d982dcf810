"""A small web app for tests/gate.rs and scripts/bench (standard library only).

It binds 127.0.0.1:$PORT and speaks HTTP/1.1 with keep-alive. Its cold start
is real: the first request for a page does CPU work (PBKDF2, like a template
compile or a lazy import) and caches the result; later ones answer at once.

Options: --boot S (sleep before binding), --cold N (PBKDF2 iterations per page,
0 for none), --never-bind, --never-warm (pages never answer), --graceful (on
SIGTERM: stop accepting, finish the requests in flight, exit 0).

Endpoints besides pages: /small (1 KB), /bytes?n=N (N bytes, X-Sha256 header),
POST /upload (sha256 of the body), POST /halfclose (reads to end of stream),
/upgrade (101, then length-prefixed frames both ways), /abort (closes mid-body),
/slow?ms=N, /exit?code=N, /stats.
"""
import argparse
import hashlib
import json
import os
import resource
import signal
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

ARGS = None
PAGES = {}
PAGES_LOCK = threading.Lock()
STATS = {"requests": 0, "aborted_uploads": 0}
STATS_LOCK = threading.Lock()
SMALL = b"x" * 1024


def count(key):
    with STATS_LOCK:
        STATS[key] += 1


def page(path):
    with PAGES_LOCK:
        if path not in PAGES:
            if ARGS.cold:
                hashlib.pbkdf2_hmac("sha256", path.encode(), b"cold start", ARGS.cold)
            PAGES[path] = f"page {path}\n".encode()
        return PAGES[path]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30

    def log_message(self, *args):
        pass

    def reply(self, status, body, headers=()):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        count("requests")
        url = urlparse(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path == "/small":
            self.reply(200, SMALL)
        elif url.path == "/bytes":
            body = os.urandom(int(query.get("n", "0")))
            self.reply(200, body, [("X-Sha256", hashlib.sha256(body).hexdigest())])
        elif url.path == "/stats":
            with STATS_LOCK:
                self.reply(200, json.dumps(STATS).encode())
        elif url.path == "/slow":
            time.sleep(int(query.get("ms", "1000")) / 1000)
            self.reply(200, b"slow done\n")
        elif url.path == "/exit":
            os._exit(int(query.get("code", "0")))
        elif url.path == "/abort":
            self.send_response(200)
            self.send_header("Content-Length", "1000000")
            self.end_headers()
            self.wfile.write(b"a" * 100000)
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
        elif url.path == "/upgrade":
            self.upgrade()
        elif ARGS.never_warm:
            time.sleep(3600)
        else:
            self.reply(200, page(url.path))

    def do_POST(self):
        count("requests")
        url = urlparse(self.path)
        digest = hashlib.sha256()
        if url.path == "/halfclose":
            # The body ends where the client's stream ends.
            while chunk := self.rfile.read1(65536):
                digest.update(chunk)
            self.reply(200, digest.hexdigest().encode(), [("Connection", "close")])
            self.close_connection = True
            return
        want = int(self.headers.get("Content-Length", "0"))
        got = 0
        while got < want:
            try:
                chunk = self.rfile.read1(min(65536, want - got))
            except OSError:
                chunk = b""
            if not chunk:
                count("aborted_uploads")
                self.close_connection = True
                return
            digest.update(chunk)
            got += len(chunk)
        self.reply(200, f"{digest.hexdigest()} {got}".encode())

    def upgrade(self):
        """After 101, frames are a 4-byte big-endian length and a payload.
        The app speaks first, then answers each frame with it reversed,
        until the client sends an empty frame."""
        self.send_response(101)
        self.send_header("Upgrade", "preheat-echo")
        self.send_header("Connection", "Upgrade")
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True

        def send(payload):
            self.wfile.write(struct.pack(">I", len(payload)) + payload)
            self.wfile.flush()

        send(b"hello from the app")
        while True:
            head = self.rfile.read(4)
            if len(head) < 4:
                return
            payload = self.rfile.read(struct.unpack(">I", head)[0])
            if not payload:
                send(b"bye")
                return
            send(payload[::-1])


class Server(ThreadingHTTPServer):
    request_queue_size = 4096
    daemon_threads = True


def main():
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("--boot", type=float, default=0)
    parser.add_argument("--cold", type=int, default=0)
    parser.add_argument("--never-bind", action="store_true")
    parser.add_argument("--never-warm", action="store_true")
    parser.add_argument("--graceful", action="store_true")
    ARGS = parser.parse_args()
    port = int(os.environ["PORT"])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    time.sleep(ARGS.boot)
    if ARGS.never_bind:
        time.sleep(3600)
        return 1
    signal.signal(signal.SIGHUP, lambda *_: print("gate_app got SIGHUP", flush=True))
    server = Server(("127.0.0.1", port), Handler)
    if ARGS.graceful:
        server.daemon_threads = False
        server.block_on_close = True

        def stop(*_):
            threading.Thread(target=server.shutdown).start()

        signal.signal(signal.SIGTERM, stop)
    print(f"gate_app listening on 127.0.0.1:{port}", flush=True)
    server.serve_forever(poll_interval=0.05)
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
