// The Hardhat network `npx hardhat node` serves for pchr's EVM ledger integration test and benchmark.
// Automine: every transaction is mined at once in its own block, as eth-tester does.
module.exports = {
  networks: {
    hardhat: {
      chainId: 31337,
      mining: { auto: true },
      blockGasLimit: 30000000,
    },
  },
};
