"""A WSGI app for tests/telemetry.rs under gunicorn: it answers every path and
appends the request's path and `traceparent` header (one JSON line) to the
file named by TRACE_APP_LOG, so the test sees what the warm-up sent."""
import json
import os


def app(environ, start_response):
    with open(os.environ["TRACE_APP_LOG"], "a") as log:
        log.write(json.dumps({
            "path": environ.get("PATH_INFO", ""),
            "traceparent": environ.get("HTTP_TRACEPARENT"),
            "pid": os.getpid(),
        }) + "\n")
    body = b"ok\n"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
