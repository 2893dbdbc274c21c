// snarkjs's Groth16 prover, timed proof by proof in one node process: the benchmark's side-by-side row
// (bench/groth16.py proves the same circuit, key and witness with pchr's prover).
//
// stdin:  {"zkey": "<path of a .zkey>", "wtns": "<path of a .wtns>", "runs": 5}
// stdout: {"version": "<snarkjs version>", "wall": [s, ...], "cpu": [s, ...], "proof": {...}, "public": [...]}
// Each run is one groth16.prove call on the files' bytes already in memory, after one untimed warm-up call (which
// builds the curve and starts its worker threads). "cpu" is the process's user + system time in the call, worker
// threads included. The last run's proof and public signals are returned so that the caller can check them.
import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { groth16 } from "snarkjs";

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const request = JSON.parse(Buffer.concat(chunks).toString("utf8"));

const packageFile = new URL("package.json", import.meta.resolve("snarkjs"));
const version = JSON.parse(readFileSync(packageFile, "utf8")).version;

const zkey = new Uint8Array(readFileSync(request.zkey));
const wtns = new Uint8Array(readFileSync(request.wtns));
const prove = () => groth16.prove({ type: "mem", data: zkey }, { type: "mem", data: wtns });

await prove();
const wall = [];
const cpu = [];
let last;
for (let i = 0; i < request.runs; i++) {
  const cpuBefore = process.cpuUsage();
  const before = performance.now();
  last = await prove();
  wall.push((performance.now() - before) / 1000);
  const used = process.cpuUsage(cpuBefore);
  cpu.push((used.user + used.system) / 1e6);
}
// snarkjs keeps the curve's worker threads alive; exit once the answer is written.
const answer = { version, wall, cpu, proof: last.proof, public: last.publicSignals };
process.stdout.write(JSON.stringify(answer) + "\n", () => process.exit(0));
