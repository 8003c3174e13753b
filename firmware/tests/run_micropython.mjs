// Runs the firmware's pure-module tests under the real MicroPython (WebAssembly port).
//
//   cd firmware/tests && npm ci && node run_micropython.mjs [test_module ...]
//   SOFTPLACE_FW_LIB=<dir> node run_micropython.mjs --probe mem_probe
//
// A probe module runs alone in a fresh interpreter, one ``step(n)`` per runPython call
// until a step returns False, then ``verdict()``: this port collects garbage only between
// calls (it cannot scan the wasm stack), so live-heap figures are taken at step starts.
// SOFTPLACE_FW_LIB points at another build of softplace_fw (e.g. mpy-cross output).
//
// Copies firmware/softplace_fw to /lib/softplace_fw and firmware/tests (with traces) to
// /fw/tests in MicroPython's in-memory file system, runs run_all.py there and prints one
// line per test and a closing "N passed, N failed". Exits non-zero when a test fails, a
// module does not import, the summary is missing, or MicroPython itself raises: a bare
// `micropython script.py` exits 0 after an ImportError, which would hide a broken module.
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const testsDir = dirname(fileURLToPath(import.meta.url));
const packageDir = join(testsDir, "..", "softplace_fw");

function copyTree(mp, src, dst, accept) {
  mp.FS.mkdirTree(dst);
  for (const name of readdirSync(src)) {
    if (name === "node_modules" || name === "__pycache__" || name.startsWith(".")) continue;
    const from = join(src, name);
    const to = `${dst}/${name}`;
    if (statSync(from).isDirectory()) copyTree(mp, from, to, accept);
    else if (accept(name)) mp.FS.writeFile(to, readFileSync(from));
  }
}

const probe = process.argv[2] === "--probe" ? process.argv[3] : null;
const lines = [];
const mp = await loadMicroPython({
  heapsize: 8 * 1024 * 1024,
  stdout: (line) => { lines.push(line); console.log(line); },
  stderr: (line) => console.error(line),
});

const library = process.env.SOFTPLACE_FW_LIB || packageDir;
copyTree(mp, library, "/lib/softplace_fw", (n) => n.endsWith(".py") || n.endsWith(".mpy"));
copyTree(mp, testsDir, "/fw/tests", (n) => n.endsWith(".py") || n.endsWith(".hex") || n.endsWith(".csv"));
mp.FS.mkdirTree("/tmp");

const only = process.argv.slice(2);
const select = only.length ? `run_all.MODULES = ${JSON.stringify(only)}\n` : "";
const setup = "import sys\nsys.path.insert(0, '/fw/tests')\nimport os\nos.chdir('/fw/tests')\n";
let failed = 0;
try {
  if (probe) {
    mp.runPython(setup + `import ${probe}\n`);
    for (let step = 0; ; step++) {
      mp.runPython(`_more = ${probe}.step(${step})\n`);
      if (!mp.globals.get("_more")) break;
    }
    mp.runPython(`_failed = ${probe}.verdict()\n`);
  } else {
    mp.runPython(setup + "import run_all\n" + select + "_failed = run_all.main()\n");
  }
  failed = mp.globals.get("_failed");
} catch (err) {
  console.error(`MicroPython raised: ${err}`);
  process.exit(2);
}

const summary = lines.map((l) => /^(\d+) passed, (\d+) failed$/.exec(l)).filter(Boolean).pop();
if (!summary) {
  console.error("no 'N passed, N failed' line: the run did not complete");
  process.exit(2);
}
const [, passedCount, failedCount] = summary.map(Number);
if (failed !== 0 || failedCount !== 0 || passedCount === 0) process.exit(1);
