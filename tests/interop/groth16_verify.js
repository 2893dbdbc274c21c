// snarkjs's Groth16 verifier on many (key, public signals, proof) triples in one node process, with its reasons
// (tests/zk/test_snarkjs_tamper.py). The triples are passed as parsed JSON, exactly as the files would hold them.
//
// stdin:  {"cases": [{"vk": {...}, "public": [...], "proof": {...}}, ...]}
// stdout: {"version": "<snarkjs version>",
//          "results": [{"valid": true|false, "log": ["<what snarkjs logged>", ...]}
//                      | {"valid": false, "threw": "<the exception snarkjs raised>"}, ...]}
import { readFileSync } from "node:fs";
import { groth16 } from "snarkjs";

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const request = JSON.parse(Buffer.concat(chunks).toString("utf8"));

const packageFile = new URL("package.json", import.meta.resolve("snarkjs"));
const version = JSON.parse(readFileSync(packageFile, "utf8")).version;

const results = [];
for (const { vk, public: signals, proof } of request.cases) {
  const log = [];
  const logger = {
    error: (m) => log.push(String(m)),
    warn: (m) => log.push(String(m)),
    info: (m) => log.push(String(m)),
    debug: () => {},
  };
  try {
    results.push({ valid: await groth16.verify(vk, signals, proof, logger), log });
  } catch (e) {
    results.push({ valid: false, threw: String(e) });
  }
}
// snarkjs keeps worker threads alive; exit once the answer is written.
process.stdout.write(JSON.stringify({ version, results }) + "\n", () => process.exit(0));
