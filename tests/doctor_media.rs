//! The doctor's media step (`[doctor] echo_extension`: a test call through
//! Kamailio to a SIPp UAS) against the media failures it claims to detect:
//! - a peer whose RTP comes from another port than its SDP announced (a
//!   small UDP echo in the test behind SIPp's signalling) → the tone comes
//!   back thanks to latching, and the step says so with the NAT advice;
//! - a peer with no codec in common that answers 488 → the step fails with
//!   the 488 and the codec advice;
//! - a peer that answers but never sends RTP → one-way audio ("no audio
//!   received for … s") with the NAT/firewall cause, within the time limit.
#![cfg(unix)]
#![allow(clippy::disallowed_methods)]

mod support;

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Kamailio, KamailioOpts, Sipp, TestDir, account_toml};

const PW: &str = "media-doctor.pw";

/// Kamailio with `alice` and calls to `echo` relayed to `uas`.
fn kamailio(uas: &Sipp) -> Kamailio {
    Kamailio::start(KamailioOpts {
        users: vec![("alice".into(), PW.into())],
        echo_target: Some(uas.addr()),
    })
}

/// A config for `alice` at `k` with `[doctor] echo_extension = "echo"`.
fn config(dir: &TestDir, k: &Kamailio) -> PathBuf {
    let path = dir.file("softline.toml");
    let text = format!(
        "[sip]\nlisten_udp = \"127.0.0.1:0\"\nudp_keepalive_secs = 25\n\n\
         [audio]\ninput = \"null\"\noutput = \"null\"\n\n\
         [doctor]\necho_extension = \"echo\"\n\n{}",
        account_toml("alice", PW, &k.domain(), "udp", None)
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// Run `softline doctor --json`: (exit ok, checks, how long it took).
fn doctor(path: &Path) -> (bool, Vec<Value>, Duration) {
    let t0 = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_softline"))
        .arg("--config")
        .arg(path)
        .args(["doctor", "--json"])
        .output()
        .unwrap();
    let took = t0.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (
        out.status.success(),
        report.as_array().cloned().unwrap_or_default(),
        took,
    )
}

/// The `media` check, after asserting that every earlier check passed (or
/// was skipped as not applicable: TLS, microphone with `null` input).
fn media(checks: &[Value]) -> (String, String, String) {
    let names: Vec<&str> = checks.iter().filter_map(|c| c["check"].as_str()).collect();
    assert_eq!(
        names,
        [
            "config",
            "dns",
            "reachability",
            "tls",
            "options",
            "register",
            "nat",
            "microphone",
            "media"
        ],
        "{checks:?}"
    );
    for c in &checks[..8] {
        assert_ne!(c["status"], "failed", "{c}");
    }
    let m = &checks[8];
    (
        m["status"].as_str().unwrap_or("").to_string(),
        m["evidence"].as_str().unwrap_or("").to_string(),
        m["advice"].as_str().unwrap_or("").to_string(),
    )
}

/// A media peer behind NAT: RTP to `announced` (the port its SDP names) or
/// to `actual` is sent back from `actual`, to wherever it came from.
struct NatEcho {
    announced: u16,
    actual: u16,
    /// Packets that arrived on each port.
    on_announced: Arc<AtomicU64>,
    on_actual: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl NatEcho {
    fn start() -> NatEcho {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        a.set_nonblocking(true).unwrap();
        b.set_nonblocking(true).unwrap();
        let announced = a.local_addr().unwrap().port();
        let actual = b.local_addr().unwrap().port();
        let on_announced = Arc::new(AtomicU64::new(0));
        let on_actual = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (n_a, n_b, halt) = (on_announced.clone(), on_actual.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !halt.load(Ordering::Relaxed) {
                let mut idle = true;
                for (sock, count) in [(&a, &n_a), (&b, &n_b)] {
                    while let Ok((n, from)) = sock.recv_from(&mut buf) {
                        idle = false;
                        count.fetch_add(1, Ordering::Relaxed);
                        let _ = b.send_to(&buf[..n], from);
                    }
                }
                if idle {
                    std::thread::sleep(Duration::from_micros(500));
                }
            }
        });
        NatEcho {
            announced,
            actual,
            on_announced,
            on_actual,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for NatEcho {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The tone share and level the evidence reports:
/// "tone 1000 Hz back: S % of the returned energy, level L dBFS".
fn tone_back(evidence: &str) -> (f64, f64) {
    let line = evidence
        .lines()
        .find(|l| l.starts_with("tone 1000 Hz back: "))
        .unwrap_or_else(|| panic!("no tone line in {evidence}"));
    let rest = line.trim_start_matches("tone 1000 Hz back: ");
    let share: f64 = rest.split(" %").next().unwrap().parse().unwrap();
    let level: f64 = rest
        .split("level ")
        .nth(1)
        .and_then(|l| l.trim_end_matches(" dBFS").parse().ok())
        .unwrap_or(f64::NEG_INFINITY);
    (share, level)
}

#[test]
fn rtp_from_another_port_than_announced_is_latched_and_reported() {
    let echo = NatEcho::start();
    let announced = echo.announced.to_string();
    let mut uas = Sipp::uas_with(
        "uas_answer_port.xml",
        &["-key", "announced_port", &announced],
    );
    let k = kamailio(&uas);
    let dir = TestDir::new("doctor-media-latch");
    let (ok, checks, _) = doctor(&config(&dir, &k));
    let (status, ev, advice) = media(&checks);
    assert_eq!(status, "passed", "{ev}\n{advice}\n{}", uas.logs());
    assert!(ok, "exit code 0: every check passed");
    assert!(
        ev.starts_with("test call to `echo` (echo extension)\nanswered\n"),
        "{ev}"
    );
    // The RTP source is the port the SDP did not announce, and Softline
    // says it latched to it.
    assert!(
        ev.contains(&format!("; from 127.0.0.1:{}\n", echo.actual)),
        "{ev}"
    );
    assert!(ev.contains("codec PCMU; RTP sent "), "{ev}");
    assert!(
        ev.contains(
            "\nRTP arrives from another address than the SDP announced: Softline latched to it\n"
        ),
        "{ev}"
    );
    assert_eq!(
        advice,
        "The far end sends from another address than it announces (NAT): Softline copes \
         (it latches), phones that do not get one-way audio — on the PBX set nat=yes / \
         directmedia=no."
    );
    // The tone came back (the doctor measured it: ≥ 50 % at 1 kHz, above
    // −45 dBFS); the sine sent at 8000 peak is about −15 dBFS RMS.
    let (share, level) = tone_back(&ev);
    assert!(share >= 90.0, "{ev}");
    assert!(level > -25.0 && level < -10.0, "{ev}");
    // On the wire: the first packets went to the announced port, then
    // Softline sent to the port the echo really came from.
    let (to_announced, to_actual) = (
        echo.on_announced.load(Ordering::Relaxed),
        echo.on_actual.load(Ordering::Relaxed),
    );
    assert!(to_announced >= 1, "{to_announced} {to_actual}");
    assert!(
        to_actual > to_announced * 10,
        "after latching Softline sends to the real port: {to_announced} {to_actual}"
    );
    // 2.5 s of 20 ms packets, nearly all of them after the latch.
    assert!(
        to_announced + to_actual >= 110,
        "{to_announced} {to_actual}"
    );
    let st = uas
        .wait(Duration::from_secs(10))
        .expect("SIPp gets the BYE");
    assert!(st.success(), "{}", uas.logs());
}

#[test]
fn no_common_codec_fails_with_the_488_and_the_codec_advice() {
    let mut uas = Sipp::uas("uas_488.xml");
    let k = kamailio(&uas);
    let dir = TestDir::new("doctor-media-488");
    let (ok, checks, took) = doctor(&config(&dir, &k));
    let (status, ev, advice) = media(&checks);
    assert!(!ok, "exit code not 0");
    assert_eq!(status, "failed", "{ev}");
    assert_eq!(
        ev,
        "test call to `echo` (echo extension)\ncall failed: 488 Not Acceptable Here"
    );
    assert_eq!(
        advice,
        "No common codec with the PBX (488): add PCMU/PCMA to [media] codecs, or ask your \
         admin which codecs the PBX allows."
    );
    assert!(took < Duration::from_secs(15), "{took:?}");
    // SIPp got the ACK of its 488 (from Kamailio's transaction).
    let st = uas.wait(Duration::from_secs(5)).expect("SIPp finishes");
    assert!(st.success(), "{}", uas.logs());
}

#[test]
fn a_peer_that_sends_no_rtp_is_one_way_audio_within_the_time_limit() {
    // SIPp answers with SDP and stays silent (no -rtp_echo).
    let mut uas = Sipp::uas("uas_answer.xml");
    let k = kamailio(&uas);
    let dir = TestDir::new("doctor-media-silent");
    let (ok, checks, took) = doctor(&config(&dir, &k));
    let (status, ev, advice) = media(&checks);
    assert!(!ok);
    assert_eq!(status, "failed", "{ev}");
    assert!(
        ev.starts_with("test call to `echo` (echo extension)\nanswered\ncodec PCMU; RTP sent "),
        "{ev}"
    );
    assert!(ev.contains(", received 0, lost 0; from 127.0.0.1:"), "{ev}");
    // "no audio received for N s (one-way audio): no RTP came back (M
    // packets sent)", N about the 2.5 s the tone is sent.
    let line = ev.lines().last().unwrap();
    let rest = line
        .strip_prefix("no audio received for ")
        .unwrap_or_else(|| panic!("{ev}"));
    let secs: f64 = rest.split(" s ").next().unwrap().parse().unwrap();
    assert!((2.3..=3.5).contains(&secs), "{line}");
    assert!(
        rest.contains(" s (one-way audio): no RTP came back ("),
        "{line}"
    );
    let sent: u64 = rest
        .rsplit('(')
        .next()
        .and_then(|t| t.strip_suffix(" packets sent)"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    assert!((110..=180).contains(&sent), "{line}");
    assert!(ev.contains(&format!("RTP sent {sent}, received 0")), "{ev}");
    assert_eq!(
        advice,
        "One-way audio: the far end's RTP does not reach us (NAT/firewall). Allow UDP \
         [media] rtp_port_min–rtp_port_max inbound, and on the PBX set nat=yes / \
         directmedia=no (Softline sends first, so a PBX that latches finds us)."
    );
    // Registration, un-registration, the call and its hang-up: well within
    // the doctor's limits (the media step alone may take 15 s to be
    // answered + 2.5 s of tone + 3 s to hang up).
    assert!(took < Duration::from_secs(15), "took {took:?}");
    let st = uas
        .wait(Duration::from_secs(10))
        .expect("SIPp gets the BYE");
    assert!(st.success(), "{}", uas.logs());
}
