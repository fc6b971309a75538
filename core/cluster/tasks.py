"""The cluster's loops end the same way: cancelled, then awaited, whatever they raised
(a node stops whether Redis answers or not)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any


async def stop_tasks(*tasks: asyncio.Future[Any] | None) -> None:
    for task in tasks:
        if task is None:
            continue
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
