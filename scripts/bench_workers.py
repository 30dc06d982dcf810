"""Part 4 of scripts/bench: warm every worker, the moment the port opens.

Measures, with the release binary:
  a. bind -> first warm-up request: a server binds (listen()) after 0.3, 2, 5
     and 9 s; the boot warmer (`preheat warm --boot`, started at "launch")
     watches /proc; the time from listen() returning to accept() returning on
     the warmer's first connection. p50 and max (targets <= 10 ms, <= 25 ms).
  b. gunicorn with 3 and 4 sync workers on tests/fixtures/workers/app.py
     (COLD_MS per worker and path, WARM_MS steady): after the boot warmer's
     verdict, a burst of 2 x workers users per path on fresh connections; the
     first answer each worker gives, its slowest, / the steady-state median of
     the same measure over 10 later bursts (target <= 1.5x); once without the
     warmer for contrast.
  c. the warmer's peak RSS (VmHWM) over all of the above, and against an
     endless body and a 100 MB body (target <= 6 MB).
"""
import os
import socket
import statistics
import subprocess
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "workers")
VENV_BIN = os.path.join(os.environ.get("PREHEAT_TEST_VENV", os.path.join(ROOT, "target", "test-venv")), "bin")
COLD_MS = 500
WARM_MS = 10
PATHS = ("/", "/dashboard")


def vm_hwm_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def app_dir(toml):
    path = tempfile.mkdtemp(prefix="preheat-bench-")
    with open(os.path.join(path, "preheat.toml"), "w") as f:
        f.write(toml)
    with open(os.path.join(path, "Procfile"), "w") as f:
        f.write("web: app\n")
    return path


def warmer(preheat, app, port, extra_env=None, args=("--boot",)):
    env = dict(os.environ, PORT=str(port), DYNO="web.1")
    for name in ("PREHEAT_SKIP", "WEB_CONCURRENCY", "HEROKU_APP_DEFAULT_DOMAIN_NAME"):
        env.pop(name, None)
    env.update(extra_env or {})
    log = open(os.path.join(app, f"warm-{port}.log"), "w")
    return subprocess.Popen([preheat, "warm", *args, "--dir", app], cwd=app, env=env, stdout=log, stderr=log)


def watch_peak(procs, peak, limit=120):
    """Samples VmHWM of procs every 2 ms until they exit; returns the largest (KB)."""
    until = time.monotonic() + limit
    while any(p.poll() is None for p in procs) and time.monotonic() < until:
        for p in procs:
            peak = max(peak, vm_hwm_kb(p.pid) or 0)
        time.sleep(0.002)
    for p in procs:
        if p.poll() is None:
            p.terminate()
            p.wait()
    return peak


def cpu_ms(pid):
    """User + system CPU time of pid so far."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def late_server(delay, result):
    """Binds after `delay`; records listen() -> first accept(); answers 200s."""
    started = time.monotonic()
    time.sleep(delay)
    result["cpu_ms"] = cpu_ms(result["pid"])
    result["waited_s"] = time.monotonic() - started
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", result["port"]))
    sock.listen(128)
    listened = time.monotonic()
    first = True
    sock.settimeout(20)
    while True:
        try:
            conn, _ = sock.accept()
        except OSError:
            break
        if first:
            result["ms"] = (time.monotonic() - listened) * 1000
            first = False
            sock.settimeout(3)
        try:
            conn.settimeout(5)
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        except OSError:
            pass
        conn.close()
    sock.close()


def bind_to_first_request(preheat, reps):
    print("## 4a. listen() -> the boot warmer's first request")
    app = app_dir('[warmup]\npaths = ["/"]\ndeadline = "30s"\n')
    runs, peak = [], 0
    # One server and warmer at a time, so the bench does not load the machine it measures.
    for _ in range(reps):
        for delay in (0.3, 2, 5, 9):
            result = {"delay": delay, "port": free_port()}
            proc = warmer(preheat, app, result["port"])
            result["pid"] = proc.pid
            thread = threading.Thread(target=late_server, args=(delay, result), daemon=True)
            thread.start()
            peak = watch_peak([proc], peak)
            thread.join(timeout=15)
            runs.append(result)
    samples = [r["ms"] for r in runs if "ms" in r]
    for delay in (0.3, 2, 5, 9):
        got = [f"{r['ms']:.1f}" for r in runs if r["delay"] == delay and "ms" in r]
        print(f"bind after {delay:>4}s: {', '.join(got)} ms")
    waited = [r for r in runs if r.get("waited_s", 0) >= 2]
    if waited:
        per_s = sum(r["cpu_ms"] for r in waited) / sum(r["waited_s"] for r in waited)
        print(f"the warmer's CPU while it waits for the bind: {per_s:.1f} ms per second "
              f"(with {sum(1 for _ in open('/proc/net/tcp')) - 1} sockets in /proc/net/tcp)")
    if len(samples) < len(runs):
        print(f"MISSING: {len(runs) - len(samples)} servers saw no warm-up request")
    if samples:
        print(f"p50 {statistics.median(samples):.1f} ms, max {max(samples):.1f} ms over {len(samples)} servers "
              f"(targets <= 10 ms p50, <= 25 ms max)")
    return peak


def get(port, path):
    """One GET on a fresh connection; (ms, worker pid, cold?)."""
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        conn.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
    took = (time.perf_counter() - started) * 1000
    headers = dict(
        line.split(": ", 1) for line in data.decode(errors="replace").split("\r\n\r\n")[0].split("\r\n")[1:] if ": " in line
    )
    return took, headers.get("X-Worker", "?"), headers.get("X-Cold") == "1"


def burst(port, path, users):
    """users at once; returns (finished_at, ms, worker, cold) per user."""
    gate = threading.Barrier(users)
    out = []

    def user():
        gate.wait()
        took, worker, cold = get(port, path)
        out.append((time.perf_counter(), took, worker, cold))

    threads = [threading.Thread(target=user) for _ in range(users)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def gunicorn(port, workers, marks):
    env = dict(os.environ, COLD_MS=str(COLD_MS), WARM_MS=str(WARM_MS), MARK_DIR=marks, PYTHONDONTWRITEBYTECODE="1")
    return subprocess.Popen(
        [os.path.join(VENV_BIN, "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
         "--worker-class", "sync", "--chdir", FIXTURES, "--log-level", "warning", "app:app"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_listening(port, limit=30):
    until = time.monotonic() + limit
    while time.monotonic() < until:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def worker_ratio(preheat, workers, warm):
    """Boots gunicorn (after the warmer, as the launcher does); returns figures."""
    port = free_port()
    marks = tempfile.mkdtemp(prefix="preheat-marks-")
    app = app_dir('[warmup]\npaths = ["/", "/dashboard"]\ndeadline = "60s"\n')
    peak, verdict = 0, "-"
    procs = []
    if warm:
        procs.append(warmer(preheat, app, port, {"WEB_CONCURRENCY": str(workers)}))
    server = gunicorn(port, workers, marks)
    try:
        if warm:
            peak = watch_peak(procs, 0)
            with open(os.path.join(app, f"warm-{port}.log")) as f:
                verdict = [line for line in f if "warm in" in line][-1].split("web.1 ", 1)[1].strip()
        else:
            wait_listening(port)
            time.sleep(1.5)  # every worker booted, none warmed
        def firsts():
            """Each worker's first answer in a burst of 2 x workers users, per path."""
            found = []
            for path in PATHS:
                first_by_worker = {}
                for _finished, took, worker, _cold in sorted(burst(port, path, 2 * workers)):
                    first_by_worker.setdefault(worker, took)
                found.extend(first_by_worker.values())
            return found

        # (worker, path) pairs still cold when the first user arrives.
        cold_pairs = workers * len(PATHS) - len(os.listdir(marks))
        first = firsts()
        # Steady state: the same measure, over 10 later bursts.
        steady = statistics.median(t for _ in range(10) for t in firsts())
        return max(first), steady, peak, verdict, cold_pairs
    finally:
        server.terminate()
        server.wait()


def workers_section(preheat):
    print(f"## 4b. gunicorn sync workers, {COLD_MS} ms cold start per worker and path, {WARM_MS} ms warm")
    if not os.path.exists(os.path.join(VENV_BIN, "gunicorn")):
        print(f"SKIPPED: no gunicorn in {VENV_BIN}: run scripts/test once to create the venv")
        return 0
    peak = 0
    print(f"{'workers':<9}{'mode':<17}{'cold pairs':>11}{'slowest first ms':>17}{'steady ms':>11}{'ratio':>8}  verdict")
    for workers in (3, 4):
        for warm in (False, True):
            first, steady, hwm, verdict, cold = worker_ratio(preheat, workers, warm)
            peak = max(peak, hwm)
            mode = "with preheat" if warm else "without preheat"
            print(f"{workers:<9}{mode:<17}{cold:>11}{first:>17.1f}{steady:>11.1f}{first / steady:>7.2f}x  {verdict}")
    print("cold pairs: (worker, path) not yet warmed when the first user arrives; target with preheat: <= 1.5x")
    return peak


def hostile(kind):
    """A server sending an endless (or 100 MB) body; returns its port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)

    def serve(conn):
        try:
            conn.recv(65536)
            if kind == "endless":
                conn.sendall(b"HTTP/1.1 200 OK\r\n\r\n")
                total = None
            else:
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 104857600\r\n\r\n")
                total = 100 * 1024 * 1024
            chunk, sent = b"x" * 65536, 0
            while total is None or sent < total:
                conn.sendall(chunk)
                sent += len(chunk)
        except OSError:
            pass
        conn.close()

    def accept():
        while True:
            conn, _ = sock.accept()
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return sock.getsockname()[1]


def rss_section(preheat, peaks):
    print("## 4c. the warmer's peak RSS (VmHWM)")
    app = app_dir('[warmup]\npaths = ["/", "/big"]\ndeadline = "10s"\n')
    for kind in ("endless", "100mb"):
        port = hostile(kind)
        proc = warmer(preheat, app, port, args=("--port", str(port)))
        peak = watch_peak([proc], 0)
        peaks[f"{kind} body"] = peak
    for name, peak in peaks.items():
        print(f"{name:<28} {peak / 1024:5.1f} MB")
    print(f"largest {max(peaks.values()) / 1024:.1f} MB (target <= 6 MB)")


def main(preheat, reps):
    peaks = {"boot warmer (4a)": bind_to_first_request(preheat, reps)}
    peaks["boot warmer on gunicorn (4b)"] = workers_section(preheat)
    rss_section(preheat, peaks)
