# pragma version 0.4.3
# pragma evm-version cancun
"""
@title pchr consent ledger
@license Apache-2.0
@notice The consent ledger of one pchr deployment on an EVM chain: KEY, GRANT, REVOKE and ATTEST entries,
        checked here and published as events from which anyone rebuilds the RFC 9162 log and the grant tree.
@dev
    What it enforces on chain, whoever sends the transaction (consent_chain/rules.py states the same rules for
    every backend, and the refusals below revert with the same reason codes as AppendRefused.REASONS):

    - KEY: the actor's EIP-191 key-binding signature (the text of ehr.identity.binding_message, with the
      EIP-55 checksummed address) recovers to the actor; one binding per actor ("bad-signature", "duplicate").
    - GRANT: the patient's EIP-712 signature over Grant(bytes32 grantId,uint256 commitment,uint256 nonce,
      uint64 issuedAt) in the domain {name "pchr consent ledger", version "1", chainId: this chain,
      verifyingContract: this contract} recovers to the entry's patient (low-s only, EIP-2); the commitment is
      a grant-tree leaf, a non-zero element of the BN254 scalar field (0 < commitment < r); the patient has a
      patient KEY; the grant id is new; issuedAt is within MAX_SKEW of the entry's time; the nonce is the
      patient's next one, so a signature is used once ("bad-commitment", "unregistered", "duplicate", "stale",
      "replay").
    - REVOKE: the same for Revoke(bytes32 grantId,uint256 nonce,uint64 issuedAt), and the grant exists, is
      the signer's own and is not revoked yet ("unknown-grant", "not-your-grant", "already-revoked").
    - ATTEST: recorded as given (an inference receipt; its proof is checked by whoever reads it).

    Who appends: one operator account (the vault's sender key), set at deployment and handed over with
    setOperator. Appending is restricted so that every entry has passed through the vault that enforces access
    with it; but the operator cannot forge a grant, a revocation or a key binding (each is signed by its
    actor and checked here), replay one (nonces), rewrite or reorder past entries (the chain's), or take a
    patient's place. It can refuse to append (censor), and it chooses the entries' time: this contract only
    makes that time never go back, and anyone can compare it with the timestamp of the block it landed in.

    Entries are batched: append() takes any number of entries of any kinds in one transaction (as many as one
    transaction's gas allows: about 400 grants under EIP-7825's 2^24), packed in the calldata in their canonical encoding (consent_chain/entries.py) without
    the time, in log order, and reverts as a whole if any is refused. Each entry emits one event carrying its
    log index, every field of its canonical encoding and its time, so the leaf bytes of the RFC 9162 log are
    rebuilt from the events exactly; GRANT events in order assign the grant tree's leaves, REVOKE events empty
    them.

    Storage is one slot per actor (role, next nonce) and one per grant (patient, revoked), so that a grant in
    a batch costs one new slot and one updated slot.
"""

MAX_BATCH: constant(uint256) = 4096  # entries a call (a loop bound); a transaction's gas limit binds long before
MAX_PROOF: constant(uint256) = 2047  # bytes of an ATTEST proof (a Groth16 proof on BN254 is 256)
MAX_SKEW: constant(uint256) = 600  # seconds, as consent_chain.rules.MAX_SKEW
BN254_R: constant(uint256) = 21888242871839275222246405745257275088548364400416034343698204186575808495617  # the grant tree's field
HALF_N: constant(uint256) = 57896044618658097711785492504343953926418782139537452191302581570759080747168  # secp256k1 n/2
ENTRIES_AT: constant(uint256) = 36  # the packed entries follow the selector and the ABI-encoded time

KIND_KEY: constant(uint256) = 1
KIND_GRANT: constant(uint256) = 2
KIND_REVOKE: constant(uint256) = 3
KIND_ATTEST: constant(uint256) = 4
ROLE_PATIENT: constant(uint256) = 1
ROLE_CLINICIAN: constant(uint256) = 2
ROLE_AUDITOR: constant(uint256) = 3

SIZE_MASK: constant(uint256) = (1 << 192) - 1
ADDRESS_MASK: constant(uint256) = (1 << 160) - 1
REVOKED: constant(uint256) = 1 << 160
LOW_8: constant(uint256) = (1 << 8) - 1
LOW_16: constant(uint256) = (1 << 16) - 1
LOW_32: constant(uint256) = (1 << 32) - 1
LOW_64: constant(uint256) = (1 << 64) - 1
LOW_128: constant(uint256) = (1 << 128) - 1

NAME: constant(String[19]) = "pchr consent ledger"
VERSION: constant(String[1]) = "1"
DOMAIN_TYPEHASH: constant(bytes32) = keccak256(
    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
NAME_HASH: constant(bytes32) = keccak256(NAME)
VERSION_HASH: constant(bytes32) = keccak256(VERSION)
GRANT_TYPEHASH: constant(bytes32) = keccak256("Grant(bytes32 grantId,uint256 commitment,uint256 nonce,uint64 issuedAt)")
REVOKE_TYPEHASH: constant(bytes32) = keccak256("Revoke(bytes32 grantId,uint256 nonce,uint64 issuedAt)")


event Key:
    index: uint256
    actor: indexed(address)
    role: uint8
    x25519: bytes32
    r: bytes32
    s: bytes32
    v: uint8
    time: uint64


event Grant:
    index: uint256
    grantId: indexed(bytes32)
    patient: indexed(address)
    commitment: uint256
    nonce: uint256
    issuedAt: uint64
    r: bytes32
    s: bytes32
    v: uint8
    time: uint64


event Revoke:
    index: uint256
    grantId: indexed(bytes32)
    patient: indexed(address)
    nonce: uint256
    issuedAt: uint64
    r: bytes32
    s: bytes32
    v: uint8
    time: uint64


event Attest:
    index: uint256
    requestHash: uint256
    modelId: uint256
    grantRoot: uint256
    proof: Bytes[MAX_PROOF]
    time: uint64


event OperatorChanged:
    previous: indexed(address)
    operator: indexed(address)


operator: public(address)
deployedAt: public(immutable(uint256))  # the block to start reading events from

_head: uint256  # log size (low 192 bits) | time of the last entry << 192
_accounts: HashMap[address, uint256]  # role (low 8 bits) | next nonce << 8; 0 while the actor has no KEY
_grants: HashMap[bytes32, uint256]  # patient | REVOKED; 0 while no grant has the id


@deploy
def __init__(operator: address):
    self.operator = operator
    deployedAt = block.number


# -- appending ---------------------------------------------------------------------------------------------
@external
def append(time: uint64):
    """
    @notice Append a batch of entries, all or none.
    @dev The entries follow the ABI-encoded ``time`` in the calldata, packed: each is its canonical encoding
         from consent_chain/entries.py without the trailing time (KEY 119 bytes, GRANT 190, REVOKE 158,
         ATTEST 99 + proof length), one after the other, nothing after the last. Packed calldata, read in
         place, costs a third less gas than ABI-encoded struct arrays, which Vyper copies to memory.
    @param time The operator's clock; every entry of the batch gets max(time, the last entry's time).
    """
    assert msg.sender == self.operator, "not-operator"
    head: uint256 = self._head
    index: uint256 = head & SIZE_MASK
    t: uint64 = max(time, convert(head >> 192, uint64))
    separator: bytes32 = self._separator()
    end: uint256 = len(msg.data)
    at: uint256 = ENTRIES_AT
    for _: uint256 in range(MAX_BATCH):
        if at == end:
            break
        kind: uint256 = self._word(at + 1) & LOW_8
        if kind == KIND_GRANT:
            assert at + 190 <= end, "bad-batch"
            self._grant(at, separator, index, t)
            at += 190
        elif kind == KIND_REVOKE:
            assert at + 158 <= end, "bad-batch"
            self._revoke(at, separator, index, t)
            at += 158
        elif kind == KIND_KEY:
            assert at + 119 <= end, "bad-batch"
            self._key(at, index, t)
            at += 119
        elif kind == KIND_ATTEST:
            assert at + 99 <= end, "bad-batch"
            at = self._attest(at, end, index, t)
        else:
            raise "bad-batch"
        index += 1
    assert at == end, "bad-batch"
    self._head = index | (convert(t, uint256) << 192)


@internal
@view
def _word(end: uint256) -> uint256:
    """The 32 calldata bytes that end at ``end``, as a number (a shorter field is its low bytes)."""
    return convert(slice(msg.data, end - 32, 32), uint256)


@internal
@view
def _bytes32(end: uint256) -> bytes32:
    return convert(slice(msg.data, end - 32, 32), bytes32)


@internal
@view
def _address(end: uint256) -> address:
    return convert(convert(self._word(end) & ADDRESS_MASK, uint160), address)


@internal
def _key(at: uint256, index: uint256, t: uint64):
    # actor [1, 21) | role [21, 22) | x25519 [22, 54) | r [54, 86) | s [86, 118) | v [118, 119)
    actor: address = self._address(at + 21)
    role: uint256 = self._word(at + 22) & LOW_8
    x25519: bytes32 = self._bytes32(at + 54)
    r: bytes32 = self._bytes32(at + 86)
    s: bytes32 = self._bytes32(at + 118)
    v: uint256 = self._word(at + 119) & LOW_8
    assert self._recover(self._binding_digest(actor, role, x25519), r, s, v) == actor, "bad-signature"
    assert self._accounts[actor] == 0, "duplicate"
    self._accounts[actor] = role
    log Key(index=index, actor=actor, role=convert(role, uint8), x25519=x25519, r=r, s=s, v=convert(v, uint8), time=t)


@internal
def _grant(at: uint256, separator: bytes32, index: uint256, t: uint64):
    # grantId [1, 33) | patient [33, 53) | commitment [53, 85) | nonce [85, 117) | issuedAt [117, 125)
    # | r [125, 157) | s [157, 189) | v [189, 190)
    grant_id: bytes32 = self._bytes32(at + 33)
    patient: address = self._address(at + 53)
    commitment: uint256 = self._word(at + 85)
    nonce: uint256 = self._word(at + 117)
    issued_at: uint256 = self._word(at + 125) & LOW_64
    r: bytes32 = self._bytes32(at + 157)
    s: bytes32 = self._bytes32(at + 189)
    v: uint256 = self._word(at + 190) & LOW_8
    message: bytes32 = keccak256(abi_encode(GRANT_TYPEHASH, grant_id, commitment, nonce, issued_at))
    assert self._recover_canonical(self._digest(separator, message), r, s, v) == patient, "bad-signature"
    # A leaf the grant tree cannot hold would stop every later sync of it: refused here, as by the rules.
    assert commitment != 0 and commitment < BN254_R, "bad-commitment"
    account: uint256 = self._accounts[patient]
    assert account & LOW_8 == ROLE_PATIENT, "unregistered"
    assert self._grants[grant_id] == 0, "duplicate"
    self._fresh(issued_at, t)
    assert account >> 8 == nonce, "replay"
    self._accounts[patient] = account + 256
    self._grants[grant_id] = convert(patient, uint256)
    log Grant(
        index=index,
        grantId=grant_id,
        patient=patient,
        commitment=commitment,
        nonce=nonce,
        issuedAt=convert(issued_at, uint64),
        r=r,
        s=s,
        v=convert(v, uint8),
        time=t,
    )


@internal
def _revoke(at: uint256, separator: bytes32, index: uint256, t: uint64):
    # grantId [1, 33) | patient [33, 53) | nonce [53, 85) | issuedAt [85, 93) | r [93, 125) | s [125, 157)
    # | v [157, 158)
    grant_id: bytes32 = self._bytes32(at + 33)
    patient: address = self._address(at + 53)
    nonce: uint256 = self._word(at + 85)
    issued_at: uint256 = self._word(at + 93) & LOW_64
    r: bytes32 = self._bytes32(at + 125)
    s: bytes32 = self._bytes32(at + 157)
    v: uint256 = self._word(at + 158) & LOW_8
    message: bytes32 = keccak256(abi_encode(REVOKE_TYPEHASH, grant_id, nonce, issued_at))
    assert self._recover_canonical(self._digest(separator, message), r, s, v) == patient, "bad-signature"
    record: uint256 = self._grants[grant_id]
    assert record != 0, "unknown-grant"
    assert record & ADDRESS_MASK == convert(patient, uint256), "not-your-grant"
    assert record & REVOKED == 0, "already-revoked"
    self._fresh(issued_at, t)
    account: uint256 = self._accounts[patient]
    assert account >> 8 == nonce, "replay"
    self._accounts[patient] = account + 256
    self._grants[grant_id] = record | REVOKED
    log Revoke(
        index=index,
        grantId=grant_id,
        patient=patient,
        nonce=nonce,
        issuedAt=convert(issued_at, uint64),
        r=r,
        s=s,
        v=convert(v, uint8),
        time=t,
    )


@internal
def _attest(at: uint256, end: uint256, index: uint256, t: uint64) -> uint256:
    # requestHash [1, 33) | modelId [33, 65) | grantRoot [65, 97) | proof length [97, 99) | proof
    length: uint256 = self._word(at + 99) & LOW_16
    assert length <= MAX_PROOF and at + 99 + length <= end, "bad-batch"
    log Attest(
        index=index,
        requestHash=self._word(at + 33),
        modelId=self._word(at + 65),
        grantRoot=self._word(at + 97),
        proof=self._calldata(at + 99, length),
        time=t,
    )
    return at + 99 + length


@internal
@view
def _calldata(start: uint256, length: uint256) -> Bytes[MAX_PROOF]:
    """calldata[start:start + length], read in power-of-two pieces (a msg.data slice has a constant length)."""
    at: uint256 = start
    p1024: Bytes[1024] = b""
    p512: Bytes[512] = b""
    p256: Bytes[256] = b""
    p128: Bytes[128] = b""
    p64: Bytes[64] = b""
    p32: Bytes[32] = b""
    p16: Bytes[16] = b""
    p8: Bytes[8] = b""
    p4: Bytes[4] = b""
    p2: Bytes[2] = b""
    p1: Bytes[1] = b""
    if length & 1024 != 0:
        p1024 = slice(msg.data, at, 1024)
        at += 1024
    if length & 512 != 0:
        p512 = slice(msg.data, at, 512)
        at += 512
    if length & 256 != 0:
        p256 = slice(msg.data, at, 256)
        at += 256
    if length & 128 != 0:
        p128 = slice(msg.data, at, 128)
        at += 128
    if length & 64 != 0:
        p64 = slice(msg.data, at, 64)
        at += 64
    if length & 32 != 0:
        p32 = slice(msg.data, at, 32)
        at += 32
    if length & 16 != 0:
        p16 = slice(msg.data, at, 16)
        at += 16
    if length & 8 != 0:
        p8 = slice(msg.data, at, 8)
        at += 8
    if length & 4 != 0:
        p4 = slice(msg.data, at, 4)
        at += 4
    if length & 2 != 0:
        p2 = slice(msg.data, at, 2)
        at += 2
    if length & 1 != 0:
        p1 = slice(msg.data, at, 1)
    return concat(p1024, p512, p256, p128, p64, p32, p16, p8, p4, p2, p1)


@internal
@pure
def _fresh(issued_at: uint256, t: uint64):
    now: uint256 = convert(t, uint256)
    assert issued_at + MAX_SKEW >= now and issued_at <= now + MAX_SKEW, "stale"


# -- signatures --------------------------------------------------------------------------------------------
@internal
@view
def _separator() -> bytes32:
    # Computed, not cached, so that it is right on a fork of the chain (another chain id) too.
    return keccak256(abi_encode(DOMAIN_TYPEHASH, NAME_HASH, VERSION_HASH, chain.id, self))


@internal
@pure
def _digest(separator: bytes32, struct_hash: bytes32) -> bytes32:
    return keccak256(concat(b"\x19\x01", separator, struct_hash))


@internal
@pure
def _recover(digest: bytes32, r: bytes32, s: bytes32, v: uint256) -> address:
    """The signer, as ecrecover finds it; v may be 0/1 or 27/28. Never the zero address."""
    w: uint256 = v
    if w < 27:
        w += 27
    signer: address = ecrecover(digest, w, r, s)
    assert signer != empty(address), "bad-signature"
    return signer


@internal
@pure
def _recover_canonical(digest: bytes32, r: bytes32, s: bytes32, v: uint256) -> address:
    """As _recover, for EIP-712 signatures, which must have a low s (EIP-2), so each has one encoding."""
    assert convert(s, uint256) <= HALF_N, "bad-signature"
    return self._recover(digest, r, s, v)


@internal
@pure
def _hex(x: uint256, digits: uint256) -> uint256:
    """The lowercase hex ASCII of the low ``digits`` nibbles of ``x``, one character a byte, right-aligned."""
    out: uint256 = 0
    for j: uint256 in range(digits, bound=32):
        d: uint256 = (x >> (4 * j)) & 15
        out |= (d + 48 + 39 * convert(d > 9, uint256)) << (8 * j)
    return out


@internal
@pure
def _checksum(ascii: uint256, hash_nibbles: uint256, digits: uint256) -> uint256:
    """EIP-55: upper-case each letter whose nibble of the address's hash is 8 or more."""
    out: uint256 = ascii
    for j: uint256 in range(digits, bound=32):
        if (ascii >> (8 * j)) & 255 > 96 and (hash_nibbles >> (4 * j)) & 15 > 7:
            out -= 32 << (8 * j)
    return out


@internal
@pure
def _binding_digest(actor: address, role: uint256, x25519: bytes32) -> bytes32:
    """EIP-191 personal_sign digest of ehr.identity.binding_message(actor, role, x25519)."""
    a: uint256 = convert(actor, uint256)
    high: uint256 = self._hex(a >> 32, 32)  # the address's first 32 hex digits
    low: uint256 = self._hex(a & LOW_32, 8)  # and its last 8
    h: uint256 = convert(keccak256(concat(convert(high, bytes32), slice(convert(low, bytes32), 24, 8))), uint256)
    high = self._checksum(high, h >> 128, 32)
    low = self._checksum(low, (h >> 96) & LOW_32, 8)
    x: uint256 = convert(x25519, uint256)
    name: Bytes[9] = b""
    prefix: Bytes[29] = b"\x19Ethereum Signed Message:\n159"  # the message's length in decimal
    if role == ROLE_PATIENT:
        name = b"patient"
    elif role == ROLE_CLINICIAN:
        name = b"clinician"
        prefix = b"\x19Ethereum Signed Message:\n161"
    elif role == ROLE_AUDITOR:
        name = b"auditor"
    else:
        raise "bad-entry"
    return keccak256(
        concat(
            prefix,
            b"pchr key binding v1\naddress: 0x",
            convert(high, bytes32),
            slice(convert(low, bytes32), 24, 8),
            b"\nrole: ",
            name,
            b"\nx25519: ",
            convert(self._hex(x >> 128, 32), bytes32),
            convert(self._hex(x & LOW_128, 32), bytes32),
            b"\n",
        )
    )


# -- reading ---------------------------------------------------------------------------------------------------
@external
@view
def size() -> uint256:
    """The number of entries in the log."""
    return self._head & SIZE_MASK


@external
@view
def lastTime() -> uint64:
    """The time of the last entry (0 before any)."""
    return convert(self._head >> 192, uint64)


@external
@view
def roleOf(actor: address) -> uint8:
    """The actor's role byte from its KEY entry (1 patient, 2 clinician, 3 auditor), 0 if it has none."""
    return convert(self._accounts[actor] & 255, uint8)


@external
@view
def nextNonce(patient: address) -> uint256:
    return self._accounts[patient] >> 8


@external
@view
def grantOf(grant_id: bytes32) -> (address, bool):
    """The grant's patient and whether it is revoked; the zero address if there is no such grant."""
    record: uint256 = self._grants[grant_id]
    return convert(convert(record & ADDRESS_MASK, uint160), address), record & REVOKED != 0


@external
@view
def eip712Domain() -> (bytes1, String[19], String[1], uint256, address, bytes32, DynArray[uint256, 1]):
    """EIP-5267: the EIP-712 domain that GRANT and REVOKE signatures are checked in."""
    return (0x0f, NAME, VERSION, chain.id, self, empty(bytes32), [])


@external
@view
def domainSeparator() -> bytes32:
    return self._separator()


# -- the operator ------------------------------------------------------------------------------------------
@external
def setOperator(operator: address):
    """Hand the right to append over to another account."""
    assert msg.sender == self.operator, "not-operator"
    log OperatorChanged(previous=self.operator, operator=operator)
    self.operator = operator
