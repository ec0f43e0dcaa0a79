"""One measurement in its own process: `python -m bench._child module:function JSON_KWARGS`.

Calls the function, adds this process's peak resident memory to the dict it returns and prints
it as one marked JSON line. Peak memory is VmHWM from /proc/self/status: the high-water mark of
this process's own address space. `ru_maxrss` (also reported) can be higher than that, because
Linux carries the RSS of the pre-exec process image over into it (the harness's memory, when
it is the larger); VmHWM starts afresh at exec.
"""

from __future__ import annotations

import importlib
import json
import resource
import sys

from bench._harness import MARKER, rss_mib


def main() -> None:
    target, raw = sys.argv[1], sys.argv[2]
    module, name = target.split(":")
    out = getattr(importlib.import_module(module), name)(**json.loads(raw))
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    hwm = rss_mib("VmHWM")
    out["ru_maxrss_mib"] = round(maxrss, 1)
    out["peak_rss_mib"] = round(hwm if hwm is not None else maxrss, 1)
    print(MARKER + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
