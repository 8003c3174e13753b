"""PIR module (e.g. AM312, HC-SR501) on a GPIO: raw motion; the core applies the hold."""


class PIRSensor:
    kind = "pir"

    def __init__(self, pin) -> None:
        self.pin = pin

    def start(self, now_ms: int):
        return None

    def read(self, now_ms: int):
        return self.pin.value() == 1, 0, 0

    def fresh(self, now_ms: int) -> bool:
        return True  # a GPIO always answers; a dead PIR looks like an empty room
