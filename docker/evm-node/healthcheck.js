// Healthy when the node answers eth_chainId with pchr's chain id (31337) on its JSON-RPC port.
const request = {
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_chainId", params: [] }),
  signal: AbortSignal.timeout(4000),
};
fetch(`http://127.0.0.1:${process.env.PORT || 8545}`, request)
  .then((response) => response.json())
  .then((body) => process.exit(body.result === "0x7a69" ? 0 : 1))
  .catch(() => process.exit(1));
