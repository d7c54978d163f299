"""The process's composition root: its settings, its Services and its AWS clients, each built once,
on first use (a cold start that never needs a client never pays for it).

A Lambda process reads its environment once, so one `Root` lives as long as the process. Everything
that depends on the environment hangs off it, and nothing else caches configuration: `reset()` starts
a fresh root, which is how a test that changed the environment (or the local runtime, pointing at a
new endpoint) has settings, services and clients rebuilt together. Use cases never reach for the root:
they are given their `Services`, and tests pass fakes through its constructor (tests/support/fakes.py).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from invoicing.settings import Settings

if TYPE_CHECKING:
    from invoicing.services import Services

T = TypeVar("T")


class Root:
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._built: dict[object, Any] = {}

    def once(self, key: object, build: Callable[[], T]) -> T:
        """The one `build()` of this process for `key` (a client, a configuration read from the env)."""
        try:
            return self._built[key]  # type: ignore[no-any-return]
        except KeyError:
            pass
        with self._lock:  # concurrent first uses (tests race threads) build it once
            if key not in self._built:
                self._built[key] = build()
            return self._built[key]  # type: ignore[no-any-return]

    @property
    def settings(self) -> Settings:
        return self.once(Settings, Settings.from_env)

    @property
    def services(self) -> Services:
        from invoicing.services import Services, build_services

        return self.once(Services, lambda: build_services(self.settings))


_current = Root()


def current() -> Root:
    return _current


def reset() -> Root:
    """Forget everything built from the environment; the next use rebuilds it from `os.environ`."""
    global _current
    _current = Root()
    return _current


def get_settings() -> Settings:
    return _current.settings


def get_services() -> Services:
    return _current.services
