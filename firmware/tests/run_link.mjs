// The real firmware main.py + the vendored real mqtt_as, under the real MicroPython
// (WebAssembly port), against a real broker over TCP; only machine, network, ntptime
// and socket are stand-ins (link/), socket being Node's net underneath.
//
//   node run_link.mjs '<config json>' <seconds>
//
// Prints "LINK {...}" once a second (watchdog feeds, connection, spool) and a final
// "LINK_END {...}". The harness ends the run; a machine.reset() would end it early.
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";
import net from "node:net";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const testsDir = dirname(fileURLToPath(import.meta.url));
const firmwareDir = join(testsDir, "..");
const [configJson, seconds] = process.argv.slice(2);

function copyTree(mp, src, dst) {
  mp.FS.mkdirTree(dst);
  for (const name of readdirSync(src)) {
    if (name === "__pycache__" || name.startsWith(".")) continue;
    const from = join(src, name);
    if (statSync(from).isDirectory()) copyTree(mp, from, `${dst}/${name}`);
    else if (name.endsWith(".py")) mp.FS.writeFile(`${dst}/${name}`, readFileSync(from));
  }
}

const sockets = new Map();
let nextId = 1;
globalThis.softplace_net = {
  open(host, port) {
    const id = nextId++;
    const entry = { state: "connecting", chunks: [], sock: net.connect({ host, port }) };
    entry.sock.on("connect", () => { entry.state = "open"; });
    entry.sock.on("data", (d) => entry.chunks.push(d));
    entry.sock.on("error", (e) => { entry.state = e.code === "ECONNREFUSED" ? "refused" : "error"; });
    entry.sock.on("close", () => { if (entry.state === "open" || entry.state === "connecting") entry.state = "closed"; });
    sockets.set(id, entry);
    return id;
  },
  state(id) { return sockets.get(id)?.state ?? "closed"; },
  read(id, n) {
    const entry = sockets.get(id);
    if (!entry || !entry.chunks.length) return "";
    const all = Buffer.concat(entry.chunks);
    const rest = all.subarray(n);
    entry.chunks = rest.length ? [rest] : [];
    return all.subarray(0, n).toString("hex");
  },
  write(id, hex) {
    const entry = sockets.get(id);
    const data = Buffer.from(hex, "hex");
    entry.sock.write(data);
    return data.length;
  },
  close(id) { const entry = sockets.get(id); if (entry) { entry.sock.destroy(); sockets.delete(id); } },
};

const mp = await loadMicroPython({
  heapsize: 8 * 1024 * 1024,
  stdout: (line) => console.log(line),
  stderr: (line) => console.error(line),
});
copyTree(mp, join(firmwareDir, "softplace_fw"), "/lib/softplace_fw");
copyTree(mp, join(firmwareDir, "lib", "mqtt_as"), "/lib/mqtt_as");
copyTree(mp, join(testsDir, "link"), "/lib");
mp.FS.writeFile("/main.py", readFileSync(join(firmwareDir, "main.py")));
mp.FS.writeFile("/config.json", configJson);
mp.FS.writeFile("/fw_link_seconds", String(seconds));

try {
  await mp.runPythonAsync(`
import sys
sys.path.insert(0, "/")
import asyncio, json, time
import machine
import main as firmware

import mqtt_as
mqtt_as.MQTTClient.DEBUG = True

# This port runs sleep_ms(0) continuations without a turn of Node's event loop, so a
# socket polled in a sleep_ms(0) loop never sees its data: give each such yield 1 ms.
_sleep_ms = asyncio.sleep_ms


def _yielding_sleep_ms(ms):
    return _sleep_ms(ms if ms > 0 else 1)


asyncio.sleep_ms = _yielding_sleep_ms
runner = firmware.Runner()
async def _probe():
    import socket as _s
    _k = _s.socket()
    try:
        _k.connect(("127.0.0.1", runner.cfg["mqtt_port"]))
    except OSError as e:
        print("connect raised", e)
    for _ in range(20):
        await asyncio.sleep_ms(50)
    print("state", _k._state(), _k.write(b"0"))
PROBE = ${process.argv.includes("--probe-socket") ? "True" : "False"}
counts = {"sensed": 0, "sent": 0, "acks": 0}
_sense, _sent, _ack = runner.device.sense, runner.device.sent, runner.device.on_ack

def sense(now):
    counts["sensed"] += 1
    return _sense(now)

def sent(now, item=None):
    counts["sent"] += 1
    return _sent(now, item)

def on_ack(data, now):
    counts["acks"] += 1
    return _ack(data, now)

runner.device.sense, runner.device.sent, runner.device.on_ack = sense, sent, on_ack

def state():
    buf = runner.device.buffer
    out = {"t_ms": time.ticks_ms(), "connected": runner.client.isconnected(),
           "max_feed_gap_ms": machine.max_feed_gap_ms(), "feeds": len(machine.feeds),
           "health": runner.health.reason, "pending": buf.pending(),
           "in_flight": buf.in_flight(), "dropped": buf.dropped, "acked": runner.device.acked,
           "seq": runner.device.core.seq, "boot": runner.device.core.boot}
    out.update(counts)
    return out

async def harness():
    if PROBE:
        await _probe()
        try:
            await runner.client.connect()
            print("CONNECTED")
        except Exception as e:
            sys.print_exception(e)
        return
    asyncio.create_task(runner.run())
    for _ in range(int(open("/fw_link_seconds").read())):
        await asyncio.sleep(1)
        print("LINK " + json.dumps(state()))
    print("LINK_END " + json.dumps(state()))

await harness()
`);
} catch (err) {
  console.error(`MicroPython raised: ${err}`);
  process.exit(2);
}
process.exit(0);
