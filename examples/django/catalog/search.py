"""An in-process search index: built by each gunicorn worker on its first
request, as many apps build caches lazily. This is the per-worker cold start
that preheat's warm-up pays so that users do not."""

import hashlib
import threading

_lock = threading.Lock()
_index = None

# Enough synthetic catalogue entries for the build to take a noticeable while.
ENTRIES = 60_000


def _build():
    index = {}
    for number in range(ENTRIES):
        name = hashlib.sha256(f"product-{number}".encode()).hexdigest()[:12]
        for start in range(len(name) - 2):
            index.setdefault(name[start : start + 3], []).append(number)
    return index


def index():
    global _index
    with _lock:
        if _index is None:
            _index = _build()
        return _index


def suggestions(term):
    return index().get(term[:3].lower(), [])[:5]
