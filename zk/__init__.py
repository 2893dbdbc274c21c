"""Zero-knowledge consent attestations (Groth16 on BN254).

Filled by the zk-attestation issue; see ../shared/DESIGN.md section 6.
"""
