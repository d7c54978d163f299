"""What every local event source mapping shares: one daemon thread that calls `poll_once()` until
stopped, sleeping only when a poll found nothing (a busy source is drained at once), and logging
(never dying on) an error, as Lambda's pollers keep polling after one.

An idle source is polled less and less often: `poll_interval` after the first empty poll, doubling up
to `max_idle_interval` (1 s), and back to `poll_interval` once a poll finds something. Lambda long-polls
and wakes at once; here a source idle for a while answers within a second. Nine sources polled every
0.2 s kept an idle stack at ~14 % of a core, which the test runs paid once per stack they started.
"""

from __future__ import annotations

import logging
import threading

log = logging.getLogger("local")


class Poller:
    kind = "poller"  # names the thread and the log lines: "sqs", "stream"

    def __init__(self, function_id: str, event_id: str, poll_interval: float, max_idle_interval: float = 1.0) -> None:
        self.function_id = function_id
        self.event_id = event_id
        self.poll_interval = poll_interval
        self.max_idle_interval = max(poll_interval, max_idle_interval)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.batches = 0

    def poll_once(self) -> int:
        """Handle what the source holds now; returns how many records were handled."""
        raise NotImplementedError

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name=f"{self.kind}-{self.function_id}.{self.event_id}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        wait = self.poll_interval
        while not self._stop.is_set():
            try:
                handled = self.poll_once()
            except Exception as exc:
                if self._stop.is_set():
                    break
                log.warning("%s poller %s: %s", self.kind, self.function_id, exc)
                handled = 0
            if handled:
                wait = self.poll_interval
            else:
                self._stop.wait(wait)
                wait = min(wait * 2, self.max_idle_interval)
