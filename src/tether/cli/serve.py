"""`tether serve`: the gateway on uvicorn (one process; scale out with replicas)."""

from __future__ import annotations

import gc
import socket
from pathlib import Path
from typing import Annotated, Any

import typer
import uvicorn
from rich.markup import escape

from tether.cli.common import ConfigOption, reported_errors, stdout
from tether.client import Client
from tether.errors import ConfigError, VersionConflict
from tether.prompts.loader import load_spec, spec_files
from tether.server.admin_token import StoredToken, load_or_create
from tether.server.app import create_app
from tether.server.demo_key import DemoKey, demo_key
from tether.server.instance_lock import InstanceLock
from tether.settings import Settings


def _push_examples(client: Client, folder: Path) -> list[str]:
    """Push the spec files in `folder`; label the newest version of each `production` unless a
    production label exists already."""
    pushed: list[str] = []
    for loaded in sorted(
        (
            load_spec(p, model_modules=client.settings.prompt_model_modules)
            for p in spec_files([folder])
        ),
        key=lambda s: (s.spec.name, s.spec.semver),
    ):
        try:
            client.registry.push(
                loaded.spec, source=loaded.source, author=client.settings.actor, message="demo"
            )
        except VersionConflict as exc:
            # A data directory from an earlier release: its registered version stays served.
            stdout.print(f"[yellow]kept the registered version:[/] {escape(exc.message)}")
        pushed.append(loaded.spec.name)
    for name in sorted(set(pushed)):
        if "production" not in client.registry.labels(name):
            latest = client.registry.get(name)
            client.registry.set_label(
                name, "production", latest.version, actor=client.settings.actor, reason="demo"
            )
    return sorted(set(pushed))


def _admin_settings(settings: Settings) -> tuple[Settings, StoredToken | None]:
    """`settings` with an admin token: the configured one, else the stored (or new) one."""
    if settings.server.admin_token is not None:
        return settings, None
    stored = load_or_create(settings.data_dir)
    server = settings.server.model_copy(update={"admin_token": stored.value})
    return settings.model_copy(update={"server": server}), stored


def _admin_line(stored: StoredToken | None) -> str:
    if stored is None:
        return "admin token: from settings (TETHER_ADMIN_TOKEN or [server] admin_token)"
    path = escape(str(stored.path))
    if stored.created:
        token = stored.value.get_secret_value()
        return f"admin token (shown once, kept in {path}): [bold]{token}[/]"
    return f"admin token: in {path}"


def _banner(
    host: str, port: int, demo: DemoKey | None, prompts: list[str], stored: StoredToken | None
) -> None:
    base = f"http://{host}:{port}"
    key = demo.secret if demo else None
    auth = f' -H "Authorization: Bearer {key}"' if key else ""
    stdout.print(f"\n[bold]tether gateway[/] on {base}")
    stdout.print(f"dashboard: {base}/dashboard    API docs: {base}/docs")
    stdout.print(_admin_line(stored), soft_wrap=True)
    if demo:
        made = "new" if demo.created else "the same as last time"
        where = escape(str(demo.path))
        stdout.print(f"demo key ({made}, kept in {where}): [bold]{key}[/]", soft_wrap=True)
    stdout.print("\n[bold]curl[/]")
    stdout.print(
        escape(
            f"curl {base}/v1/chat/completions -H 'Content-Type: application/json'{auth} \\\n"
            """  -d '{"model": "local", "messages": [{"role": "user", "content": "Say hi"}], """
            """"max_tokens": 16}'"""
        ),
        soft_wrap=True,
    )
    stdout.print(
        escape(
            f"curl {base}/v1/embeddings -H 'Content-Type: application/json'{auth} \\\n"
            """  -d '{"model": "local-embed", "input": "The soup was cold."}'"""
        ),
        soft_wrap=True,
    )
    for name in prompts:
        stdout.print(
            escape(
                f"curl {base}/v1/prompts/{name}/run -H 'Content-Type: application/json'{auth} \\\n"
                """  -d '{"inputs": {"comment": "The app keeps crashing."}}'"""
            ),
            soft_wrap=True,
        )
    stdout.print("\n[bold]openai SDK[/]")
    stdout.print(
        escape(
            "from openai import OpenAI\n"
            f'client = OpenAI(base_url="{base}/v1", api_key="{key or "unused"}")\n'
            'reply = client.chat.completions.create(model="local", '
            'messages=[{"role": "user", "content": "Say hi"}], max_tokens=16)\n'
            "print(reply.choices[0].message.content)  # Hello! How can I assist you today?"
        ),
        soft_wrap=True,
    )
    stdout.print()


def serve(
    host: Annotated[str | None, typer.Option(help="interface (default from settings)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default from settings)")] = None,
    demo: Annotated[
        Path | None,
        typer.Option(help="push the prompt specs in this folder and create a demo key"),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Start the OpenAI-compatible gateway."""
    with reported_errors():
        settings = Settings.load(config)
        bind_host = host or settings.server.host
        bind_port = port if port is not None else settings.server.port
        # Before anything is touched: one gateway per data directory, and a free port.
        lock = InstanceLock(settings.data_dir)
        lock.acquire()
        _check_port(bind_host, bind_port)
        # the bound host joins the default trusted hosts
        server = settings.server.model_copy(update={"host": bind_host, "port": bind_port})
        settings, stored = _admin_settings(settings.model_copy(update={"server": server}))
        app = create_app(settings)
        gateway = app.state.gateway
        key = None
        prompts: list[str] = []
        if demo is not None:
            prompts = _push_examples(gateway.client, demo)
            key = demo_key(gateway.keys, settings.data_dir)
        _banner(bind_host, bind_port, key, prompts, stored)
        gateway.client.models()  # build every provider before the heap is frozen
    # Everything alive now lives as long as the process: moving it out of the collector's
    # reach keeps full collections (60-90 ms over this heap, the gateway's p99 stalls) short.
    gc.collect()
    gc.freeze()
    proxies = settings.server.forwarded_allow_ips
    try:
        _run(app, settings, bind_host, bind_port, proxies)
    finally:
        gc.unfreeze()
        lock.release()


def _check_port(host: str, port: int) -> None:
    """Fail with a clear message now rather than after start-up work when the port is taken."""
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on {host}:{port}: {exc.strerror}",
                file=None,
                field="server.port",
                fix="stop what uses that port, or pass --port / set [server] port",
            ) from None


def _run(app: Any, settings: Settings, host: str, port: int, proxies: tuple[str, ...]) -> None:
    uvicorn.run(
        app,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        workers=1,
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=int(settings.server.graceful_shutdown_s),
        # No implicit trust: X-Forwarded-For/-Proto count only from proxies named in settings.
        proxy_headers=bool(proxies),
        forwarded_allow_ips=",".join(proxies) if proxies else None,
    )


def register(app: typer.Typer) -> None:
    app.command()(serve)
