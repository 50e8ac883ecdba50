"""glibc's malloc arenas capped by `apiwatch serve`: counted in fresh interpreters, as the
cap only applies to threads that allocate after it is set."""

from __future__ import annotations

import itertools
import json
import platform
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest

from tests.startup.support import clean_env, free_port, wait_healthy

pytestmark = pytest.mark.skipif(
    platform.libc_ver()[0] != "glibc", reason="malloc arenas are glibc's (this libc is not)"
)

# Eight threads each allocate and hold a block outside Python's small-object allocator,
# all alive at once; malloc_info then lists one <heap> per arena in use.
_COUNT = textwrap.dedent(
    """
    import ctypes, json, os, sys, tempfile, threading
    from apiwatch.allocator import cap_malloc_arenas
    capped = cap_malloc_arenas() if sys.argv[1] == "cap" else False
    barrier = threading.Barrier(9)
    held = []
    def work():
        held.append(bytearray(200_000))
        barrier.wait()
        barrier.wait()
    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    barrier.wait()
    libc = ctypes.CDLL(None)
    libc.fopen.restype = ctypes.c_void_p
    libc.malloc_info.argtypes = (ctypes.c_int, ctypes.c_void_p)
    libc.fclose.argtypes = (ctypes.c_void_p,)
    path = os.path.join(tempfile.mkdtemp(), "info.xml")
    fp = libc.fopen(path.encode(), b"w")
    libc.malloc_info(0, fp)
    libc.fclose(fp)
    barrier.wait()
    for t in threads:
        t.join()
    print(json.dumps({"capped": capped, "heaps": open(path).read().count("<heap nr=")}))
    """
)


def _arenas(mode: str, **env: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", _COUNT, mode],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", **env},
        check=True,
    )
    return json.loads(done.stdout)


def test_the_cap_keeps_eight_threads_to_two_arenas() -> None:
    uncapped = _arenas("leave")
    assert uncapped["heaps"] >= 5, uncapped  # glibc's default: an arena per thread
    capped = _arenas("cap")
    assert capped == {"capped": True, "heaps": 2}


def test_an_operators_malloc_arena_max_is_left_to_glibc() -> None:
    assert _arenas("cap", MALLOC_ARENA_MAX="3") == {"capped": False, "heaps": 3}
    tunable = "glibc.malloc.arena_max=4"
    assert _arenas("cap", GLIBC_TUNABLES=tunable) == {"capped": False, "heaps": 4}


def _thread_arenas(pid: int) -> int:
    """glibc's thread arenas in a process: each is a 64 MiB reservation, its used part
    readable and writable and the rest without access, in one anonymous run."""
    maps = Path(f"/proc/{pid}/maps").read_text().splitlines()
    regions = []
    for line in maps:
        fields = line.split()
        lo, hi = (int(x, 16) for x in fields[0].split("-"))
        regions.append((lo, hi, fields[1], len(fields) > 5))
    return sum(
        1
        for (lo, hi, perm, named), (lo2, hi2, perm2, named2) in itertools.pairwise(regions)
        if perm.startswith("rw")
        and perm2 == "---p"
        and not named
        and not named2
        and hi == lo2
        and hi2 - lo == 64 << 20
    )


@pytest.mark.parametrize(("env", "most"), [({}, 1), ({"MALLOC_ARENA_MAX": "16"}, None)])
def test_a_serving_process_keeps_to_the_cap(
    tmp_path: Path, env: dict[str, str], most: int | None
) -> None:
    """`apiwatch serve` probing and answering, its database threads busy: one thread arena
    beside the main one. With the operator's own figure the threads take more (which shows
    this count would see them)."""
    port = free_port()
    served_env = clean_env(
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/a.db",
        APIWATCH_UPSTREAM_OVERRIDE="http://127.0.0.1:9",
        APIWATCH_PUBLIC_READ="true",
    )
    for name in ("MALLOC_ARENA_MAX", "GLIBC_TUNABLES"):  # this machine's own choice, if any
        served_env.pop(name, None)
    process = subprocess.Popen(
        [sys.executable, "-m", "apiwatch.cli", "serve", "--port", str(port)],
        cwd=tmp_path,
        env={**served_env, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(process, url)
        with httpx.Client(base_url=url, timeout=10) as client:
            for _ in range(20):
                assert client.get("/api/providers").status_code == 200
                assert client.get("/api/logs", params={"limit": 50}).status_code == 200
        arenas = _thread_arenas(process.pid)
    finally:
        process.terminate()
        process.wait(timeout=30)
    if most is None:
        assert arenas > 1
    else:
        assert arenas <= most
