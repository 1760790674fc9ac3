//! Audio verified by signal: two headless Softlines call each other by IP
//! on 127.0.0.1, each playing a different tone from a WAV file; what each
//! one plays out (its WAV file output, clocked like a sound card) must hold
//! the other's tone. One test per codec.
#![cfg(unix)]
#![allow(clippy::disallowed_methods)]

mod support;

use std::path::Path;
use std::time::Duration;

use serde_json::json;
use softline::audio::wav::Wav;
use softline::media::tone::{rms_dbfs, sine, tone_share};
use support::{Phone, TestDir, free_udp_port};

const FIVE_S: Duration = Duration::from_secs(5);

fn write_tone(path: &Path, freq: f64, rate: u32, secs: u32) {
    let w = Wav {
        sample_rate: rate,
        samples: sine(freq, rate, 8000.0, (rate * secs) as usize),
    };
    std::fs::write(path, w.to_bytes()).unwrap();
}

fn config(port: u16, codec: &str, input: &Path, output: &Path) -> String {
    config_srtp(port, codec, input, output, "off")
}

fn config_srtp(port: u16, codec: &str, input: &Path, output: &Path, srtp: &str) -> String {
    format!(
        "[sip]\nlisten_udp = \"127.0.0.1:{port}\"\n\n[audio]\ninput = \"loop:{}\"\noutput = \"file:{}\"\n# Tones are measured: no echo cancellation or noise suppression.\necho_cancellation = false\nnoise_suppression = false\n\n[media]\ncodecs = [\"{codec}\"]\nrtp_port_min = {}\nrtp_port_max = {}\nsrtp = \"{srtp}\"\n",
        input.display(),
        output.display(),
        20000 + (port % 2000) * 10,
        20000 + (port % 2000) * 10 + 9,
    )
}

/// A calls B (listening on `pb`) by IP and B answers.
fn call_and_answer(a: &Phone, b: &Phone, pb: u16) {
    a.cmd(json!({"cmd": "call", "target": format!("sip:b@127.0.0.1:{pb}")}));
    b.wait_for(|s| s["calls"][0]["state"] == "ringing", FIVE_S)
        .unwrap();
    b.cmd(json!({"cmd": "answer"}));
}

/// The tone heard in a played-out file, past its first half second.
fn heard(path: &Path, freq: f64) -> (f64, f64, u32) {
    let w = Wav::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let skip = (w.sample_rate / 2) as usize;
    let tail = w.samples.get(skip..).unwrap_or_default();
    (
        tone_share(tail, w.sample_rate, freq),
        rms_dbfs(tail),
        w.sample_rate,
    )
}

fn two_way_audio(codec: &str) {
    two_way_audio_recorded(codec, false);
}

fn two_way_audio_recorded(codec: &str, record: bool) {
    let dir = TestDir::new(&format!("audio-{codec}"));
    let (a_in, b_in) = (dir.file("a-in.wav"), dir.file("b-in.wav"));
    let (a_out, b_out) = (dir.file("a-out.wav"), dir.file("b-out.wav"));
    write_tone(&a_in, 700.0, 8000, 1);
    write_tone(&b_in, 1100.0, 16000, 1);
    let (pa, pb) = (free_udp_port(), free_udp_port());
    let a = Phone::start(&config(pa, codec, &a_in, &a_out));
    let b = Phone::start(&config(pb, codec, &b_in, &b_out));
    call_and_answer(&a, &b, pb);
    a.wait_for(|s| s["calls"][0]["state"] == "connected", FIVE_S)
        .unwrap();
    let recording = dir.file("a-call.wav");
    if record {
        let r = a.cmd(json!({"cmd": "record", "on": true, "file": recording}));
        assert_eq!(r["recording"], json!(true), "{r}");
        // A path that cannot be written is refused in the reply.
        let bad = a
            .try_ctl(&json!({"cmd": "record", "on": true, "file": "/nonexistent-dir/x.wav"}))
            .unwrap();
        assert_eq!(bad["ok"], json!(false), "{bad}");
        let r = a.cmd(json!({"cmd": "record", "on": true, "file": recording}));
        assert_eq!(r["recording"], json!(true), "{r}");
    }
    // Two seconds of conversation, then the media statistics.
    std::thread::sleep(Duration::from_secs(2));
    let status = a
        .wait_for(
            |s| s["calls"][0]["media"]["packets_received"].as_u64() > Some(50),
            FIVE_S,
        )
        .unwrap();
    let media = &status["calls"][0]["media"];
    assert_eq!(
        media["codec"].as_str().map(str::to_ascii_lowercase),
        Some(codec.to_ascii_lowercase()),
        "{media:#}"
    );
    assert!(media["warning"].is_null(), "{media:#}");
    // A clean loopback call rates green on the E-model estimate.
    let quality = &status["calls"][0]["quality"];
    assert_eq!(quality["light"], "green", "{quality:#}");
    assert!(
        quality["mos"].as_f64().is_some_and(|m| m > 4.0),
        "{quality:#}"
    );
    // The meters see A's own tone (amplitude 8000: −15 dBFS RMS) going out
    // and B's tone coming in.
    let levels = &media["levels"];
    let db = |v: &serde_json::Value| v.as_f64().unwrap_or(-999.0);
    assert!(
        (db(&levels["mic"]["rms_dbfs"]) + 15.2).abs() < 2.0,
        "{levels:#}"
    );
    assert!(db(&levels["speaker"]["rms_dbfs"]) > -30.0, "{levels:#}");
    a.cmd(json!({"cmd": "hangup"}));
    b.wait_for(|s| s["calls"][0]["state"] == "ended", FIVE_S)
        .unwrap();
    a.wait_for(|s| s["calls"][0]["state"] == "ended", FIVE_S)
        .unwrap();
    std::thread::sleep(Duration::from_millis(300)); // output files finished

    let (share_a, level_a, rate_a) = heard(&a_out, 1100.0);
    let (share_b, level_b, rate_b) = heard(&b_out, 700.0);
    eprintln!(
        "{codec}: A hears 1100 Hz share {share_a:.3} at {level_a:.1} dBFS ({rate_a} Hz); B hears 700 Hz share {share_b:.3} at {level_b:.1} dBFS ({rate_b} Hz)"
    );
    assert!(
        share_a > 0.5 && level_a > -30.0,
        "A does not hear B's tone: share {share_a}, {level_a} dBFS"
    );
    assert!(
        share_b > 0.5 && level_b > -30.0,
        "B does not hear A's tone: share {share_b}, {level_b} dBFS"
    );
    // And not its own tone looped back.
    assert!(heard(&a_out, 700.0).0 < 0.1);
    if record {
        // Near end (A's microphone: 700 Hz) left, far end (B: 1100 Hz) right.
        let bytes = std::fs::read(&recording).unwrap();
        let (rate, ch) = softline::audio::wav::parse_channels(&bytes).unwrap();
        assert_eq!(ch.len(), 2);
        let secs = ch[0].len() as f64 / f64::from(rate);
        assert!(secs > 1.5, "recording lasts {secs} s");
        let (l, r) = (&ch[0][(rate / 2) as usize..], &ch[1][(rate / 2) as usize..]);
        assert!(tone_share(l, rate, 700.0) > 0.9, "left channel");
        assert!(tone_share(r, rate, 1100.0) > 0.5, "right channel");
        assert!(tone_share(l, rate, 1100.0) < 0.1 && tone_share(r, rate, 700.0) < 0.1);
    }
}

#[test]
fn two_way_audio_pcmu_recorded_in_stereo() {
    two_way_audio_recorded("PCMU", true);
}

#[test]
fn two_way_audio_pcma() {
    two_way_audio("PCMA");
}

#[test]
fn two_way_audio_g722() {
    two_way_audio("G722");
}

#[test]
fn two_way_audio_opus() {
    two_way_audio("opus");
}

/// `softline ctl test-audio`: with no server and no call, the microphone
/// (a tone file) comes back through encode → RTP → jitter buffer → decode
/// into the playout (a WAV file).
#[test]
fn audio_test_loops_the_microphone_back_without_a_server() {
    let dir = TestDir::new("audio-test");
    let (input, output) = (dir.file("mic.wav"), dir.file("heard.wav"));
    write_tone(&input, 900.0, 8000, 1);
    let phone = Phone::start(&config(free_udp_port(), "G722", &input, &output));
    let r = phone.cmd(json!({"cmd": "test_audio", "seconds": 2}));
    assert_eq!(r["codec"], json!("G722"), "{r}");
    let status = phone
        .wait_for(
            |s| s["audio_test"]["media"]["packets_received"].as_u64() > Some(40),
            FIVE_S,
        )
        .unwrap();
    assert!(
        status["audio_test"]["media"]["warning"].is_null(),
        "{status:#}"
    );
    std::thread::sleep(Duration::from_millis(2500)); // the test ends by itself
    let (share, level, rate) = heard(&output, 900.0);
    eprintln!("audio test: 900 Hz share {share:.3} at {level:.1} dBFS ({rate} Hz)");
    assert_eq!(rate, 16000);
    assert!(share > 0.9 && level > -25.0, "share {share}, {level} dBFS");
}

/// `test_audio` with `tone`: the 440 Hz reference (half a second on, half
/// off) goes through encode, RTP, jitter buffer and decode with a silent
/// microphone, and is what comes out.
#[test]
fn audio_test_reference_tone_goes_through_the_path() {
    let dir = TestDir::new("audio-test-tone");
    let (input, output) = (dir.file("mic.wav"), dir.file("heard.wav"));
    let silence = Wav {
        sample_rate: 8000,
        samples: vec![0; 8000],
    };
    std::fs::write(&input, silence.to_bytes()).unwrap();
    let phone = Phone::start(&config(free_udp_port(), "opus", &input, &output));
    let r = phone.cmd(json!({"cmd": "test_audio", "seconds": 5, "tone": true}));
    assert_eq!(r["tone"], json!(true), "{r}");
    phone
        .wait_for(
            |s| s["audio_test"]["media"]["packets_received"].as_u64() > Some(40),
            FIVE_S,
        )
        .unwrap();
    std::thread::sleep(Duration::from_millis(5500)); // the test ends by itself
    let w = Wav::read(&output).unwrap();
    assert_eq!(w.sample_rate, 48000);
    // In 100 ms windows: the tone (-20 dBFS peak, -23 dBFS RMS) or
    // silence. Windows inside an on or off half second (their neighbours
    // alike) are checked; those across an edge are partly both.
    let wins: Vec<&[i16]> = w.samples.chunks(4800).skip(5).collect();
    let levels: Vec<f64> = wins.iter().map(|w| rms_dbfs(w)).collect();
    let (mut on, mut off) = (0, 0);
    for i in 1..levels.len().saturating_sub(1) {
        let around = &levels[i - 1..=i + 1];
        if around.iter().all(|&l| l > -26.0) {
            let share = tone_share(wins[i], 48000, 440.0);
            let level = levels[i];
            assert!(
                share > 0.9 && (-25.0..-21.0).contains(&level),
                "window {i}: share {share}, {level} dBFS"
            );
            on += 1;
        } else if around.iter().all(|&l| l < -60.0) {
            off += 1;
        }
    }
    eprintln!("audio test tone: {on} windows of 440 Hz, {off} silent");
    assert!(on >= 6 && off >= 6, "{on} on, {off} off: {levels:?}");
}

/// SRTP (SDES, mandatory on both phones): the call is encrypted and the
/// tones still cross; a phone without SRTP refuses a mandatory offer.
#[test]
fn srtp_mandatory_call_carries_audio_and_a_plain_phone_refuses_it() {
    let dir = TestDir::new("audio-srtp");
    let (a_in, b_in) = (dir.file("a-in.wav"), dir.file("b-in.wav"));
    let (a_out, b_out) = (dir.file("a-out.wav"), dir.file("b-out.wav"));
    write_tone(&a_in, 700.0, 8000, 1);
    write_tone(&b_in, 1100.0, 8000, 1);
    let (pa, pb, pc) = (free_udp_port(), free_udp_port(), free_udp_port());
    let a = Phone::start(&config_srtp(pa, "PCMU", &a_in, &a_out, "mandatory"));
    let b = Phone::start(&config_srtp(pb, "PCMU", &b_in, &b_out, "optional"));
    let c = Phone::start(&config_srtp(
        pc,
        "PCMU",
        &b_in,
        &dir.file("c-out.wav"),
        "off",
    ));

    // A (mandatory) → C (off): C cannot answer RTP/SAVP and says 488.
    a.cmd(json!({"cmd": "call", "target": format!("sip:c@127.0.0.1:{pc}")}));
    let s = a
        .wait_for(|s| s["calls"][0]["state"] == "ended", FIVE_S)
        .unwrap();
    assert_eq!(s["calls"][0]["status_code"], json!(488), "{s:#}");
    assert!(
        c.status()["calls"]
            .as_array()
            .is_none_or(|c| c.iter().all(|c| c["state"] == "ended"))
    );

    // A (mandatory) → B (optional): encrypted, and both hear each other.
    call_and_answer(&a, &b, pb);
    std::thread::sleep(Duration::from_secs(2));
    let s = a
        .wait_for(
            |s| s["calls"][1]["media"]["packets_received"].as_u64() > Some(50),
            FIVE_S,
        )
        .unwrap();
    let m = &s["calls"][1]["media"];
    assert_eq!(
        (m["srtp"].clone(), m["srtp_failures"].clone()),
        (json!(true), json!(0)),
        "{m:#}"
    );
    a.cmd(json!({"cmd": "hangup", "call": s["calls"][1]["id"]}));
    b.wait_for(|s| s["calls"][0]["state"] == "ended", FIVE_S)
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let (share_a, _, _) = heard(&a_out, 1100.0);
    let (share_b, _, _) = heard(&b_out, 700.0);
    assert!(
        share_a > 0.5 && share_b > 0.5,
        "SRTP audio: A {share_a}, B {share_b}"
    );
}

/// Mute is local: A's microphone goes silent at B, A still hears B, and
/// RTP keeps flowing (no re-INVITE, no one-way-audio warning at B).
#[test]
fn mute_silences_the_microphone_only() {
    let dir = TestDir::new("audio-mute");
    let (a_in, b_in) = (dir.file("a-in.wav"), dir.file("b-in.wav"));
    let (a_out, b_out) = (dir.file("a-out.wav"), dir.file("b-out.wav"));
    write_tone(&a_in, 700.0, 8000, 1);
    write_tone(&b_in, 1100.0, 8000, 1);
    let (pa, pb) = (free_udp_port(), free_udp_port());
    let a = Phone::start(&config(pa, "PCMU", &a_in, &a_out));
    let b = Phone::start(&config(pb, "PCMU", &b_in, &b_out));
    call_and_answer(&a, &b, pb);
    // Mute as soon as A's media runs (the first half second, skipped below,
    // may still carry the tone).
    a.wait_for(|s| s["calls"][0]["media"].is_object(), FIVE_S)
        .unwrap();
    let r = a.cmd(json!({"cmd": "mute", "on": true}));
    assert_eq!(r["muted"], json!(true));
    std::thread::sleep(Duration::from_secs(2));
    let s = b
        .wait_for(
            |s| s["calls"][0]["media"]["packets_received"].as_u64() > Some(50),
            FIVE_S,
        )
        .unwrap();
    assert!(
        s["calls"][0]["media"]["warning"].is_null(),
        "RTP keeps flowing while muted: {s:#}"
    );
    assert_eq!(a.status()["calls"][0]["muted"], json!(true));
    a.cmd(json!({"cmd": "hangup"}));
    b.wait_for(|s| s["calls"][0]["state"] == "ended", FIVE_S)
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let (_, b_level, _) = heard(&b_out, 700.0);
    let (a_share, a_level, _) = heard(&a_out, 1100.0);
    eprintln!(
        "muted: B hears {b_level:.1} dBFS; A hears B's tone share {a_share:.3} at {a_level:.1} dBFS"
    );
    assert!(b_level < -50.0, "B still hears A: {b_level} dBFS");
    assert!(a_share > 0.5 && a_level > -30.0);
}

/// DTMF between two phones: digits typed at A arrive at B as RFC 4733
/// events and show in B's status, in order.
#[test]
fn dtmf_digits_reach_the_far_end() {
    let dir = TestDir::new("audio-dtmf");
    let (a_in, b_in) = (dir.file("a-in.wav"), dir.file("b-in.wav"));
    write_tone(&a_in, 700.0, 8000, 1);
    write_tone(&b_in, 1100.0, 8000, 1);
    let (pa, pb) = (free_udp_port(), free_udp_port());
    let a = Phone::start(&config(pa, "PCMU", &a_in, &dir.file("a-out.wav")));
    let b = Phone::start(&config(pb, "PCMU", &b_in, &dir.file("b-out.wav")));
    call_and_answer(&a, &b, pb);
    a.wait_for(|s| s["calls"][0]["media"].is_object(), FIVE_S)
        .unwrap();
    let r = a.cmd(json!({"cmd": "dtmf", "digits": "1234567890*#"}));
    assert_eq!(r["digits"], json!("1234567890*#"));
    let s = b
        .wait_for(
            |s| s["calls"][0]["media"]["dtmf_received"] == "1234567890*#",
            FIVE_S,
        )
        .unwrap();
    assert!(s["calls"][0]["media"]["warning"].is_null());
    assert!(a.try_ctl(&json!({"cmd": "dtmf", "digits": "12x"})).unwrap()["ok"] == json!(false));
    a.cmd(json!({"cmd": "hangup"}));
}

/// The ring device rings with the incoming call (440 + 480 Hz cadence),
/// stops when the agent silences it, starts again for the next call, and
/// stops at the answer. The ring goes to its own device, not the call's.
#[test]
fn incoming_calls_ring_the_ring_device_until_answered_or_ignored() {
    let dir = TestDir::new("ring");
    let ring = dir.file("ring.wav");
    let (pa, pb) = (free_udp_port(), free_udp_port());
    let a = Phone::start(&format!(
        "[sip]\nlisten_udp = \"127.0.0.1:{pa}\"\n\n[audio]\ninput = \"null\"\noutput = \"null\"\nring = \"file:{}\"\n",
        ring.display()
    ));
    let b = Phone::start(&format!(
        "[sip]\nlisten_udp = \"127.0.0.1:{pb}\"\n\n[audio]\ninput = \"null\"\noutput = \"null\"\n"
    ));
    let ring_len = || Wav::read(&ring).map(|w| w.samples.len()).unwrap_or(0);
    let stopped = |what: &str| {
        std::thread::sleep(Duration::from_millis(300));
        let n = ring_len();
        std::thread::sleep(Duration::from_millis(600));
        assert_eq!(ring_len(), n, "the ring stops when {what}");
    };

    b.cmd(json!({"cmd": "call", "target": format!("sip:a@127.0.0.1:{pa}")}));
    a.wait_for(|s| s["calls"][0]["state"] == "ringing", FIVE_S)
        .unwrap();
    std::thread::sleep(Duration::from_millis(1200));
    let w = Wav::read(&ring).unwrap();
    assert!(
        w.samples.len() >= (w.sample_rate / 2) as usize,
        "{} samples",
        w.samples.len()
    );
    let share =
        tone_share(&w.samples, w.sample_rate, 440.0) + tone_share(&w.samples, w.sample_rate, 480.0);
    assert!(share > 0.8, "440+480 Hz ring, share {share}");
    assert!(
        rms_dbfs(&w.samples) > -25.0,
        "{} dBFS",
        rms_dbfs(&w.samples)
    );

    a.cmd(json!({"cmd": "ignore"}));
    stopped("the agent ignores the call");
    b.cmd(json!({"cmd": "hangup"}));
    a.wait_for(
        |s| {
            s["calls"]
                .as_array()
                .is_none_or(|c| c.iter().all(|x| x["state"] == "ended"))
        },
        FIVE_S,
    )
    .unwrap();

    b.cmd(json!({"cmd": "call", "target": format!("sip:a@127.0.0.1:{pa}")}));
    a.wait_for(
        |s| {
            s["calls"]
                .as_array()
                .is_some_and(|c| c.iter().any(|x| x["state"] == "ringing"))
        },
        FIVE_S,
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(600));
    let again = Wav::read(&ring).unwrap();
    assert!(
        tone_share(&again.samples, again.sample_rate, 440.0) > 0.3,
        "the next call rings again"
    );
    a.cmd(json!({"cmd": "answer"}));
    stopped("the call is answered");
}

/// Gains: A's microphone gain from its config lowers what B hears; B's
/// speaker gain changed mid-call with `ctl gain` lowers it further from then
/// on; out-of-range values are refused.
#[test]
fn input_gain_from_config_and_output_gain_from_ctl_change_the_level() {
    let dir = TestDir::new("audio-gain");
    let (a_in, b_in) = (dir.file("a-in.wav"), dir.file("b-in.wav"));
    let (a_out, b_out) = (dir.file("a-out.wav"), dir.file("b-out.wav"));
    write_tone(&a_in, 700.0, 8000, 1);
    write_tone(&b_in, 1100.0, 8000, 1);
    let (pa, pb) = (free_udp_port(), free_udp_port());
    let a_cfg = config(pa, "PCMU", &a_in, &a_out).replace(
        "echo_cancellation = false\n",
        "echo_cancellation = false\ninput_gain_db = -12\n",
    );
    let a = Phone::start(&a_cfg);
    let b = Phone::start(&config(pb, "PCMU", &b_in, &b_out));
    call_and_answer(&a, &b, pb);
    b.wait_for(|s| s["calls"][0]["media"].is_object(), FIVE_S)
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let r = b.cmd(json!({"cmd": "gain", "output_db": -6.0}));
    assert_eq!(r["output_db"], json!(-6.0), "{r}");
    assert_eq!(r["input_db"], json!(0.0), "{r}");
    let r = b.ctl(json!({"cmd": "gain", "input_db": 25.0}));
    assert_eq!(r["ok"], json!(false), "out of range is refused: {r}");
    assert!(r["error"].as_str().unwrap_or("").contains("outside"), "{r}");
    std::thread::sleep(Duration::from_millis(1500));
    a.cmd(json!({"cmd": "hangup"}));
    b.wait_for(|s| s["calls"][0]["state"] == "ended", FIVE_S)
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let w = Wav::read(&b_out).unwrap();
    let rate = w.sample_rate as usize;
    let n = w.samples.len();
    assert!(n > 3 * rate, "B played {n} samples");
    // The tone alone is -15.2 dBFS RMS (amplitude 8000).
    let before = rms_dbfs(&w.samples[rate / 2..rate * 5 / 4]);
    let after = rms_dbfs(&w.samples[n - rate..n - rate / 4]);
    let (share, _, _) = heard(&b_out, 700.0);
    let (_, a_level, _) = heard(&a_out, 1100.0);
    eprintln!(
        "gain: B hears {before:.1} dBFS, then {after:.1} dBFS (tone share {share:.2}); A hears {a_level:.1} dBFS"
    );
    assert!(share > 0.5, "B hears A's tone: {share}");
    assert!(
        (before + 27.2).abs() < 1.5,
        "A's -12 dB microphone: {before}"
    );
    assert!((after + 33.2).abs() < 1.5, "and B's -6 dB speaker: {after}");
    assert!(
        (a_level + 15.2).abs() < 1.5,
        "A's speaker untouched: {a_level}"
    );
}

/// An admin who locks `audio.input_gain_db` in the system file keeps its
/// value: `ctl gain` refuses to change it but may change the speaker's.
#[test]
fn ctl_gain_respects_the_admins_lock() {
    let dir = TestDir::new("gain-lock");
    let system = dir.file("system.toml");
    std::fs::write(
        &system,
        "[lock]\nkeys = [\"audio.input_gain_db\"]\n\n[audio]\ninput_gain_db = -3\n",
    )
    .unwrap();
    let phone = Phone::start_with_env(
        &format!(
            "[sip]\nlisten_udp = \"127.0.0.1:{}\"\n\n[audio]\ninput = \"null\"\noutput = \"null\"\n",
            free_udp_port()
        ),
        &[("SOFTLINE_SYSTEM_CONFIG", system.display().to_string())],
    );
    let r = phone.cmd(json!({"cmd": "gain"}));
    assert_eq!(r, json!({"input_db": -3.0, "output_db": 0.0}));
    let r = phone.ctl(json!({"cmd": "gain", "input_db": 0.0}));
    assert_eq!(r["ok"], json!(false), "{r}");
    assert!(r["error"].as_str().unwrap_or("").contains("locked"), "{r}");
    let r = phone.cmd(json!({"cmd": "gain", "output_db": -6.0}));
    assert_eq!(r, json!({"input_db": -3.0, "output_db": -6.0}));
}

/// Hearing protection in the real playout path: a full-scale tone from the
/// far end reaches the speaker file at most at the limiter's ceiling
/// (-6 dBFS by default), still as the tone; with `limiter = false` it
/// arrives at full scale.
#[test]
fn a_full_scale_tone_is_limited_at_the_speaker() {
    let peak_heard = |limiter: bool| -> (f64, f64) {
        let dir = TestDir::new("audio-limiter");
        let (a_in, b_in) = (dir.file("a-in.wav"), dir.file("b-in.wav"));
        let (a_out, b_out) = (dir.file("a-out.wav"), dir.file("b-out.wav"));
        let loud = Wav {
            sample_rate: 8000,
            samples: sine(1000.0, 8000, 32000.0, 8000),
        };
        std::fs::write(&a_in, loud.to_bytes()).unwrap();
        write_tone(&b_in, 1100.0, 8000, 1);
        let (pa, pb) = (free_udp_port(), free_udp_port());
        let a = Phone::start(&config(pa, "PCMU", &a_in, &a_out));
        let b_cfg = config(pb, "PCMU", &b_in, &b_out).replace(
            "echo_cancellation = false\n",
            &format!("echo_cancellation = false\nlimiter = {limiter}\n"),
        );
        let b = Phone::start(&b_cfg);
        call_and_answer(&a, &b, pb);
        b.wait_for(|s| s["calls"][0]["media"].is_object(), FIVE_S)
            .unwrap();
        std::thread::sleep(Duration::from_millis(2000));
        a.cmd(json!({"cmd": "hangup"}));
        b.wait_for(|s| s["calls"][0]["state"] == "ended", FIVE_S)
            .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let (share, _, _) = heard(&b_out, 1000.0);
        let w = Wav::read(&b_out).unwrap();
        let peak = w
            .samples
            .iter()
            .map(|s| s.unsigned_abs())
            .max()
            .unwrap_or(0);
        let peak_dbfs = 20.0 * (f64::from(peak) / 32768.0).log10();
        (share, peak_dbfs)
    };
    let (share_on, peak_on) = peak_heard(true);
    let (share_off, peak_off) = peak_heard(false);
    eprintln!(
        "limiter: on {peak_on:.2} dBFS peak (share {share_on:.3}), off {peak_off:.2} dBFS (share {share_off:.3})"
    );
    assert!(share_on > 0.9 && share_off > 0.9, "{share_on} {share_off}");
    assert!(peak_on <= -5.9, "limited peak {peak_on} dBFS");
    assert!(peak_off > -1.0, "unlimited peak {peak_off} dBFS");
}
