"""First-sight link lookups of one worker, read together.

Each lookup that memory cannot answer needs the register, which means a thread (the database driver blocks)
and a round trip. Under load both cost more than the lookup itself: every hand-over between the event loop and
a thread costs interpreter-lock traffic, and every statement its own round trip. So lookups queue on the event
loop; while a batch is being read in a thread, the lookups arriving meanwhile wait, and the next batch takes all
of them (up to ``max_batch``) in one thread hop and one statement (:meth:`LinkVerifier.answers`). A lone
lookup is read at once, so an idle service answers as fast as before.
"""

from __future__ import annotations

import asyncio

import anyio

from verify.link import LinkVerifier
from verify.model import Answer

__all__ = ["LookupBatcher"]


class LookupBatcher:
    """Batches lookups (:meth:`LinkVerifier.answers`) made on one event loop; ``readers`` batches are read at a time."""

    def __init__(self, verifier: LinkVerifier, *, readers: int = 2, max_batch: int = 64) -> None:
        self.verifier = verifier
        self.readers = readers
        self.max_batch = max_batch
        self._queue: list[tuple[str, asyncio.Future[Answer]]] = []
        self._reading = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def answer(self, token: str) -> Answer:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new event loop (tests make one per client): nothing of the old one carries over
            self._loop, self._queue, self._reading, self._tasks = loop, [], 0, set()
        waiting: asyncio.Future[Answer] = loop.create_future()
        self._queue.append((token, waiting))
        if self._reading < self.readers:
            self._reading += 1
            task = loop.create_task(self._read())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await waiting

    async def _read(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue[:self.max_batch], self._queue[self.max_batch:]
                try:
                    answers = await anyio.to_thread.run_sync(self.verifier.answers, [token for token, _ in batch])
                except BaseException as exc:  # noqa: BLE001 - every lookup of the batch hears of it (an outage: 503)
                    for _, waiting in batch:
                        if not waiting.done():
                            waiting.set_exception(exc)
                    if not isinstance(exc, Exception):
                        raise
                    continue
                for (_, waiting), found in zip(batch, answers):
                    if not waiting.done():  # the client may have gone
                        waiting.set_result(found)
        finally:
            self._reading -= 1
