pragma circom 2.1.0;

// The circuit of the committed snarkjs vectors (tests/interop/snarkjs_vectors, made by make_snarkjs_vectors.py):
// "I know secret and salt with Poseidon(secret, salt) = digest and secret < bound".
// Public signals, in circom's order: the output digest, then the public input bound.

include "poseidon.circom";
include "comparators.circom";

template BoundedPreimage() {
    signal input bound;
    signal input secret;
    signal input salt;
    signal output digest;

    component below = LessThan(32);
    below.in[0] <== secret;
    below.in[1] <== bound;
    below.out === 1;

    component hash = Poseidon(2);
    hash.inputs[0] <== secret;
    hash.inputs[1] <== salt;
    digest <== hash.out;
}

component main {public [bound]} = BoundedPreimage();
