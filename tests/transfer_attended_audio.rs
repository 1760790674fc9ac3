//! Attended transfer ending with the right two parties talking, verified
//! by signal with three real headless Softlines on 127.0.0.1: A plays
//! 1100 Hz, B (the transferor) 700 Hz, C 1700 Hz. B calls A, holds A,
//! calls C, C answers, and B transfers A to C with a REFER carrying
//! Replaces (RFC 3515/3891): A calls C, C's call from B is replaced, and
//! afterwards A hears C's tone and C hears A's; B has no call left.
#![cfg(unix)]
#![allow(clippy::disallowed_methods)]

mod support;

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use softline::audio::wav::Wav;
use softline::media::tone::{rms_dbfs, sine, tone_share};
use support::{Phone, TestDir, free_udp_port};

const FIVE_S: Duration = Duration::from_secs(5);
const RATE: u32 = 8000;
const A_HZ: f64 = 1100.0;
const B_HZ: f64 = 700.0;
const C_HZ: f64 = 1700.0;

fn write_tone(path: &Path, freq: f64) {
    let w = Wav {
        sample_rate: RATE,
        samples: sine(freq, RATE, 8000.0, RATE as usize),
    };
    std::fs::write(path, w.to_bytes()).unwrap();
}

fn config(port: u16, input: &Path, output: &Path) -> String {
    let rtp = 25000 + (port % 2000) * 10;
    format!(
        "[sip]\nlisten_udp = \"127.0.0.1:{port}\"\n\n[audio]\ninput = \"loop:{}\"\noutput = \"file:{}\"\necho_cancellation = false\nnoise_suppression = false\n\n[media]\ncodecs = [\"PCMU\"]\nrtp_port_min = {rtp}\nrtp_port_max = {}\nsrtp = \"off\"\n\n[trace]\nenabled = true\ndir = \"{{dir}}\"\n",
        input.display(),
        output.display(),
        rtp + 9,
    )
}

/// The last `secs` seconds written to a WAV file so far, from the raw
/// bytes (each call's media re-creates the file; the header lags).
fn tail(path: &Path, secs: f64) -> Vec<i16> {
    let samples = support::growing_wav_samples(path);
    let n = (f64::from(RATE) * secs) as usize;
    samples[samples.len().saturating_sub(n)..].to_vec()
}

fn calls(s: &Value) -> Vec<Value> {
    s["calls"].as_array().cloned().unwrap_or_default()
}

fn call_by_id(s: &Value, id: u64) -> Value {
    calls(s)
        .into_iter()
        .find(|c| c["id"] == json!(id))
        .unwrap_or(Value::Null)
}

fn all_ended(s: &Value) -> bool {
    calls(s).iter().all(|c| c["state"] == "ended")
}

fn live(s: &Value) -> Vec<Value> {
    calls(s)
        .into_iter()
        .filter(|c| c["state"] != "ended")
        .collect()
}

/// `from` calls `to` (listening on `port`) by IP and `to` answers; the
/// caller's call id once it is connected.
fn call(from: &Phone, to: &Phone, port: u16) -> u64 {
    let r = from.cmd(json!({"cmd": "call", "target": format!("sip:x@127.0.0.1:{port}")}));
    let id = r["call"].as_u64().unwrap();
    to.wait_for(|s| live(s).iter().any(|c| c["state"] == "ringing"), FIVE_S)
        .unwrap();
    to.cmd(json!({"cmd": "answer"}));
    from.wait_for(|s| call_by_id(s, id)["state"] == "connected", FIVE_S)
        .unwrap();
    id
}

/// (share of `freq`, level) over the last 1.5 s of `path`.
fn hears(path: &Path, freq: f64) -> (f64, f64) {
    let t = tail(path, 1.5);
    (tone_share(&t, RATE, freq), rms_dbfs(&t))
}

#[test]
fn attended_transfer_leaves_a_and_c_talking_and_b_with_no_call() {
    let dir = TestDir::new("transfer-attended");
    let f = |n: &str| dir.file(n);
    write_tone(&f("a-in.wav"), A_HZ);
    write_tone(&f("b-in.wav"), B_HZ);
    write_tone(&f("c-in.wav"), C_HZ);
    let (pa, pb, pc) = (free_udp_port(), free_udp_port(), free_udp_port());
    let a = Phone::start(&config(pa, &f("a-in.wav"), &f("a-out.wav")));
    let b = Phone::start(&config(pb, &f("b-in.wav"), &f("b-out.wav")));
    let c = Phone::start(&config(pc, &f("c-in.wav"), &f("c-out.wav")));

    // B calls A; they talk.
    let ba = call(&b, &a, pa);
    std::thread::sleep(Duration::from_millis(1800));
    let (s, l) = hears(&f("a-out.wav"), B_HZ);
    assert!(s > 0.5 && l > -30.0, "A does not hear B first: {s}, {l}");
    // B holds A and consults C.
    b.cmd(json!({"cmd": "hold", "call": ba}));
    b.wait_for(|s| call_by_id(s, ba)["state"] == "held", FIVE_S)
        .unwrap();
    let bc = call(&b, &c, pc);
    std::thread::sleep(Duration::from_millis(1800));
    let (s, l) = hears(&f("c-out.wav"), B_HZ);
    assert!(s > 0.5 && l > -30.0, "C does not hear B: {s}, {l}");
    let (s, _) = hears(&f("c-out.wav"), A_HZ);
    assert!(s < 0.05, "C hears A before the transfer: {s}");

    // The transfer: REFER to A (in the held call) naming B–C's dialog.
    let r = b.cmd(json!({"cmd": "transfer_attended", "call": ba, "to_call": bc}));
    assert_eq!(r["call"], json!(ba), "{r}");
    let bs = b
        .wait_for(all_ended, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("B still has calls: {e}"));
    for id in [ba, bc] {
        assert_eq!(call_by_id(&bs, id)["cause"], json!("transferred"), "{bs:#}");
    }
    // A has exactly one live call (to C), C exactly one (from A), which
    // took over the replaced call.
    let a_s = a
        .wait_for(
            |s| live(s).len() == 1 && live(s)[0]["state"] == "connected",
            FIVE_S,
        )
        .unwrap();
    let c_s = c
        .wait_for(
            |s| {
                live(s).len() == 1
                    && live(s)[0]["state"] == "connected"
                    && live(s)[0]["direction"] == "incoming"
            },
            FIVE_S,
        )
        .unwrap();
    let a_new = live(&a_s)[0].clone();
    let c_new = live(&c_s)[0].clone();
    assert_eq!(a_new["direction"], json!("outgoing"), "{a_s:#}");
    assert!(
        a_new["remote"]
            .as_str()
            .is_some_and(|r| r.contains(&format!("127.0.0.1:{pc}"))),
        "{a_s:#}"
    );
    assert!(
        c_new["auto_answered"]
            .as_str()
            .is_some_and(|r| r.starts_with("replaces call")),
        "{c_s:#}"
    );
    assert!(c.trace_text().contains("Replaces:"), "C got no Replaces");

    // The right two parties talk.
    std::thread::sleep(Duration::from_millis(2500));
    let (a_c, a_lvl) = hears(&f("a-out.wav"), C_HZ);
    let (a_b, _) = hears(&f("a-out.wav"), B_HZ);
    let (c_a, c_lvl) = hears(&f("c-out.wav"), A_HZ);
    let (c_b, _) = hears(&f("c-out.wav"), B_HZ);
    eprintln!(
        "after transfer: A hears {C_HZ} Hz {a_c:.3} at {a_lvl:.1} dBFS ({B_HZ} Hz {a_b:.3}); C hears {A_HZ} Hz {c_a:.3} at {c_lvl:.1} dBFS ({B_HZ} Hz {c_b:.3})"
    );
    assert!(a_c > 0.5 && a_lvl > -30.0, "A does not hear C");
    assert!(c_a > 0.5 && c_lvl > -30.0, "C does not hear A");
    assert!(a_b < 0.05 && c_b < 0.05, "B is still heard");
    assert!(all_ended(&b.status()), "B got a call back");

    // Nothing is stuck: A hangs up, every call everywhere ends.
    a.cmd(json!({"cmd": "hangup"}));
    for p in [&a, &b, &c] {
        p.wait_for(all_ended, FIVE_S).unwrap();
    }
}
