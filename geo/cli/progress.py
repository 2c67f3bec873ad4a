"""Progress display for the CLI (tqdm on stderr; silent when not a terminal unless asked)."""

from __future__ import annotations

import sys

from tqdm import tqdm


class TaskProgress:
    """A callable for :func:`geo.run.executor.run_tasks` that drives a tqdm bar."""

    def __init__(self, desc: str = "tasks") -> None:
        self.bar: tqdm | None = None
        self.desc = desc

    def __call__(self, done: int, total: int, result) -> None:
        if self.bar is None:
            self.bar = tqdm(total=total, desc=self.desc, unit="task", file=sys.stderr, leave=False,
                            disable=None)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
