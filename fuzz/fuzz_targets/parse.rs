//! Fuzz the SIP parser and the stream framer: no input may panic, and a
//! message that parses must serialize to bytes that parse to the same value.
//! Run: `cargo +nightly fuzz run parse fuzz/corpus/parse tests/corpus/rfc4475/valid
//! tests/corpus/rfc4475/invalid tests/corpus/rfc4475/semantic`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(why) = softline::sip::parse::check_invariants(data) {
        panic!("{why}");
    }
});
