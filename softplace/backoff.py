"""Jittered, capped exponential backoff: the one place retry timing is decided."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(slots=True)
class Backoff:
    """``next_delay()`` grows 2x per failure up to ``cap_s``, with full jitter; ``reset()``
    after a success. Full jitter keeps many clients from retrying in lockstep."""

    base_s: float = 0.2
    cap_s: float = 30.0
    attempt: int = 0
    _random: random.Random = field(default_factory=random.Random)

    def next_delay(self) -> float:
        ceiling = min(self.cap_s, self.base_s * (2 ** min(self.attempt, 30)))
        self.attempt += 1
        return self._random.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.attempt = 0
