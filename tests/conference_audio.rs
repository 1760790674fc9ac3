//! Local conference, call-waiting tone and auto-answer zip tone, verified
//! by signal with real headless Softlines on 127.0.0.1: each phone's
//! microphone is a tone file (A 700 Hz, B 1100 Hz, C 1700 Hz) and each
//! plays out into a WAV file, which must hold exactly the tones that party
//! should hear.
#![cfg(unix)]
#![allow(clippy::disallowed_methods)]

mod support;

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use softline::audio::wav::Wav;
use softline::media::tone::{sine, tone_share};
use support::{Phone, TestDir, free_udp_port};

const FIVE_S: Duration = Duration::from_secs(5);

fn write_tone(path: &Path, freq: f64, rate: u32) {
    let w = Wav {
        sample_rate: rate,
        samples: sine(freq, rate, 8000.0, rate as usize),
    };
    std::fs::write(path, w.to_bytes()).unwrap();
}

fn config(port: u16, codecs: &str, input: &Path, output: &Path, extra: &str) -> String {
    let rtp = 21000 + (port % 2000) * 10;
    format!(
        "[sip]\nlisten_udp = \"127.0.0.1:{port}\"\n\n[audio]\ninput = \"loop:{}\"\noutput = \"file:{}\"\necho_cancellation = false\nnoise_suppression = false\n\n[media]\ncodecs = [{codecs}]\nrtp_port_min = {rtp}\nrtp_port_max = {}\nsrtp = \"off\"\n{extra}",
        input.display(),
        output.display(),
        rtp + 9,
    )
}

/// The last `secs` seconds written to a WAV file so far (read from the
/// raw bytes: a file two calls' media wrote in turn can carry a header
/// that undercounts its data).
fn tail(path: &Path, rate: u32, secs: f64) -> Vec<i16> {
    let bytes = std::fs::read(path).unwrap_or_default();
    let data = bytes.get(44..).unwrap_or_default();
    let samples: Vec<i16> = data
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    let n = (f64::from(rate) * secs) as usize;
    samples[samples.len().saturating_sub(n)..].to_vec()
}

/// The highest share of `freq` in any 100 ms window (50 ms steps).
fn peak_share(samples: &[i16], rate: u32, freq: f64) -> f64 {
    let w = (rate / 10) as usize;
    (0..samples.len().saturating_sub(w))
        .step_by(w / 2)
        .map(|i| tone_share(&samples[i..i + w], rate, freq))
        .fold(0.0, f64::max)
}

fn calls(s: &Value) -> Vec<Value> {
    s["calls"].as_array().cloned().unwrap_or_default()
}

/// `from` calls `to` (listening on `port`) by IP, `to` answers; returns
/// the caller's call id.
fn call(from: &Phone, to: &Phone, port: u16) -> u64 {
    let r = from.cmd(json!({"cmd": "call", "target": format!("sip:x@127.0.0.1:{port}")}));
    let id = r["call"].as_u64().unwrap();
    to.wait_for(|s| calls(s).iter().any(|c| c["state"] == "ringing"), FIVE_S)
        .unwrap();
    to.cmd(json!({"cmd": "answer"}));
    from.wait_for(
        |s| {
            calls(s)
                .iter()
                .any(|c| c["id"] == json!(id) && c["state"] == "connected")
        },
        FIVE_S,
    )
    .unwrap();
    id
}

#[test]
fn three_way_conference_each_hears_the_other_two_then_split() {
    let dir = TestDir::new("conference");
    let f = |n: &str| dir.file(n);
    write_tone(&f("a-in.wav"), 700.0, 8000);
    write_tone(&f("b-in.wav"), 1100.0, 8000);
    write_tone(&f("c-in.wav"), 1700.0, 16000);
    let (pa, pb, pc) = (free_udp_port(), free_udp_port(), free_udp_port());
    // A-B talk PCMU (8 kHz), A-C G.722 (16 kHz): the mix resamples.
    let a = Phone::start(&config(
        pa,
        "\"PCMU\", \"G722\"",
        &f("a-in.wav"),
        &f("a-out.wav"),
        "",
    ));
    let b = Phone::start(&config(pb, "\"PCMU\"", &f("b-in.wav"), &f("b-out.wav"), ""));
    let c = Phone::start(&config(pc, "\"G722\"", &f("c-in.wav"), &f("c-out.wav"), ""));
    let ab = call(&a, &b, pb);
    let ac = call(&a, &c, pc);
    // Bad input first: the same call twice, an unknown call.
    let bad = a
        .try_ctl(&json!({"cmd": "conference", "a": ab, "b": ab}))
        .unwrap();
    assert_eq!(bad["ok"], json!(false), "{bad}");
    let bad = a
        .try_ctl(&json!({"cmd": "conference", "a": ab, "b": 99}))
        .unwrap();
    assert_eq!(bad["ok"], json!(false), "{bad}");

    a.cmd(json!({"cmd": "conference", "a": ab, "b": ac}));
    let s = a
        .wait_for(
            |s| {
                calls(s)
                    .iter()
                    .filter(|c| c["state"] == "connected" && c["conference"] == json!(1))
                    .count()
                    == 2
            },
            FIVE_S,
        )
        .unwrap();
    assert_eq!(calls(&s).len(), 2, "{s:#}");
    std::thread::sleep(Duration::from_millis(3500));
    let (a_t, b_t, c_t) = (
        tail(&f("a-out.wav"), 8000, 1.5),
        tail(&f("b-out.wav"), 8000, 1.5),
        tail(&f("c-out.wav"), 16000, 1.5),
    );
    let share = |v: &[i16], rate, fr| tone_share(v, rate, fr);
    let report = format!(
        "A: 1100 {:.2} 1700 {:.2} 700 {:.2}; B: 700 {:.2} 1700 {:.2} 1100 {:.2}; C: 700 {:.2} 1100 {:.2} 1700 {:.2}",
        share(&a_t, 8000, 1100.0),
        share(&a_t, 8000, 1700.0),
        share(&a_t, 8000, 700.0),
        share(&b_t, 8000, 700.0),
        share(&b_t, 8000, 1700.0),
        share(&b_t, 8000, 1100.0),
        share(&c_t, 16000, 700.0),
        share(&c_t, 16000, 1100.0),
        share(&c_t, 16000, 1700.0),
    );
    eprintln!("{report}");
    for (who, v, rate, hears, not) in [
        ("A", &a_t, 8000, [1100.0, 1700.0], 700.0),
        ("B", &b_t, 8000, [700.0, 1700.0], 1100.0),
        ("C", &c_t, 16000, [700.0, 1100.0], 1700.0),
    ] {
        for fr in hears {
            assert!(
                share(v, rate, fr) > 0.25,
                "{who} does not hear {fr} Hz: {report}"
            );
        }
        assert!(share(v, rate, not) < 0.05, "{who} hears itself: {report}");
    }

    // Split: A keeps talking with B; C is held; B no longer hears C.
    a.cmd(json!({"cmd": "split", "call": ab}));
    a.wait_for(
        |s| {
            calls(s)
                .iter()
                .any(|c| c["id"] == json!(ac) && c["state"] == "held")
                && calls(s).iter().all(|c| c["conference"].is_null())
        },
        FIVE_S,
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    let b_t = tail(&f("b-out.wav"), 8000, 1.5);
    let (b700, b1700) = (share(&b_t, 8000, 700.0), share(&b_t, 8000, 1700.0));
    assert!(
        b700 > 0.8 && b1700 < 0.02,
        "after split B: 700 {b700:.2} 1700 {b1700:.2}"
    );
    let bad = a.try_ctl(&json!({"cmd": "split"})).unwrap();
    assert_eq!(bad["ok"], json!(false), "no conference left: {bad}");
    a.cmd(json!({"cmd": "hangup_all"}));
}

#[test]
fn call_waiting_tone_is_heard_locally_only() {
    let dir = TestDir::new("waiting");
    let f = |n: &str| dir.file(n);
    write_tone(&f("a-in.wav"), 700.0, 8000);
    write_tone(&f("b-in.wav"), 1100.0, 8000);
    write_tone(&f("c-in.wav"), 1700.0, 8000);
    let (pa, pb, pc) = (free_udp_port(), free_udp_port(), free_udp_port());
    let a = Phone::start(&config(pa, "\"PCMU\"", &f("a-in.wav"), &f("a-out.wav"), ""));
    let b = Phone::start(&config(pb, "\"PCMU\"", &f("b-in.wav"), &f("b-out.wav"), ""));
    let c = Phone::start(&config(pc, "\"PCMU\"", &f("c-in.wav"), &f("c-out.wav"), ""));
    call(&a, &b, pb);
    std::thread::sleep(Duration::from_millis(1000));
    let before = peak_share(&tail(&f("a-out.wav"), 8000, 0.9), 8000, 440.0);
    c.cmd(json!({"cmd": "call", "target": format!("sip:a@127.0.0.1:{pa}")}));
    a.wait_for(|s| calls(s).iter().any(|c| c["state"] == "ringing"), FIVE_S)
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let a_t = tail(&f("a-out.wav"), 8000, 2.0);
    let b_t = tail(&f("b-out.wav"), 8000, 2.0);
    let (heard, leaked) = (peak_share(&a_t, 8000, 440.0), peak_share(&b_t, 8000, 440.0));
    eprintln!("440 Hz: A before {before:.2}, A {heard:.2}, B {leaked:.2}");
    assert!(before < 0.05, "tone before the second call: {before}");
    assert!(heard > 0.15, "A does not hear the waiting tone: {heard}");
    assert!(leaked < 0.05, "the waiting tone reached B: {leaked}");
    // B still hears A's voice, A still hears B's.
    assert!(tone_share(&a_t, 8000, 1100.0) > 0.5);
    assert!(tone_share(&b_t, 8000, 700.0) > 0.5);
    a.cmd(json!({"cmd": "hangup_all"}));
}

#[test]
fn auto_answered_call_starts_with_the_zip_tone() {
    let dir = TestDir::new("zip");
    let f = |n: &str| dir.file(n);
    write_tone(&f("a-in.wav"), 700.0, 8000);
    write_tone(&f("b-in.wav"), 1100.0, 8000);
    let (pa, pb, reg) = (free_udp_port(), free_udp_port(), free_udp_port());
    // A's server is 127.0.0.1 (a registrar that never answers): calls from
    // there are auto-answered by policy.
    let account = format!(
        "\n[[account]]\nid = \"agent\"\nusername = \"1001\"\npassword = \"x\"\ndomain = \"127.0.0.1\"\nregistrar = \"127.0.0.1:{reg}\"\nregister = true\nmwi = false\nauto_answer = \"always\"\n"
    );
    let a = Phone::start(&config(
        pa,
        "\"PCMU\"",
        &f("a-in.wav"),
        &f("a-out.wav"),
        &account,
    ));
    let b = Phone::start(&config(pb, "\"PCMU\"", &f("b-in.wav"), &f("b-out.wav"), ""));
    a.wait_for(|s| !s["accounts"][0]["server"].is_null(), FIVE_S)
        .unwrap();
    b.cmd(json!({"cmd": "call", "target": format!("sip:1001@127.0.0.1:{pa}")}));
    let s = a
        .wait_for(
            |s| calls(s).first().is_some_and(|c| c["state"] == "connected"),
            FIVE_S,
        )
        .unwrap();
    assert_eq!(calls(&s)[0]["auto_answered"], json!("auto_answer = always"));
    std::thread::sleep(Duration::from_millis(1500));
    a.cmd(json!({"cmd": "hangup_all"}));
    std::thread::sleep(Duration::from_millis(300));
    let w = Wav::read(&f("a-out.wav")).unwrap();
    let head = &w.samples[..(w.sample_rate as usize * 4 / 10).min(w.samples.len())];
    let late = &w.samples[w.samples.len().saturating_sub(8000)..];
    let (zip, later) = (
        peak_share(head, w.sample_rate, 1000.0),
        peak_share(late, w.sample_rate, 1000.0),
    );
    eprintln!("1 kHz: first 400 ms {zip:.2}, last second {later:.2}");
    assert!(zip > 0.3, "no zip tone at the start: {zip}");
    assert!(later < 0.05, "the zip tone goes on: {later}");
    // The zip tone is the agent's: B hears only A's voice.
    let bw = Wav::read(&f("b-out.wav")).unwrap();
    assert!(peak_share(&bw.samples, bw.sample_rate, 1000.0) < 0.05);
}
