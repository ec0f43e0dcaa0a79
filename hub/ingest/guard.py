"""The guard against near-empty versions: a run that loses too much does not replace the data.

A version where most rows were quarantined, skipped as outside the district, or that is much
smaller than the current one is far more often a wrong input or a wrong pipeline (the whole
country instead of the district, a truncated download) than real news. `check` refuses such a
run before it is committed; the limits come from the pipeline (`max_quarantined_share:`,
`max_outside_share:`, `max_shrink_share:`), else from the environment
(`HUB_MAX_QUARANTINED_SHARE`, `HUB_MAX_OUTSIDE_SHARE`, `HUB_MAX_SHRINK_SHARE`), and
`hub ingest --force` lets a run through anyway.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq

from hub.errors import HubError
from hub.ingest.geometry import Extent
from hub.problem_codes import failing

ENV = {"max_quarantined_share": "HUB_MAX_QUARANTINED_SHARE",
       "max_outside_share": "HUB_MAX_OUTSIDE_SHARE",
       "max_shrink_share": "HUB_MAX_SHRINK_SHARE"}


class GuardFailed(HubError):
    """A run would replace the dataset with a version that lost too many rows."""

    def __init__(self, reasons: list[str], keys: list[str], pipeline_file: Path,
                 coded: list[dict[str, Any]]):
        self.reasons = reasons
        settings = " / ".join(f"`{key}:`" for key in keys)
        variables = " / ".join(ENV[key] for key in keys)
        super().__init__(
            "refused, the current data stays as it is: " + "; ".join(reasons)
            + f". If this is intended, set {settings} in {pipeline_file} (a share from 0 to 1; "
            f"the default for all pipelines comes from {variables}), fix the pipeline (e.g. "
            "`filter:` or `outside_extent:`), or run `hub ingest --force` once")
        failing(self, "guard", reasons=coded)  # each reason as data, for the workspace


@dataclass(frozen=True)
class Limits:
    """Largest accepted shares (0–1) of one run; 1 switches a check off."""

    max_quarantined_share: float = 0.10  # quarantined rows / rows read
    max_outside_share: float = 0.10  # rows skipped by `outside_extent: skip` / rows read
    max_shrink_share: float = 0.50  # 1 - new rows / rows of the current version
    env_keys: frozenset[str] = field(default=frozenset())  # the limits the environment set

    @classmethod
    def from_env(cls) -> Limits:
        """The defaults, each overridden by its environment variable if set."""
        values = {}
        for key, var in ENV.items():
            if (text := os.environ.get(var, "").strip()) == "":
                continue
            try:
                share = float(text)
            except ValueError:
                share = -1.0
            if not 0 <= share <= 1:
                raise HubError(f"{var}={text!r}: must be a share between 0 and 1 "
                               "(e.g. 0.25 for 25 %)")
            values[key] = share
        return cls(**values, env_keys=frozenset(values))

    def merged(self, overrides: dict[str, float]) -> Limits:
        """These limits with a pipeline's own `max_*_share` keys taking precedence."""
        return replace(self, **overrides)


@dataclass(frozen=True)
class Outcome:
    """What a run would commit, in the numbers the guard judges."""

    rows_read: int  # after the source's `filter`
    rows_valid: int
    rows_quarantined: int
    rows_outside: int  # skipped by `outside_extent: skip`
    current_rows: int | None = None  # rows of the version it would replace
    current_version: int | None = None


def check(outcome: Outcome, limits: Limits, given: set[str], pipeline_file: Path,
          extent: Extent | None, district: str, quarantine_file: Path | None) -> None:
    """Raise `GuardFailed` naming every exceeded limit, its numbers and how to allow it.

    `given` are the limit keys the pipeline sets itself (they are named as the setting in
    force; the others are the environment's or the default)."""
    reasons: list[str] = []
    keys: list[str] = []
    coded: list[dict[str, Any]] = []  # the reasons as problem codes (hub.problem_codes)

    def exceeded(text: str, share: float, key: str, code: str, **params: Any) -> None:
        reasons.append(_exceeded(text, share, key, limits, given))
        keys.append(key)
        coded.append({"code": code, "params": {**params, "share": round(share * 100, 1),
                                               "max_share": getattr(limits, key) * 100}})

    read = outcome.rows_read
    if read and outcome.rows_quarantined / read > limits.max_quarantined_share:
        outside = _extent_rows(quarantine_file)
        exceeded(f"{outcome.rows_quarantined:,} of {read:,} rows read were quarantined",
                 outcome.rows_quarantined / read, "max_quarantined_share", "guard.quarantined",
                 quarantined=outcome.rows_quarantined, read=read, outside=outside)
        if outside:
            reasons[-1] += (f"; {outside:,} of them lie outside the district's extent (rule "
                            f"`extent`, outside_extent: error){_extent_text(extent, district)}")
    if read and outcome.rows_outside / read > limits.max_outside_share:
        exceeded(f"{outcome.rows_outside:,} of {read:,} rows read were skipped as outside the "
                 "district (outside_extent: skip)", outcome.rows_outside / read,
                 "max_outside_share", "guard.outside", outside=outcome.rows_outside, read=read)
        reasons[-1] += _extent_text(extent, district)
    before = outcome.current_rows
    if before and 1 - outcome.rows_valid / before > limits.max_shrink_share:
        exceeded(f"the new version would have {outcome.rows_valid:,} rows, "
                 f"{before - outcome.rows_valid:,} fewer than the {before:,} of the current "
                 f"version {outcome.current_version}", 1 - outcome.rows_valid / before,
                 "max_shrink_share", "guard.shrink", rows=outcome.rows_valid,
                 current=before)
    if reasons:
        raise GuardFailed(reasons, keys, pipeline_file, coded)


def _exceeded(what: str, share: float, key: str, limits: Limits, given: set[str]) -> str:
    limit = getattr(limits, key)
    origin = ("set in the pipeline" if key in given
              else ENV[key] if key in limits.env_keys else "default")
    return f"{what} ({_percent(share)}), more than {key}: {limit:g} ({_percent(limit)}, {origin})"


def _percent(share: float) -> str:
    return f"{share * 100:.1f}".removesuffix(".0") + " %"


def _extent_rows(quarantine_file: Path | None) -> int:
    """Quarantined rows that broke the `extent` rule (among possibly other problems)."""
    if quarantine_file is None or not quarantine_file.exists():
        return 0
    errors = pq.read_table(quarantine_file, columns=["_errors"]).column("_errors")
    return int(pc.sum(pc.match_substring(errors, "[extent]")).as_py() or 0)


def _extent_text(extent: Extent | None, district: str) -> str:
    if extent is None:
        return ""
    box = ", ".join(f"{v:.3f}" for v in (extent.minx, extent.miny, extent.maxx, extent.maxy))
    name = f" of {district}" if district else ""
    return (f"; the extent{name} is lon/lat [{box}] (catalog/district.yaml: bbox plus "
            "extent_buffer_km)")
