"""Device configuration: one defaults table that is also the schema and the documentation.

Sources, later wins: ``DEFAULTS`` < ``/config.json`` (site settings, flashed by the
installer) < ``/config.local.json`` (secrets, never committed) < the retained
``.../config`` topic (only the keys marked remote; credentials can never be changed
over MQTT). ``validate`` refuses bad values one by one: the old value stays and the
error names the option, so a typo in a retained config cannot take a sensor offline.
"""

# name: (kind, low, high, remote, default). kind: "str", "int", "bool", "gates" (one int per
# LD2410 gate 0..8, each low..high) or a tuple of choices.
SCHEMA = {
    "site": ("str", 0, 64, False, ""),
    "device": ("str", 0, 64, False, ""),  # empty: hex of machine.unique_id()
    "wifi_ssid": ("str", 0, 32, False, ""),
    "wifi_password": ("str", 0, 64, False, ""),
    "mqtt_host": ("str", 0, 128, False, ""),
    "mqtt_port": ("int", 1, 65535, False, 8883),
    "mqtt_user": ("str", 0, 64, False, ""),
    "mqtt_password": ("str", 0, 128, False, ""),
    "mqtt_tls": ("bool", 0, 0, False, True),
    "mqtt_ca_file": ("str", 0, 64, False, "/ca.der"),
    "mqtt_tls_insecure": ("bool", 0, 0, False, False),  # TLS without /ca.der: no cert check
    "mqtt_keepalive_s": ("int", 10, 600, False, 60),
    "ntp_host": ("str", 1, 64, False, "pool.ntp.org"),
    "ntp_resync_s": ("int", 600, 86400, True, 21600),
    "sensor": (("ld2410", "vl53l1x", "pir"), 0, 0, False, "ld2410"),
    "presence": (("none", "ld2410", "pir"), 0, 0, False, "none"),  # companion for vl53l1x
    "hold_s": ("int", 10, 7200, True, 300),
    "debounce_ms": ("int", 0, 60000, True, 1000),
    "heartbeat_s": ("int", 10, 3600, True, 60),
    "sample_ms": ("int", 20, 5000, True, 100),
    "uart_id": ("int", 1, 2, False, 2),
    "uart_tx": ("int", 0, 39, False, 17),
    "uart_rx": ("int", 0, 39, False, 16),
    "ld2410_baud": ("int", 9600, 460800, False, 256000),
    "ld2410_moving_gate": ("int", 2, 8, True, 6),
    "ld2410_still_gate": ("int", 2, 8, True, 6),
    "ld2410_unmanned_s": ("int", 0, 600, True, 5),
    # per-gate energy thresholds (0.75 m per gate), ESPHome's ld2410 defaults: far gates
    # need less energy, or a person sitting still at 4-6 m is lost
    "ld2410_moving_thresholds": ("gates", 0, 100, True, [50, 50, 40, 40, 40, 40, 30, 30, 30]),
    "ld2410_still_thresholds": ("gates", 0, 100, True, [0, 0, 40, 40, 40, 40, 15, 15, 15]),
    "ld2410_engineering": ("bool", 0, 0, True, False),  # installer: log gate energies
    "i2c_sda": ("int", 0, 39, False, 21),
    "i2c_scl": ("int", 0, 39, False, 22),
    "tof_threshold_pct": ("int", 30, 95, True, 80),
    "tof_min_baseline_mm": ("int", 100, 4000, True, 300),
    "tof_calibration_samples": ("int", 5, 100, True, 20),
    "tof_recalibrate_s": ("int", 10, 3600, True, 60),
    "tof_front_center": ("int", 0, 255, True, 167),
    "tof_back_center": ("int", 0, 255, True, 231),
    "tof_roi_width": ("int", 4, 16, True, 8),
    "tof_roi_height": ("int", 4, 16, True, 16),
    "count_reset_hour": ("int", -1, 23, True, -1),  # doorway: count to 0 at this UTC hour
    "pir_pin": ("int", 0, 39, False, 27),
    "buffer_rtc_bytes": ("int", 256, 2000, False, 2000),  # RTC memory is 2048, 48 are state
    "buffer_flash_bytes": ("int", 0, 262144, False, 32768),
    "wdt_s": ("int", 10, 120, False, 30),
    "offline_reboot_s": ("int", 300, 86400, True, 3600),
}

# Options that used to exist: refused with a hint instead of silently ignored.
REMOVED = {
    "hold_time": "renamed to hold_s (seconds)",
    "mqtt_server": "renamed to mqtt_host",
    "ld2410_moving_sensitivity": "replaced by ld2410_moving_thresholds (one value per gate 0..8)",
    "ld2410_still_sensitivity": "replaced by ld2410_still_thresholds (one value per gate 0..8)",
}

GATES = 9
# Options that only mean something with this hardware: refused over MQTT otherwise.
NEEDS = (("ld2410_", "ld2410"), ("tof_", "vl53l1x"), ("count_reset_hour", "vl53l1x"))

DEFAULTS = {}
for _name in SCHEMA:
    _default = SCHEMA[_name][4]
    DEFAULTS[_name] = list(_default) if isinstance(_default, list) else _default


def _check(name: str, value):
    """None if ``value`` is acceptable for ``name``, else why not."""
    kind, lo, hi, _remote, _default = SCHEMA[name]
    if kind == "bool":
        return None if isinstance(value, bool) else "must be true or false"
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            return "must be an integer"
        if not lo <= value <= hi:
            return "must be {}..{}, got {}".format(lo, hi, value)
        return None
    if kind == "gates":
        if not isinstance(value, list) or len(value) != GATES:
            return "must be a list of {} integers (gates 0..8)".format(GATES)
        for v in value:
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                return "each gate must be an integer {}..{}".format(lo, hi)
        return None
    if kind == "str":
        if not isinstance(value, str):
            return "must be a string"
        if not lo <= len(value) <= hi:
            return "length must be {}..{}".format(lo, hi)
        return None
    if value not in kind:
        return "must be one of {}".format("|".join(kind))
    return None


def validate(update: dict, base=None, remote: bool = False):
    """Apply ``update`` over ``base`` (default: DEFAULTS); returns (config, errors).

    Every refused key keeps its previous value; ``errors`` is a list of readable
    strings naming the option. ``remote=True`` accepts only the keys marked remote.
    """
    config = dict(DEFAULTS if base is None else base)
    errors = []
    if not isinstance(update, dict):
        return config, ["config must be a JSON object"]
    for name in sorted(update):
        value = update[name]
        if name in REMOVED:
            errors.append("{}: no longer supported, {}".format(name, REMOVED[name]))
            continue
        if name not in SCHEMA:
            errors.append("{}: unknown option".format(name))
            continue
        if remote and not SCHEMA[name][3]:
            errors.append("{}: cannot be set over MQTT".format(name))
            continue
        why = _check(name, value) if not remote else (_check(name, value)
                                                     or _not_fitted(name, config))
        if why is not None:
            errors.append("{}: {}".format(name, why))
            continue
        config[name] = value
    return config, errors


def _not_fitted(name: str, config: dict):
    """Why ``name`` cannot apply on this device's hardware, or None."""
    for prefix, hardware in NEEDS:
        if name.startswith(prefix) and hardware not in (config.get("sensor"),
                                                        config.get("presence")):
            return "this device has no {}".format(hardware)
    return None


def missing(config: dict) -> list:
    """Options a device cannot start without."""
    out = []
    for name in ("site", "mqtt_host", "wifi_ssid"):
        if not config.get(name):
            out.append(name)
    return out


def summarise(errors: list, limit: int = 200) -> str:
    """Errors as one status-sized line (DeviceStatus.error holds 200 characters)."""
    text = "config refused: " + "; ".join(errors)
    return text if len(text) <= limit else text[:limit - 3] + "..."
