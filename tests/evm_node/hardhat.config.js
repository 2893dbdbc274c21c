// The Hardhat network `hardhat node` serves for pchr's EVM ledger integration tests and benchmark.
// Automine: every transaction is mined at once in its own block, as eth-tester does. A reverting transaction is
// mined with status 0 and its hash returned, as on Besu or geth (Hardhat's default refuses it at sending).
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
