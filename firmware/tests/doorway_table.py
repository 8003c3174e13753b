"""Print firmware/README.md's doorway detection table (CPython; run from this folder).

    python doorway_table.py [crossings-each-way-per-speed]

Every number comes from the real ``DoorwayCounter`` at the default settings (sensor
2.2 m above the floor, so 33 ms budget and period, two 8 x 16 zones) against the
timing-true model in ``tof_model.py``: people 1.6-1.9 m tall, noise and 2 % invalid
rangings, start times spread over the ranging cycle.
"""

import sys

sys.path.insert(0, "..")

import tof_model  # noqa: E402

SPEEDS = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    lines = ["| speed (m/s) | right, ST's ROI lag | right, no lag | wrong direction | "
             "tailgating limit (m, centre to centre) |", "|---|---|---|---|---|"]
    for speed in SPEEDS:
        lag = tof_model.detection(speed, True, n, seed=5)
        flat = tof_model.detection(speed, False, n, seed=5)
        limit = tof_model.tailgating_limit(speed)
        total = 2 * n
        lines.append("| {} | {}/{} ({} %) | {}/{} ({} %) | {} | {:.2f} |".format(
            speed, lag[0], total, 100 * lag[0] // total, flat[0], total,
            100 * flat[0] // total, lag[1] + flat[1], limit))
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
