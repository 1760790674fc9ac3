//! The SDP corpus (tests/corpus/sdp/*.sdp) as a robustness test: every file,
//! every prefix of it, and single-byte corruptions of it go through the
//! parser and offer/answer without a panic, and whatever parses keeps the
//! invariants: display → parse is the identity, and an accepted offer's
//! answer parses and is accepted by the offerer with the same payload types.

use std::path::Path;

use softline::sdp::{CodecSpec, LocalMedia, SessionDescription, answer_offer, apply_answer};

fn locals() -> [LocalMedia; 2] {
    let g711 = LocalMedia::g711("192.0.2.1".parse().unwrap(), 30000);
    let wide = LocalMedia {
        addr: "2001:db8::1".parse().unwrap(),
        codecs: vec![
            CodecSpec::opus(111),
            CodecSpec::g722(),
            CodecSpec::pcma(),
            CodecSpec::telephone_event(101, 8000),
            CodecSpec::telephone_event(110, 48000),
        ],
        rtcp_mux: true,
        ..g711.clone()
    };
    [g711, wide]
}

fn check(data: &[u8], locals: &[LocalMedia]) -> Result<(), String> {
    let Ok(sd) = SessionDescription::parse(data) else {
        return Ok(());
    };
    let text = sd.to_string();
    match SessionDescription::parse(text.as_bytes()) {
        Ok(again) if again == sd => {}
        Ok(_) => return Err(format!("re-parsed description differs:\n{text}")),
        Err(e) => return Err(format!("displayed description does not parse: {e}\n{text}")),
    }
    for local in locals {
        let Ok((answer, ours)) = answer_offer(&sd, local, 1, 1) else {
            continue;
        };
        let again = SessionDescription::parse(answer.to_string().as_bytes())
            .map_err(|e| format!("our answer does not parse: {e}"))?;
        if again.media.len() != sd.media.len() {
            return Err("answer changed the m-line count".into());
        }
        let theirs =
            apply_answer(&sd, &again).map_err(|e| format!("answer not applicable: {e}"))?;
        if theirs.codec.payload_type != ours.codec.payload_type {
            return Err(format!(
                "payload types disagree: {} vs {}",
                theirs.codec.payload_type, ours.codec.payload_type
            ));
        }
    }
    Ok(())
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
    let locals = locals();
    let mut parsed = 0;
    for path in &files {
        let data = std::fs::read(path).unwrap();
        if SessionDescription::parse(&data).is_ok() {
            parsed += 1;
        }
        let fail = |what: String, why: String| panic!("{} {what}: {why}", path.display());
        if let Err(why) = check(&data, &locals) {
            fail("as is".into(), why);
        }
        for cut in 0..data.len() {
            if let Err(why) = check(&data[..cut], &locals) {
                fail(format!("cut at {cut}"), why);
            }
        }
        // Every position overwritten with bytes that matter to the grammar.
        let mut buf = data.clone();
        for i in 0..data.len() {
            for b in [b'\n', b'\r', b' ', b'0', b'=', b':', b'/', b'a', 0, 0xff] {
                buf[i] = b;
                if let Err(why) = check(&buf, &locals) {
                    fail(format!("byte {i} set to 0x{b:02x}"), why);
                }
            }
            buf[i] = data[i];
        }
    }
    // The good files stay good and the bad ones stay bad.
    assert_eq!(parsed, 7, "valid corpus files");
}
