"""Regenerate the synthesised sensor traces in ``traces/`` (CPython; run from this folder).

LD2410 frames are produced by the firmware's encoder in the radar's documented frame
format, then corrupted on purpose (bad footer, bad check byte, impossible state,
truncation, line noise, frames split across UART reads) the way a real serial line
does. ToF traces follow a head passing under the two zones with sensor noise.
"""

import random
import sys

sys.path.insert(0, "..")

from softplace_fw import ld2410  # noqa: E402


def ld2410_session() -> list[str]:
    rng = random.Random(3)
    lines = ["# t_ms hex: one UART read each; a person walks in, sits still 40 s",
             "# (the radar reports 'no target' for 1.5 s mid-way), then leaves at 60 s"]
    chunks: list[tuple[int, bytes]] = []
    for t in range(0, 70000, 500):
        if t < 2000 or t >= 62000:
            rep = ld2410.Report(0, 0, 0, 0, 0, 0)
        elif t < 5000 or 58000 <= t < 62000:
            rep = ld2410.Report(1, 150 + rng.randrange(40), 60 + rng.randrange(30), 0, 0, 160)
        elif 30000 <= t < 31500:
            rep = ld2410.Report(0, 0, 0, 0, 0, 0)  # a still person fades out briefly
        else:
            rep = ld2410.Report(2, 0, 0, 120 + rng.randrange(10), 20 + rng.randrange(20), 125)
        chunks.append((t, ld2410.report_frame(rep)))
    out: list[tuple[int, bytes]] = []
    for t, frame in chunks:
        if t == 10000:
            out.append((t, b"\x13\x37" + frame[:9]))  # noise, then half a frame ...
            out.append((t + 10, frame[9:]))  # ... whose other half comes next read
            continue
        if t == 15000:
            out.append((t, frame[:-1] + b"\x00"))  # bad footer
            continue
        if t == 20000:
            bad = bytearray(frame)
            bad[-5] = 0x01  # bad check byte
            out.append((t, bytes(bad)))
            continue
        if t == 25000:
            bad = bytearray(frame)
            bad[8] = 0x07  # impossible target state
            out.append((t, bytes(bad)))
            continue
        out.append((t, frame))
    lines += ["{} {}".format(t, data.hex()) for t, data in out]
    return lines


def engineering() -> list[str]:
    rep = ld2410.Report(3, 95, 54, 110, 37, 100, moving_gates=[60, 40, 12, 5, 3, 2, 1, 0, 0],
                        still_gates=[0, 0, 35, 20, 8, 4, 2, 1, 0])
    return ["# one engineering-mode frame (data type 0x01, 35 bytes of payload)",
            ld2410.report_frame(rep).hex()]


def tof_doorway() -> list[str]:
    rng = random.Random(7)
    lines = ["# t_ms,front_mm,back_mm  sensor 2.1 m above the floor; 0 = no valid range",
             "# 20 baseline samples, then: in, in, out, turn-back, hesitating in, out",
             "# expected: entered=3 left=2"]
    t = 0

    def idle(n: int) -> None:
        nonlocal t
        for _ in range(n):
            lines.append("{},{},{}".format(t, 2100 + rng.randrange(-25, 25),
                                           2080 + rng.randrange(-25, 25)))
            t += 50

    def walk(states: list[int]) -> None:
        nonlocal t
        for st in states:
            for _ in range(3):
                front = 900 + rng.randrange(-80, 80) if st & 1 else 2100 + rng.randrange(-25, 25)
                back = 950 + rng.randrange(-80, 80) if st & 2 else 2080 + rng.randrange(-25, 25)
                if rng.random() < 0.05:
                    front = 0  # a dropped range: keep the previous zone state
                lines.append("{},{},{}".format(t, front, back))
                t += 50

    idle(20)
    walk([1, 3, 2])
    idle(10)
    walk([1, 3, 2])
    idle(10)
    walk([2, 3, 1])
    idle(10)
    walk([1, 3, 1])
    idle(10)
    walk([1, 3, 1, 3, 2])
    idle(10)
    walk([2, 3, 1])
    idle(10)
    return lines


def pir_meeting() -> list[str]:
    lines = ["# t_ms,level  PIR output; a meeting where people sit still for 4 minutes",
             "# with hold_s=300 the room must never read vacant until 10 min after the end"]
    for t in range(0, 20 * 60000, 5000):
        if t < 60000:
            level = 0
        elif t < 180000:
            level = 1 if (t // 5000) % 3 else 0
        elif t < 420000:
            level = 0  # sitting still: no motion, no trigger
        elif t < 600000:
            level = 1 if (t // 5000) % 4 == 0 else 0
        else:
            level = 0
        lines.append("{},{}".format(t, level))
    return lines


def main() -> None:
    traces = (("ld2410_session.hex", ld2410_session), ("ld2410_engineering.hex", engineering),
              ("tof_doorway.csv", tof_doorway), ("pir_meeting.csv", pir_meeting))
    for name, fn in traces:
        with open("traces/" + name, "w") as f:  # noqa: PTH123
            f.write("\n".join(fn()) + "\n")


if __name__ == "__main__":
    main()
