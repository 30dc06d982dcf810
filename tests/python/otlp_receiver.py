"""An OTLP/HTTP receiver for tests/telemetry.rs and scripts/bench.

It decodes every request with the official generated types (the
opentelemetry-proto package from PyPI): protobuf with ParseFromString, JSON
with google.protobuf.json_format (after turning OTLP/JSON's hex trace and span
ids into the base64 that proto JSON expects, as the OTLP spec says receivers
must). Each request becomes one JSON line in OUT: the path, the content type,
the header names and values, and the decoded message (ids in hex).

Usage: otlp_receiver.py OUT PORTFILE [--mode ok|blackhole|slow] [--delay S]
It binds 127.0.0.1:0 and writes the port to PORTFILE once it listens.
blackhole: accept and read, never answer. slow: answer after --delay seconds.
"""
import argparse
import base64
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf import json_format
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

ARGS = None
LOCK = threading.Lock()
ID_KEYS = ("traceId", "spanId", "parentSpanId")


def walk(value, convert):
    if isinstance(value, dict):
        return {k: (convert(v) if k in ID_KEYS and isinstance(v, str) else walk(v, convert)) for k, v in value.items()}
    if isinstance(value, list):
        return [walk(v, convert) for v in value]
    return value


def hex_to_b64(text):
    return base64.b64encode(bytes.fromhex(text)).decode() if text else text


def b64_to_hex(text):
    return base64.b64decode(text).hex() if text else text


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        if ARGS.mode == "blackhole":
            time.sleep(3600)
            return
        if ARGS.mode == "slow":
            time.sleep(ARGS.delay)
        kind, request, response = {
            "/v1/traces": ("traces", ExportTraceServiceRequest(), ExportTraceServiceResponse()),
            "/v1/metrics": ("metrics", ExportMetricsServiceRequest(), ExportMetricsServiceResponse()),
        }.get(self.path, (None, None, None))
        if kind is None:
            self.answer(404, b"", "text/plain")
            return
        content_type = self.headers.get("Content-Type", "")
        try:
            if content_type == "application/json":
                json_format.ParseDict(walk(json.loads(body), hex_to_b64), request)
            elif content_type == "application/x-protobuf":
                request.ParseFromString(body)
            else:
                raise ValueError(f"unexpected content type {content_type!r}")
        except Exception as error:  # a decode failure is a test failure: record it
            self.record({"path": self.path, "content_type": content_type, "error": str(error)})
            self.answer(400, str(error).encode(), "text/plain")
            return
        decoded = walk(json_format.MessageToDict(request), b64_to_hex)
        self.record({
            "path": self.path,
            "kind": kind,
            "content_type": content_type,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": decoded,
        })
        if content_type == "application/json":
            self.answer(200, json_format.MessageToJson(response).encode(), "application/json")
        else:
            self.answer(200, response.SerializeToString(), "application/x-protobuf")

    def record(self, entry):
        with LOCK, open(ARGS.out, "a") as out:
            out.write(json.dumps(entry) + "\n")

    def answer(self, status, body, content_type):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def main():
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("portfile")
    parser.add_argument("--mode", default="ok", choices=["ok", "blackhole", "slow"])
    parser.add_argument("--delay", type=float, default=5.0)
    ARGS = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    with open(ARGS.portfile + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    import os
    os.replace(ARGS.portfile + ".tmp", ARGS.portfile)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
