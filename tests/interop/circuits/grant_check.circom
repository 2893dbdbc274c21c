pragma circom 2.1.0;

// The circuit the slow interop tests compile and set up per session (tests/zk/test_snarkjs_interop.py): a grant
// commitment opened in private, an expiry compared with a public time, and a nullifier as output.
// The public inputs are listed in main in the opposite order to their declaration: circom (and snarkjs's
// public.json) order them as declared, outputs first: [nullifier, commitment, now].

include "poseidon.circom";
include "comparators.circom";

template GrantCheck() {
    signal input commitment;
    signal input now;
    signal input expiry;
    signal input salt;
    signal output nullifier;

    component opening = Poseidon(2);
    opening.inputs[0] <== expiry;
    opening.inputs[1] <== salt;
    commitment === opening.out;

    component fresh = LessThan(64);
    fresh.in[0] <== now;
    fresh.in[1] <== expiry;
    fresh.out === 1;

    component tag = Poseidon(2);
    tag.inputs[0] <== salt;
    tag.inputs[1] <== now;
    nullifier <== tag.out;
}

component main {public [now, commitment]} = GrantCheck();
