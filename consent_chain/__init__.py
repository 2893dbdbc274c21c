"""Consent ledger: patient-signed grants and revocations as hashed entries in a verifiable log.

Filled by the consent-ledger issue; see ../shared/DESIGN.md section 4.
"""
