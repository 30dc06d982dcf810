"""A web app that misbehaves on purpose, for tests/hostile_warm.rs (standard library only).

It binds 127.0.0.1:$PORT. `/` answers 200 "ok"; every other path is one of
the hostile servers of tests/support/hostile.rs, so that `preheat gate` can be
put in front of it: /endless, /100mb, /headers (1 MB of them), /garbage,
/silent, /trickle (one byte a second), /reset (a reset mid-body), /redirect.
"""
import os
import socket
import socketserver
import struct
import time

MB = 1 << 20


class Handler(socketserver.BaseRequestHandler):
    def head(self):
        data = b""
        self.request.settimeout(10)
        while b"\r\n\r\n" not in data and len(data) < 65536:
            chunk = self.request.recv(4096)
            if not chunk:
                return None
            data += chunk
        return data.split(b" ")[1].decode("latin-1") if b" " in data else "/"

    def handle(self):
        try:
            path = self.head()
            if path is None:
                return
            self.answer(path)
        except OSError:
            pass

    def answer(self, path):
        send = self.request.sendall
        if path == "/endless":
            send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            chunk = b"4000\r\n" + b"x" * 0x4000 + b"\r\n"
            while True:
                send(chunk)
        elif path == "/100mb":
            send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (100 * MB))
            block = b"x" * 65536
            for _ in range(100 * MB // len(block)):
                send(block)
        elif path == "/headers":
            pad = b"y" * 1000
            headers = b"".join(b"X-Pad-%04d: %s\r\n" % (i, pad) for i in range(MB // 1024))
            send(b"HTTP/1.1 200 OK\r\n" + headers + b"Content-Length: 2\r\n\r\nok")
        elif path == "/garbage":
            send(b"\x16\x03\x01 SURE 2OO \xff\xfe garbage\r\nthis is not http\r\n\r\n")
        elif path == "/silent":
            time.sleep(60)
        elif path == "/trickle":
            for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello":
                send(bytes([byte]))
                time.sleep(1)
        elif path == "/reset":
            send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (10 * MB))
            send(b"x" * 65536)
            self.request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.request.close()
        elif path == "/redirect":
            send(b"HTTP/1.1 302 Found\r\nLocation: /redirect\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        else:
            send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


if __name__ == "__main__":
    with Server(("127.0.0.1", int(os.environ["PORT"])), Handler) as server:
        server.serve_forever()
