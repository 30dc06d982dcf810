"""`preheat audit` on a generated 1,000,000-line log (about 250 MB; written to
a temp dir, never committed): wall time, lines per second and peak RSS
(ru_maxrss of the audit process). Targets: < 3 s and < 32 MB on 2 cores.

The log mixes what a busy app's drain holds: router lines over 40 dynos (Cedar
and Fir names) and 400 paths (query strings, assets, ids), a boot per dyno
every ~25,000 lines, H12s, app output, preheat's own lines and requests, and
a few syslog-framed lines.
"""
import os
import random
import subprocess
import tempfile
import time

LINES = 1_000_000


def generate(path, lines=LINES):
    rng = random.Random(21)
    dynos = [f"web.{i}" for i in range(1, 21)] + [
        f"web-{rng.randrange(16**9):09x}-{rng.randrange(16**5):05x}" for _ in range(20)
    ]
    paths = [f"/section{i}/page{j}" for i in range(20) for j in range(20)]
    base = 1_772_366_400.0
    out = []
    written = 0
    with open(path, "w") as f:
        for n in range(lines):
            t = base + n * 0.01
            ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e6):06d}+00:00"
            dyno = dynos[n % len(dynos)]
            r = rng.random()
            if n % 25_000 < len(dynos):
                out.append(f"{ts} heroku[{dyno}]: State changed from starting to up")
            elif r < 0.80:
                p = rng.choice(paths)
                if rng.random() < 0.2:
                    p += f"?page={rng.randrange(50)}"
                elif rng.random() < 0.05:
                    p = f"/users/{rng.randrange(10**7, 10**8)}"
                elif rng.random() < 0.05:
                    p = f"/assets/app-{rng.randrange(999)}.css"
                ms = rng.randrange(5, 60) if rng.random() > 0.02 else rng.randrange(500, 3000)
                out.append(
                    f'{ts} heroku[router]: at=info method=GET path="{p}" host=shop.example.com '
                    f"request_id={rng.getrandbits(128):032x} fwd=\"203.0.113.{n % 250}\" dyno={dyno} "
                    f"connect=0ms service={ms}ms status=200 bytes={rng.randrange(500, 90000)} protocol=https"
                )
            elif r < 0.81:
                out.append(
                    f'{ts} heroku[router]: at=error code=H12 desc="Request timeout" method=GET path="/slow" '
                    f'host=shop.example.com request_id=x{n} fwd="203.0.113.9" dyno={dyno} connect=0ms '
                    f"service=30000ms status=503 bytes=0 protocol=https"
                )
            elif r < 0.82:
                body = (
                    f'<158>1 {ts} host heroku router - at=info method=GET path="/" host=shop.example.com '
                    f"request_id=s{n} fwd=\"203.0.113.1\" dyno={dyno} connect=0ms service=12ms status=200 bytes=10"
                )
                out.append(f"{len(body)} {body}")
            elif r < 0.821:
                out.append(
                    f"{ts} app[{dyno}]: preheat: {dyno} warm in 1.6s | event=warmup dyno={dyno} duration_ms=1600"
                )
            elif r < 0.83:
                out.append(
                    f'{ts} heroku[router]: at=info method=GET path="/" host=shop.example.com '
                    f"request_id=preheat-{n:024x} fwd=\"203.0.113.2\" dyno={dyno} connect=0ms service=9ms status=200 bytes=10 protocol=https"
                )
            else:
                out.append(
                    f'{ts} app[{dyno}]: 10.1.{n % 250}.3 - - [01/Mar/2026:12:00:00 +0000] "GET /section1/page2 HTTP/1.1" 200 5120 "-" "Mozilla/5.0 (X11; Linux x86_64)"'
                )
            if len(out) >= 10_000:
                chunk = "\n".join(out) + "\n"
                written += len(chunk)
                f.write(chunk)
                out = []
        if out:
            chunk = "\n".join(out) + "\n"
            written += len(chunk)
            f.write(chunk)
    return written


def main(preheat, runs=3):
    with tempfile.TemporaryDirectory() as tmp:
        log = os.path.join(tmp, "heroku.log")
        size = generate(log)
        print(f"\npreheat audit on a generated log: {LINES:,} lines, {size / 1e6:.0f} MB")
        walls, peaks = [], []
        for _ in range(runs):
            started = time.perf_counter()
            child = subprocess.Popen(
                [preheat, "audit", log, "--dir", tmp],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            _, status, usage = os.wait4(child.pid, 0)
            walls.append(time.perf_counter() - started)
            peaks.append(usage.ru_maxrss / 1024)
            code = os.waitstatus_to_exitcode(status)
            if code not in (0, 1):
                raise SystemExit(f"preheat audit exited {code}")
        best = min(walls)
        print(f"wall: best {best:.2f} s, worst {max(walls):.2f} s over {runs} runs  (target < 3 s)")
        print(f"lines/s: {LINES / best:,.0f}  ({size / 1e6 / best:.0f} MB/s)")
        print(f"peak RSS: {max(peaks):.1f} MB  (target < 32 MB)")
