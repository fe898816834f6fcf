"""The node's heap: its threads share a bounded number of glibc arenas (no ROS needed)."""

from __future__ import annotations

import subprocess
import sys

# Eight threads allocate and free at once; glibc's malloc_info lists one <heap> per arena in use.
CHILD = """
import ctypes, sys, threading
from segtrack_ros.memory import limit_heap_arenas
if sys.argv[1] == "limit":
    assert limit_heap_arenas()
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype, libc.free.argtypes = ctypes.c_void_p, [ctypes.c_void_p]
libc.open_memstream.restype = ctypes.c_void_p
libc.malloc_info.argtypes, libc.fclose.argtypes = [ctypes.c_int, ctypes.c_void_p], [ctypes.c_void_p]
start = threading.Barrier(8)
def churn():
    start.wait()
    for _ in range(2000):
        blocks = [libc.malloc(4096) for _ in range(20)]
        for block in blocks:
            libc.free(block)
threads = [threading.Thread(target=churn) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
buffer, size = ctypes.c_char_p(), ctypes.c_size_t()
stream = libc.open_memstream(ctypes.byref(buffer), ctypes.byref(size))
libc.malloc_info(0, stream)
libc.fclose(stream)
print(buffer.value.decode().count("<heap nr="))
"""


def arenas(mode: str) -> int:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path)}  # no MALLOC_ARENA_MAX from outside
    run = subprocess.run([sys.executable, "-c", CHILD, mode], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr
    return int(run.stdout)


def test_threads_share_at_most_two_heap_arenas():
    assert arenas("free") > 2  # the control: without the limit, contending threads get arenas of their own
    assert arenas("limit") <= 2


def test_a_user_set_malloc_arena_max_is_left_alone(monkeypatch):
    from segtrack_ros.memory import limit_heap_arenas

    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert not limit_heap_arenas()
