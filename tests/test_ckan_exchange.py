"""Publishing to and harvesting from another CKAN, between real hub instances on 127.0.0.1:
county A publishes to county B, county C harvests county A."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import ckanapi
import pytest
from conftest import free_port, hub_cli, serving

REPO = Path(__file__).resolve().parents[1]


def project(root: Path, with_data: bool) -> Path:
    shutil.copytree(REPO / "catalog", root / "catalog")
    if with_data:
        shutil.copytree(REPO / "pipelines", root / "pipelines",
                        ignore=shutil.ignore_patterns("generated"))
        shutil.copytree(REPO / "schemas", root / "schemas")
        hub_cli(root, "ingest", "gemeinden")
        hub_cli(root, "catalog", "load")
        hub_cli(root, "catalog", "import", "catalog/inventory/dateninventur.csv", "--apply")
    return root


def admin_token(root: Path) -> str:
    hub_cli(root, "user", "add", "admin", "--org", "landkreis-elbe-elster", "--role", "admin")
    return hub_cli(root, "token", "create", "admin").stdout.strip().splitlines()[-1]


def run(root: Path, *args: str) -> subprocess.CompletedProcess:
    """The hub CLI, not checked: tests look at the exit code themselves."""
    try:
        return hub_cli(root, *args)
    except subprocess.CalledProcessError as exc:
        return subprocess.CompletedProcess(exc.cmd, exc.returncode, exc.stdout, exc.stderr)


@pytest.fixture(scope="module")
def counties(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    base = tmp_path_factory.mktemp("counties")
    a = project(base / "a", with_data=True)
    b, c = project(base / "b", False), project(base / "c", False)
    tokens = {"a": admin_token(a), "b": admin_token(b)}
    with serving(a) as url_a, serving(b) as url_b, serving(c) as url_c:
        yield {"a": a, "b": b, "c": c, "url": {"a": url_a, "b": url_b, "c": url_c},
               "token": tokens}


def summary(result: subprocess.CompletedProcess) -> str:
    return " ".join(result.stdout.split())


def names(url: str, token: str | None = None, **params: object) -> set[str]:
    found = ckanapi.RemoteCKAN(url, apikey=token).action.package_search(
        rows=1000, include_private=True, **params)
    assert found["count"] <= 1000
    return {p["name"] for p in found["results"]}


def test_publish_pushes_public_datasets_once(counties: dict) -> None:
    a, url, token = counties["a"], counties["url"], counties["token"]
    public_a = names(url["a"])
    everything_a = names(url["a"], token["a"])
    assert everything_a - public_a  # A has internal and restricted records
    args = ("publish", "--target", url["b"], "--token", token["b"], "--base-url", url["a"])

    dry = run(a, *args, "--dry-run")
    assert dry.returncode == 0 and f"{len(public_a)} created" in summary(dry)
    assert names(url["b"], token["b"]) == set()  # a dry run sends nothing

    first = run(a, *args)
    assert first.returncode == 0, first.stderr
    assert f"{len(public_a)} created, 0 updated, 0 unchanged, 0 failed" in summary(first)
    assert names(url["b"], token["b"]) == public_a  # nothing internal or restricted
    b = ckanapi.RemoteCKAN(url["b"], apikey=token["b"])
    for name in everything_a - public_a:
        with pytest.raises(ckanapi.NotFound):
            b.action.package_show(id=name)

    pushed, source = b.action.package_show(id="gemeinden"), ckanapi.RemoteCKAN(
        url["a"]).action.package_show(id="gemeinden")
    assert pushed["id"] == source["id"]  # the same dataset on both sides
    assert pushed["license_id"] == source["license_id"] == "dl-by-de/2.0"
    assert {g["name"] for g in pushed["groups"]} == {g["name"] for g in source["groups"]}
    assert [r["url"] for r in pushed["resources"]] == [r["url"] for r in source["resources"]]
    assert pushed["resources"][0]["url"].startswith(url["a"] + "/")  # linked to county A

    again = run(a, *args)
    assert f"0 created, 0 updated, {len(public_a)} unchanged, 0 failed" in summary(again)

    ckanapi.RemoteCKAN(url["a"], apikey=token["a"]).action.package_patch(
        id="gemeinden", title="Gemeindegrenzen (VG5000)")
    changed = run(a, *args)
    assert f"0 created, 1 updated, {len(public_a) - 1} unchanged" in summary(changed)
    assert b.action.package_show(id="gemeinden")["title"] == "Gemeindegrenzen (VG5000)"


def test_publish_errors_are_clear(counties: dict) -> None:
    a, url, token = counties["a"], counties["url"], counties["token"]
    wrong_org = run(a, "publish", "--target", url["b"], "--token", token["b"], "--base-url",
                    url["a"], "--org", "gibt-es-nicht")
    assert wrong_org.returncode == 1 and "has no organization 'gibt-es-nicht'" in \
        " ".join(wrong_org.stderr.split())
    bad_token = run(a, "publish", "--target", url["b"], "--token", "hub_falsch", "--base-url",
                    url["a"])
    assert bad_token.returncode == 1 and "refused (check the token and its rights): Access " \
        "denied: the API token is not valid" in " ".join(bad_token.stderr.split())
    no_base = run(a, "publish", "--target", url["b"], "--token", token["b"])
    assert no_base.returncode == 1 and "HUB_BASE_URL" in " ".join(no_base.stderr.split())
    nobody = run(a, "publish", "--target", f"http://127.0.0.1:{free_port()}", "--token", "x",
                 "--base-url", url["a"])
    assert nobody.returncode == 1 and "cannot reach" in " ".join(nobody.stderr.split())


def test_harvest_reads_changes_and_deletions(counties: dict) -> None:
    c, url, token = counties["c"], counties["url"], counties["token"]
    public_a = names(url["a"])
    first = run(c, "harvest", url["a"])
    assert first.returncode == 0, first.stderr + first.stdout
    assert f"(everything): {len(public_a)} created, 0 updated, 0 unchanged, 0 deleted, " \
           "0 failed" in summary(first)
    assert names(url["c"]) == public_a  # the running hub C serves them at once
    shown = ckanapi.RemoteCKAN(url["c"]).action.package_show(id="gemeinden")
    extras = {e["key"]: e["value"] for e in shown["extras"]}
    assert extras["metadata_original_html"] == f"{url['a']}/dataset/gemeinden"
    catalog_entry = hub_cli(c, "catalog", "show", "gemeinden").stdout
    assert "harvest" in catalog_entry

    again = run(c, "harvest", url["a"])
    assert "(changes since" in summary(again) and "0 created, 0 updated" in summary(again)

    a_admin = ckanapi.RemoteCKAN(url["a"], apikey=token["a"])
    a_admin.action.package_patch(id="abfallkalender", notes="Termine 2027.")
    a_admin.action.package_delete(id="badestellen-wasserqualitaet")
    third = run(c, "harvest", url["a"])
    assert "0 created, 1 updated" in summary(third) and "1 deleted" in summary(third)
    c_api = ckanapi.RemoteCKAN(url["c"])
    assert c_api.action.package_show(id="abfallkalender")["notes"] == "Termine 2027."
    with pytest.raises(ckanapi.NotFound):
        c_api.action.package_show(id="badestellen-wasserqualitaet")


def test_harvest_of_an_unreachable_source_changes_nothing(counties: dict) -> None:
    c, url = counties["c"], counties["url"]
    before = names(url["c"])
    failed = run(c, "harvest", f"http://127.0.0.1:{free_port()}")
    assert failed.returncode == 1 and "cannot reach" in " ".join(failed.stderr.split())
    assert names(url["c"]) == before
