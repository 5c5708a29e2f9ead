"""Executing notebooks in tests: several kernels at a time, errors kept in the outputs."""
from __future__ import annotations

from pathlib import Path


def execute_all(paths: list[Path], jobs: int = 2) -> list[dict]:
    """Execute the notebooks with errors allowed, ``jobs`` kernels at a time (one event loop drives them all).

    Each kernel is a process of its own, so two of them use both cores of a 2-core machine; the strict book
    build (tests/test_book.py) executes the same chapters one at a time.
    """
    import asyncio

    import nbclient
    import nbformat

    async def run_all() -> list[dict]:
        slots = asyncio.Semaphore(jobs)

        async def run(path: Path) -> dict:
            async with slots:
                nb = nbformat.read(path, as_version=4)
                client = nbclient.NotebookClient(nb, timeout=900, allow_errors=True, kernel_name="python3",
                                                 resources={"metadata": {"path": str(path.parent)}})
                await client.async_execute()
                return nb

        return list(await asyncio.gather(*(run(path) for path in paths)))

    return asyncio.run(run_all())
