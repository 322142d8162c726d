"""Shared pieces: run modes, statistics, result rows, machine load, process memory, servers."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"


@dataclass(frozen=True)
class Mode:
    """Every size a benchmark uses; `quick` checks the machinery, `full` is the measurement."""

    name: str
    race_n: tuple[int, ...]
    throughput_requests: int
    throughput_connections: int
    page_requests: int
    page_connections: int
    fanout_k: tuple[int, ...]
    fanout_events: int
    growth_clinics: int
    growth_sizes: tuple[int, ...]
    growth_samples: int
    outbox_messages: int
    outbox_samples: int
    # Before each benchmark: wait (at most this long) for the 1-minute load to fall below max_load.
    settle_seconds: float


QUICK = Mode(name="quick", race_n=(20, 50), throughput_requests=60, throughput_connections=8,
             page_requests=60, page_connections=4, fanout_k=(50, 150), fanout_events=2,
             growth_clinics=50, growth_sizes=(200, 2_000, 20_000), growth_samples=10,
             outbox_messages=40, outbox_samples=10,
             settle_seconds=0)
FULL = Mode(name="full", race_n=(100, 1000), throughput_requests=1500, throughput_connections=16,
            page_requests=3000, page_connections=16, fanout_k=(1000, 5000, 10_000), fanout_events=3,
            growth_clinics=1000, growth_sizes=(10_000, 100_000, 1_000_000), growth_samples=100,
            outbox_messages=1000, outbox_samples=50,
            settle_seconds=300)


# Statistics -----------------------------------------------------------------------------

def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def summary_ms(seconds: Sequence[float]) -> dict[str, float]:
    """p50 / p99 / max of durations given in seconds, in milliseconds."""
    return {"n": len(seconds), "p50_ms": percentile(seconds, 50) * 1000,
            "p99_ms": percentile(seconds, 99) * 1000,
            "max_ms": (max(seconds) * 1000) if seconds else float("nan")}


def ms(value: float) -> str:
    if value != value:  # NaN
        return "–"
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}"


# Results --------------------------------------------------------------------------------

@dataclass
class Row:
    """One line of the results table: our figure, the same-run baseline, and their ratio."""

    bench: str
    case: str
    ours: str
    baseline: str
    ratio: float | None
    ratio_means: str
    target: str = ""
    met: bool | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def ratio(a: float, b: float) -> float | None:
    if not b or a != a or b != b:
        return None
    return a / b


# Machine --------------------------------------------------------------------------------

def load1() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def settle(max_load: float, seconds: float, label: str) -> dict[str, Any]:
    """Wait (bounded) for the 1-minute load to drop below `max_load`; report what we found."""
    start = time.monotonic()
    found = load1()
    while found >= max_load and time.monotonic() - start < seconds:
        time.sleep(min(10.0, max(0.0, seconds - (time.monotonic() - start))))
        found = load1()
    waited = time.monotonic() - start
    info = {"load1_at_start": found, "settled": found < max_load, "waited_s": round(waited)}
    print(f"[{label}] 1-min load {found:.2f} after waiting {waited:.0f}s"
          f"{'' if found < max_load else f' (still >= {max_load})'}", flush=True)
    return info


def machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines()
                  if line.startswith("model name")), "unknown")
    mem_kib = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal:"))
    return {"nproc": os.cpu_count(), "cpu": model, "ram_gib": round(mem_kib / 1024 / 1024, 1),
            "python": sys.version.split()[0], "kernel": os.uname().release}


def raise_nofile() -> int:
    """Raise this process's soft open-file limit to the hard one (children inherit it);
    the soft limit now."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # An unlimited hard limit still stops at the kernel's per-process ceiling.
    ceiling = int(Path("/proc/sys/fs/nr_open").read_text())
    target = ceiling if hard == resource.RLIM_INFINITY else min(hard, ceiling)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def nofile_limit(pid: int) -> int | None:
    """The soft open-file limit of a running process (from /proc), None if unknown."""
    try:
        for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
            if line.startswith("Max open files"):
                soft = line.split()[3]
                return None if soft == "unlimited" else int(soft)
    except OSError:
        pass
    return None


def open_fds(pid: int) -> int:
    """How many file descriptors a process has open (each stream holds one socket)."""
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def tree_pids(root: int) -> list[int]:
    tree, out, todo = _children(), [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(tree.get(pid, []))
    return out


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def server_pids(root: int, exclude: str = "dentbook.stripe_local") -> list[int]:
    """A server's process tree (supervisor and workers), leaving out `exclude`."""
    return [p for p in tree_pids(root) if exclude not in cmdline(p)]


def server_rss_kib(root: int, exclude: str = "dentbook.stripe_local") -> int:
    """RSS summed over a server's process tree (supervisor and workers), leaving out `exclude`."""
    return sum(rss_kib(p) for p in server_pids(root, exclude))


# Servers --------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def base_env(**extra: str) -> dict[str, str]:
    """The environment of a bench server: ours without anything that would change its config."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DENTBOOK_", "STRIPE_")) and k != "DATABASE_URL"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    env.update(extra)
    return env


class Server:
    """A server subprocess in its own process group; always stopped (the whole group)."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], port: int, log_dir: Path,
                 ready_path: str = "/healthz") -> None:
        self.name, self.argv, self.env, self.port = name, argv, env, port
        self.ready_path = ready_path
        self.log_path = log_dir / f"{name}-{port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 60.0) -> Server:
        log = self.log_path.open("ab")
        # The child raises its soft open-file limit to the hard one before it runs, as a
        # server holding thousands of streams must (its workers inherit the limit).
        self.proc = subprocess.Popen(self.argv, env=self.env, cwd=REPO, stdout=log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True, preexec_fn=raise_nofile)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start-up; see {self.log_path}")
            if _http_ok(self.port, self.ready_path):
                return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer {self.ready_path} in {timeout:.0f}s")

    def stop(self) -> None:
        if self.proc is None or (self.proc.poll() is not None and not _group_alive(self.proc.pid)):
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            pass
        deadline = time.monotonic() + 10
        while _group_alive(self.proc.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _group_alive(self.proc.pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _http_ok(port: int, path: str) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
            s.settimeout(2)
            return s.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def product_server(app_url: str, log_dir: Path, secret: str, workers: int = 2,
                   **extra: str) -> Server:
    """`dentbook serve --workers 2` as documented for deployment, with the local Stripe
    (STRIPE_SECRET_KEY unset) and the per-address limits on holds and streams lifted (all
    load comes from 127.0.0.1; the per-process stream limit stays as deployed);
    `extra` settings on top."""
    port = free_port()
    env = base_env(DATABASE_URL=app_url, DENTBOOK_SECRET_KEY=secret, DENTBOOK_HOST=HOST,
                   DENTBOOK_MAX_HOLDS_PER_IP="1000000", DENTBOOK_MAX_HOLDS_PER_EMAIL="1000000",
                   DENTBOOK_MAX_STREAMS_PER_CLIENT="1000000",
                   DENTBOOK_LOCAL_STRIPE_PORT=str(free_port()), DENTBOOK_DATA_DIR=str(log_dir),
                   **extra)
    argv = [sys.executable, "-m", "dentbook", "serve", "--workers", str(workers), "--port", str(port)]
    return Server("dentbook", argv, env, port, log_dir)


def uvicorn_server(name: str, target: str, env: dict[str, str], log_dir: Path, *,
                   factory: bool = False, workers: int = 2) -> Server:
    """A bench-only ASGI app under uvicorn with the same worker processes (a socket each,
    dentbook.workers), flags and HTTP protocol (Nagle off) as `serve`."""
    port = free_port()
    config = (f"dict(app={target!r}, host={HOST!r}, port={port}, factory={factory}, "
              f"http=DentbookProtocol, server_header=False, access_log=False, "
              f"timeout_graceful_shutdown=3, log_level='warning')")
    run = (f"from dentbook import workers; from dentbook.protocol import DentbookProtocol; "
           f"workers.run({config}, {workers})")
    argv = [sys.executable, "-c", run]
    return Server(name, argv, env, port, log_dir)
