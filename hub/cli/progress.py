"""Progress bars of `hub ingest` and `hub validate` (imported when one of them runs)."""

from __future__ import annotations

from rich.console import RenderableType
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)

from hub.cli.common import err


class Bars:
    """Rich progress bars for a run (bytes for text files, rows for the rest)."""

    def __init__(self, progress: Progress):
        self.progress, self.task = progress, None

    def phase(self, name: str) -> None:
        """The phases (fetch, read, check, commit) show as the bars themselves."""

    def start(self, name: str, total: int, unit: str) -> None:
        self.task = self.progress.add_task(name, total=total or None, unit=unit)

    def advance(self, amount: int) -> None:
        if self.task is not None:
            self.progress.advance(self.task, amount)

    def done(self) -> None:
        if self.task is not None:
            task = self.progress.tasks[-1]
            if task.total:
                self.progress.update(self.task, completed=task.total)
            self.task = None


class _Amount(ProgressColumn):
    """Bytes for text files (read as a stream), rows for everything else."""

    def __init__(self) -> None:
        super().__init__()
        self._bytes, self._rows = DownloadColumn(), MofNCompleteColumn()

    def render(self, task: Task) -> RenderableType:
        column = self._bytes if task.fields.get("unit") == "bytes" else self._rows
        return column.render(task)


def progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), _Amount(),
                    TimeElapsedColumn(), console=err.rich, transient=True,
                    disable=not err.is_terminal)
