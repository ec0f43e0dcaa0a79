"""The derived datasets of a project and, for each input, whether it may be read into a public
aggregate and who said so: the input owner's `public_derivatives` or an admin's allowance
(`hub.ingest.allowances`). The decision is `hub.access.DerivedInput.allows_public`, the one the
run applies; this module only gathers what it decides on, for the workspace's page of public
aggregates (hub/web/workspace/aggregates.py) beside `hub derived list`.

The pipelines are loaded without the access check at load (`discover` refuses a derived
pipeline that is not allowed yet, and that is exactly the one an admin wants to see here); a
pipeline file that does not load is named in `broken`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hub.access import DerivedInput, access_in_force
from hub.errors import PipelineError
from hub.ingest.allowances import Allowance, listing
from hub.ingest.definitions import Definitions
from hub.ingest.pipeline import Pipeline, load_pipeline
from hub.store.versions import Store


@dataclass(frozen=True)
class Input:
    """An input of a derived dataset: `owner` and `access` from its pipeline (empty if the
    project has none), `by_owner` if the owner lists the derived dataset in
    `public_derivatives`, `allowance` an admin's (or None), `allowed` the decision."""

    name: str
    owner: str
    access: str
    by_owner: bool
    allowance: Allowance | None
    allowed: bool

    @property
    def public(self) -> bool:
        return self.access == "public"


@dataclass(frozen=True)
class Derived:
    name: str
    title: str
    organization: str
    access: str
    aggregate: bool  # `aggregate: public`: may be public over non-public inputs
    inputs: tuple[Input, ...]


@dataclass(frozen=True)
class Consents:
    derived: list[Derived]
    broken: list[str]  # pipeline files (or saved definitions) that do not load


def consents(pipelines_dir: Path, schemas_dir: Path | None, store: Store) -> Consents:
    """Every derived dataset of the project (files, then saved definitions not shadowed by a
    file), sorted by name, with its inputs' consents."""
    found: dict[str, Pipeline] = {}
    broken = []
    for path in sorted(Path(pipelines_dir).glob("*.y*ml")):
        try:
            pipeline = load_pipeline(path, schemas_dir)
        except PipelineError:
            broken.append(path.name)
            continue
        found[pipeline.dataset] = pipeline
    try:
        saved = Definitions(store, pipelines_dir, schemas_dir).pipelines()
    except PipelineError as exc:
        saved, broken = [], [*broken, str(exc)]
    for pipeline in saved:
        found.setdefault(pipeline.dataset, pipeline)
    allowances = {(a.input, a.derived): a for a in listing(store.db)}
    return Consents([_derived(p, found, allowances) for _, p in sorted(found.items())
                     if p.inputs], broken)


def _derived(pipeline: Pipeline, pipelines: dict[str, Pipeline],
             allowances: dict[tuple[str, str], Allowance]) -> Derived:
    inputs = []
    for name in pipeline.inputs:
        source = pipelines.get(name)
        owner, access = (source.organization, source.access) if source else ("", "")
        owned = source.public_derivatives if source else ()
        allowance = allowances.get((name, pipeline.dataset))
        decision = DerivedInput(name, owner, access_in_force(access or "internal", None, owner),
                                owned, (pipeline.dataset,) if allowance else ())
        inputs.append(Input(name, owner, access, pipeline.dataset in owned, allowance,
                            decision.allows_public(pipeline.dataset)))
    return Derived(pipeline.dataset, pipeline.title, pipeline.organization, pipeline.access,
                   pipeline.aggregate == "public", tuple(inputs))
