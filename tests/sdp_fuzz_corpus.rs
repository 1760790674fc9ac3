//! The SDP corpus (tests/corpus/sdp/*.sdp) as a robustness test: every file,
//! every prefix of it, and single-byte corruptions of it go through the
//! parser and offer/answer without a panic, and whatever parses keeps the
//! invariants: display → parse is the identity, and an accepted offer's
//! answer parses and is accepted by the offerer with the same payload types.

use std::path::Path;

use softline::sdp::SessionDescription;

/// The invariants, shared with the fuzz target `fuzz/fuzz_targets/sdp.rs`.
fn check(data: &[u8]) -> Result<(), String> {
    softline::sdp::check_invariants(data)
}

#[test]
fn sdp_corpus_never_panics_and_keeps_invariants() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/sdp");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sdp"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 11,
        "corpus went missing: {} files",
        files.len()
    );
    let mut parsed = 0;
    for path in &files {
        let data = std::fs::read(path).unwrap();
        if SessionDescription::parse(&data).is_ok() {
            parsed += 1;
        }
        let fail = |what: String, why: String| panic!("{} {what}: {why}", path.display());
        if let Err(why) = check(&data) {
            fail("as is".into(), why);
        }
        for cut in 0..data.len() {
            if let Err(why) = check(&data[..cut]) {
                fail(format!("cut at {cut}"), why);
            }
        }
        // Every position overwritten with bytes that matter to the grammar.
        let mut buf = data.clone();
        for i in 0..data.len() {
            for b in [b'\n', b'\r', b' ', b'0', b'=', b':', b'/', b'a', 0, 0xff] {
                buf[i] = b;
                if let Err(why) = check(&buf) {
                    fail(format!("byte {i} set to 0x{b:02x}"), why);
                }
            }
            buf[i] = data[i];
        }
    }
    // The good files stay good and the bad ones stay bad.
    assert_eq!(parsed, 7, "valid corpus files");
}
