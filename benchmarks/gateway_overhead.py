"""Added latency and throughput of LLM gateways in front of an upstream that answers instantly:
tether's gateway side by side with the LiteLLM proxy and the Portkey gateway.

Method (PERF_NOTES.md): an nginx upstream answers a fixed OpenAI chat.completion JSON (with
usage) instantly; each gateway runs with one worker pinned to core 0 (`taskset -c 0`), the
client and the upstream on core 1. Added latency = a gateway's percentile minus the direct
(client straight to nginx) percentile at concurrency 1, over interleaved rounds: every round
sends a block of requests to each target in a shuffled order, each target on its own persistent
connection (a raw-socket HTTP/1.1 client timed with perf_counter_ns). Throughput: `wrk -t1 -cN
-d<secs> --latency` with a POST body (gateway/post.lua) at N = 1, 8, 32: requests/s and p99.
Every gateway is warmed up first, and every response is checked (status 200, the upstream's
answer). Only loopback addresses are used; every server started is stopped at the end.

Peers live outside the repo (default ~/.cache/tether-bench/) and are installed when missing:
LiteLLM proxy (`litellm[proxy]==1.93.0`, its own python3.11 virtualenv, one uvicorn worker,
no database, no master key, access log and LiteLLM's logging off) and the Portkey gateway
(`@portkey-ai/gateway@1.15.2` from npm, run with node, headless, routed with its
`x-portkey-provider: openai` and `x-portkey-custom-host` headers). nginx and wrk come from apt.
tether runs as `tether serve --host 127.0.0.1 --port P --config C` (request logging to SQLite
stays on) with a virtual key from `tether keys create`.

    python benchmarks/gateway_overhead.py [--rounds 40] [--per-round 100] [--wrk-seconds 10]

Writes results/gateway_overhead.json (`value`: LiteLLM's added p50 / tether's added p50,
`target`: 5; `throughput_ratio`: tether's requests/s / LiteLLM's at 8 connections) and
results/gateway_overhead.md.
"""

from __future__ import annotations

import gc
import json
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _results import (
    BENCH_DIR,
    REPO_ROOT,
    base_parser,
    console,
    fmt,
    machine,
    percentile,
    summary,
    utc_now,
    versions,
    write_results,
)

NAME = "gateway_overhead"
CONFIG_DIR = BENCH_DIR / "gateway"
REQUEST_BODY_FILE = CONFIG_DIR / "chat_request.json"
LITELLM_VERSION = "1.93.0"
PORTKEY_VERSION = "1.15.2"
TARGET_LATENCY_RATIO = 5.0  # tether's added p50 at most 1/5 of LiteLLM's
TARGET_THROUGHPUT_RATIO = 5.0  # tether's requests/s at 8 connections at least 5x LiteLLM's
THROUGHPUT_CONNECTIONS = 8  # the connection count the throughput targets are judged at
EXPECTED_CONTENT = b'"OK."'  # the upstream's answer; every response must carry it
LOOPBACK = "127.0.0.1"
TETHER_BIN = REPO_ROOT / ".venv" / "bin" / "tether"
LABELS = {
    "direct": "direct to upstream (nginx, baseline)",
    "tether": "tether gateway",
    "litellm": f"LiteLLM proxy {LITELLM_VERSION}",
    "portkey": f"Portkey gateway {PORTKEY_VERSION} (Node.js, npm)",
}


class BenchError(RuntimeError):
    """A setup step failed; the message says which and where its log is."""


# -- small helpers ----------------------------------------------------------------------------


def say(message: str) -> None:
    console.print(f"[bold cyan]gateway bench[/] {message}")


def run_step(argv: Sequence[str | Path], *, what: str, **kwargs: Any) -> str:
    """Run an install/setup command; raise with its output when it fails."""
    say(f"{what}: {' '.join(str(a) for a in argv)}")
    done = subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, check=False, **kwargs
    )
    if done.returncode != 0:
        tail = (done.stdout + done.stderr).strip()[-3000:]
        raise BenchError(f"{what} failed (exit {done.returncode}):\n{tail}")
    return done.stdout


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def fill(template: Path, values: dict[str, str]) -> str:
    text = template.read_text()
    for key, value in values.items():
        text = text.replace(f"@{key}@", value)
    leftover = re.findall(r"@[A-Z_]+@", text)
    if leftover:
        raise BenchError(f"{template.name}: unfilled placeholders {sorted(set(leftover))}")
    return text


def command_output(argv: Sequence[str]) -> str:
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return (done.stdout + done.stderr).strip()


# -- installing what is missing (idempotent) --------------------------------------------------


def ensure_system_tools() -> None:
    missing = [tool for tool in ("nginx", "wrk", "taskset") if shutil.which(tool) is None]
    if not missing:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise BenchError(f"missing {missing}: install them (apt-get install -y nginx wrk)")
    packages = ["nginx" if t == "nginx" else "wrk" if t == "wrk" else "util-linux" for t in missing]
    say(f"installing {packages} with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        run_step(["apt-get", "install", "-y", *packages], what="apt-get install", env=env)
    except BenchError:
        run_step(["apt-get", "update"], what="apt-get update", env=env)
        run_step(["apt-get", "install", "-y", *packages], what="apt-get install", env=env)


def litellm_dir(cache: Path) -> Path:
    return cache / f"litellm-{LITELLM_VERSION}"


def ensure_litellm(cache: Path) -> Path:
    venv = litellm_dir(cache)
    python = venv / "bin" / "python"
    probe = "import importlib.metadata as m; print(m.version('litellm'))"
    found = command_output([str(python), "-c", probe]) if python.exists() else ""
    if (venv / "bin" / "litellm").exists() and found.splitlines()[-1:] == [LITELLM_VERSION]:
        say(f"LiteLLM {LITELLM_VERSION} already installed in {venv}")
        return venv
    base = shutil.which("python3.11")
    if base is None:
        raise BenchError("python3.11 is needed for LiteLLM's virtualenv")
    say(f"installing LiteLLM proxy {LITELLM_VERSION} into {venv} (about a minute)")
    if venv.exists():
        shutil.rmtree(venv)
    venv.parent.mkdir(parents=True, exist_ok=True)
    run_step([base, "-m", "venv", venv], what="create LiteLLM virtualenv")
    run_step([python, "-m", "pip", "install", "--quiet", "--upgrade", "pip"], what="upgrade pip")
    run_step(
        [python, "-m", "pip", "install", "--quiet", f"litellm[proxy]=={LITELLM_VERSION}"],
        what="pip install litellm[proxy]",
    )
    return venv


def portkey_dir(cache: Path) -> Path:
    return cache / f"portkey-{PORTKEY_VERSION}"


def portkey_entry(cache: Path) -> Path:
    return portkey_dir(cache) / "node_modules" / "@portkey-ai" / "gateway" / "build"


def ensure_portkey(cache: Path) -> Path:
    folder = portkey_dir(cache)
    package = folder / "node_modules" / "@portkey-ai" / "gateway" / "package.json"
    if package.exists() and json.loads(package.read_text()).get("version") == PORTKEY_VERSION:
        say(f"Portkey gateway {PORTKEY_VERSION} already installed in {folder}")
        return folder
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            raise BenchError(f"{tool} is needed for the Portkey gateway (apt-get install nodejs)")
    say(f"installing @portkey-ai/gateway@{PORTKEY_VERSION} from npm into {folder}")
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "package.json").exists():
        (folder / "package.json").write_text('{"name": "tether-bench-portkey", "private": true}\n')
    run_step(
        ["npm", "install", "--no-audit", "--no-fund", f"@portkey-ai/gateway@{PORTKEY_VERSION}"],
        what="npm install @portkey-ai/gateway",
        cwd=folder,
    )
    return folder


def tether_status() -> str | None:
    """None when `tether serve` and `tether keys` exist, else why tether cannot run."""
    if not TETHER_BIN.exists():
        return f"{TETHER_BIN} does not exist (run `make setup`)"
    for sub in (["serve", "--help"], ["keys", "create", "--help"]):
        done = subprocess.run(
            [str(TETHER_BIN), *sub], capture_output=True, text=True, timeout=120, check=False
        )
        if done.returncode != 0:
            return f"`tether {' '.join(sub[:-1])}` is not available yet"
    return None


# -- servers ----------------------------------------------------------------------------------


def session_pids(sid: int) -> list[int]:
    """Processes in the session a server was started in (its own, via start_new_session)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[3]) == sid:  # fields after the name: state ppid pgrp session ...
            found.append(int(entry.name))
    return found


def cpu_seconds(pids: Sequence[int]) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def system_busy_seconds() -> float:
    """CPU seconds all cores have spent busy since boot (/proc/stat)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def own_seconds() -> float:
    """CPU seconds of this process and the children it has waited for (wrk, installers)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


class ForeignLoad:
    """CPU used by processes that are not part of the benchmark during a window: other work on
    the machine that would skew the figures."""

    def __init__(self, servers: Sequence[Server]) -> None:
        self.servers = servers
        self.wall = time.monotonic()
        self.busy = system_busy_seconds()
        self.ours = self._ours()

    def _ours(self) -> float:
        return own_seconds() + sum(cpu_seconds(s.pids) for s in self.servers)

    def share(self) -> float:
        """Other processes' CPU since the start, as a share of all cores' time."""
        wall = time.monotonic() - self.wall
        foreign = (system_busy_seconds() - self.busy) - (self._ours() - self.ours)
        return max(0.0, foreign) / (wall * (os.cpu_count() or 1))


def wait_quiet(max_wait: float, threshold: float = 0.05) -> float:
    """Sample the machine's CPU use for 2 s (again until quiet, up to max_wait s); return the
    last share of all cores' time that other processes used."""
    deadline = time.monotonic() + max_wait
    while True:
        window = ForeignLoad([])
        time.sleep(2.0)
        share = window.share()
        if share <= threshold or time.monotonic() >= deadline:
            return share
        say(f"[yellow]other processes use {share:.0%} of the CPUs; waiting for quiet[/]")


def listening_addresses(pids: Sequence[int]) -> list[str]:
    """Local addresses of the TCP sockets these processes listen on (from `ss -ltnp`)."""
    output = command_output(["ss", "-H", "-ltnp"])
    wanted = set(pids)
    found = []
    for line in output.splitlines():
        owners = {int(p) for p in re.findall(r"pid=(\d+)", line)}
        if owners & wanted:
            found.append(line.split()[3])
    return found


@dataclass
class Server:
    name: str
    argv: list[str]
    port: int
    log: Path
    env: dict[str, str] | None = None
    cwd: Path | None = None
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        say(f"starting {self.name} on {LOOPBACK}:{self.port}: {' '.join(self.argv)}")
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
            )

    @property
    def pids(self) -> list[int]:
        return session_pids(self.process.pid) if self.process else []

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, chars: int = 2500) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process is None:
            return
        sid = self.process.pid
        for sig, wait in ((signal.SIGTERM, 8.0), (signal.SIGKILL, 5.0)):
            if not self.session_alive(sid):
                break
            try:
                os.killpg(sid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and self.session_alive(sid):
                self.process.poll()
                time.sleep(0.05)
        self.process.poll()
        self.process = None

    def session_alive(self, sid: int) -> bool:
        if self.process is not None:
            self.process.poll()
        return bool(session_pids(sid))


@contextmanager
def servers_stopped_at_exit() -> Iterator[list[Server]]:
    """Every server appended to the yielded list is stopped on exit, error, Ctrl-C or SIGTERM."""
    started: list[Server] = []

    def on_signal(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    handled = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.signal(sig, on_signal) for sig in handled}
    try:
        yield started
    finally:
        for sig in handled:
            signal.signal(sig, signal.SIG_IGN)  # finish stopping servers before dying
        for server in reversed(started):
            say(f"stopping {server.name}")
            server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# -- the c=1 latency client -------------------------------------------------------------------


class Connection:
    """One persistent HTTP/1.1 connection that sends a fixed request and reads whole responses
    (Content-Length or chunked)."""

    def __init__(self, port: int, request: bytes) -> None:
        self.port = port
        self.request = request
        self.sock = socket.create_connection((LOOPBACK, port), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()

    def close(self) -> None:
        self.sock.close()

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError(f"port {self.port} closed the connection")
        self.buf += data

    def _line(self) -> bytes:
        while (end := self.buf.find(b"\r\n")) < 0:
            self._fill()
        line = bytes(self.buf[:end])
        del self.buf[: end + 2]
        return line

    def _take(self, size: int) -> bytes:
        while len(self.buf) < size:
            self._fill()
        data = bytes(self.buf[:size])
        del self.buf[:size]
        return data

    def exchange(self) -> tuple[int, bytes, bool]:
        """Send the request; return (status, body, server keeps the connection open)."""
        self.sock.sendall(self.request)
        while (end := self.buf.find(b"\r\n\r\n")) < 0:
            self._fill()
        head = bytes(self.buf[:end]).split(b"\r\n")
        del self.buf[: end + 4]
        status = int(head[0].split(b" ", 2)[1])
        headers = {}
        for line in head[1:]:
            key, _, value = line.partition(b":")
            headers[key.strip().lower()] = value.strip().lower()
        if b"content-length" in headers:
            body = self._take(int(headers[b"content-length"]))
        elif b"chunked" in headers.get(b"transfer-encoding", b""):
            parts = []
            while size := int(self._line().split(b";", 1)[0], 16):
                parts.append(self._take(size))
                self._take(2)
            while self._line():  # trailers, then the empty line
                pass
            body = b"".join(parts)
        else:
            raise ConnectionError(f"port {self.port}: response without a length (keep-alive)")
        return status, body, headers.get(b"connection") != b"close"


@dataclass
class Target:
    name: str
    port: int
    headers: dict[str, str] = field(default_factory=dict)
    server: Server | None = None
    path: str = "/v1/chat/completions"
    sent: int = 0  # requests answered, all phases (to compare with tether's request log)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}{self.path}"

    def request_bytes(self, body: bytes) -> bytes:
        lines = [
            f"POST {self.path} HTTP/1.1",
            f"Host: {LOOPBACK}:{self.port}",
            "Content-Type: application/json",
            f"Content-Length: {len(body)}",
            *[f"{k}: {v}" for k, v in self.headers.items()],
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def check_response(target: Target, status: int, body: bytes) -> None:
    if status != 200 or EXPECTED_CONTENT not in body:
        raise BenchError(f"{target.name}: unexpected response {status}: {body[:500]!r}")


def wait_ready(target: Target, body: bytes, timeout: float) -> float:
    """Poll with the benchmark's own request until it gets the upstream's answer back."""
    start = time.monotonic()
    last = "no answer"
    while time.monotonic() - start < timeout:
        server = target.server
        if server is not None and not server.alive():
            raise BenchError(f"{target.name} exited ({server.log}):\n{server.log_tail()}")
        try:
            conn = Connection(target.port, target.request_bytes(body))
            try:
                status, reply, _ = conn.exchange()
            finally:
                conn.close()
            if status == 200 and EXPECTED_CONTENT in reply:
                target.sent += 1
                return time.monotonic() - start
            last = f"{status}: {reply[:300]!r}"
        except OSError as error:
            last = repr(error)
        time.sleep(0.25)
    log = f" ({target.server.log}):\n{target.server.log_tail()}" if target.server else ""
    raise BenchError(f"{target.name} not ready after {timeout:.0f} s, last: {last}{log}")


def latency_rounds(
    targets: Sequence[Target], body: bytes, rounds: int, per_round: int, seed: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Interleaved rounds at concurrency 1; returns all samples (ms) and per-round medians."""
    rng = random.Random(seed)
    conns = {t.name: Connection(t.port, t.request_bytes(body)) for t in targets}
    samples: dict[str, list[float]] = {t.name: [] for t in targets}
    round_medians: dict[str, list[float]] = {t.name: [] for t in targets}
    clock = time.perf_counter_ns
    try:
        gc.collect()
        gc.disable()
        for index in range(rounds):
            order = list(targets)
            rng.shuffle(order)
            for target in order:
                conn = conns[target.name]
                block = []
                for _ in range(per_round):
                    start = clock()
                    status, reply, keep = conn.exchange()
                    block.append((clock() - start) / 1e6)
                    check_response(target, status, reply)
                    if not keep:
                        raise BenchError(f"{target.name} closed the persistent connection")
                samples[target.name] += block
                target.sent += len(block)
                round_medians[target.name].append(percentile(sorted(block), 50))
            if (index + 1) % max(1, rounds // 5) == 0 or index + 1 == rounds:
                medians = ", ".join(
                    f"{name} {fmt(percentile(sorted(values), 50), 3)}"
                    for name, values in samples.items()
                )
                say(f"latency round {index + 1}/{rounds}: p50 ms so far: {medians}")
    finally:
        gc.enable()
        for conn in conns.values():
            conn.close()
    return samples, round_medians


# -- wrk --------------------------------------------------------------------------------------

UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def parse_duration_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not match:
        raise ValueError(f"cannot read wrk duration {text!r}")
    return float(match.group(1)) * UNITS_MS[match.group(2)]


def parse_wrk(output: str) -> dict[str, Any]:
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in ([\d.]+\w+)", output)
    if not rps or not total:
        raise BenchError(f"cannot read wrk's output:\n{output}")
    result: dict[str, Any] = {
        "requests_per_s": float(rps.group(1)),
        "requests": int(total.group(1)),
        "duration_ms": parse_duration_ms(total.group(2)),
        "latency_ms": {
            f"p{pct}": parse_duration_ms(value)
            for pct, value in re.findall(r"^\s+(\d+)%\s+(\S+)\s*$", output, re.M)
        },
        "non_2xx": 0,
        "socket_errors": None,
    }
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if non_2xx:
        result["non_2xx"] = int(non_2xx.group(1))
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if errors:
        result["socket_errors"] = dict(
            zip(("connect", "read", "write", "timeout"), map(int, errors.groups()), strict=True)
        )
    return result


def run_wrk(target: Target, connections: int, seconds: int, client_core: int) -> dict[str, Any]:
    argv = [
        "taskset", "-c", str(client_core), "wrk", "-t1", f"-c{connections}",
        f"-d{max(1, seconds)}s", "--latency", "--timeout", "10s",
        "-s", str(CONFIG_DIR / "post.lua"),
    ]  # fmt: skip
    for key, value in target.headers.items():
        argv += ["-H", f"{key}: {value}"]
    argv.append(target.url)
    env = {**os.environ, "GATEWAY_BENCH_BODY": str(REQUEST_BODY_FILE)}
    pids = target.server.pids if target.server else []
    cpu_before = cpu_seconds(pids)
    done = subprocess.run(
        argv, capture_output=True, text=True, env=env, timeout=seconds + 60, check=False
    )
    cpu_used = cpu_seconds(pids) - cpu_before
    if done.returncode != 0:
        raise BenchError(f"wrk failed on {target.name}:\n{done.stdout}{done.stderr}")
    result = parse_wrk(done.stdout)
    result["connections"] = connections
    if pids and result["requests"]:
        result["gateway_cpu_ms_per_request"] = cpu_used * 1e3 / result["requests"]
        result["gateway_cpu_utilisation"] = cpu_used * 1e3 / result["duration_ms"]
    return result


# -- setting up each target -------------------------------------------------------------------


@dataclass
class Setup:
    workdir: Path
    cache: Path
    gateway_core: int
    client_core: int
    body: bytes
    started: list[Server]
    commands: dict[str, list[str]] = field(default_factory=dict)
    startup_s: dict[str, float] = field(default_factory=dict)

    def launch(self, target: Target, timeout: float) -> None:
        assert target.server is not None
        self.started.append(target.server)
        self.commands[target.name] = target.server.argv
        target.server.start()
        self.startup_s[target.name] = wait_ready(target, self.body, timeout)
        addresses = listening_addresses(target.server.pids)
        outside = [a for a in addresses if not a.startswith(("127.", "[::1]", "[::ffff:127."))]
        if outside:
            raise BenchError(f"{target.name} listens beyond loopback: {outside}")
        say(f"{target.name} ready in {self.startup_s[target.name]:.1f} s, listening {addresses}")

    def pinned(self, *argv: str | Path) -> list[str]:
        return ["taskset", "-c", str(self.gateway_core), *[str(a) for a in argv]]

    def log(self, name: str) -> Path:
        return self.workdir / f"{name}.log"


def start_upstream(setup: Setup) -> Target:
    port = free_port()
    prefix = setup.workdir / "nginx"
    prefix.mkdir()
    conf = prefix / "nginx.conf"
    conf.write_text(fill(CONFIG_DIR / "nginx.conf", {"PORT": str(port), "PREFIX": str(prefix)}))
    argv = ["taskset", "-c", str(setup.client_core), "nginx", "-p", str(prefix), "-c", str(conf)]
    target = Target("direct", port, server=Server("nginx upstream", argv, port, setup.log("nginx")))
    setup.launch(target, timeout=30)
    return target


def start_tether(setup: Setup, upstream: Target) -> Target:
    port = free_port()
    folder = setup.workdir / "tether"
    folder.mkdir()
    config = folder / "tether.toml"
    config.write_text(
        fill(
            CONFIG_DIR / "tether.toml",
            {
                "UPSTREAM": f"http://{LOOPBACK}:{upstream.port}/v1",
                "DATABASE_URL": f"sqlite:///{folder / 'tether.db'}",
            },
        )
    )
    output = run_step(
        [TETHER_BIN, "keys", "create", "bench", "--config", config],
        what="create a tether virtual key",
        cwd=folder,
    )
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    key = lines[-1] if lines else ""
    if not key.startswith("tk-"):
        raise BenchError(f"`tether keys create` printed no tk- key on its last line:\n{output}")
    argv = setup.pinned(
        TETHER_BIN, "serve", "--host", LOOPBACK, "--port", str(port), "--config", config
    )
    server = Server("tether", argv, port, setup.log("tether"), cwd=folder)
    target = Target("tether", port, {"Authorization": f"Bearer {key}"}, server)
    setup.launch(target, timeout=120)
    return target


def start_litellm(setup: Setup, upstream: Target, venv: Path) -> Target:
    port = free_port()
    drop = ("DATABASE_URL", "LITELLM_MASTER_KEY", "REDIS_HOST", "REDIS_URL", "STORE_MODEL_IN_DB")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(
        GATEWAY_BENCH_UPSTREAM=f"http://{LOOPBACK}:{upstream.port}/v1",
        LITELLM_LOCAL_MODEL_COST_MAP="True",  # no network fetch of the cost map at import
        LITELLM_LOG="ERROR",
        LITELLM_TELEMETRY="False",
        PYTHONUNBUFFERED="1",
    )
    argv = setup.pinned(
        venv / "bin" / "litellm", "--config", CONFIG_DIR / "litellm_config.yaml",
        "--host", LOOPBACK, "--port", str(port), "--num_workers", "1",
        "--log_config", CONFIG_DIR / "litellm_log_config.json",
    )  # fmt: skip
    server = Server("litellm", argv, port, setup.log("litellm"), env=env, cwd=setup.workdir)
    target = Target("litellm", port, {}, server)
    setup.launch(target, timeout=180)
    return target


def start_portkey(setup: Setup, upstream: Target, folder: Path) -> Target:
    port = free_port()
    env = {**os.environ, "NODE_ENV": "production"}
    entry = portkey_entry(setup.cache) / "start-server.js"
    argv = setup.pinned(
        "node", "--require", CONFIG_DIR / "loopback.cjs", entry, f"--port={port}", "--headless"
    )
    server = Server("portkey", argv, port, setup.log("portkey"), env=env, cwd=folder)
    headers = {
        "x-portkey-provider": "openai",
        "x-portkey-custom-host": f"http://{LOOPBACK}:{upstream.port}/v1",
        "Authorization": "Bearer sk-bench-unused",
    }
    target = Target("portkey", port, headers, server)
    setup.launch(target, timeout=60)
    return target


def idle_cpu(targets: Sequence[Target], seconds: float = 2.0) -> dict[str, float]:
    """CPU share each gateway burns while nothing is sent (noise on the gateway core)."""
    before = {t.name: cpu_seconds(t.server.pids) for t in targets if t.server}
    time.sleep(seconds)
    return {
        t.name: (cpu_seconds(t.server.pids) - before[t.name]) / seconds for t in targets if t.server
    }


def warm_up(targets: Sequence[Target], body: bytes, requests: int, seconds: int, core: int) -> None:
    for target in targets:
        conn = Connection(target.port, target.request_bytes(body))
        try:
            for _ in range(requests):
                status, reply, _ = conn.exchange()
                check_response(target, status, reply)
                target.sent += 1
        finally:
            conn.close()
        if seconds > 0:
            result = run_wrk(target, 8, seconds, core)
            target.sent += result["requests"]
            if result["non_2xx"] or result["requests"] == 0:
                raise BenchError(f"{target.name}: warm-up got {result}")
        say(f"warmed up {target.name}")


# -- versions ---------------------------------------------------------------------------------


def peer_versions(cache: Path, with_litellm: bool, with_portkey: bool) -> dict[str, Any]:
    found: dict[str, Any] = versions(
        "tether", "fastapi", "starlette", "uvicorn", "uvloop", "httptools", "aiohttp", "orjson"
    )
    nginx = re.search(r"nginx/(\S+)", command_output(["nginx", "-v"]))
    wrk = re.search(r"wrk (\S+)", command_output(["wrk", "-v"]))
    found["nginx"] = nginx.group(1) if nginx else None
    found["wrk"] = wrk.group(1) if wrk else None
    if with_litellm:
        python = litellm_dir(cache) / "bin" / "python"
        probe = (
            "import importlib.metadata as m, platform; "
            "print(m.version('litellm'), m.version('uvicorn'), m.version('fastapi'), "
            "platform.python_version())"
        )
        parts = command_output([str(python), "-c", probe]).split()
        if len(parts) == 4:
            found["litellm"] = parts[0]
            found["litellm_uvicorn"] = parts[1]
            found["litellm_fastapi"] = parts[2]
            found["litellm_python"] = parts[3]
    if with_portkey:
        package = portkey_entry(cache).parent / "package.json"
        found["portkey_gateway"] = json.loads(package.read_text()).get("version")
        found["node"] = command_output(["node", "--version"]).lstrip("v") or None
    return found


# -- main -------------------------------------------------------------------------------------


def parse_args() -> Any:
    parser = base_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=40, help="interleaved c=1 rounds")
    parser.add_argument(
        "--per-round", type=int, default=100, help="requests per target in each round"
    )
    parser.add_argument("--wrk-seconds", type=int, default=10, help="seconds per wrk run")
    parser.add_argument(
        "--connections", default="1,8,32", help="wrk connection counts (comma-separated)"
    )
    parser.add_argument("--warmup-requests", type=int, default=300, help="c=1 warm-up requests")
    parser.add_argument(
        "--warmup-seconds", type=int, default=3, help="wrk warm-up at 8 connections (0: none)"
    )
    parser.add_argument(
        "--gateways",
        default="tether,litellm,portkey",
        help="gateways to compare (comma-separated subset of tether,litellm,portkey)",
    )
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path.home() / ".cache" / "tether-bench",
        help="where the peers (LiteLLM venv, Portkey npm install) are installed",
    )
    parser.add_argument("--gateway-core", type=int, default=0, help="core the gateways run on")
    parser.add_argument("--client-core", type=int, default=1, help="core of client and upstream")
    parser.add_argument("--seed", type=int, default=20260101, help="seed of the round order")
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        help="wait up to this many seconds for other processes to leave the CPUs idle",
    )
    parser.add_argument(
        "--keep-logs", action="store_true", help="keep the servers' logs and configs"
    )
    return parser.parse_args()


@dataclass
class Measured:
    names: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    samples: dict[str, list[float]] = field(default_factory=dict)
    round_medians: dict[str, list[float]] = field(default_factory=dict)
    throughput: dict[str, dict[str, Any]] = field(default_factory=dict)
    idle: dict[str, float] = field(default_factory=dict)
    commands: dict[str, list[str]] = field(default_factory=dict)
    startup: dict[str, float] = field(default_factory=dict)
    alive: dict[str, bool] = field(default_factory=dict)
    sent: dict[str, int] = field(default_factory=dict)
    foreign_cpu_before: float | None = None
    foreign_cpu_during: float | None = None
    tether_logged_requests: int | None = None


def tether_logged_requests(database: Path) -> int | None:
    """Rows in tether's request log after it stopped (None when it cannot be read)."""
    try:
        with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
            return int(db.execute("SELECT count(*) FROM requests").fetchone()[0])
    except sqlite3.Error:
        return None


def measure(args: Any, setup: Setup, wanted: list[str], measured: Measured, peers: dict) -> None:
    direct = start_upstream(setup)
    gateways: list[Target] = []
    for name in wanted:
        if name == "tether":
            gateways.append(start_tether(setup, direct))
        elif name == "litellm":
            gateways.append(start_litellm(setup, direct, peers["litellm"]))
        elif name == "portkey":
            gateways.append(start_portkey(setup, direct, peers["portkey"]))
    targets = [direct, *gateways]
    measured.names = [t.name for t in targets]
    measured.commands = setup.commands
    measured.startup = setup.startup_s
    window = ForeignLoad(setup.started)

    warm_up(targets, setup.body, args.warmup_requests, args.warmup_seconds, args.client_core)
    measured.idle = idle_cpu(gateways)
    say(f"CPU share per gateway while idle: {measured.idle}")

    say(f"c=1 latency: {args.rounds} rounds x {args.per_round} requests per target")
    measured.samples, measured.round_medians = latency_rounds(
        targets, setup.body, args.rounds, args.per_round, args.seed
    )
    measured.throughput = {t.name: {} for t in targets}
    for index, n in enumerate(args.connection_counts):
        shift = index % len(targets)
        for target in targets[shift:] + targets[:shift]:
            result = run_wrk(target, n, args.wrk_seconds, args.client_core)
            measured.throughput[target.name][str(n)] = result
            target.sent += result["requests"]
            say(
                f"wrk c={n} {target.name}: {fmt(result['requests_per_s'], 0)} req/s, "
                f"p99 {fmt(result['latency_ms'].get('p99'))} ms, non-2xx {result['non_2xx']}"
            )
    measured.foreign_cpu_during = window.share()
    measured.alive = {s.name: s.alive() for s in setup.started}
    measured.sent = {t.name: t.sent for t in targets}
    if measured.foreign_cpu_during > 0.05:
        say(
            f"[yellow]other processes used {measured.foreign_cpu_during:.0%} of the CPUs during "
            "the measurement: the figures are skewed, rerun on a quiet machine[/]"
        )


def main() -> None:
    args = parse_args()
    args.connection_counts = sorted({int(n) for n in args.connections.split(",") if n.strip()})
    wanted = [g.strip() for g in args.gateways.split(",") if g.strip()]
    unknown = set(wanted) - {"tether", "litellm", "portkey"}
    if unknown:
        raise SystemExit(f"unknown gateways {sorted(unknown)}")
    cores = os.sched_getaffinity(0)
    if not {args.gateway_core, args.client_core} <= cores or args.gateway_core == args.client_core:
        raise SystemExit(f"need two distinct cores among {sorted(cores)}")
    facts = machine()
    started_utc = utc_now()
    measured = Measured()

    ensure_system_tools()
    if "tether" in wanted and (why := tether_status()) is not None:
        measured.skipped["tether"] = why
        wanted.remove("tether")
        say(f"[yellow]tether is left out: {why}[/]")
    peers: dict[str, Path] = {}
    if "litellm" in wanted:
        peers["litellm"] = ensure_litellm(args.cache)
    if "portkey" in wanted:
        peers["portkey"] = ensure_portkey(args.cache)
    # The client (this process, wrk) and the upstream share one core; gateways get the other.
    os.sched_setaffinity(0, {args.client_core})
    measured.foreign_cpu_before = wait_quiet(args.wait_quiet)
    say(f"other processes' CPU share before starting: {measured.foreign_cpu_before:.1%}")

    workdir = Path(tempfile.mkdtemp(prefix="tether-gateway-bench-"))
    failed = True  # keep the logs of a failed run (not of an interrupted one)
    try:
        with servers_stopped_at_exit() as started:
            setup = Setup(
                workdir, args.cache, args.gateway_core, args.client_core,
                REQUEST_BODY_FILE.read_bytes().strip(), started,
            )  # fmt: skip
            measure(args, setup, wanted, measured, peers)
        if "tether" in wanted:
            measured.tether_logged_requests = tether_logged_requests(
                workdir / "tether" / "tether.db"
            )
        failed = False
    except KeyboardInterrupt:
        failed = args.keep_logs
        raise
    finally:
        if failed or args.keep_logs:
            say(f"logs and configs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    found = peer_versions(args.cache, "litellm" in wanted, "portkey" in wanted)
    report(args, facts, started_utc, measured, found)


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return numerator / denominator


def report(
    args: Any,
    facts: dict[str, Any],
    started_utc: str,
    measured: Measured,
    found_versions: dict[str, Any],
) -> None:
    names, skipped, samples = measured.names, measured.skipped, measured.samples
    round_medians, throughput, idle = measured.round_medians, measured.throughput, measured.idle
    connections = args.connection_counts
    latency: dict[str, dict[str, Any]] = {}
    direct = sorted(samples["direct"])
    direct_pct = {p: percentile(direct, p) for p in (50, 90, 99)}
    for name in names:
        ordered = sorted(samples[name])
        pct = {p: percentile(ordered, p) for p in (50, 90, 99)}
        per_round_added = [
            g - d for g, d in zip(round_medians[name], round_medians["direct"], strict=True)
        ]
        latency[name] = {
            "ms": summary(ordered) | {"p50": pct[50], "p99": pct[99]},
            "added_p50_ms": pct[50] - direct_pct[50],
            "added_p90_ms": pct[90] - direct_pct[90],
            "added_p99_ms": pct[99] - direct_pct[99],
            "per_round_added_p50_ms": summary(per_round_added),
        }

    def added(name: str, key: str = "added_p50_ms") -> float | None:
        return latency[name][key] if name in latency else None

    def rps(name: str, n: int = THROUGHPUT_CONNECTIONS) -> float | None:
        run = throughput.get(name, {}).get(str(n))
        return run["requests_per_s"] if run else None

    value = ratio(added("litellm"), added("tether"))
    throughput_ratio = ratio(rps("tether"), rps("litellm"))
    tether_p50, portkey_p50 = added("tether"), added("portkey")
    tether_rps, portkey_rps = rps("tether"), rps("portkey")
    meets = {
        "meets_latency_vs_litellm": None if value is None else value >= TARGET_LATENCY_RATIO,
        "meets_latency_vs_portkey": None
        if tether_p50 is None or portkey_p50 is None
        else tether_p50 < portkey_p50,
        "meets_throughput_vs_litellm": None
        if throughput_ratio is None
        else throughput_ratio >= TARGET_THROUGHPUT_RATIO,
        "meets_throughput_vs_portkey": None
        if tether_rps is None or portkey_rps is None
        else tether_rps > portkey_rps,
    }
    bad_runs = [
        f"{name} c={n}: {run['non_2xx']} non-2xx, socket errors {run['socket_errors']}"
        for name, runs in throughput.items()
        for n, run in runs.items()
        if run["non_2xx"] or (run["socket_errors"] and any(run["socket_errors"].values()))
    ]
    payload: dict[str, Any] = {
        "benchmark": NAME,
        "date_utc": started_utc,
        "headline": "LiteLLM's added p50 / tether's added p50 (c=1)",
        "value": value,
        "target": TARGET_LATENCY_RATIO,
        "target_rule": ">= 5 (tether adds at most 1/5 of LiteLLM's p50 latency)",
        "meets_target": bool(meets["meets_latency_vs_litellm"]),
        "throughput_ratio": throughput_ratio,
        "throughput_target": TARGET_THROUGHPUT_RATIO,
        "throughput_rule": (
            f"tether's requests/s >= 5x LiteLLM's at {THROUGHPUT_CONNECTIONS} connections"
        ),
        **meets,
        "meets_all_targets": all(meets.values()) if None not in meets.values() else False,
        "tether_added_p50_ms": tether_p50,
        "litellm_added_p50_ms": added("litellm"),
        "portkey_added_p50_ms": portkey_p50,
        "tether_added_p99_ms": added("tether", "added_p99_ms"),
        "litellm_added_p99_ms": added("litellm", "added_p99_ms"),
        "portkey_added_p99_ms": added("portkey", "added_p99_ms"),
        f"tether_rps_c{THROUGHPUT_CONNECTIONS}": tether_rps,
        f"litellm_rps_c{THROUGHPUT_CONNECTIONS}": rps("litellm"),
        f"portkey_rps_c{THROUGHPUT_CONNECTIONS}": portkey_rps,
        "portkey": {
            "added_p50_ms": portkey_p50,
            "added_p99_ms": added("portkey", "added_p99_ms"),
            "requests_per_s": {str(n): rps("portkey", n) for n in connections},
            "tether_added_p50_vs_portkey": ratio(tether_p50, portkey_p50),
            "tether_rps_vs_portkey_c8": ratio(tether_rps, portkey_rps),
        },
        "compared": {name: LABELS[name] for name in names},
        "left_out": skipped,
        "method": __doc__.split("\n\n")[1].replace("\n", " "),
        "parameters": {
            "rounds": args.rounds,
            "requests_per_target_per_round": args.per_round,
            "wrk_seconds": args.wrk_seconds,
            "wrk_connections": connections,
            "wrk_threads": 1,
            "warmup_requests": args.warmup_requests,
            "warmup_wrk_seconds": args.warmup_seconds,
            "gateway_core": args.gateway_core,
            "client_and_upstream_core": args.client_core,
            "round_order_seed": args.seed,
            "request_body": REQUEST_BODY_FILE.read_text().strip(),
            "request_headers": {
                "tether": {"Authorization": "Bearer tk-<virtual key from tether keys create>"},
                "portkey": {
                    "x-portkey-provider": "openai",
                    "x-portkey-custom-host": "http://127.0.0.1:<upstream>/v1",
                    "Authorization": "Bearer sk-bench-unused",
                },
            },
            "commands": measured.commands,
        },
        "latency_c1": latency,
        "throughput": throughput,
        "gateway_idle_cpu_share": idle,
        "other_processes_cpu_share": {
            "before_start": measured.foreign_cpu_before,
            "during_measurement": measured.foreign_cpu_during,
        },
        "requests_sent": measured.sent,
        "tether_logged_requests": measured.tether_logged_requests,
        "startup_s": measured.startup,
        "alive_at_end": measured.alive,
        "wrk_runs_with_errors": bad_runs,
        "versions": found_versions,
        "machine": facts,
    }

    def ms(x: float | None, digits: int = 2) -> str:
        return "n/a" if x is None else f"{x:.{digits}f} ms"

    rows = []
    for name in names:
        cells = [LABELS[name]]
        if name == "direct":
            cells += [
                f"p50 {ms(direct_pct[50], 3)} (baseline)", f"p99 {ms(direct_pct[99], 3)}"
            ]  # fmt: skip
        else:
            cells += [ms(added(name)), ms(added(name, "added_p99_ms"))]
        for n in connections:
            run = throughput[name].get(str(n))
            if run is None:
                cells.append("n/a")
                continue
            text = f"{run['requests_per_s']:,.0f}"
            if n != 1:
                text += f" ({ms(run['latency_ms'].get('p99'), 0 if name != 'direct' else 2)})"
            cells.append(text)
        rows.append(cells)
    for name, why in skipped.items():
        rows.append([LABELS[name], f"not run: {why}", "", *["" for _ in connections]])
    header = [
        "gateway (one worker, pinned to one core)",
        "added p50",
        "added p99",
        *[f"req/s c={n}" + (" (p99)" if n != 1 else "") for n in connections],
    ]

    def verdict(flag: bool | None) -> str:
        return "n/a (not measured)" if flag is None else ("meets" if flag else "misses")

    cpu_per_request = {
        name: runs[str(THROUGHPUT_CONNECTIONS)].get("gateway_cpu_ms_per_request")
        for name, runs in throughput.items()
        if name != "direct" and str(THROUGHPUT_CONNECTIONS) in runs
    }
    cpu_note = (
        f"Gateway CPU ms per request at c={THROUGHPUT_CONNECTIONS}: "
        + ", ".join(f"{name} {fmt(v, 2)}" for name, v in cpu_per_request.items())
        + "; CPU share while idle: "
        + ", ".join(f"{name} {share:.1%}" for name, share in idle.items())
        + "."
    )
    notes = [
        f"Targets: tether's added p50 <= 1/5 of LiteLLM's: "
        f"{verdict(meets['meets_latency_vs_litellm'])} (ratio {fmt(value, 2)}); "
        f"below Portkey's: {verdict(meets['meets_latency_vs_portkey'])}; tether's req/s at "
        f"{THROUGHPUT_CONNECTIONS} connections >= 5x LiteLLM's: "
        f"{verdict(meets['meets_throughput_vs_litellm'])} (ratio {fmt(throughput_ratio, 2)}); "
        f"above Portkey's: {verdict(meets['meets_throughput_vs_portkey'])}.",
        f"Added latency: gateway percentile minus direct percentile over {args.rounds} "
        f"interleaved rounds x {args.per_round} requests per target on persistent connections "
        f"(c=1, raw-socket client, perf_counter_ns). Throughput: wrk -t1 -cN "
        f"-d{args.wrk_seconds}s --latency, POST body gateway/chat_request.json.",
        f"Gateways pinned to core {args.gateway_core} with one worker; client (this script, "
        f"wrk) and the nginx upstream on core {args.client_core}; loopback only.",
        cpu_note,
        "Versions: "
        + ", ".join(f"{k} {v}" for k, v in found_versions.items() if v is not None)
        + ".",
        "Absolute numbers drift between machines and runs; compare side by side in one run.",
    ]
    if measured.foreign_cpu_during is not None:
        notes.append(
            f"Other processes on the machine used {measured.foreign_cpu_during:.1%} of the CPUs "
            f"during the measurement ({(measured.foreign_cpu_before or 0):.1%} just before)"
            + (
                ": figures skewed, rerun on a quiet machine."
                if measured.foreign_cpu_during > 0.05
                else "."
            )
        )
    if "tether" in measured.sent:
        notes.append(
            f"tether's request log (SQLite) holds {fmt(measured.tether_logged_requests)} rows for "
            f"{measured.sent['tether']:,} answered requests (logging on, off the request path)."
        )
    if bad_runs:
        notes.append("wrk runs with errors (their figures are suspect): " + "; ".join(bad_runs))
    json_path, md_path = write_results(
        NAME,
        args.out,
        payload,
        title="LLM gateway overhead: tether vs LiteLLM vs Portkey (instant upstream)",
        header=header,
        rows=rows,
        notes=notes,
    )
    console.print(md_path.read_text())
    console.print(f"wrote {json_path} and {md_path}")


if __name__ == "__main__":
    try:
        main()
    except BenchError as error:
        console.print(f"[bold red]gateway bench failed:[/] {error}")
        sys.exit(1)
    except KeyboardInterrupt:
        console.print("[bold red]gateway bench interrupted[/]")
        sys.exit(130)
