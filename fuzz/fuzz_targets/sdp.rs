//! Fuzz the SDP parser and offer/answer: no input may panic, a description
//! that parses must display as text that parses to the same value, and an
//! acceptable offer must get an answer its offerer can apply
//! (`softline::sdp::check_invariants`). Run: `cargo +nightly fuzz run sdp
//! tests/corpus/sdp`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(why) = softline::sdp::check_invariants(data) {
        panic!("{why}");
    }
});
