"""The benchmark harness's own measuring tools (bench/compare.py), which the
README's performance figures rest on.  No timing of rnncore here."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
import threading
import time
from pathlib import Path

import pytest

COMPARE = Path(__file__).resolve().parents[1] / "bench" / "compare.py"


@pytest.fixture(scope="module")
def compare():
    spec = importlib.util.spec_from_file_location("bench_compare", COMPARE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    try:
        spec.loader.exec_module(module)  # imports only the standard library
        yield module
    finally:
        del sys.modules[spec.name]


def spin(stop: threading.Event) -> None:
    """Busy without the GIL, as a native thread pool's worker spinning: sha256
    releases the GIL while it hashes a large buffer."""
    data = bytes(1 << 22)
    while not stop.is_set():
        hashlib.sha256(data)


@pytest.mark.skipif(not sys.platform.startswith("linux"),
                    reason="per-thread CPU clocks through /proc (Linux)")
def test_threads_cpu_seconds_sees_a_thread_busy_on_another_cpu(compare):
    # getrusage counts a thread running on another CPU at scheduler ticks
    # only; the per-thread clocks must see it at once.
    stop = threading.Event()
    spinner = threading.Thread(target=spin, args=(stop,))
    spinner.start()
    try:
        time.sleep(0.02)
        c0, w0 = compare.threads_cpu_seconds(), time.perf_counter()
        time.sleep(0.05)
        c1, w1 = compare.threads_cpu_seconds(), time.perf_counter()
    finally:
        stop.set()
        spinner.join()
    assert c1 - c0 > 0.2 * (w1 - w0)
    # The calling thread's own time is left out: it only slept.
    c2 = compare.threads_cpu_seconds()
    busy_until = time.perf_counter() + 0.05
    while time.perf_counter() < busy_until:
        pass
    assert compare.threads_cpu_seconds() - c2 < 0.01


@pytest.mark.skipif(not sys.platform.startswith("linux"),
                    reason="per-thread CPU clocks through /proc (Linux)")
def test_settle_waits_for_a_spinning_thread_to_stop(compare):
    # A window in which the spinner is preempted (by the host of a VM, or
    # by other processes on a loaded machine) can look quiet, so one
    # attempt of five must wait, each started once the spinner has been
    # seen running; with getrusage every attempt returned within a few ms.
    def attempt():
        stop = threading.Event()
        spinner = threading.Thread(target=spin, args=(stop,))
        c0 = compare.threads_cpu_seconds()
        spinner.start()
        deadline = time.perf_counter() + 2.0
        while compare.threads_cpu_seconds() - c0 < 0.01 and time.perf_counter() < deadline:
            time.sleep(0.001)
        stopper = threading.Timer(0.1, stop.set)
        stopper.start()
        t0 = time.perf_counter()
        try:
            compare.settle(max_s=5.0)
            return stop.is_set(), time.perf_counter() - t0
        finally:
            stop.set()
            stopper.cancel()
            spinner.join()

    meter = compare.LoadMeter().start()
    results = [attempt() for _ in range(5)]
    others = meter.stop()
    if not any(waited for waited, _ in results) and others is not None and others > 0.5:
        # Two other busy CPUs' worth of processes leave the spinner off the
        # CPU in most 2 ms windows: settle() cannot be judged then.
        pytest.skip(f"other processes kept {others:.1f} CPUs busy meanwhile")
    assert any(waited_for_it for waited_for_it, _ in results), (results, others)
    assert all(seconds < 5.0 for _, seconds in results), results
