"""The explorer run for real in tests: uvicorn in a thread on a free port, and a strict JSON client."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import uvicorn

from atlas.explorer.app import create_app


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ExplorerServer:
    """`atlas serve`'s application in a background thread (context manager)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=self.port,
                                                    log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ExplorerServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the explorer did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)

    def get(self, path: str) -> tuple[int, str, str]:
        """Status, content type and body of a GET."""
        try:
            with urllib.request.urlopen(self.url + path, timeout=60) as response:
                return response.status, response.headers.get("content-type", ""), response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.headers.get("content-type", ""), error.read().decode()

    def json(self, path: str, status: int = 200) -> Any:
        """The strictly parsed JSON body of a GET, checking its status."""
        code, content_type, body = self.get(path)
        assert code == status, f"{path}: {code} {body[:300]}"
        assert content_type.startswith("application/json"), content_type
        return strict_loads(body)


def _refuse(constant: str) -> None:
    raise ValueError(f"non-strict JSON constant {constant}")


def strict_loads(text: str) -> Any:
    """json.loads that refuses NaN, Infinity and -Infinity."""
    return json.loads(text, parse_constant=_refuse)
