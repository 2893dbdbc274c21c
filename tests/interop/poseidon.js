// circomlibjs as the outside reference for pchr's Poseidon and grant state tree (tests/zk/test_poseidon_circomlibjs.py).
//
// stdin:  {"hashes": [["1", "2"], ...], "arity": 4, "depth": 10, "trees": [["leaf0", "leaf1", ...], ...],
//          "constants": true}
// stdout: {"version": "<circomlibjs version>",
//          "hashes": ["<buildPoseidon()(inputs)>", ...],
//          "zeros": ["<empty subtree root at level 0..depth>", ...],
//          "roots": ["<root of each tree: its leaves from index 0, the rest empty>", ...],
//          "constants": [{"C": [...], "M": [[...], ...]} for t = 2..17]   (only when asked)}
// Every number is a decimal string, so that no value passes through a JavaScript double.
import { readFileSync } from "node:fs";
import { buildPoseidon } from "circomlibjs";

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const request = JSON.parse(Buffer.concat(chunks).toString("utf8"));

const poseidon = await buildPoseidon();
const F = poseidon.F;
const str = (element) => F.toString(element, 10);

const depth = request.depth ?? 0;
const arity = request.arity ?? 2;
// An independent, naive tree: hash each level `arity` nodes at a time, padding the last group of a level with that
// level's empty subtree.
const zeros = [F.zero];
for (let level = 0; level < depth; level++) zeros.push(poseidon(Array(arity).fill(zeros[level])));

const root = (leaves) => {
  let layer = leaves.map((x) => F.e(BigInt(x)));
  for (let level = 0; level < depth; level++) {
    const next = [];
    for (let i = 0; i < layer.length; i += arity) {
      const children = [];
      for (let k = 0; k < arity; k++) children.push(i + k < layer.length ? layer[i + k] : zeros[level]);
      next.push(poseidon(children));
    }
    layer = next.length ? next : [zeros[level + 1]];
  }
  return layer[0];
};

// The package exports only its entry point, so its files are read from beside it.
const packageFile = (name) => new URL(name, import.meta.resolve("circomlibjs"));
const version = JSON.parse(readFileSync(packageFile("package.json"), "utf8")).version;
const constants = () => {
  // The unoptimized round constants and MDS matrices, as circomlib's poseidon.circom and the paper state them.
  const { C, M } = JSON.parse(readFileSync(packageFile("src/poseidon_constants.json"), "utf8"));
  const dec = (x) => BigInt(x).toString(10);
  return C.map((c, i) => ({ C: c.map(dec), M: M[i].map((row) => row.map(dec)) }));
};

const answer = {
  version,
  hashes: (request.hashes ?? []).map((inputs) => str(poseidon(inputs.map((x) => BigInt(x))))),
  zeros: zeros.map(str),
  roots: (request.trees ?? []).map((leaves) => str(root(leaves))),
  ...(request.constants ? { constants: constants() } : {}),
};
process.stdout.write(JSON.stringify(answer) + "\n");
