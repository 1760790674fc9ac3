//! Fuzz the RTP, RTCP, RFC 2198 RED and RFC 4733 parsers: no input may
//! panic, and whatever parses must write back to bytes that parse to the
//! same value (`softline::rtp::check_invariants`). Run: `cargo +nightly fuzz
//! run rtp tests/corpus/rtp tests/corpus/red`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(why) = softline::rtp::check_invariants(data) {
        panic!("{why}");
    }
});
