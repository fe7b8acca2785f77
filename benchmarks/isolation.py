"""Run a benchmark cell in a forked child, so that a crash, a hang or a runaway allocation costs
that cell, not the whole run (used by ``compare`` for the peers and by ``bench_decoders``)."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path
from typing import Any, Callable


def run_isolated(function: Callable[[], Any], seconds: float | None = None, memory_gib: float | None = None) -> Any:
    """``function()`` in a forked child; its result comes back through a pipe.

    Args:
        seconds: wall-time limit (the child is killed: ``RuntimeError("too slow: over N s")``).
        memory_gib: address-space limit above what the child has at the start (an allocation
            beyond it is reported as ``"out of memory (over X GiB)"``).

    A native crash (mlrl-boomer 0.12.3 can corrupt its heap) or a limit raises ``RuntimeError``
    with the child's exception, or its exit status if it died. Where ``fork`` is not available
    the function runs in-process, without limits.
    """
    if "fork" not in multiprocessing.get_all_start_methods():
        return function()
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(function, sender, memory_gib), daemon=True)
    child.start()
    sender.close()
    try:
        if seconds is not None and not receiver.poll(seconds):
            child.kill()
            child.join()
            raise RuntimeError(f"too slow: over {seconds:.0f} s")
        status, payload = receiver.recv()
    except EOFError:
        child.join()
        code = child.exitcode
        how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        raise RuntimeError(f"the process died ({how}) before returning a result") from None
    finally:
        receiver.close()
    child.join()
    if status == "error":
        raise RuntimeError(payload)
    return payload


def _child(function: Callable[[], Any], sender, memory_gib: float | None) -> None:
    try:
        if memory_gib is not None:
            import resource

            limit = int(_virtual_memory_bytes() + memory_gib * 2**30)
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        result = ("ok", function())
    except BaseException as error:  # noqa: BLE001 - everything goes back to the parent
        result = ("error", _describe(error, memory_gib))
    try:
        sender.send(result)
    finally:
        sender.close()
        # Skip the interpreter's teardown: native destructors of peers may crash there, after
        # the result has been delivered.
        os._exit(0)


def _describe(error: BaseException, memory_gib: float | None) -> str:
    """The error as one table cell; under a memory limit, allocation failures say so."""
    if memory_gib is None:
        return f"{type(error).__name__}: {error}"
    out_of_memory = f"out of memory (over {memory_gib:g} GiB)"
    if isinstance(error, MemoryError):
        return out_of_memory
    message = str(error).splitlines()[0] if str(error) else ""
    if "allocate" in message or "memory" in message.lower():
        return out_of_memory
    return f"{type(error).__name__}: {message}"


def _virtual_memory_bytes() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0
