//! Two-way audio between a headless Softline and a real baresip (1.0.0),
//! verified by signal: Softline plays 700 Hz, baresip plays 1100 Hz, and
//! each tone must be found in what the other side decoded (Softline's
//! `file:` output, baresip's `sndfile` dump of its decoder output).
//!
//! Per codec (PCMU, PCMA, G722, Opus): Softline calls baresip (which
//! auto-answers) and hangs up; baresip calls Softline (answered over ctl)
//! and hangs up. One more call goes through a SIP relay that rewrites the
//! port in baresip's SDP answer to a decoy, so Softline only hears baresip
//! if it latches onto the address RTP really comes from.
//!
//! SRTP (SDES) calls, both directions, against baresip's `srtp` module
//! (`mediaenc=srtp-mand`, and best-effort `srtp`): the media must be
//! encrypted, no packet may fail SRTP once media flows, and both tones
//! must get through; a policy mismatch must end in 488. The AES-GCM suites
//! (RFC 7714) too: a relay leaves only one suite in Softline's offer.
//!
//! One call goes through a real Kamailio, both phones registered there. G.722
//! and Opus also carry tones above 4 kHz both ways (wideband end to end).
#![cfg(unix)]
#![allow(clippy::disallowed_methods)]

mod support;

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::{Value, json};
use softline::audio::wav::Wav;
use softline::media::tone::{rms_dbfs, sine, tone_share};
use support::baresip::Baresip;
use support::{Phone, TestDir, free_udp_block, free_udp_port};

const FIVE_S: Duration = Duration::from_secs(5);
/// Softline's tone and baresip's.
const SOFTLINE_HZ: f64 = 700.0;
const BARESIP_HZ: f64 = 1100.0;

/// A softline config: one codec, the tone looped as input, the played-out
/// audio to `output`, RTP ports from a free block, the SIP trace on.
/// `srtp` is the `[media] srtp` policy (`off`, `optional`, `mandatory`).
fn softline_config(port: u16, codec: &str, srtp: &str, input: &Path, output: &Path) -> String {
    let rtp = free_udp_block(10);
    format!(
        "[sip]\nlisten_udp = \"127.0.0.1:{port}\"\n\n\
         [audio]\ninput = \"loop:{}\"\noutput = \"file:{}\"\n\
         echo_cancellation = false\nnoise_suppression = false\n\n\
         [media]\ncodecs = [\"{codec}\"]\nrtp_port_min = {rtp}\nrtp_port_max = {}\n\
         srtp = \"{srtp}\"\n\n\
         [trace]\nenabled = true\ndir = \"{{dir}}\"\n",
        input.display(),
        output.display(),
        rtp + 9,
    )
}

/// Softline (its input tone written into `dir`) with only `codec`.
fn start_softline(dir: &TestDir, codec: &str) -> (Phone, u16, std::path::PathBuf) {
    start_softline_srtp(dir, codec, "off")
}

/// As [`start_softline`], with the `[media] srtp` policy `srtp`.
fn start_softline_srtp(dir: &TestDir, codec: &str, srtp: &str) -> (Phone, u16, std::path::PathBuf) {
    start_softline_with(dir, codec, srtp, (SOFTLINE_HZ, 8000), "")
}

/// Softline playing a tone of (Hz, sample rate) from a file it loops, with
/// `extra` appended to its config (e.g. an account); (phone, SIP port,
/// played-out file).
fn start_softline_with(
    dir: &TestDir,
    codec: &str,
    srtp: &str,
    (tone_hz, rate): (f64, u32),
    extra: &str,
) -> (Phone, u16, std::path::PathBuf) {
    let input = dir.file("softline-in.wav");
    let output = dir.file("softline-out.wav");
    let w = Wav {
        sample_rate: rate,
        samples: sine(tone_hz, rate, 8000.0, rate as usize),
    };
    std::fs::write(&input, w.to_bytes()).unwrap();
    let port = free_udp_port();
    let config = format!(
        "{}\n{extra}",
        softline_config(port, codec, srtp, &input, &output)
    );
    let phone = Phone::start(&config);
    (phone, port, output)
}

/// (share of `freq`, level in dBFS, sample rate) in a WAV file, past its
/// first half second (call set-up, jitter buffer filling).
fn heard(path: &Path, freq: f64) -> (f64, f64, u32) {
    let w = Wav::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let skip = (w.sample_rate / 2) as usize;
    let tail = w.samples.get(skip..).unwrap_or_default();
    assert!(
        tail.len() > w.sample_rate as usize,
        "{} holds only {} samples at {} Hz",
        path.display(),
        w.samples.len(),
        w.sample_rate
    );
    (
        tone_share(tail, w.sample_rate, freq),
        rms_dbfs(tail),
        w.sample_rate,
    )
}

/// Both tones arrived, and neither side hears its own tone.
fn check_audio(label: &str, softline_out: &Path, baresip: &Baresip) {
    let dump = baresip.decoded_dump();
    let (share_s, level_s, rate_s) = heard(softline_out, BARESIP_HZ);
    let (share_b, level_b, rate_b) = heard(&dump, SOFTLINE_HZ);
    eprintln!(
        "{label}: Softline hears {BARESIP_HZ} Hz share {share_s:.3} at {level_s:.1} dBFS ({rate_s} Hz); \
         baresip hears {SOFTLINE_HZ} Hz share {share_b:.3} at {level_b:.1} dBFS ({rate_b} Hz)"
    );
    assert!(
        share_s > 0.5 && level_s > -30.0,
        "{label}: Softline does not hear baresip's tone: share {share_s}, {level_s} dBFS"
    );
    assert!(
        share_b > 0.5 && level_b > -30.0,
        "{label}: baresip does not hear Softline's tone: share {share_b}, {level_b} dBFS ({})",
        dump.display()
    );
    assert!(heard(softline_out, SOFTLINE_HZ).0 < 0.1, "{label}: echo");
    assert!(heard(&dump, BARESIP_HZ).0 < 0.1, "{label}: echo");
}

/// Wait for the call's media to have carried > 50 packets each way; the
/// media object. Checks the codec and that no media warning is raised.
fn media_after_two_seconds(phone: &Phone, codec: &str) -> Value {
    std::thread::sleep(Duration::from_secs(2));
    let status = phone
        .wait_for(
            |s| {
                let m = &s["calls"][0]["media"];
                m["packets_received"].as_u64() > Some(50) && m["packets_sent"].as_u64() > Some(50)
            },
            FIVE_S,
        )
        .unwrap();
    let media = status["calls"][0]["media"].clone();
    assert_eq!(
        media["codec"].as_str().map(str::to_ascii_lowercase),
        Some(codec.to_ascii_lowercase()),
        "{media:#}"
    );
    assert!(media["warning"].is_null(), "{media:#}");
    media
}

fn baresip_decoder_is(baresip: &Baresip, codec: &str) {
    let log = baresip.log_text().to_ascii_lowercase();
    let want = format!("set audio decoder: {} ", codec.to_ascii_lowercase());
    assert!(
        log.contains(&want),
        "baresip did not use {codec}:\n{}",
        baresip.log_tail()
    );
}

/// Softline hangs up; both calls end and their output files are finished.
fn softline_hangs_up(phone: &Phone, baresip: &Baresip) {
    phone.cmd(json!({"cmd": "hangup"}));
    phone
        .wait_for(|s| s["calls"][0]["state"] == "ended", FIVE_S)
        .unwrap();
    baresip.wait_call_ended(FIVE_S).unwrap();
    std::thread::sleep(Duration::from_millis(300)); // output files finished
}

/// (a) Softline calls baresip, baresip auto-answers, Softline hangs up.
fn softline_calls_baresip(codec: &str) {
    let dir = TestDir::new(&format!("bs-out-{codec}"));
    let baresip = Baresip::start(codec, BARESIP_HZ);
    let (phone, _, output) = start_softline(&dir, codec);
    phone.cmd(json!({"cmd": "call", "target": baresip.uri()}));
    phone
        .wait_for(|s| s["calls"][0]["state"] == "connected", FIVE_S)
        .unwrap();
    let media = media_after_two_seconds(&phone, codec);
    assert_eq!(media["latched"], json!(false), "{media:#}");
    softline_hangs_up(&phone, &baresip);
    baresip_decoder_is(&baresip, codec);
    check_audio(&format!("{codec} Softline→baresip"), &output, &baresip);
}

/// (b) baresip calls Softline, Softline answers over ctl, baresip hangs up.
fn baresip_calls_softline(codec: &str) {
    let dir = TestDir::new(&format!("bs-in-{codec}"));
    let baresip = Baresip::start(codec, BARESIP_HZ);
    let (phone, port, output) = start_softline(&dir, codec);
    baresip.dial(&format!("sip:softline@127.0.0.1:{port}"));
    phone
        .wait_for(
            |s| s["calls"][0]["state"] == "ringing" && s["calls"][0]["direction"] == "incoming",
            FIVE_S,
        )
        .unwrap();
    phone.cmd(json!({"cmd": "answer"}));
    phone
        .wait_for(|s| s["calls"][0]["state"] == "connected", FIVE_S)
        .unwrap();
    baresip
        .wait_log("Call established", FIVE_S)
        .unwrap_or_else(|e| panic!("{e}"));
    let media = media_after_two_seconds(&phone, codec);
    assert_eq!(media["latched"], json!(false), "{media:#}");
    baresip.hangup();
    let status = phone
        .wait_for(|s| s["calls"][0]["state"] == "ended", FIVE_S)
        .unwrap();
    assert_eq!(
        status["calls"][0]["cause"],
        json!("remote party hung up"),
        "{status:#}"
    );
    baresip.wait_call_ended(FIVE_S).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    baresip_decoder_is(&baresip, codec);
    check_audio(&format!("{codec} baresip→Softline"), &output, &baresip);
}

#[test]
fn softline_calls_baresip_pcmu() {
    softline_calls_baresip("PCMU");
}

#[test]
fn softline_calls_baresip_pcma() {
    softline_calls_baresip("PCMA");
}

#[test]
fn softline_calls_baresip_g722() {
    softline_calls_baresip("G722");
}

#[test]
fn softline_calls_baresip_opus() {
    softline_calls_baresip("opus");
}

#[test]
fn baresip_calls_softline_pcmu() {
    baresip_calls_softline("PCMU");
}

#[test]
fn baresip_calls_softline_pcma() {
    baresip_calls_softline("PCMA");
}

#[test]
fn baresip_calls_softline_g722() {
    baresip_calls_softline("G722");
}

#[test]
fn baresip_calls_softline_opus() {
    baresip_calls_softline("opus");
}

// ---------------------------------------------------------------------------
// (c) Latching

/// A UDP relay for the INVITE transaction, like a NAT with a broken ALG:
/// what Softline sends to `addr()` goes to baresip, and baresip's answers
/// come back with the `m=audio` port of their SDP replaced by `decoy`'s.
/// In-dialog requests (ACK, BYE) go directly to the Contacts; RTP never
/// passes here. The decoy ports (RTP, RTCP) count what reaches them.
struct SipRelay {
    front: SocketAddr,
    decoy_port: u16,
    /// The port baresip really signalled (and sends RTP from).
    real_rtp_port: Arc<Mutex<Option<u16>>>,
    decoy_packets: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl SipRelay {
    fn start(baresip: SocketAddr) -> SipRelay {
        let front = UdpSocket::bind("127.0.0.1:0").unwrap();
        let back = UdpSocket::bind("127.0.0.1:0").unwrap();
        let decoy_port = free_udp_block(2);
        let decoys = [
            UdpSocket::bind(("127.0.0.1", decoy_port)).unwrap(),
            UdpSocket::bind(("127.0.0.1", decoy_port + 1)).unwrap(),
        ];
        let stop = Arc::new(AtomicBool::new(false));
        let real_rtp_port = Arc::new(Mutex::new(None));
        let decoy_packets = Arc::new(AtomicU64::new(0));
        let front_addr = front.local_addr().unwrap();
        let tick = Some(Duration::from_millis(20));
        for s in [&front, &back] {
            s.set_read_timeout(tick).unwrap();
        }
        let mut threads = Vec::new();
        {
            let real = real_rtp_port.clone();
            threads.push(relay_sip(
                front,
                back,
                baresip,
                stop.clone(),
                |text| text,
                move |text| {
                    let (text, port) = rewrite_audio_port(&text, decoy_port);
                    if let Some(port) = port {
                        *real.lock().unwrap() = Some(port);
                    }
                    text
                },
            ));
        }
        for decoy in decoys {
            decoy.set_read_timeout(tick).unwrap();
            let (stop, count) = (stop.clone(), decoy_packets.clone());
            threads.push(std::thread::spawn(move || {
                let mut buf = vec![0u8; 2048];
                while !stop.load(Ordering::Relaxed) {
                    if decoy.recv_from(&mut buf).is_ok() {
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        }
        SipRelay {
            front: front_addr,
            decoy_port,
            real_rtp_port,
            decoy_packets,
            stop,
            threads,
        }
    }
}

/// Relay SIP until `stop`: what Softline sends to `front` goes to `baresip`
/// from `back` through `forward`, what comes back to `back` goes to
/// Softline through `backward`. `front` and `back` need a read timeout.
fn relay_sip(
    front: UdpSocket,
    back: UdpSocket,
    baresip: SocketAddr,
    stop: Arc<AtomicBool>,
    forward: impl Fn(String) -> String + Send + 'static,
    backward: impl Fn(String) -> String + Send + 'static,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut softline: Option<SocketAddr> = None;
        let mut buf = vec![0u8; 65536];
        while !stop.load(Ordering::Relaxed) {
            if let Ok((n, from)) = front.recv_from(&mut buf) {
                softline = Some(from);
                let text = forward(String::from_utf8_lossy(&buf[..n]).into_owned());
                let _ = back.send_to(text.as_bytes(), baresip);
            }
            if let Ok((n, _)) = back.recv_from(&mut buf) {
                let text = backward(String::from_utf8_lossy(&buf[..n]).into_owned());
                if let Some(to) = softline {
                    let _ = front.send_to(text.as_bytes(), to);
                }
            }
        }
    })
}

/// Keep only the `a=crypto` lines of `suite` in a SIP message's SDP and fix
/// Content-Length.
fn only_suite(msg: &str, suite: &str) -> String {
    let Some((head, body)) = msg.split_once("\r\n\r\n") else {
        return msg.to_owned();
    };
    let body: String = body
        .split_inclusive("\r\n")
        .filter(|l| !l.starts_with("a=crypto:") || l.contains(suite))
        .collect();
    let head = support::set_content_length(head, body.len());
    format!("{head}\r\n\r\n{body}")
}

impl Drop for SipRelay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Replace the port of the `m=audio` line in a SIP message's SDP body and
/// fix Content-Length; the message and the port that was there.
fn rewrite_audio_port(msg: &str, new_port: u16) -> (String, Option<u16>) {
    let Some((head, body)) = msg.split_once("\r\n\r\n") else {
        return (msg.to_owned(), None);
    };
    let mut old = None;
    let body: String = body
        .split_inclusive("\r\n")
        .map(|line| {
            if let Some(rest) = line.strip_prefix("m=audio ")
                && let Some((port, tail)) = rest.split_once(' ')
            {
                old = port.parse::<u16>().ok();
                return format!("m=audio {new_port} {tail}");
            }
            line.to_owned()
        })
        .collect();
    if old.is_none() {
        return (msg.to_owned(), None);
    }
    let head = support::set_content_length(head, body.len());
    (format!("{head}\r\n\r\n{body}"), old)
}

/// (c) baresip's answer signals a port it does not send from (the relay
/// rewrote it); Softline must latch onto where RTP comes from, and both
/// tones must still get through.
#[test]
fn softline_latches_onto_baresip_rtp_source() {
    let codec = "PCMU";
    let dir = TestDir::new("bs-latch");
    let baresip = Baresip::start(codec, BARESIP_HZ);
    let relay = SipRelay::start(([127, 0, 0, 1], baresip.port).into());
    let (phone, _, output) = start_softline(&dir, codec);
    phone.cmd(json!({"cmd": "call", "target": format!("sip:bs@{}", relay.front)}));
    phone
        .wait_for(|s| s["calls"][0]["state"] == "connected", FIVE_S)
        .unwrap();
    let real = relay
        .real_rtp_port
        .lock()
        .unwrap()
        .expect("the relay saw baresip's SDP answer");
    assert_ne!(real, relay.decoy_port);
    let media = media_after_two_seconds(&phone, codec);
    assert_eq!(media["latched"], json!(true), "{media:#}");
    assert_eq!(
        media["remote"],
        json!(format!("127.0.0.1:{real}")),
        "{media:#}"
    );
    softline_hangs_up(&phone, &baresip);
    let decoy = relay.decoy_packets.load(Ordering::Relaxed);
    eprintln!(
        "latching: signalled 127.0.0.1:{}, RTP from 127.0.0.1:{real}; {decoy} packets went to the decoy before latching",
        relay.decoy_port
    );
    // Before the first packet from baresip, Softline sends to the
    // signalled (decoy) address; afterwards nothing more goes there.
    assert!(decoy < 25, "{decoy} packets went to the signalled address");
    check_audio("PCMU latched", &output, &baresip);
}

#[test]
fn rewrite_audio_port_fixes_content_length() {
    let body = "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 36042 RTP/AVP 0\r\n";
    let msg = format!(
        "SIP/2.0 200 OK\r\nCall-ID: x\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let (out, old) = rewrite_audio_port(&msg, 7);
    assert_eq!(old, Some(36042));
    let new_body = "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 7 RTP/AVP 0\r\n";
    assert!(out.ends_with(&format!(
        "Content-Length: {}\r\n\r\n{new_body}",
        new_body.len()
    )));
}

// ---------------------------------------------------------------------------
// (d) SRTP with SDES keys (RFC 4568) against baresip's `srtp` module

/// Who sends the INVITE.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Caller {
    Softline,
    Baresip,
}

/// The SDP lines that matter for SDES in Softline's SIP trace (`m=`,
/// `a=crypto`; Softline redacts its own keys there), one per line.
fn sdes_lines(trace: &str) -> String {
    trace
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("m=audio") || l.starts_with("a=crypto:"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// baresip 1.0.0 opens the NAT pinhole with an RTCP APP packet
/// (`PING`/`PONG`) each time it starts a stream (`stream_start`, unless a
/// medianat module is used), and the first start comes before its SRTP
/// context exists: one RTCP packet in the clear right after the 200 OK,
/// then the same packet as SRTCP. (At hang-up it also sends its RTCP
/// BYE/SDES in the clear.) Softline rightly refuses the clear one (RFC 3711
/// §3.4: SRTCP is always authenticated) and counts it in `srtp_failures`,
/// so at most this many failures are baresip's and the rest of the call
/// must add none.
const BARESIP_CLEAR_RTCP_AT_START: u64 = 1;

/// SRTP failures once the first ten packets came: baresip's clear RTCP
/// from before its SRTP was up (see [`BARESIP_CLEAR_RTCP_AT_START`]).
fn early_srtp_failures(phone: &Phone) -> u64 {
    phone
        .wait_for(
            |s| s["calls"][0]["media"]["packets_received"].as_u64() > Some(10),
            FIVE_S,
        )
        .unwrap()["calls"][0]["media"]["srtp_failures"]
        .as_u64()
        .unwrap()
}

/// One SRTP call with Softline's `[media] srtp = softline_srtp` and
/// baresip's `mediaenc=baresip_mediaenc`; asserts that the media is
/// encrypted on both sides, that once media flows not one packet fails
/// SRTP, and that both tones get through (the thresholds of the plain
/// calls).
fn srtp_call(caller: Caller, codec: &str, softline_srtp: &str, baresip_mediaenc: &str) {
    let label = srtp_label(caller, codec, softline_srtp, baresip_mediaenc);
    let dir = TestDir::new(&format!("bs-srtp-{codec}"));
    let baresip = Baresip::start_with(codec, BARESIP_HZ, Some(baresip_mediaenc));
    let (phone, port, output) = start_softline_srtp(&dir, codec, softline_srtp);
    let connected = |phone: &Phone| {
        phone
            .wait_for(|s| s["calls"][0]["state"] == "connected", FIVE_S)
            .unwrap_or_else(|e| {
                panic!(
                    "{label}: no call: {e}\n--- SDES lines in the trace ---\n{}",
                    sdes_lines(&phone.trace_text())
                )
            })
    };
    match caller {
        Caller::Softline => {
            phone.cmd(json!({"cmd": "call", "target": baresip.uri()}));
            connected(&phone);
        }
        Caller::Baresip => {
            baresip.dial(&format!("sip:softline@127.0.0.1:{port}"));
            phone
                .wait_for(
                    |s| {
                        s["calls"][0]["state"] == "ringing"
                            && s["calls"][0]["direction"] == "incoming"
                    },
                    FIVE_S,
                )
                .unwrap();
            phone.cmd(json!({"cmd": "answer"}));
            connected(&phone);
            baresip
                .wait_log("Call established", FIVE_S)
                .unwrap_or_else(|e| panic!("{e}"));
        }
    }
    let early = early_srtp_failures(&phone);
    let media = media_after_two_seconds(&phone, codec);
    let failures = media["srtp_failures"].as_u64().unwrap();
    eprintln!(
        "{label}: SDES lines in Softline's trace (offer, answer):\n{}",
        sdes_lines(&phone.trace_text())
    );
    assert_eq!(media["srtp"], json!(true), "{label}: {media:#}");
    assert!(
        early <= BARESIP_CLEAR_RTCP_AT_START,
        "{label}: {early} SRTP failures at the start: {media:#}"
    );
    assert_eq!(
        failures, early,
        "{label}: SRTP failures once media flowed: {media:#}"
    );
    assert_eq!(media["bad_packets"], json!(failures), "{label}: {media:#}");
    assert_eq!(media["packets_lost"], json!(0), "{label}: {media:#}");
    match caller {
        Caller::Softline => phone.cmd(json!({"cmd": "hangup"})),
        Caller::Baresip => {
            baresip.hangup();
            Value::Null
        }
    };
    phone
        .wait_for(|s| s["calls"][0]["state"] == "ended", FIVE_S)
        .unwrap();
    baresip.wait_call_ended(FIVE_S).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let log = baresip.log_text();
    let enabled: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("SRTP is Enabled"))
        .collect();
    eprintln!(
        "{label}: Softline sent {} / received {} packets, srtp_failures {failures} ({early} before media flowed); baresip: {enabled:?}",
        media["packets_sent"], media["packets_received"]
    );
    assert!(
        !enabled.is_empty(),
        "{label}: baresip did not enable SRTP:\n{}",
        baresip.log_tail()
    );
    assert!(
        !log.contains("srtp: failed") && !log.contains("no valid a=crypto"),
        "{label}: baresip's SRTP failed:\n{}",
        baresip.log_tail()
    );
    baresip_decoder_is(&baresip, codec);
    check_audio(&label, &output, &baresip);
}

fn srtp_label(caller: Caller, codec: &str, softline_srtp: &str, baresip_mediaenc: &str) -> String {
    format!(
        "{codec} SRTP {} (Softline {softline_srtp}, baresip {baresip_mediaenc})",
        match caller {
            Caller::Softline => "Softline→baresip",
            Caller::Baresip => "baresip→Softline",
        }
    )
}

/// A call whose SRTP policies do not meet: baresip rejects Softline's offer
/// with 488 and no media starts.
fn srtp_call_refused(softline_srtp: &str, baresip_mediaenc: &str) {
    let label = srtp_label(Caller::Softline, "PCMU", softline_srtp, baresip_mediaenc);
    let dir = TestDir::new("bs-srtp-refused");
    let baresip = Baresip::start_with("PCMU", BARESIP_HZ, Some(baresip_mediaenc));
    let (phone, _, _) = start_softline_srtp(&dir, "PCMU", softline_srtp);
    phone.cmd(json!({"cmd": "call", "target": baresip.uri()}));
    let status = phone
        .wait_for(|s| s["calls"][0]["state"] == "ended", FIVE_S)
        .unwrap();
    eprintln!(
        "{label}: {}; offer:\n{}",
        status["calls"][0]["cause"],
        sdes_lines(&phone.trace_text())
    );
    assert_eq!(
        status["calls"][0]["status_code"],
        json!(488),
        "{label}: {status:#}"
    );
    baresip
        .wait_log("no common audio codecs - rejected", FIVE_S)
        .unwrap_or_else(|e| panic!("{label}: {e}"));
}

#[test]
fn srtp_softline_calls_baresip_pcmu() {
    srtp_call(Caller::Softline, "PCMU", "mandatory", "srtp-mand");
}

#[test]
fn srtp_baresip_calls_softline_pcmu() {
    srtp_call(Caller::Baresip, "PCMU", "mandatory", "srtp-mand");
}

#[test]
fn srtp_softline_calls_baresip_g722() {
    srtp_call(Caller::Softline, "G722", "mandatory", "srtp-mand");
}

#[test]
fn srtp_baresip_calls_softline_opus() {
    srtp_call(Caller::Baresip, "opus", "mandatory", "srtp-mand");
}

/// baresip's best-effort `srtp` offers a=crypto in RTP/AVP, which is what
/// Softline's `optional` takes.
#[test]
fn srtp_baresip_best_effort_calls_softline_optional_pcmu() {
    srtp_call(Caller::Baresip, "PCMU", "optional", "srtp");
}

/// Softline's `optional` answers an RTP/SAVP offer with SRTP.
#[test]
fn srtp_baresip_mand_calls_softline_optional_pcmu() {
    srtp_call(Caller::Baresip, "PCMU", "optional", "srtp-mand");
}

/// Softline's `optional` offers RTP/AVP (with a=crypto); baresip's
/// `srtp-mand` only takes RTP/SAVP, finds no matching m-line ("no common
/// audio codecs") and answers 488. Softline does not retry with RTP/SAVP.
#[test]
fn srtp_optional_softline_is_refused_by_baresip_mand() {
    srtp_call_refused("optional", "srtp-mand");
}

/// Both phones registered at a real Kamailio (digest auth both ways):
/// Softline dials `bob` on its account, Kamailio challenges the INVITE,
/// finds baresip's binding and relays; both tones get through.
#[test]
fn softline_calls_baresip_through_kamailio() {
    use support::{Kamailio, KamailioOpts, account_toml, account0};
    let k = Kamailio::start(KamailioOpts::default());
    let baresip = Baresip::start_registered("PCMU", BARESIP_HZ, k.port, "bob", "hunter2");
    let dir = TestDir::new("bs-kamailio");
    let account = account_toml(
        "alice",
        "secret",
        &format!("127.0.0.1:{}", k.port),
        "udp",
        None,
    );
    let (phone, _, output) =
        start_softline_with(&dir, "PCMU", "off", (SOFTLINE_HZ, 8000), &account);
    phone
        .wait_for(|s| account0(s)["state"] == "registered", FIVE_S)
        .unwrap();
    phone.cmd(json!({"cmd": "call", "target": "bob"}));
    phone
        .wait_for(|s| s["calls"][0]["state"] == "connected", FIVE_S)
        .unwrap();
    media_after_two_seconds(&phone, "PCMU");
    softline_hangs_up(&phone, &baresip);
    baresip_decoder_is(&baresip, "PCMU");
    check_audio("PCMU Softline→Kamailio→baresip", &output, &baresip);
}

/// Wideband audio both ways: tones above 4 kHz, which G.711 cannot carry,
/// get through G.722 and Opus from Softline to baresip and back (Softline
/// reads a 16 kHz file; both sides' played-out audio is at 16 kHz or more).
fn wideband_both_ways(codec: &str) {
    const SOFTLINE_WB_HZ: f64 = 6000.0;
    const BARESIP_WB_HZ: f64 = 5000.0;
    let dir = TestDir::new(&format!("bs-wb-{codec}"));
    let baresip = Baresip::start(codec, BARESIP_WB_HZ);
    let (phone, _, output) = start_softline_with(&dir, codec, "off", (SOFTLINE_WB_HZ, 16000), "");
    phone.cmd(json!({"cmd": "call", "target": baresip.uri()}));
    phone
        .wait_for(|s| s["calls"][0]["state"] == "connected", FIVE_S)
        .unwrap();
    media_after_two_seconds(&phone, codec);
    softline_hangs_up(&phone, &baresip);
    let dump = baresip.decoded_dump();
    let (share_s, level_s, rate_s) = heard(&output, BARESIP_WB_HZ);
    let (share_b, level_b, rate_b) = heard(&dump, SOFTLINE_WB_HZ);
    eprintln!(
        "{codec} wideband: Softline hears {BARESIP_WB_HZ} Hz share {share_s:.3} at {level_s:.1} dBFS ({rate_s} Hz); \
         baresip hears {SOFTLINE_WB_HZ} Hz share {share_b:.3} at {level_b:.1} dBFS ({rate_b} Hz)"
    );
    assert!(rate_s >= 16000 && rate_b >= 16000, "{rate_s} / {rate_b} Hz");
    assert!(
        share_s > 0.5 && level_s > -30.0,
        "{codec}: Softline does not hear baresip's {BARESIP_WB_HZ} Hz: share {share_s}, {level_s} dBFS"
    );
    assert!(
        share_b > 0.5 && level_b > -30.0,
        "{codec}: baresip does not hear Softline's {SOFTLINE_WB_HZ} Hz: share {share_b}, {level_b} dBFS"
    );
}

#[test]
fn g722_carries_wideband_audio_both_ways() {
    wideband_both_ways("G722");
}

#[test]
fn opus_carries_wideband_audio_both_ways() {
    wideband_both_ways("opus");
}

/// The AES-GCM suites (RFC 7714) with baresip: a relay leaves only the
/// suite's key in Softline's SRTP offer; baresip must answer with it, no
/// packet may fail SRTP once media flows, and both tones get through.
fn srtp_gcm_call(suite: &'static str) {
    let codec = "PCMU";
    let dir = TestDir::new("bs-srtp-gcm");
    let baresip = Baresip::start_with(codec, BARESIP_HZ, Some("srtp-mand"));
    let (phone, _, output) = start_softline_srtp(&dir, codec, "mandatory");
    let front = UdpSocket::bind("127.0.0.1:0").unwrap();
    let back = UdpSocket::bind("127.0.0.1:0").unwrap();
    for s in [&front, &back] {
        s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    }
    let front_addr = front.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let answer = Arc::new(Mutex::new(String::new()));
    let seen = answer.clone();
    let relay = relay_sip(
        front,
        back,
        ([127, 0, 0, 1], baresip.port).into(),
        stop.clone(),
        move |text| only_suite(&text, suite),
        move |text| {
            if text.contains("a=crypto:") {
                *seen.lock().unwrap() = text.clone();
            }
            text
        },
    );
    phone.cmd(json!({"cmd": "call", "target": format!("sip:bs@{front_addr}")}));
    phone
        .wait_for(|s| s["calls"][0]["state"] == "connected", FIVE_S)
        .unwrap_or_else(|e| panic!("{suite}: no call: {e}"));
    let early = early_srtp_failures(&phone);
    let media = media_after_two_seconds(&phone, codec);
    let crypto: Vec<String> = answer
        .lock()
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("a=crypto:"))
        .map(|l| l.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
        .collect();
    eprintln!("{suite}: baresip answered {crypto:?}; media {media}");
    assert_eq!(crypto.len(), 1, "{crypto:?}");
    assert!(crypto[0].ends_with(suite), "{crypto:?}");
    assert_eq!(media["srtp"], json!(true), "{media:#}");
    assert!(early <= BARESIP_CLEAR_RTCP_AT_START, "{early}: {media:#}");
    assert_eq!(media["srtp_failures"], json!(early), "{media:#}");
    softline_hangs_up(&phone, &baresip);
    stop.store(true, Ordering::Relaxed);
    let _ = relay.join();
    check_audio(&format!("{codec} SRTP {suite}"), &output, &baresip);
}

#[test]
fn srtp_aes_128_gcm_with_baresip() {
    srtp_gcm_call("AEAD_AES_128_GCM");
}

#[test]
fn srtp_aes_256_gcm_with_baresip() {
    srtp_gcm_call("AEAD_AES_256_GCM");
}
