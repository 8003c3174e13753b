"""A tiny test runner that works under MicroPython and CPython (MicroPython has no pytest).

A test module defines ``test_*`` functions; ``run_modules`` imports each module, runs its
tests in definition order where the port keeps it (sorted otherwise), prints one line per
test and returns (passed, failed). An import error counts as a failed test, so a module
that does not load under MicroPython fails the run instead of vanishing.
"""

import sys
from binascii import unhexlify

try:
    import traceback
except ImportError:
    traceback = None


def here() -> str:
    path = __file__
    i = path.rfind("/")
    return path[:i] if i >= 0 else "."


def trace_path(name: str) -> str:
    return here() + "/traces/" + name


_scratch_n = [0]


def scratch(name: str) -> str:
    """A fresh file path for a test (removed first if it exists)."""
    import os

    _scratch_n[0] += 1
    if sys.implementation.name == "micropython":
        base = "/tmp"
    else:
        import tempfile

        base = tempfile.gettempdir()
    path = "{}/sp_{}_{}_{}".format(base, getattr(os, "getpid", lambda: 0)(), _scratch_n[0], name)
    for p in (path, path + ".tmp"):
        try:
            os.remove(p)
        except OSError:
            pass
    return path


def read_trace(name: str) -> list:
    """Lines of a trace file without comments and blank lines."""
    out = []
    with open(trace_path(name)) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                out.append(line)
    return out


def read_timed_hex(name: str) -> list:
    """A trace of ``<ms> <hex bytes>`` lines as (ms, bytes) pairs."""
    out = []
    for line in read_trace(name):
        t, data = line.split(" ")
        out.append((int(t), unhexlify(data)))
    return out


def eq(actual, expected, what: str = "") -> None:
    if actual != expected:
        raise AssertionError("{}expected {!r}, got {!r}".format(what + ": " if what else "",
                                                                expected, actual))


def ok(condition, what: str = "condition") -> None:
    if not condition:
        raise AssertionError(what)


def raises(exc, fn, *args, **kwargs) -> None:
    try:
        fn(*args, **kwargs)
    except exc:
        return
    raise AssertionError("{} not raised by {}".format(exc.__name__, getattr(fn, "__name__", fn)))


def tests_of(module) -> list:
    names = [n for n in dir(module) if n.startswith("test_")]
    names.sort()
    return [(n, getattr(module, n)) for n in names if callable(getattr(module, n))]


def _describe(err) -> str:
    return "{}: {}".format(type(err).__name__, err)


def run_modules(names: list, out=None) -> tuple:
    write = out if out is not None else print
    passed = failed = 0
    for name in names:
        try:
            module = __import__(name)
        except Exception as err:  # noqa: BLE001 - an import failure is a test failure
            failed += 1
            write("FAIL {} (import) {}".format(name, _describe(err)))
            if hasattr(sys, "print_exception"):
                sys.print_exception(err)  # type: ignore[attr-defined]
            continue
        for test_name, fn in tests_of(module):
            try:
                fn()
            except Exception as err:  # noqa: BLE001
                failed += 1
                write("FAIL {}.{} {}".format(name, test_name, _describe(err)))
                if hasattr(sys, "print_exception"):
                    sys.print_exception(err)  # type: ignore[attr-defined]
                elif traceback is not None:
                    traceback.print_exc()
            else:
                passed += 1
                write("PASS {}.{}".format(name, test_name))
    return passed, failed
