"""What observability costs the gateway: tether with signals, Prometheus metrics and
OpenTelemetry traces on, side by side with tether with them all off, in front of an upstream
that answers instantly.

Method: benchmarks/gateway_overhead.py's, with its helpers. An nginx upstream answers a fixed
chat.completion; two tether gateways (`tether serve`, one worker each, both pinned to core 0)
differ only in their [observe] settings; the client (this script, wrk) and the upstream run on
core 1. Latency: interleaved c=1 rounds over persistent connections (each round sends a block
to each target in a shuffled order); added latency = a gateway's percentile minus the direct
(client to nginx) percentile. Throughput: `wrk -t1 -c8` per gateway, with the gateway's CPU
seconds per request from /proc. Traces go over OTLP/HTTP to a local sink (a small Python
server on core 1) that counts the spans it receives; at the end the "on" gateway's /metrics is
scraped, so both signals are known to have been on.

Each side's settings are a TOML table (SIDES below, or --sides FILE): turning something on or
off is one line there. While the installed tether's [observe] settings lack a field (`metrics`,
`traces`, `otlp_endpoint`, `trace_sample_ratio`), the gateway of that side is started through
this script's --serve mode, which adds the same observers to the runtime and then runs
`tether serve` unchanged.

    python benchmarks/observability_overhead.py [--rounds 20] [--per-round 100] [--wrk-seconds 5]

Writes results/observability_overhead.json (`value`: added p50 with everything on minus off,
in ms; target <= 0.2) and results/observability_overhead.md.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import sys
import tempfile
import time
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2

from _results import (
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
from gateway_overhead import (
    CONFIG_DIR,
    LOOPBACK,
    REQUEST_BODY_FILE,
    TETHER_BIN,
    BenchError,
    ForeignLoad,
    Server,
    Setup,
    Target,
    ensure_system_tools,
    fill,
    free_port,
    idle_cpu,
    latency_rounds,
    run_step,
    run_wrk,
    say,
    servers_stopped_at_exit,
    tether_status,
    wait_quiet,
    warm_up,
)

NAME = "observability_overhead"
TARGET_ADDED_P50_MS = 0.2
CONNECTIONS = 8
SIDES = """
# Added to benchmarks/gateway/tether.toml for each side; "@OTLP@" is the local OTLP sink.
# `off` and `on` are compared; any other side (here: metrics and traces without signals) is
# measured beside them, to tell the parts apart.
[off.observe]
signals = false
metrics = false

[telemetry.observe]
signals = false
metrics = true
traces = "otlp"
otlp_endpoint = "@OTLP@"

[on.observe]
signals = true
metrics = true
traces = "otlp"
otlp_endpoint = "@OTLP@"
"""
# [observe] fields the --serve bridge supplies while the settings do not know them yet.
BRIDGED = ("metrics", "traces", "otlp_endpoint", "trace_sample_ratio")
SINK = r"""
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

class Sink(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        if self.path.endswith("/v1/traces"):
            request = ExportTraceServiceRequest.FromString(body)
            spans = sum(len(s.spans) for r in request.resource_spans for s in r.scope_spans)
            print("spans", spans, flush=True)
        else:
            print("export", self.path, len(body), flush=True)
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass

ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Sink).serve_forever()
"""


# -- the gateway of one side --------------------------------------------------------------------


def observe_fields() -> set[str]:
    from tether.observe.config import ObserveSettings

    return set(ObserveSettings.model_fields)


def toml_table(name: str, values: Mapping[str, Any]) -> str:
    lines = [f"[{name}]"]
    for key, value in values.items():
        lines.append(f"{key} = {json.dumps(value)}")  # bools, numbers, strings: JSON is TOML
    return "\n".join(lines) + "\n"


@dataclass
class Side:
    name: str
    observe: dict[str, Any]
    bridged: dict[str, Any] = field(default_factory=dict)
    admin_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))


def read_sides(text: str) -> list[Side]:
    data = tomllib.loads(text)
    known = observe_fields()
    if not {"off", "on"} <= set(data):
        raise BenchError("the sides need an [off.observe] and an [on.observe] table")
    sides = []
    for name, table in data.items():
        observe = dict(table.get("observe", {}))
        bridged = {k: observe.pop(k) for k in BRIDGED if k in observe and k not in known}
        unknown = set(observe) - known
        if unknown:
            raise BenchError(f"[{name}.observe]: unknown settings {sorted(unknown)}")
        sides.append(Side(name, observe, bridged))
    return sides


def start_side(setup: Setup, upstream: Target, side: Side) -> Target:
    port = free_port()
    folder = setup.workdir / f"tether-{side.name}"
    folder.mkdir()
    config = folder / "tether.toml"
    base = fill(
        CONFIG_DIR / "tether.toml",
        {
            "UPSTREAM": f"http://{LOOPBACK}:{upstream.port}/v1",
            "DATABASE_URL": f"sqlite:///{folder / 'tether.db'}",
        },
    )
    # each gateway its own data directory (one gateway per directory) and a known admin token
    head = f"data_dir = {json.dumps(str(folder / 'data'))}\n"
    server = toml_table("server", {"admin_token": side.admin_token})
    config.write_text(head + base + "\n" + server + toml_table("observe", side.observe))
    output = run_step(
        [TETHER_BIN, "keys", "create", "bench", "--config", config],
        what=f"create a virtual key ({side.name})",
        cwd=folder,
    )
    key = ([line.strip() for line in output.splitlines() if line.strip()] or [""])[-1]
    if not key.startswith("tk-"):
        raise BenchError(f"`tether keys create` printed no tk- key on its last line:\n{output}")
    serve = ["--host", LOOPBACK, "--port", str(port), "--config", str(config)]
    if side.bridged:
        argv = setup.pinned(
            sys.executable, Path(__file__).resolve(), "--serve", json.dumps(side.bridged), *serve
        )
    else:
        argv = setup.pinned(TETHER_BIN, "serve", *serve)
    server_proc = Server(f"tether-{side.name}", argv, port, setup.log(f"tether-{side.name}"),
                         cwd=folder)  # fmt: skip
    target = Target(f"tether-{side.name}", port, {"Authorization": f"Bearer {key}"}, server_proc)
    setup.launch(target, timeout=120)
    return target


def start_sink(setup: Setup) -> tuple[Server, int]:
    port = free_port()
    argv = ["taskset", "-c", str(setup.client_core), sys.executable, "-c", SINK, str(port)]
    server = Server("otlp sink", argv, port, setup.log("otlp-sink"))
    setup.started.append(server)
    server.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if not server.alive():
            raise BenchError(f"the OTLP sink exited:\n{server.log_tail()}")
        try:
            socket.create_connection((LOOPBACK, port), timeout=1).close()
            return server, port
        except OSError:
            time.sleep(0.1)
    raise BenchError("the OTLP sink did not start")


def sink_spans(server: Server) -> int:
    lines = server.log_tail(10**8).splitlines()
    return sum(int(line.split()[1]) for line in lines if line.startswith("spans "))


def scrape(target: Target, token: str) -> dict[str, float]:
    """Totals of the gateway's /metrics counters (None of it when metrics are off)."""
    response = httpx2.get(
        f"http://{LOOPBACK}:{target.port}/metrics",
        headers={"authorization": f"Bearer {token}"},
        timeout=10,
    )
    if response.status_code != 200:
        return {}
    from prometheus_client.parser import text_string_to_metric_families

    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name.endswith("_total"):
                totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
    return totals


# -- the --serve bridge ---------------------------------------------------------------------------


def serve_bridged(bridged: dict[str, Any], serve_args: list[str]) -> None:
    """`tether serve`, its runtime given the observers `bridged` turns on (what the settings
    will do once they know these fields)."""
    from tether import runtime as runtime_module
    from tether.cli import main as cli_main  # the `tether` command
    from tether.observe.metrics import Metrics, known_models
    from tether.observe.tracing import Tracing

    original = runtime_module.Runtime.__init__

    def init(self: Any, settings: Any, *args: Any, **kwargs: Any) -> None:
        original(self, settings, *args, **kwargs)
        if bridged.get("metrics"):
            self.metrics = Metrics.for_settings(settings)
            self.observers.append(self.metrics)
        exporter = bridged.get("traces", "none")
        if exporter != "none":
            self.tracing = Tracing.build(
                exporter,
                models=known_models(settings),
                endpoint=bridged.get("otlp_endpoint"),
                sample_ratio=bridged.get("trace_sample_ratio", 1.0),
            )
            self.observers.append(self.tracing)

    runtime_module.Runtime.__init__ = init  # type: ignore[method-assign]
    sys.argv = ["tether", "serve", *serve_args]
    cli_main()


# -- main -------------------------------------------------------------------------------------


def parse_args() -> Any:
    parser = base_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20, help="interleaved c=1 rounds")
    parser.add_argument("--per-round", type=int, default=100, help="requests per target a round")
    parser.add_argument("--wrk-seconds", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--wrk-runs", type=int, default=2, help="wrk runs per gateway (alternated)")
    parser.add_argument("--warmup-requests", type=int, default=300, help="c=1 warm-up requests")
    parser.add_argument("--warmup-seconds", type=int, default=2, help="wrk warm-up (0: none)")
    parser.add_argument("--sides", type=Path, help="TOML with [off.observe] and [on.observe]")
    parser.add_argument("--gateway-core", type=int, default=0, help="core the gateways run on")
    parser.add_argument("--client-core", type=int, default=1, help="core of client and upstream")
    parser.add_argument("--seed", type=int, default=20260101, help="seed of the round order")
    parser.add_argument("--wait-quiet", type=float, default=0.0, help="wait for idle CPUs (s)")
    parser.add_argument("--keep-logs", action="store_true", help="keep logs and configs")
    return parser.parse_args()


@dataclass
class Measured:
    samples: dict[str, list[float]] = field(default_factory=dict)
    round_medians: dict[str, list[float]] = field(default_factory=dict)
    throughput: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    idle: dict[str, float] = field(default_factory=dict)
    sent: dict[str, int] = field(default_factory=dict)
    scraped: dict[str, dict[str, float]] = field(default_factory=dict)
    spans: int = 0
    commands: dict[str, list[str]] = field(default_factory=dict)
    foreign_cpu_before: float | None = None
    foreign_cpu_during: float | None = None


def measure(args: Any, setup: Setup, sides: list[Side], measured: Measured) -> None:
    from gateway_overhead import start_upstream

    direct = start_upstream(setup)
    sink, sink_port = start_sink(setup)
    otlp = f"http://{LOOPBACK}:{sink_port}"
    for side in sides:
        side.observe = json.loads(json.dumps(side.observe).replace("@OTLP@", otlp))
        side.bridged = json.loads(json.dumps(side.bridged).replace("@OTLP@", otlp))
    gateways = [start_side(setup, direct, side) for side in sides]
    targets = [direct, *gateways]
    measured.commands = setup.commands
    window = ForeignLoad(setup.started)
    warm_up(targets, setup.body, args.warmup_requests, args.warmup_seconds, args.client_core)
    measured.idle = idle_cpu(gateways)
    say(f"c=1 latency: {args.rounds} rounds x {args.per_round} requests per target")
    measured.samples, measured.round_medians = latency_rounds(
        targets, setup.body, args.rounds, args.per_round, args.seed
    )
    measured.throughput = {t.name: [] for t in targets}
    for run in range(args.wrk_runs):
        order = targets if run % 2 == 0 else list(reversed(targets))
        for target in order:
            result = run_wrk(target, CONNECTIONS, args.wrk_seconds, args.client_core)
            measured.throughput[target.name].append(result)
            target.sent += result["requests"]
            say(
                f"wrk c={CONNECTIONS} {target.name}: {fmt(result['requests_per_s'], 0)} req/s, "
                f"CPU {fmt(result.get('gateway_cpu_ms_per_request'))} ms/request"
            )
    measured.foreign_cpu_during = window.share()
    measured.sent = {t.name: t.sent for t in targets}
    for side, target in zip(sides, gateways, strict=True):
        measured.scraped[side.name] = scrape(target, side.admin_token)
    time.sleep(6)  # the span processor exports every 5 s: let the last batch arrive
    measured.spans = sink_spans(sink)


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--serve":
        serve_bridged(json.loads(sys.argv[2]), sys.argv[3:])
        return
    args = parse_args()
    cores = os.sched_getaffinity(0)
    if not {args.gateway_core, args.client_core} <= cores or args.gateway_core == args.client_core:
        raise SystemExit(f"need two distinct cores among {sorted(cores)}")
    facts, started_utc = machine(), utc_now()
    ensure_system_tools()
    if (why := tether_status()) is not None:
        raise BenchError(why)
    sides_text = args.sides.read_text() if args.sides else SIDES
    sides = read_sides(sides_text)
    measured = Measured()
    os.sched_setaffinity(0, {args.client_core})
    measured.foreign_cpu_before = wait_quiet(args.wait_quiet)
    workdir = Path(tempfile.mkdtemp(prefix="tether-observability-bench-"))
    failed = True
    try:
        with servers_stopped_at_exit() as started:
            setup = Setup(
                workdir, workdir, args.gateway_core, args.client_core,
                REQUEST_BODY_FILE.read_bytes().strip(), started,
            )  # fmt: skip
            measure(args, setup, sides, measured)
        failed = False
    finally:
        if failed or args.keep_logs:
            say(f"logs and configs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    report(args, facts, started_utc, sides, measured)


def report(
    args: Any, facts: dict[str, Any], started_utc: str, sides: list[Side], measured: Measured
) -> None:
    direct = sorted(measured.samples["direct"])
    base = {p: percentile(direct, p) for p in (50, 90, 99)}
    rows_data: dict[str, dict[str, Any]] = {}
    for side in sides:
        name = f"tether-{side.name}"
        ordered = sorted(measured.samples[name])
        runs = measured.throughput[name]
        rps = [r["requests_per_s"] for r in runs]
        cpu = [r["gateway_cpu_ms_per_request"] for r in runs if "gateway_cpu_ms_per_request" in r]
        rows_data[side.name] = {
            "settings": {**side.observe, **side.bridged},
            "started_with": "--serve bridge" if side.bridged else "tether serve",
            "latency_ms": summary(ordered) | {"p99": percentile(ordered, 99)},
            "added_p50_ms": percentile(ordered, 50) - base[50],
            "added_p90_ms": percentile(ordered, 90) - base[90],
            "added_p99_ms": percentile(ordered, 99) - base[99],
            "requests_per_s_c8": sum(rps) / len(rps),
            "requests_per_s_c8_runs": rps,
            "cpu_ms_per_request_c8": sum(cpu) / len(cpu) if cpu else None,
            "idle_cpu_share": measured.idle.get(name),
            "requests_answered": measured.sent.get(name),
            "metrics_scraped": measured.scraped.get(side.name, {}),
        }
    on, off = rows_data["on"], rows_data["off"]
    for row in rows_data.values():
        row["added_p50_vs_off_ms"] = row["added_p50_ms"] - off["added_p50_ms"]
        if row["cpu_ms_per_request_c8"] is not None and off["cpu_ms_per_request_c8"]:
            row["cpu_ms_per_request_vs_off"] = (
                row["cpu_ms_per_request_c8"] - off["cpu_ms_per_request_c8"]
            )
    value = on["added_p50_ms"] - off["added_p50_ms"]
    per_round = [
        a - b
        for a, b in zip(
            measured.round_medians["tether-on"], measured.round_medians["tether-off"], strict=True
        )
    ]
    cpu_delta = (
        on["cpu_ms_per_request_c8"] - off["cpu_ms_per_request_c8"]
        if on["cpu_ms_per_request_c8"] is not None and off["cpu_ms_per_request_c8"] is not None
        else None
    )
    rps_change = on["requests_per_s_c8"] / off["requests_per_s_c8"] - 1
    payload: dict[str, Any] = {
        "benchmark": NAME,
        "date_utc": started_utc,
        "headline": "added p50 with signals, metrics and traces on minus off (ms, c=1)",
        "value": value,
        "target": TARGET_ADDED_P50_MS,
        "target_rule": f"<= {TARGET_ADDED_P50_MS} ms",
        "meets_target": value <= TARGET_ADDED_P50_MS,
        "per_round_p50_difference_ms": summary(per_round),
        "cpu_ms_per_request_added_c8": cpu_delta,
        "requests_per_s_change_c8": rps_change,
        "direct_ms": {f"p{p}": v for p, v in base.items()},
        "sides": rows_data,
        "spans_received_by_sink": measured.spans,
        "method": {
            "rounds": args.rounds,
            "per_round": args.per_round,
            "wrk_seconds": args.wrk_seconds,
            "wrk_runs": args.wrk_runs,
            "connections": CONNECTIONS,
            "gateway_core": args.gateway_core,
            "client_core": args.client_core,
            "commands": measured.commands,
        },
        "foreign_cpu_before": measured.foreign_cpu_before,
        "foreign_cpu_during": measured.foreign_cpu_during,
        "versions": versions(
            "tether", "prometheus-client", "opentelemetry-sdk", "fastapi", "uvicorn"
        ),
        "machine": facts,
    }
    header = ["tether gateway", "added p50 ms", "vs off", "added p99 ms", "req/s c=8",
              "CPU ms/request c=8", "settings"]  # fmt: skip
    rows = [
        [
            name,
            fmt(row["added_p50_ms"]),
            f"{row['added_p50_vs_off_ms']:+.3f}",
            fmt(row["added_p99_ms"]),
            fmt(row["requests_per_s_c8"], 0),
            fmt(row["cpu_ms_per_request_c8"]),
            ", ".join(f"{k}={v}" for k, v in row["settings"].items() if k != "otlp_endpoint"),
        ]
        for name, row in rows_data.items()
    ]
    on_requests = on["metrics_scraped"].get("tether_requests_total")
    traced = sum(
        row["requests_answered"] or 0
        for row in rows_data.values()
        if row["settings"].get("traces", "none") != "none"
    )
    notes = [
        f"Difference of per-round medians (on - off): median "
        f"{fmt(payload['per_round_p50_difference_ms']['median'])} ms, p10 "
        f"{fmt(payload['per_round_p50_difference_ms']['p10'])}, p90 "
        f"{fmt(payload['per_round_p50_difference_ms']['p90'])} over {args.rounds} rounds.",
        f"CPU per request added at c={CONNECTIONS}: {fmt(cpu_delta)} ms; requests/s change: "
        f"{rps_change:+.1%}.",
        f"Evidence traces and metrics were on: the OTLP sink received {measured.spans:,} spans "
        f"for {traced:,} requests answered by the gateways with traces on (the last batch may "
        f"still be queued); the 'on' gateway's /metrics counted {fmt(on_requests, 0)} requests.",
        f"Added latency: percentile minus direct percentile over {args.rounds} interleaved "
        f"rounds x {args.per_round} requests per target (c=1, persistent connections). "
        f"Throughput: wrk -t1 -c{CONNECTIONS} -d{args.wrk_seconds}s, {args.wrk_runs} runs each, "
        "alternating order.",
        f"Gateways pinned to core {args.gateway_core}, client, upstream and OTLP sink to core "
        f"{args.client_core}; loopback only. Request logging (SQLite) on in every gateway.",
    ]
    if any(row["started_with"] != "tether serve" for row in rows_data.values()):
        notes.append(
            "Gateways with metrics or traces were started through this script's --serve mode: "
            "`tether serve` with those observers added to its runtime, as the settings "
            f"fields {', '.join(BRIDGED)} will once they exist."
        )
    if measured.foreign_cpu_during is not None:
        notes.append(
            f"Other processes used {measured.foreign_cpu_during:.1%} of the CPUs during the "
            "measurement"
            + (
                ": figures skewed, rerun on a quiet machine."
                if measured.foreign_cpu_during > 0.05
                else "."
            )
        )
    notes.append("Absolute numbers drift between machines and runs; compare side by side.")
    json_path, md_path = write_results(
        NAME,
        args.out,
        payload,
        title="Observability overhead: tether with signals, metrics and traces on vs off",
        header=header,
        rows=rows,
        notes=notes,
    )
    console.print(md_path.read_text())
    say(f"wrote {json_path} and {md_path}")


if __name__ == "__main__":
    try:
        main()
    except BenchError as error:
        say(f"[bold red]failed:[/] {error}")
        sys.exit(1)
    except KeyboardInterrupt:
        say("[bold red]interrupted[/]")
        sys.exit(130)
