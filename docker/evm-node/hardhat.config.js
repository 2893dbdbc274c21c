// The chain `hardhat node` serves in docker/compose.yaml: chain id 31337 (pchr's default EIP-712 domain),
// automine (one block per transaction). A reverting transaction is mined with status 0 and its hash returned, as on
// Besu or geth, and pchr reads the status of every receipt. The chain lives in memory: it is gone when the
// container stops.
module.exports = {
  networks: {
    hardhat: {
      chainId: 31337,
      mining: { auto: true },
      blockGasLimit: 30000000,
      throwOnTransactionFailures: false,
      throwOnCallFailures: true,
    },
  },
};
