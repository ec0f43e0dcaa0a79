"""Runs of a dataset's pipeline started in the workspace, and their validation reports.

A run is a job of kind "ingest" in the hub's job queue (`hub.jobs`; `hub worker` takes it and
runs it through `hub.ingest.run.ingest`, the one way data enters the store). Its result holds
the counts, the error and the problems by file, row, column, value and rule. The rows a
committed run quarantined are in its version's quarantine file (`quarantined_csv` gives them
as CSV).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from hub import jobs
from hub.problem_codes import CODES_COLUMN
from hub.spreadsheet import safe_cells
from hub.store.versions import QUARANTINE, Store

KIND = "ingest"


@dataclass
class Run:
    """One run as the job queue holds it."""

    job: jobs.Job

    @property
    def id(self) -> str:
        return self.job.id

    @property
    def status(self) -> str:
        """queued | running | committed | unchanged | failed"""
        if not self.job.ended:
            return self.job.state
        return "failed" if self.job.state == "failed" else str(self.report.get("status", "done"))

    @property
    def report(self) -> dict[str, Any]:
        return self.job.result or {}

    @property
    def error(self) -> str:
        return self.report.get("error") or self.job.error or ""

    @property
    def version(self) -> int | None:
        return self.report.get("version") if self.status != "failed" else None

    @property
    def revision(self) -> int | None:
        return self.job.params.get("revision")

    @property
    def problems(self) -> list[dict[str, Any]]:
        return list(self.report.get("problems", []))


def start(store: Store, dataset: str, organization: str, revision: int, by: str) -> Run:
    """Queue a run of the dataset's pipeline (once: a failed run is not tried again)."""
    job_id = jobs.submit(store.db, KIND, {"dataset": dataset, "revision": revision}, by=by,
                         organization=organization, max_attempts=1)
    return Run(jobs.get(store.db, job_id))


def last(store: Store, dataset: str) -> Run | None:
    """The dataset's newest run."""
    found = [j for j in jobs.list_jobs(store.db, dataset=dataset, limit=20) if j.kind == KIND]
    return Run(found[0]) if found else None


# the columns the run adds to a quarantined row (besides the schema's fields)
ADDED = ("_file", "_row", "_errors", "_raw", "_geometry")
# a row's problems as the download says them: (its `_codes`, its English `_errors`) -> text
Wording = Callable[[str | None, str | None], str]


def quarantined_csv(store: Store, run: Run, header: Mapping[str, str] | None = None,
                    wording: Wording | None = None) -> Iterator[bytes] | None:
    """The rows the run's version quarantined, as CSV (with their problems in `_errors`,
    formulas neutralised: `hub.spreadsheet`); None if the run made no version or quarantined
    nothing. `header` renames the columns the run added (`ADDED`); `wording` says each row's
    problems (default: the stored English `_errors`)."""
    if run.version is None:
        return None
    version = store.version(str(run.job.dataset), run.version)
    if not version.exists(QUARANTINE):  # in the store's storage (the folder, or S3)
        return None
    return _csv(pq.ParquetFile(version.source(QUARANTINE)), header, wording)


def _csv(source: pq.ParquetFile, header: Mapping[str, str] | None = None,
         wording: Wording | None = None) -> Iterator[bytes]:
    header = header or {}
    names = [n for n in source.schema_arrow.names if n != "geometry"]
    shown = [n for n in names if n != CODES_COLUMN]
    yield b"\xef\xbb\xbf"  # so spreadsheet programs read it as UTF-8
    first = True
    for batch in source.iter_batches(batch_size=10_000, columns=names):
        columns = {n: batch.column(n) for n in names}
        if wording is not None and "_errors" in names:
            codes = (columns[CODES_COLUMN].to_pylist() if CODES_COLUMN in names
                     else [None] * batch.num_rows)
            columns["_errors"] = pa.array(
                [wording(c, e) for c, e in zip(codes, columns["_errors"].to_pylist(),
                                               strict=True)], pa.string())
        batch = pa.RecordBatch.from_arrays([columns[n] for n in shown],
                                           names=[header.get(n, n) if n in ADDED else n
                                                  for n in shown])
        sink = pa.BufferOutputStream()
        pacsv.write_csv(_safe(batch), sink,
                        write_options=pacsv.WriteOptions(include_header=first))
        first = False
        yield sink.getvalue().to_pybytes()


def _safe(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Text columns with their formulas neutralised (`hub.spreadsheet`): quarantined rows are
    the source's raw values; a spreadsheet must not run them."""
    return pa.RecordBatch.from_arrays(
        [safe_cells(c) if pa.types.is_string(c.type) or pa.types.is_large_string(c.type)
         else c for c in batch.columns], names=batch.schema.names)


PROBLEM_COLUMNS = ("file", "row", "column", "value", "rule", "message")


def problems_csv(run: Run, header: Sequence[str] = PROBLEM_COLUMNS,
                 message: Callable[[dict[str, Any]], str] | None = None) -> bytes:
    """The run's problems as CSV (the first 1000, as the run keeps them), formulas in the
    values neutralised (`hub.spreadsheet`); `header` names the columns, `message` says each
    problem (default: its stored English message)."""
    rows = run.problems
    cells = {c: [str(r.get(c) if r.get(c) is not None else "") for r in rows]
             for c in PROBLEM_COLUMNS}
    if message is not None:
        cells["message"] = [message(r) for r in rows]
    table_ = pa.table({name: safe_cells(pa.array(cells[c], pa.string()))
                       for name, c in zip(header, PROBLEM_COLUMNS, strict=True)})
    sink = pa.BufferOutputStream()
    pacsv.write_csv(table_, sink)
    return b"\xef\xbb\xbf" + sink.getvalue().to_pybytes()
