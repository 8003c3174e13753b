"""Config validation: bad values refused one by one and named; remote limits."""

from mpytest import eq, ok
from softplace_fw import config


def test_defaults_validate_clean():
    cfg, errors = config.validate(config.DEFAULTS)
    eq(errors, [])
    eq(cfg, config.DEFAULTS)
    eq(config.missing(cfg), ["site", "mqtt_host", "wifi_ssid"])


def test_bad_values_refused_and_named():
    cfg, errors = config.validate({"hold_s": 5, "sensor": "camera", "mqtt_tls": 1,
                                   "debounce_ms": True, "heartbeat_s": 120, "nope": 1})
    eq(cfg["hold_s"], 300, "old value kept")
    eq(cfg["heartbeat_s"], 120, "good value applied")
    eq(len(errors), 5)
    text = " ".join(errors)
    for name in ("hold_s", "sensor", "mqtt_tls", "debounce_ms", "nope"):
        ok(name in text, name)


def test_remote_cannot_touch_credentials():
    base, _ = config.validate({"site": "hq", "mqtt_host": "broker.example"})
    cfg, errors = config.validate({"mqtt_host": "evil.example", "hold_s": 600}, base, remote=True)
    eq(cfg["mqtt_host"], "broker.example")
    eq(cfg["hold_s"], 600)
    eq(errors, ["mqtt_host: cannot be set over MQTT"])


def test_removed_option_hints():
    _cfg, errors = config.validate({"hold_time": 300})
    ok("hold_s" in errors[0], errors[0])


def test_not_an_object():
    cfg, errors = config.validate([1, 2])
    eq(cfg, config.DEFAULTS)
    eq(len(errors), 1)


def test_summary_fits_status():
    errors = ["option_{}: must be an integer".format(i) for i in range(30)]
    text = config.summarise(errors)
    eq(len(text), 200)
    ok(text.startswith("config refused: "))
