"""Run every firmware test module; the last line is "N passed, N failed"."""

import mpytest

MODULES = [
    "test_ld2410",
    "test_doorway",
    "test_presence",
    "test_counting",
    "test_buffer",
    "test_payload",
    "test_config",
    "test_core",
    "test_clock_health",
    "test_drivers",
    "test_app",
    "test_tof_model",
    "test_public_traces",
    "test_state",
]


def main() -> int:
    passed, failed = mpytest.run_modules(MODULES)
    print("{} passed, {} failed".format(passed, failed))
    return failed


if __name__ == "__main__":
    import sys

    sys.exit(1 if main() else 0)
