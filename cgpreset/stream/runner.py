"""The stream as a process: `run_stream` in a fresh event loop, stopped cleanly by SIGINT / SIGTERM."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

from cgpreset.stream.options import StreamOptions, StreamSummary
from cgpreset.stream.session import run_stream


def stream_until_stopped(options: StreamOptions, **kwargs: Any) -> StreamSummary:
    """Run `run_stream` in a fresh event loop; SIGINT / SIGTERM stop it cleanly with a summary."""

    async def main() -> StreamSummary:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        installed = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, stop.set)
                installed.append(sig)
            except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or Windows
                pass
        try:
            return await run_stream(options, stop=stop, **kwargs)
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)

    return asyncio.run(main())
