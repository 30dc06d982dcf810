"""The sales report: each gunicorn worker builds its price histogram on the
first request to /reports/, as a page with its own lazy cache would. The
warm-up covers it only when /reports/ is in `[warmup] paths`; `preheat
rehearse --require-warm` catches the day it is not."""

import hashlib
import threading

_lock = threading.Lock()
_buckets = None

ROWS = 150_000


def _build():
    buckets = {}
    for number in range(ROWS):
        digest = hashlib.sha256(f"sale-{number}".encode()).digest()
        buckets[digest[0]] = buckets.get(digest[0], 0) + 1
    return buckets


def buckets():
    global _buckets
    with _lock:
        if _buckets is None:
            _buckets = _build()
        return _buckets
