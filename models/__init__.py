"""Risk models evaluated over CKKS-encrypted FHIR features.

Filled by the encrypted-scoring issue; see ../shared/DESIGN.md section 5.
"""
