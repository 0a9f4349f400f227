#!/usr/bin/env python3
"""CPython's concurrent.futures, measured the way `compare` measures concur (standard library only).

    python3 benches/python/peers.py [--quick] [--only GROUP[,GROUP]]

Groups: wait_any, wait_register, as_completed, pool, process. Prints one line per scenario:

    result<TAB>scenario<TAB>cpython<TAB>median_ns<TAB>min_ns<TAB>max_ns

(nanoseconds per operation: per wait for wait_any and wait_register, per future for
as_completed, per task for the pool, per pool start or kill, per item for process/map), and lines starting with '#' for a reader. `compare` runs
it as a subprocess and reads the `result` lines; every wait here has a timeout, so a lost
wake-up ends the run with an error instead of hanging.

- wait_any/N: a partner thread is blocked in `wait(fs, return_when=FIRST_COMPLETED)` over N
  pending futures; the main thread calls `set_result` on one of them. The figure is the time
  from just before `set_result` to `wait` returning in the partner (both read
  `time.perf_counter_ns`, one monotonic clock). The clock starts once the partner has
  installed its waiter in every future and sits in `Event.wait`, asleep in the kernel.
- wait_register/N: `wait(fs, timeout=0)` over N pending futures: installs the waiter in all N
  and removes it again.
- as_completed: `for f in as_completed(fs)` over 100,000 futures that are all done.
- pool/round_trip: `ThreadPoolExecutor(2).submit(f).result()` in a loop.
- pool/throughput_100k: 100,000 submits, then every result (20,000 with --quick).
- process/*: `ProcessPoolExecutor` with the fork context (the cheapest start CPython has):
  - process/startup: a 2-worker executor from nothing to the first of two no-op results
    (shutdown outside the clock);
  - process/round_trip: `submit(noop, 1).result()` in a loop on a warm 2-worker executor;
  - process/map/1, process/map/1000: `sum(executor.map(noop, range(n), chunksize=c))` on a
    warm 2-worker executor, per item; n = 100,000 at chunksize 1000, and at chunksize 1
    5,000 (2,000 with --quick; CPython does a few thousand items/s there, so 100,000 would
    take half a minute per sample);
  - process/death_to_error: a 1-worker executor runs a task that writes its pid to a pipe
    inherited through fork and then sleeps; once the pid is read (the task is running),
    1 ms later `os.kill(pid, SIGKILL)`, and the time from just before the kill to `result()`
    raising `BrokenProcessPool` on the pending future (a fresh executor each sample: a
    broken one cannot be reused).
"""

import argparse
import multiprocessing
import os
import queue
import select
import signal
import statistics
import sys
import threading
import time
from concurrent.futures import (
    FIRST_COMPLETED,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    as_completed,
    wait,
)
from concurrent.futures.process import BrokenProcessPool

SIZES = [1, 16, 1024, 10000]
LIMIT = 10.0  # seconds any single wait may block before the run is declared hung


def emit(scenario, samples_ns):
    samples = sorted(samples_ns)
    print(
        f"result\t{scenario}\tcpython\t{statistics.median(samples):.1f}"
        f"\t{samples[0]:.1f}\t{samples[-1]:.1f}",
        flush=True,
    )


def timed(fn, target_ns, rounds):
    """Per-call nanoseconds of `fn`, one sample per round, each sample long about `target_ns`."""
    start = time.perf_counter_ns()
    fn()
    one = max(time.perf_counter_ns() - start, 1)
    reps = max(1, int(target_ns // one))
    samples = []
    for _ in range(rounds):
        start = time.perf_counter_ns()
        for _ in range(reps):
            fn()
        samples.append((time.perf_counter_ns() - start) / reps)
    return samples


def thread_state(tid):
    """The kernel's state letter of thread `tid` of this process, or None without /proc."""
    try:
        with open(f"/proc/self/task/{tid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    return stat[stat.rfind(")") + 2]


def wait_any(n, rounds):
    fs = [Future() for _ in range(n)]
    commands = queue.SimpleQueue()
    answers = queue.SimpleQueue()
    tid = []

    def partner():
        tid.append(threading.get_native_id())
        while True:
            # The main thread replaces a used future in `fs` only while no wait is running.
            if commands.get(timeout=60) is None:
                return
            done, _ = wait(fs, timeout=LIMIT, return_when=FIRST_COMPLETED)
            returned = time.perf_counter_ns()
            answers.put(returned if done else None)

    thread = threading.Thread(target=partner, name="wait-any-partner", daemon=True)
    thread.start()
    samples = []
    for r in range(rounds):
        k = (r * 2654435761) % n
        commands.put(True)
        # Registered in every future and inside Event.wait: the waiter is in fs[k]._waiters
        # (installed last to first under all the locks) and its event's condition has a waiter.
        deadline = time.monotonic() + LIMIT
        while True:
            waiters = fs[k]._waiters
            if waiters and waiters[-1].event._cond._waiters:
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"wait_any/{n}: the partner never blocked")
            time.sleep(0.0001)
        # Let it reach the blocking acquire (a few bytecodes on), then make sure it sleeps.
        time.sleep(0.001)
        while tid and thread_state(tid[0]) not in ("S", None):
            if time.monotonic() > deadline:
                break
            time.sleep(0.0001)
        start = time.perf_counter_ns()
        fs[k].set_result(k)
        returned = answers.get(timeout=2 * LIMIT)
        if returned is None:
            raise SystemExit(f"wait_any/{n}: the partner's wait timed out")
        samples.append(returned - start)
        fs[k] = Future()
    commands.put(None)
    thread.join(timeout=LIMIT)
    return samples


def wait_register(n, rounds, target_ns):
    fs = [Future() for _ in range(n)]

    def once():
        done, _ = wait(fs, timeout=0, return_when=FIRST_COMPLETED)
        assert not done

    return timed(once, target_ns, rounds)


def done_futures(n):
    fs = []
    for i in range(n):
        f = Future()
        f.set_result(i)
        fs.append(f)
    return fs


def as_completed_per_future(n, rounds):
    fs = done_futures(n)
    samples = []
    for _ in range(rounds):
        start = time.perf_counter_ns()
        count = 0
        for _ in as_completed(fs, timeout=LIMIT):
            count += 1
        samples.append((time.perf_counter_ns() - start) / n)
        assert count == n
    return samples


def noop(v):
    return v


def pool_round_trip(rounds, target_ns):
    with ThreadPoolExecutor(max_workers=2) as executor:
        for i in range(200):  # start the workers
            executor.submit(noop, i).result(timeout=LIMIT)
        return timed(lambda: executor.submit(noop, 1).result(timeout=LIMIT), target_ns, rounds)


def pool_throughput(tasks, rounds):
    samples = []
    with ThreadPoolExecutor(max_workers=2) as executor:
        for i in range(200):
            executor.submit(noop, i).result(timeout=LIMIT)
        for _ in range(rounds):
            start = time.perf_counter_ns()
            futures = [executor.submit(noop, i) for i in range(tasks)]
            total = 0
            for f in futures:
                total += f.result(timeout=LIMIT)
            samples.append((time.perf_counter_ns() - start) / tasks)
            assert total == tasks * (tasks - 1) // 2
    return samples


def fork_pool(workers):
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork"))


def process_startup(samples):
    out = []
    for i in range(samples + 1):  # the first warms the page cache, as ours does
        start = time.perf_counter_ns()
        executor = fork_pool(2)
        a = executor.submit(noop, 1)
        b = executor.submit(noop, 2)
        wait([a, b], timeout=LIMIT, return_when=FIRST_COMPLETED)
        elapsed = time.perf_counter_ns() - start
        assert a.result(timeout=LIMIT) + b.result(timeout=LIMIT) == 3
        executor.shutdown(wait=True)
        if i:
            out.append(elapsed)
    return out


def process_round_trip(rounds, target_ns):
    with fork_pool(2) as executor:
        for i in range(200):  # start the workers
            executor.submit(noop, i).result(timeout=LIMIT)
        return timed(lambda: executor.submit(noop, 1).result(timeout=LIMIT), target_ns, rounds)


def process_map(chunksize, n, rounds):
    samples = []
    with fork_pool(2) as executor:
        sum(executor.map(noop, range(1000), chunksize=chunksize, timeout=LIMIT))
        for _ in range(rounds):
            start = time.perf_counter_ns()
            total = sum(executor.map(noop, range(n), chunksize=chunksize, timeout=3 * LIMIT))
            samples.append((time.perf_counter_ns() - start) / n)
            assert total == n * (n - 1) // 2
    return samples


def report_pid_and_sleep(fd):
    os.write(fd, os.getpid().to_bytes(4, "little"))
    while True:
        time.sleep(1)


def process_death_to_error(samples):
    out = []
    for _ in range(samples):
        r, w = os.pipe()
        executor = fork_pool(1)
        try:
            executor.submit(noop, 0).result(timeout=LIMIT)  # the worker is up
            future = executor.submit(report_pid_and_sleep, w)
            ready = wait_readable(r)
            if not ready:
                raise SystemExit("process/death_to_error: the busy task never started")
            pid = int.from_bytes(os.read(r, 4), "little")
            time.sleep(0.001)
            start = time.perf_counter_ns()
            os.kill(pid, signal.SIGKILL)
            try:
                future.result(timeout=LIMIT)
                raise SystemExit("process/death_to_error: the task returned")
            except BrokenProcessPool:
                out.append(time.perf_counter_ns() - start)
        finally:
            executor.shutdown(wait=True)
            os.close(r)
            os.close(w)
    return out


def wait_readable(fd):
    readable, _, _ = select.select([fd], [], [], LIMIT)
    return bool(readable)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter rounds")
    parser.add_argument("--only", default="wait_any,wait_register,as_completed,pool,process")
    parser.add_argument(
        "--smoke", action="store_true", help="a few operations of each, for tests (figures meaningless)"
    )
    args = parser.parse_args()
    groups = set(args.only.split(","))
    rounds, target, slow_rounds, tasks = (31, 20e6, 5, 100_000)
    if args.quick:
        rounds, target, slow_rounds, tasks = (11, 10e6, 3, 20_000)
    if args.smoke:
        rounds, target, slow_rounds, tasks = (3, 1e5, 1, 1000)
    print(f"# {sys.implementation.name} {sys.version.split()[0]}, pid {os.getpid()}", flush=True)
    if "wait_any" in groups:
        for n in SIZES:
            emit(f"wait_any/{n}", wait_any(n, rounds))
    if "wait_register" in groups:
        for n in SIZES:
            emit(f"wait_register/{n}", wait_register(n, rounds, target))
    if "as_completed" in groups:
        n = 1000 if args.smoke else 100_000
        emit("as_completed", as_completed_per_future(n, slow_rounds))
    if "pool" in groups:
        emit("pool/round_trip", pool_round_trip(rounds, target))
        print(f"# pool/throughput_100k: {tasks} tasks per sample", flush=True)
        emit("pool/throughput_100k", pool_throughput(tasks, slow_rounds))
    if "process" in groups:
        samples = 3 if args.smoke else rounds
        emit("process/startup", process_startup(samples))
        emit("process/round_trip", process_round_trip(rounds, target))
        n1 = 100 if args.smoke else (2_000 if args.quick else 5_000)
        n1000 = 2_000 if args.smoke else 100_000
        print(f"# process/map: {n1} items per sample at chunksize 1, {n1000} at 1000", flush=True)
        emit("process/map/1", process_map(1, n1, slow_rounds))
        emit("process/map/1000", process_map(1000, n1000, slow_rounds))
        emit("process/death_to_error", process_death_to_error(samples))


if __name__ == "__main__":
    main()
