"""Signed notes and checkpoints: the Go reference's known answers, then pchr's checkpoint format and fork checks."""

from __future__ import annotations

import base64
import hashlib

import pytest

from consent_chain.errors import ForkError, NoteError, ProofError
from consent_chain.merkle import EMPTY_ROOT, InMemoryTree
from consent_chain.note import (
    MAX_SIGNATURES,
    Checkpoint,
    Signer,
    Verifier,
    check_consistent,
    open_note,
    sign_checkpoint,
    sign_note,
    verify_checkpoint,
)
from tests.consent_chain.strategies import entries
from tests.vectors import load
from zk.poseidon import BN254_R

GO = load("golang_sumdb_note.json")
TEXT: str = GO["text"]
PETER_SIG: str = GO["peter_sig"]
ENOCH_SIG: str = GO["enoch_sig"]
ORIGIN = "pchr.example/ledger"


def seeded(label: bytes) -> Signer:
    return Signer.generate(ORIGIN, rng=lambda n: hashlib.sha256(label).digest()[:n])


@pytest.fixture(scope="module")
def peter() -> Verifier:
    return Verifier.from_vkey(GO["peter_vkey"])


@pytest.fixture(scope="module")
def enoch() -> Verifier:
    return Verifier.from_vkey(GO["enoch_vkey"])


@pytest.fixture(scope="module")
def log_key() -> Signer:
    return seeded(b"pchr test log key")


def checkpoint_of(tree: InMemoryTree, size: int | None = None, grant_root: int = 7) -> Checkpoint:
    size = tree.size if size is None else size
    return Checkpoint(ORIGIN, size, tree.root(size), grant_root)


# --- Known answers: golang.org/x/mod/sumdb/note -----------------------------------------------------------------


def test_go_signer_key_gives_the_go_verifier_key() -> None:
    signer = Signer.from_skey(GO["peter_skey"])
    assert signer.name == "PeterNeumann"
    assert f"{signer.key_hash:08x}" == GO["peter_key_hash"]
    assert signer.verifier.to_vkey() == GO["peter_vkey"]
    assert signer.to_skey() == GO["peter_skey"]


def test_signing_reproduces_the_go_note_byte_for_byte() -> None:
    # TestSign: Ed25519 is deterministic, so the whole signed note is a known answer.
    assert sign_note(TEXT, Signer.from_skey(GO["peter_skey"])) == GO["signed_note"]


def test_go_verifier_keys_parse_and_print_back(peter: Verifier, enoch: Verifier) -> None:
    assert (peter.name, f"{peter.key_hash:08x}", peter.to_vkey()) == ("PeterNeumann", "c74f20a3", GO["peter_vkey"])
    assert (enoch.name, f"{enoch.key_hash:08x}", enoch.to_vkey()) == ("EnochRoot", "af0cfe78", GO["enoch_vkey"])


def test_a_go_note_opens_with_its_key(peter: Verifier) -> None:
    assert open_note(GO["signed_note"], [peter]) == TEXT
    assert open_note(GO["signed_note"].encode(), [peter]) == TEXT


def test_go_doubly_signed_note(peter: Verifier, enoch: Verifier) -> None:
    # TestOpen: a signature from a key not in the list is ignored; each known one must verify.
    note = TEXT + "\n" + PETER_SIG + ENOCH_SIG
    assert open_note(note, [peter]) == TEXT
    assert open_note(note, [enoch]) == TEXT
    assert open_note(note, [peter, enoch]) == TEXT
    with pytest.raises(NoteError, match=r"^note has no verifiable signatures$"):
        open_note(note, [])


def test_go_invalid_signature_rejects_the_note(peter: Verifier) -> None:
    # TestOpen "Invalid signature": four base64 characters spliced into the signature (at byte 60, as in Go).
    sig = PETER_SIG.encode()
    note = TEXT.encode() + b"\n" + sig[:60] + b"ABCD" + sig[60:]
    with pytest.raises(NoteError, match=r"^invalid signature for key PeterNeumann\+c74f20a3$"):
        open_note(note, [peter])


def test_go_repeated_and_unknown_signatures_are_dropped(peter: Verifier) -> None:
    # TestOpen "Duplicated verified and unverified signatures": an unknown key's bad signature is not checked.
    enoch = ENOCH_SIG.encode()
    enoch_abcd = (enoch[:60] + b"ABCD" + enoch[60:]).decode()
    note = TEXT + "\n" + PETER_SIG + PETER_SIG + ENOCH_SIG + ENOCH_SIG + enoch_abcd
    assert open_note(note, [peter]) == TEXT


def test_go_too_many_signatures(peter: Verifier) -> None:
    note = TEXT + "\n" + PETER_SIG * (MAX_SIGNATURES + 1)
    for known in ([peter], []):
        with pytest.raises(NoteError, match="more than 100 signatures"):
            open_note(note, known)
    assert open_note(TEXT + "\n" + PETER_SIG * MAX_SIGNATURES, [peter]) == TEXT


@pytest.mark.parametrize(
    "note",
    [
        TEXT.encode(),
        (TEXT + "\n").encode(),
        (TEXT + "\n" + PETER_SIG[:-1]).encode(),
        b"\x01" + (TEXT + "\n" + PETER_SIG).encode(),
        b"\xff" + (TEXT + "\n" + PETER_SIG).encode(),
        (TEXT + "\n" + "\u2014 Bad Name " + PETER_SIG.split(" ")[2].rstrip("\n")).encode(),
        (TEXT + "\n" + PETER_SIG + "Unexpected line.\n").encode(),
    ],
    ids=["no signatures", "blank line only", "no final newline", "control byte", "not UTF-8", "bad name", "junk"],
)
def test_go_malformed_notes(peter: Verifier, note: bytes) -> None:
    # TestOpen "Invalid encoded message syntax".
    with pytest.raises(NoteError, match=r"^malformed note"):
        open_note(note, [peter])


def test_go_signature_under_another_name_or_key_id_is_unknown(peter: Verifier) -> None:
    # TestOpen's misnamed signature and wrong key hash: with a list of verifiers, both are just unknown keys.
    for note in (
        TEXT + "\n" + PETER_SIG.replace("PeterNeumann", "CarmenSandiego"),
        TEXT + "\n" + PETER_SIG.replace("x08g", "xxxx"),
    ):
        with pytest.raises(NoteError, match=r"^note has no verifiable signatures$"):
            open_note(note, [peter])


def _manglings(key: str) -> list[str]:
    """TestNewVerifier / TestNewSigner: every proper substring, and every one-byte increment."""
    cut = [key[i:j] for i in range(len(key) + 1) for j in range(i + 1, len(key) + 1) if (i, j) != (0, len(key))]
    bumped = [key[:i] + chr(ord(key[i]) + 1) + key[i + 1 :] for i in range(len(key))]
    return cut + bumped


def test_go_verifier_key_manglings_are_refused() -> None:
    accepted = []
    for vkey in _manglings(GO["peter_vkey"]) + [bad["vkey"] for bad in GO["bad_vkeys"]]:
        try:
            Verifier.from_vkey(vkey)
        except ValueError:
            continue
        accepted.append(vkey)
    assert accepted == []


def test_go_signer_key_manglings_are_refused() -> None:
    accepted = []
    for skey in _manglings(GO["peter_skey"]):
        try:
            Signer.from_skey(skey)
        except ValueError:
            continue
        accepted.append(skey)
    assert accepted == []


# --- Notes: behaviour -----------------------------------------------------------------------------------------


def test_a_note_round_trips_and_is_deterministic(log_key: Signer) -> None:
    note = sign_note("hello\n\nworld\n", log_key)
    assert note == sign_note("hello\n\nworld\n", seeded(b"pchr test log key"))
    assert note.startswith("hello\n\nworld\n\n\u2014 pchr.example/ledger ")
    assert open_note(note, [log_key.verifier]) == "hello\n\nworld\n"


def test_a_signer_never_prints_its_key(log_key: Signer) -> None:
    assert "private_key" not in repr(log_key)
    assert log_key.to_skey().split("+")[4] not in repr(log_key)


def test_a_note_signed_by_another_key_is_refused(log_key: Signer) -> None:
    impostor = seeded(b"someone else, same name")
    with pytest.raises(NoteError, match=r"^note has no verifiable signatures$"):
        open_note(sign_note("size 3\n", impostor), [log_key.verifier])


def test_tampered_text_or_signature_is_refused(log_key: Signer) -> None:
    note = sign_note("size 3\n", log_key)
    with pytest.raises(NoteError, match=r"^invalid signature for key pchr.example/ledger\+"):
        open_note(note.replace("size 3", "size 4"), [log_key.verifier])
    raw = note.split(" ")[-1].rstrip("\n")
    sig = bytearray(base64.b64decode(raw))
    sig[-1] ^= 1
    with pytest.raises(NoteError, match=r"^invalid signature"):
        open_note(note.replace(raw, base64.b64encode(bytes(sig)).decode()), [log_key.verifier])


def test_missing_final_newline_is_refused(log_key: Signer) -> None:
    with pytest.raises(NoteError, match=r"^malformed note: the signatures must end with a newline"):
        open_note(sign_note("size 3\n", log_key)[:-1], [log_key.verifier])
    with pytest.raises(ValueError, match="note text must end with a newline"):
        sign_note("size 3", log_key)


def test_a_note_only_an_unknown_key_signed_is_refused(log_key: Signer, peter: Verifier) -> None:
    with pytest.raises(NoteError, match=r"^note has no verifiable signatures$"):
        open_note(sign_note("size 3\n", log_key), [peter])


def test_control_characters_cannot_be_signed_or_opened(log_key: Signer) -> None:
    with pytest.raises(ValueError, match="control characters"):
        sign_note("size\r3\n", log_key)
    with pytest.raises(NoteError, match=r"^malformed note: control characters"):
        open_note("size\t3\n\n" + sign_note("x\n", log_key).split("\n\n")[1], [log_key.verifier])


def test_one_key_listed_twice_is_one_key_but_two_keys_with_one_id_are_ambiguous(log_key: Signer) -> None:
    note = sign_note("size 3\n", log_key)
    assert open_note(note, [log_key.verifier, log_key.verifier]) == "size 3\n"
    # A 32-bit key ID collision, simulated: another key claiming this name and ID.
    other = seeded(b"colliding key").verifier
    object.__setattr__(other, "key_hash", log_key.key_hash)
    with pytest.raises(NoteError, match=r"^ambiguous key pchr.example/ledger\+"):
        open_note(note, [log_key.verifier, other])


@pytest.mark.parametrize("name", ["", "two words", "a+b", "tab\tname", "no\u00a0break"])
def test_key_names_follow_the_spec(name: str) -> None:
    with pytest.raises(ValueError, match="a key name is non-empty"):
        Signer.generate(name)


def test_verifier_keys_round_trip(log_key: Signer) -> None:
    vkey = log_key.verifier.to_vkey()
    assert vkey.startswith(f"{ORIGIN}+{log_key.key_hash:08x}+A")  # base64 of 0x01 || key starts with "A"
    assert Verifier.from_vkey(vkey) == log_key.verifier
    assert len({Verifier.from_vkey(vkey), log_key.verifier}) == 1
    assert repr(log_key.verifier) == f"Verifier.from_vkey({vkey!r})"
    assert Signer.from_skey(log_key.to_skey()).verifier == log_key.verifier


# --- Checkpoints ----------------------------------------------------------------------------------------------


def test_checkpoint_text_is_the_c2sp_body_plus_one_grant_root_line() -> None:
    cp = Checkpoint(ORIGIN, 3, bytes(range(32)), 0x1234)
    assert cp.to_text() == (
        "pchr.example/ledger\n3\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\ngrant-root " + "0" * 60 + "1234\n"
    )
    assert Checkpoint.from_text(cp.to_text()) == cp


@pytest.mark.parametrize("grant_root", [0, 1, BN254_R - 1])
def test_checkpoint_round_trips_through_a_signed_note(log_key: Signer, grant_root: int) -> None:
    tree = InMemoryTree(entries(b"cp", 21))
    cp = checkpoint_of(tree, grant_root=grant_root)
    assert verify_checkpoint(sign_checkpoint(cp, log_key), log_key.verifier, origin=ORIGIN) == cp
    empty = Checkpoint(ORIGIN, 0, EMPTY_ROOT, grant_root)
    assert verify_checkpoint(sign_checkpoint(empty, log_key), log_key.verifier) == empty


ROOT_B64 = base64.b64encode(hashlib.sha256(b"root").digest()).decode()
GRANT = f"grant-root {12345:064x}"


@pytest.mark.parametrize(
    ("text", "why"),
    [
        (f"{ORIGIN}\n-1\n{ROOT_B64}\n{GRANT}\n", "tree size is not a decimal"),
        (f"{ORIGIN}\n07\n{ROOT_B64}\n{GRANT}\n", "tree size is not a decimal"),
        (f"{ORIGIN}\n+7\n{ROOT_B64}\n{GRANT}\n", "tree size is not a decimal"),
        (f"{ORIGIN}\n7 \n{ROOT_B64}\n{GRANT}\n", "tree size is not a decimal"),
        (f"{ORIGIN}\n\u0667\n{ROOT_B64}\n{GRANT}\n", "tree size is not a decimal"),  # an Arabic-Indic 7
        (f"{ORIGIN}\n{2**64}\n{ROOT_B64}\n{GRANT}\n", "unsigned 64-bit"),
        (f"{ORIGIN}\n7\nnot base64!\n{GRANT}\n", "root hash is not canonical base64"),
        (f"{ORIGIN}\n7\n{ROOT_B64.rstrip('=')}\n{GRANT}\n", "root hash is not canonical base64"),
        (f"{ORIGIN}\n7\n{ROOT_B64[:-2]}9=\n{GRANT}\n", "root hash is not canonical base64"),  # stray low bits
        (f"{ORIGIN}\n7\n{base64.b64encode(bytes(31)).decode()}\n{GRANT}\n", "root hash is 32 bytes, not 31"),
        (f"{ORIGIN}\n7\n{base64.b64encode(bytes(33)).decode()}\n{GRANT}\n", "root hash is 32 bytes, not 33"),
        (f"{ORIGIN}\n7\n{ROOT_B64}\n", "want 4 lines"),
        (f"{ORIGIN}\n7\n{ROOT_B64}\n{GRANT}\nextra\n", "want 4 lines"),
        (f"{ORIGIN}\n7\n{ROOT_B64}\n{GRANT}", "must end with a newline"),
        (f"\n7\n{ROOT_B64}\n{GRANT}\n", "origin is one non-empty line"),
        (f"{ORIGIN}\n7\n{ROOT_B64}\n{GRANT.upper()}\n", "extension line is not"),
        (f"{ORIGIN}\n7\n{ROOT_B64}\n{GRANT[:-2]}\n", "extension line is not"),
        (f"{ORIGIN}\n7\n{ROOT_B64}\ngrant-root {BN254_R:064x}\n", "BN254 field element"),
        (f"{ORIGIN}\n0\n{ROOT_B64}\n{GRANT}\n", "empty tree's root hash"),
        # The tlog-checkpoint spec's own example: valid C2SP, but not a pchr checkpoint (no grant root).
        ("example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n", "want 4 lines"),
    ],
)
def test_malformed_checkpoints_are_refused_even_when_signed(log_key: Signer, text: str, why: str) -> None:
    assert Checkpoint.from_text(f"{ORIGIN}\n7\n{ROOT_B64}\n{GRANT}\n").size == 7  # the unbroken text parses
    with pytest.raises(NoteError, match=f"^malformed checkpoint: .*{why}"):
        Checkpoint.from_text(text)
    if text.endswith("\n"):  # else it cannot be a note's text at all
        with pytest.raises(NoteError, match=f"^malformed checkpoint: .*{why}"):
            verify_checkpoint(sign_note(text, log_key), log_key.verifier)


def test_a_checkpoint_for_another_log_is_refused(log_key: Signer) -> None:
    note = sign_checkpoint(Checkpoint("other.example/log", 0, EMPTY_ROOT, 0), log_key)
    with pytest.raises(NoteError, match=r"checkpoint is for log 'other\.example/log', not 'pchr\.example/ledger'"):
        verify_checkpoint(note, log_key.verifier, origin=ORIGIN)


@pytest.mark.parametrize(
    ("kwargs", "why"),
    [
        ({"origin": ""}, "origin"),
        ({"origin": "two\nlines"}, "origin"),
        ({"size": -1}, "unsigned 64-bit"),
        ({"root_hash": b"short"}, "32 bytes"),
        ({"grant_root": -1}, "field element"),
        ({"grant_root": BN254_R}, "field element"),
    ],
)
def test_a_checkpoint_cannot_be_built_invalid(kwargs: dict[str, object], why: str) -> None:
    fields: dict[str, object] = {"origin": ORIGIN, "size": 1, "root_hash": bytes(32), "grant_root": 0, **kwargs}
    with pytest.raises(ValueError, match=why):
        Checkpoint(**fields)  # type: ignore[arg-type]


# --- Forks ----------------------------------------------------------------------------------------------------


def test_checkpoints_of_one_history_are_consistent_in_either_order() -> None:
    tree = InMemoryTree(entries(b"history", 30))
    old, new = checkpoint_of(tree, 11, grant_root=1), checkpoint_of(tree, grant_root=2)
    proof = tree.consistency_proof(11)
    check_consistent(old, new, proof)
    check_consistent(new, old, proof)
    check_consistent(new, new, [])
    check_consistent(Checkpoint(ORIGIN, 0, EMPTY_ROOT, 0), new, [])


def test_two_roots_for_one_size_is_a_fork_carrying_both_checkpoints() -> None:
    honest = InMemoryTree(entries(b"history", 30))
    forked = InMemoryTree([*entries(b"history", 30)[:29], b"rewritten"])
    a, b = checkpoint_of(honest), checkpoint_of(forked)
    with pytest.raises(ForkError, match="two root hashes for the same tree size") as caught:
        check_consistent(a, b, [])
    assert (caught.value.old, caught.value.new) == (a, b)
    assert str(caught.value) == (
        "fork in 'pchr.example/ledger': two root hashes for the same tree size (sizes 30 and 30)"
    )


def test_two_grant_roots_for_one_tree_is_a_fork() -> None:
    tree = InMemoryTree(entries(b"history", 30))
    with pytest.raises(ForkError, match="two grant roots for the same tree"):
        check_consistent(checkpoint_of(tree, grant_root=1), checkpoint_of(tree, grant_root=2), [])


def test_a_rewritten_history_is_a_fork_with_the_failed_proof_as_cause() -> None:
    log = entries(b"history", 40)
    honest, rewritten = InMemoryTree(log[:20]), InMemoryTree([*log[:5], b"rewritten", *log[6:]])
    old, new = checkpoint_of(honest), checkpoint_of(rewritten)
    with pytest.raises(ForkError, match="no consistency: consistency proof does not lead to the old root") as caught:
        check_consistent(old, new, rewritten.consistency_proof(20))
    assert (caught.value.old, caught.value.new) == (old, new)
    assert isinstance(caught.value.__cause__, ProofError)
    assert (caught.value.__cause__.old_size, caught.value.__cause__.new_size) == (20, 40)


def test_consistency_is_only_asked_of_one_log_and_proper_proofs() -> None:
    tree = InMemoryTree(entries(b"history", 4))
    with pytest.raises(ValueError, match="different logs"):
        check_consistent(checkpoint_of(tree), Checkpoint("other.example/log", 4, tree.root(), 7), [])
    with pytest.raises(ValueError, match="equal size need an empty consistency proof"):
        check_consistent(checkpoint_of(tree), checkpoint_of(tree), [tree.root()])
