"""Ledger backends behind :class:`consent_chain.ledger.LedgerBackend`: SQL now, an EVM chain later."""
