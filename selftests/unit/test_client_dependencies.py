"""What the API client stack needs installed to stay cheap per request."""

from __future__ import annotations

import asyncio
import importlib.machinery
from typing import Any

import pytest
from httpcore import _synchronization


def test_httpcore_locks_do_not_search_the_import_path(monkeypatch: pytest.MonkeyPatch) -> None:
    # httpcore asks "which async library?" for every lock and event it sets up, by importing
    # sniffio inside the call; without sniffio installed every ask searched sys.path again
    # (about 0.2 ms each, thousands per run). The dependency keeps it a module lookup.
    searched: list[str] = []
    find_spec = importlib.machinery.PathFinder.find_spec

    def counting(name: str, *args: Any, **kwargs: Any) -> Any:
        searched.append(name)
        return find_spec(name, *args, **kwargs)

    async def ask() -> list[str]:
        _synchronization.current_async_library()  # the first ask may import it
        monkeypatch.setattr(importlib.machinery.PathFinder, "find_spec", counting)
        return [_synchronization.current_async_library() for _ in range(50)]

    assert asyncio.run(ask()) == ["asyncio"] * 50
    assert searched == []
