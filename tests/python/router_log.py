"""A log shim for `preheat audit`'s end-to-end test: WSGI middleware and a
gunicorn config in one file, writing what Heroku would log to ROUTER_LOG.

- gunicorn's when_ready hook writes the dyno manager's
  `heroku[web.1]: State changed from starting to up`;
- every request writes a `heroku[router]: at=info …` line with the real
  service time, and the request's X-Request-ID as request_id, as the router
  does. Requests marked X-Preheat-Warmup (the boot warmer's) are not
  written: on Heroku they go to 127.0.0.1 and never cross the router.

Run: gunicorn -c router_log.py router_log:app (APP_DIR holds app.py).
"""
import datetime
import importlib.util
import os
import time
import uuid

LOG = os.environ["ROUTER_LOG"]
DYNO = os.environ.get("DYNO", "web.1")


def stamp():
    now = datetime.datetime.now(datetime.timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def write(line):
    with open(LOG, "a") as log:
        log.write(line + "\n")


def when_ready(server):
    write(f"{stamp()} heroku[{DYNO}]: State changed from starting to up")


def _load():
    spec = importlib.util.spec_from_file_location(
        "fixture_app", os.path.join(os.environ["APP_DIR"], "app.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.app


_inner = None


def app(environ, start_response):
    global _inner
    if _inner is None:
        _inner = _load()
    started = time.perf_counter()
    status = {}

    def capture(code, headers, exc_info=None):
        status["code"] = code.split(" ", 1)[0]
        return start_response(code, headers, exc_info)

    body = b"".join(_inner(environ, capture))
    service = int((time.perf_counter() - started) * 1000)
    if environ.get("HTTP_X_PREHEAT_WARMUP") != "1":
        path = environ.get("PATH_INFO", "/")
        if environ.get("QUERY_STRING"):
            path += "?" + environ["QUERY_STRING"]
        request_id = environ.get("HTTP_X_REQUEST_ID") or str(uuid.uuid4())
        write(
            f'{stamp()} heroku[router]: at=info method={environ["REQUEST_METHOD"]} '
            f'path="{path}" host={environ.get("HTTP_HOST", "localhost")} '
            f'request_id={request_id} fwd="127.0.0.1" dyno={DYNO} connect=0ms '
            f'service={service}ms status={status.get("code", "500")} '
            f"bytes={len(body)} protocol=https"
        )
    return [body]
