"""The data managers' workspace (/arbeitsbereich) over HTTP on the demo district.

`workspace-pages`  every GET page of the workspace, signed in as an admin (who may see each):
                   the dashboard, register, manage a dataset, bring data in (with an uploaded
                   workbook, its preview and saved mapping), the run's JSON, the validation
                   report and its CSVs, the pipeline export, a job and its JSON, the to-do list,
                   the audit trail, usage, the quarterly report (and their CSVs), the users, the
                   public aggregates and the account page. Server time per request = time to
                   the first byte of the answer on 127.0.0.1 (the hub sends no Server-Timing
                   header), one client, after a warm-up; target of issue 12: p50 ≤ 30 ms per
                   page. The server's CPU time per request (from /proc, all its threads) is
                   noted beside it: on a shared machine it shows the work a page costs without
                   the waiting.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import shutil
import statistics
import time
from pathlib import Path

import httpx

from bench._harness import DATA_DIR, Result, judge
from bench._serve import HubServer, demo_project
from bench.ckan import _p

CASES = {"workspace-pages": "demo district: every workspace page, server p50 (time to first "
                            "byte), signed in as an admin"}
LARGE: frozenset[str] = frozenset()
WORK = DATA_DIR / "workspace"
VERSION = 1  # bump when the seeded project changes
P50_MS = 30.0
ROUNDS = 40
PASSWORD = "Bench Arbeitsbereich 2026"
ADMIN = "bench-admin"
DATASET = "pflege-bench"


def run(cases: list[str], args: argparse.Namespace) -> list[Result]:
    base = demo_project(WORK / f"base-v{VERSION}")
    root = WORK / "run"
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(base, root)
    _accounts(root)
    results: list[Result] = []
    with HubServer(root) as server:
        cookie = _signed_in(server.url)
        job = _bring_data_in(root, server.url, cookie)
        pages = _pages(job)
        conn = http.client.HTTPConnection("127.0.0.1", server.port)
        for label, path in pages.items():
            cpu = _cpu_s(server.pid)
            times = _timed(conn, path, cookie, ROUNDS)
            cpu_ms = (_cpu_s(server.pid) - cpu) * 1000 / (ROUNDS + 2)
            p50 = statistics.median(times)
            target, ok = judge((f"p50 ≤ {P50_MS:g} ms", p50 <= P50_MS))
            results.append(Result("workspace-pages", label, "ms", round(p50, 2), target=target,
                                  ok=ok, hub_runs=[round(t, 2) for t in times],
                                  note=f"{path}; p90 {_p(times, 0.9):.1f} ms; server CPU "
                                       f"{cpu_ms:.1f} ms per request",
                                  details={"server_cpu_ms": round(cpu_ms, 2)}))
        conn.close()
    return results


def _pages(job: str) -> dict[str, str]:
    one = f"/arbeitsbereich/datensaetze/{DATASET}"
    return {
        "dashboard": "/arbeitsbereich",
        "register": "/arbeitsbereich/neu",
        "manage dataset": one,
        "manage dataset (demo, 155 rows)": "/arbeitsbereich/datensaetze/pflege",
        "bring data in (preview + mapping)": one + "/daten",
        "run state (JSON)": one + "/daten/lauf.json",
        "validation report": one + "/pruefbericht",
        "quarantined rows (CSV)": one + "/pruefbericht/quarantaene.csv",
        "problems (CSV)": one + "/pruefbericht/probleme.csv",
        "pipeline export": one + "/pipeline.yaml",
        "job": f"/arbeitsbereich/auftraege/{job}",
        "job (JSON)": f"/arbeitsbereich/auftraege/{job}.json",
        "to-do list": "/arbeitsbereich/aufgaben",
        "audit trail": "/arbeitsbereich/protokoll",
        "audit trail (CSV)": "/arbeitsbereich/protokoll.csv",
        "usage": "/arbeitsbereich/nutzung",
        "usage of a dataset": "/arbeitsbereich/nutzung?datensatz=pflege",
        "usage (CSV)": "/arbeitsbereich/nutzung.csv",
        "quarterly report": "/arbeitsbereich/bericht",
        "quarterly report (CSV)": "/arbeitsbereich/bericht.csv",
        "users": "/arbeitsbereich/benutzer",
        "public aggregates": "/arbeitsbereich/aggregate",
        "account": "/konto",
    }


def _accounts(root: Path) -> None:
    from hub.accounts import Accounts
    from hub.catalog import open_catalog
    from hub.config import load_settings

    catalog, vocab, _ = open_catalog(load_settings(root, root / "store"))
    accounts = Accounts(catalog.store, vocab)
    accounts.add_user(ADMIN, "landkreis-elbe-elster", "admin")
    accounts.set_password(ADMIN, PASSWORD)


def _csrf(text: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', text)
    if not found:
        raise RuntimeError("no CSRF token on the page")
    return found.group(1)


def _signed_in(url: str) -> str:
    """The session cookie of the admin, signed in through the form."""
    with httpx.Client(base_url=url, timeout=60) as browser:
        token = _csrf(browser.get("/anmelden").text)
        done = browser.post("/anmelden", data={"name": ADMIN, "password": PASSWORD,
                                               "csrf": token})
        if done.status_code != 303:
            raise RuntimeError(f"sign-in failed: {done.status_code}")
        return "; ".join(f"{k}={v}" for k, v in browser.cookies.items())


def _bring_data_in(root: Path, url: str, cookie: str) -> str:
    """Register a dataset, upload the demo care workbook with two bad postcodes, save the
    proposed mapping and run it (in this process, as `hub worker` would): every data page
    then has something to show. Returns the job's id."""
    import io

    import openpyxl

    from hub.config import load_settings
    from hub.intake.preview import preview
    from hub.jobs.worker import Worker
    from hub.schema import load_schema

    workbook = root / "pipelines/data/generated/pflege.xlsx"
    book = openpyxl.load_workbook(workbook)
    sheet = book["Einrichtungen"]
    plz = next(c.column for c in sheet[4] if c.value == "PLZ")
    for row in (5, 6):
        sheet.cell(row, plz).value = "XY"
    data = io.BytesIO()
    book.save(data)
    schema = load_schema(root / "schemas" / "pflege.json")
    proposal = preview(workbook, "xlsx", workbook.name).proposal(schema)
    here = f"/arbeitsbereich/datensaetze/{DATASET}"
    with httpx.Client(base_url=url, timeout=120, headers={"Cookie": cookie}) as browser:
        form = browser.get("/arbeitsbereich/neu")
        done = browser.post("/arbeitsbereich/neu", data={
            "csrf": _csrf(form.text), "title": "Pflegeangebote (Messung)", "name": DATASET,
            "description": "Für die Messung der Seiten des Arbeitsbereichs.",
            "publisher": "sozialamt", "contact_name": "Sozialamt",
            "contact_email": "pflege@example.org", "license": "dl-by-de/2.0",
            "access": "public", "frequency": "QUARTERLY", "theme_SOCI": "1"})
        _expect(done, "register")
        token = _csrf(browser.get(here + "/daten").text)
        _expect(browser.post(here + "/daten/dateien", data={"csrf": token},
                             files={"dateien": ("pflege.xlsx", data.getvalue())}), "upload")
        fields = {"csrf": token, "schema": "pflege", "geometry": "lonlat", "lon": "Rechtswert",
                  "lat": "Hochwert", "crs": "EPSG:25833", "on_error": "quarantine",
                  **{f"map.{k}": v for k, v in proposal.items()}}
        _expect(browser.post(here + "/daten/pipeline", data=fields), "save the mapping")
        _expect(browser.post(here + "/daten/lauf", data={"csrf": token}), "run")
        job = Worker(load_settings(root, root / "store")).run_next()
        if job is None or job.state != "done":
            raise RuntimeError(f"the run did not finish: {job}")
        return job.id


def _expect(answer: httpx.Response, step: str) -> None:
    if answer.status_code != 303:
        raise RuntimeError(f"{step}: HTTP {answer.status_code}: {answer.text[:300]}")


def _timed(conn: http.client.HTTPConnection, path: str, cookie: str,
           rounds: int) -> list[float]:
    """Milliseconds from sending the request to its answer's first byte (status and
    headers), `rounds` times after two warm-up requests; every answer must be 200."""
    times = []
    for i in range(rounds + 2):
        start = time.perf_counter()
        conn.request("GET", path, headers={"Cookie": cookie})
        response = conn.getresponse()
        first = time.perf_counter()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"{path}: HTTP {response.status}: {body[:200]!r}")
        if i >= 2:
            times.append((first - start) * 1000)
    return times


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system, all threads) the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
