"""`python -m soak [--minutes M] [--seed S]`: the long fault loop (`make soak`).

A project with three public datasets is served on 127.0.0.1 while readers keep asking; round
after round one fault is made — an ingest SIGKILLed (at a named fault point or after a random
delay), the server SIGKILLed while serving (the same), two writers of one dataset, a full disk,
a damaged version file, a restart during a download — and after each the same promises are
checked (see soak/rounds.py). Stops by itself after M minutes (SOAK_MINUTES, default 10) and
prints a summary; the seed (SEED, default random) is printed so a failing run can be replayed
with `make soak SEED=...` (the same faults in the same order; timings differ from run to run).
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import shutil
import socket
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

from soak.faults import MountDenied, small_filesystem
from soak.rounds import STORE_SIZE, Soak, SoakFailure

KILLS = 20  # SIGKILLs of each kind a full soak must reach


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def schedule(rng: random.Random, soak: Soak, tmpfs: bool) -> Iterator[Callable[[], None]]:
    """Cycles of rounds, each in a random order: two ingest kills, two server kills and one
    of the other faults (taking turns from cycle to cycle)."""
    others = [soak.two_writers, soak.corrupt, soak.download_restart]
    if tmpfs:
        others.append(soak.full_disk)
    for turn in itertools.count():
        cycle = [soak.ingest_kill, soak.server_kill, soak.ingest_kill, soak.server_kill,
                 others[turn % len(others)]]
        rng.shuffle(cycle)
        yield from cycle


def summary(soak: Soak, seed: int, minutes: float, rounds: int, tmpfs: bool,
            failure: str | None) -> str:
    t = soak.tally
    reader = soak.poller

    def kinds(prefix: str) -> str:
        parts = [f"{k.removeprefix(prefix)} {n}" for k, n in sorted(t.items())
                 if k.startswith(prefix)]
        return ", ".join(parts)

    lines = [
        f"Fault soak: seed {seed}, {minutes:.1f} min, {rounds} rounds",
        f"  ingest SIGKILLs      {t['ingest SIGKILL']:5}  ({kinds('ingest SIGKILL at ')}; "
        f"finished before the kill: {t['ingest finished before the kill']})",
        f"  server SIGKILLs      {t['server SIGKILL']:5}  ({kinds('server SIGKILL at ')}, "
        f"during a download {t['server SIGKILL during a download']})",
        f"  two writers          {t['two writers']:5}  (runs refused: "
        f"{t['two writers: second refused']})",
        f"  full disk            {t['full disk']:5}" + ("" if tmpfs else
                                                         "  (skipped: cannot mount a tmpfs)"),
        f"  corrupt files        {t['corrupt file']:5}  (found by hub check, 503 for that "
        "dataset only, hub rollback restored service)",
        f"  download restarts    {t['download restart']:5}  (cut: {kinds('download cut: ')}; "
        f"finished before the kill {t['download finished before the kill']}; "
        "every re-download byte-identical)",
        f"  versions committed   {t['versions committed']:5}  (lost: "
        f"{'0' if failure is None else 'see the failure'})",
        f"  versions verified    {t['versions verified']:5}  ({t['hub check']} runs of "
        "hub check, each exit 0)",
        f"  reader answers       {t['reader answers checked']:5}  checked of "
        f"{reader.requests} requests; {reader.refused} refused while the server was down",
        f"  server answers       {t['server answers checked']:5}  checked after the faults",
    ]
    short = [kind for kind in ("ingest SIGKILL", "server SIGKILL") if t[kind] < KILLS]
    if short and failure is None:
        lines.append(f"  note: fewer than {KILLS} of {' and '.join(short)}; "
                     "give it more time (SOAK_MINUTES)")
    lines.append(f"  result: {'FAILED: ' + failure if failure else 'ok, nothing lost'}")
    if failure:
        lines.append(f"  replay: make soak SEED={seed}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m soak", description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float,
                        default=float(os.environ.get("SOAK_MINUTES") or 10))
    parser.add_argument("--seed", type=int,
                        default=int(os.environ.get("SEED") or random.randrange(10**6)))
    args = parser.parse_args(argv)
    print(f"soak: seed {args.seed}, {args.minutes:g} minutes (replay: make soak "
          f"SEED={args.seed})", flush=True)
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="hub-soak-"))
    failure: str | None = None
    started = time.monotonic()
    rounds = 0
    with ExitStack() as stack:
        try:
            stack.enter_context(small_filesystem(work / "store", STORE_SIZE))
            tmpfs = True
        except MountDenied as exc:
            print(f"soak: no full-disk rounds: {exc}", flush=True)
            tmpfs = False
        soak = Soak(work, rng, free_port(), tmpfs)
        stack.callback(soak.stop)
        deadline = started + args.minutes * 60
        try:
            soak.start()
            soak.verify()
            for fault in schedule(rng, soak, tmpfs):
                if time.monotonic() >= deadline:
                    break
                rounds += 1
                print(f"soak: round {rounds}: {fault.__name__}", flush=True)
                fault()
        except SoakFailure as exc:
            failure = f"round {rounds}: {exc}"
        except Exception as exc:  # anything unexpected is a failure of the soak too
            traceback.print_exc()
            failure = f"round {rounds}: {exc!r}"
        if failure and tmpfs:  # the tmpfs goes away: keep a copy of the store
            shutil.copytree(work / "store", work / "store-kept", dirs_exist_ok=True)
    print(summary(soak, args.seed, (time.monotonic() - started) / 60, rounds, tmpfs, failure))
    if failure:
        print(f"soak: the project is kept for inspection in {work}")
        return 1
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
