"""SoftPlace sensor entry point on the ESP32 (MicroPython + mqtt_as).

Wiring of real hardware to the pure core in ``softplace_fw``: config files, boot
counter, watchdog, NTP, TLS MQTT with a last will, the sense loop and the outbox loop.
mqtt_as reconnects WiFi and broker by itself with bounded waits, so nothing here
blocks the loop that feeds the watchdog.
"""

import asyncio
import json
import time

import machine
import network
import ntptime
from mqtt_as import MQTTClient
from mqtt_as import config as mqtt_config
from softplace_fw import config as configuration
from softplace_fw import payload
from softplace_fw.app import Device
from softplace_fw.buffer import HEADER_BYTES, FlashSpool, OfflineBuffer, Ring
from softplace_fw.clock import Monotonic, WallClock
from softplace_fw.drivers.ld2410 import LD2410Sensor
from softplace_fw.drivers.pir import PIRSensor
from softplace_fw.drivers.vl53l1x import VL53L1X, DoorwayCounter, WithPresence
from softplace_fw.health import Health
from softplace_fw.rtcstate import RtcSlots

BOOT_FILE = "/boot_count"
SPOOL_FILE = "/spool.jsonl"
SENSE_TIMEOUT_MS = 5000
IDLE_MS = 200
GUARD_BACKOFF_S = 1


def load_config():
    cfg = dict(configuration.DEFAULTS)
    errors = []
    for path in ("/config.json", "/config.local.json"):
        try:
            with open(path) as f:
                cfg, errs = configuration.validate(json.load(f), cfg)
            errors.extend(errs)
        except OSError:
            pass
        except ValueError as err:
            errors.append("{}: {}".format(path, err))
    return cfg, errors


def next_boot() -> int:
    try:
        with open(BOOT_FILE) as f:
            boot = int(f.read()) + 1
    except (OSError, ValueError):
        boot = 0
    with open(BOOT_FILE, "w") as f:
        f.write(str(boot))
    return boot


def device_id(cfg) -> str:
    if cfg["device"]:
        return cfg["device"]
    return "esp32-" + "".join("{:02x}".format(b) for b in machine.unique_id())


def presence_sensor(kind, cfg):
    if kind == "pir":
        return PIRSensor(machine.Pin(cfg["pir_pin"], machine.Pin.IN))
    uart = machine.UART(cfg["uart_id"], baudrate=cfg["ld2410_baud"], tx=cfg["uart_tx"],
                        rx=cfg["uart_rx"], timeout=0)
    radar = LD2410Sensor(uart, sleep_ms=time.sleep_ms)
    radar.configure(cfg)
    return radar


def make_sensor(cfg):
    if cfg["sensor"] != "vl53l1x":
        return presence_sensor(cfg["sensor"], cfg)
    i2c = machine.I2C(0, sda=machine.Pin(cfg["i2c_sda"]), scl=machine.Pin(cfg["i2c_scl"]),
                      freq=400000)
    counter = DoorwayCounter(VL53L1X(i2c), cfg, time.sleep_ms)
    if cfg["presence"] == "none":
        return counter
    return WithPresence(counter, presence_sensor(cfg["presence"], cfg))


def sync_clock(cfg, wall, now_ms: int) -> None:
    ntptime.host = cfg["ntp_host"]
    wall.tried(now_ms)
    try:
        ntptime.settime()
        wall.mark_synced()
    except (OSError, OverflowError):
        pass  # readings say synced=false until a later attempt works


def read_ca(path: str):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def rssi_reader(wlan):
    def rssi():
        try:
            return wlan.status("rssi") if wlan.isconnected() else None
        except OSError:
            return None

    return rssi


class Runner:
    def __init__(self) -> None:
        self.cfg, self.boot_errors = load_config()
        self.reset_cause = payload.reset_cause_name(machine.reset_cause())
        self.wdt = machine.WDT(timeout=self.cfg["wdt_s"] * 1000)
        self.mono = Monotonic(time.ticks_ms, time.ticks_diff)
        self.wall = WallClock(time.time, time.gmtime(0)[0], self.cfg["ntp_resync_s"])
        self.rtc = RtcSlots(machine.RTC())  # sensing state first, the buffer's bytes after it
        rtc_state = self.rtc.state()
        self.wall.restore(rtc_state)
        buffer = OfflineBuffer(Ring(self.cfg["buffer_rtc_bytes"] - HEADER_BYTES),
                               FlashSpool(SPOOL_FILE, self.cfg["buffer_flash_bytes"]))
        buffer.restore(self.rtc.memory())  # readings and drop counters of the last boot
        self.health = Health(SENSE_TIMEOUT_MS, self.cfg["offline_reboot_s"] * 1000)
        self.wlan = network.WLAN(network.STA_IF)
        self.device = Device(self.cfg, device_id(self.cfg), next_boot(), make_sensor(self.cfg),
                             buffer, self.wall, self.health, rssi=rssi_reader(self.wlan))
        self.device.core.restore(rtc_state)  # the doorway count survives a soft reset
        self.sensor_error = self.device.start(self.mono.now())
        self.tls_error = None  # type: str | None
        self.client = MQTTClient(self.mqtt_settings())
        self.connected_once = False

    def mqtt_settings(self) -> dict:
        cfg = self.cfg
        settings = dict(mqtt_config)
        will_topic, will_msg = self.device.will()
        settings.update({
            "client_id": self.device.core.device, "server": cfg["mqtt_host"],
            "port": cfg["mqtt_port"], "user": cfg["mqtt_user"],
            "password": cfg["mqtt_password"], "keepalive": cfg["mqtt_keepalive_s"],
            "ssid": cfg["wifi_ssid"], "wifi_pw": cfg["wifi_password"],
            # A clean session on every connect: mqtt_as 0.8.3 refuses a CONNACK whose
            # session-present flag is set (a persistent session would never reconnect to a
            # broker that kept it), and the gateway's acks make the broker's session
            # unneeded: the spool re-sends its tail, config is retained, and the
            # subscriptions are renewed on every connect (link_loop).
            "will": (will_topic, will_msg, True, 1), "clean": True, "queue_len": 4,
        })
        if cfg["mqtt_tls"]:
            params = {"server_hostname": cfg["mqtt_host"]}
            ca = read_ca(cfg["mqtt_ca_file"])
            if ca is not None:
                params["cadata"] = ca
                params["cert_reqs"] = 2  # ssl.CERT_REQUIRED
            elif cfg["mqtt_tls_insecure"]:
                print("softplace: TLS WITHOUT certificate check (mqtt_tls_insecure is set)")
            else:
                self.tls_error = "no {}: refusing TLS without a certificate check".format(
                    cfg["mqtt_ca_file"])
                print("softplace: " + self.tls_error + " (set mqtt_tls_insecure to allow)")
            settings["ssl"] = True
            settings["ssl_params"] = params
        return settings

    def save_ring(self) -> None:
        self.rtc.memory(self.device.buffer.snapshot())

    def save_state(self) -> None:
        state = self.device.core.snapshot()
        state.update(self.wall.snapshot())
        self.rtc.save_state(state)  # writes only on change

    async def poll_loop(self) -> None:
        """Doorway counters range one zone at a time and want polling every few ms."""
        sensor = self.device.sensor
        while True:
            sensor.poll(self.mono.now())
            await asyncio.sleep_ms(sensor.poll_ms)

    async def clock_loop(self) -> None:
        while True:
            now = self.mono.now()
            self.wall.resync_s = self.device.cfg["ntp_resync_s"]  # remote, applied live
            if self.wlan.isconnected() and self.wall.needs_sync(now):
                sync_clock(self.cfg, self.wall, now)
            await asyncio.sleep(60)

    async def installer_loop(self) -> None:
        """With ``ld2410_engineering`` on, the radar's gate energies go to the REPL every 2 s."""
        while True:
            await asyncio.sleep(2)
            if not self.device.cfg["ld2410_engineering"]:
                continue
            radar = getattr(self.device.sensor, "presence", self.device.sensor)
            energies = radar.energies() if hasattr(radar, "energies") else None
            if energies is not None:
                print("ld2410 gates 0-8 moving", energies["moving"], "still", energies["still"])

    def restamp(self, data: bytes) -> bytes:
        return self.device.core.restamp(data, self.mono.now(), self.wall.unix(), self.wall.synced)

    async def publish_status(self, status: dict) -> None:
        await self.client.publish(self.device.status_topic, payload.encode(status), True, 1)

    async def sense_loop(self) -> None:
        while True:
            now = self.mono.now()
            if self.device.sense(now):
                self.save_ring()
            self.save_state()
            if self.health.ok(now):
                self.wdt.feed()
            await asyncio.sleep_ms(self.device.cfg["sample_ms"])

    async def outbox_loop(self) -> None:
        # mqtt_as's QoS 1 publish waits (across reconnects) until the broker has it; the
        # sensing loop goes on meanwhile, so a long outage never starves the watchdog.
        while True:
            try:
                item = self.device.outbox(self.mono.now()) if self.client.isconnected() else None
                if item is None:
                    await asyncio.sleep_ms(IDLE_MS)
                    continue
                await self.client.publish(item[0], self.restamp(item[1]), False, 1)
                self.device.sent(self.mono.now(), item[1])
            except Exception as err:  # noqa: BLE001 - the outbox must outlive any one reading
                print("softplace: outbox error", repr(err))
                await asyncio.sleep(GUARD_BACKOFF_S)

    async def link_loop(self) -> None:
        while True:
            await self.client.up.wait()
            self.client.up.clear()
            self.health.connection(self.mono.now(), True)
            self.device.reconnected()
            if self.wall.needs_sync(self.mono.now()):
                sync_clock(self.cfg, self.wall, self.mono.now())
            await self.client.subscribe(self.device.config_topic, 1)
            await self.client.subscribe(self.device.ack_topic, 1)
            if not self.connected_once:
                self.connected_once = True
                error = "; ".join(self.boot_errors) or self.sensor_error
                status = self.device.online_status(self.reset_cause)
                if error:
                    status["error"] = error[:200]
                await self.publish_status(status)
            else:
                await self.publish_status(self.device.online_status(None))
            drops = self.device.drops_status()
            if drops is not None:
                self.save_ring()  # the announced count survives a reset too
                await self.publish_status(drops)

    async def down_loop(self) -> None:
        while True:
            await self.client.down.wait()
            self.client.down.clear()
            self.health.connection(self.mono.now(), False)

    async def message_loop(self) -> None:
        ack_topic = self.device.ack_topic.encode()
        async for topic, msg, _retained in self.client.queue:
            try:
                if topic == ack_topic:
                    if self.device.on_ack(msg, self.mono.now()) > 0:
                        self.save_ring()
                else:
                    await self.publish_status(self.device.on_config(msg))
            except Exception as err:  # noqa: BLE001 - one bad message must not end the loop
                print("softplace: message error", repr(err))

    async def run(self) -> None:
        for coro in (self.sense_loop(), self.outbox_loop(), self.link_loop(),
                     self.down_loop(), self.message_loop(), self.clock_loop(),
                     self.installer_loop()):
            asyncio.create_task(coro)
        if hasattr(self.device.sensor, "poll"):
            asyncio.create_task(self.poll_loop())
        if self.tls_error is not None:
            await asyncio.Event().wait()  # keep sensing and spooling; never connect insecurely
        while True:
            try:
                await self.client.wifi_connect()
                sync_clock(self.cfg, self.wall, self.mono.now())  # TLS certificates need the date
                await self.client.connect()
                await asyncio.Event().wait()
                return
            except OSError as err:
                print("softplace: first connect failed", repr(err))
                await asyncio.sleep(5)  # the watchdog still runs


def main() -> None:
    missing = configuration.missing(load_config()[0])
    if missing:
        print("softplace: set {} in /config.json or /config.local.json".format(", ".join(missing)))
        return
    try:
        asyncio.run(Runner().run())
    finally:
        asyncio.new_event_loop()


if __name__ == "__main__":  # MicroPython runs main.py as __main__; tests import it
    main()
