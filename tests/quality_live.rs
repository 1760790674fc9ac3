//! Live call quality end to end: two real `softline --headless` phones call
//! each other through a lossy relay in the test (`support/relay.rs`: SIP
//! forwarded as is but for the SDP's `m=audio` port, RTP dropped by a
//! seeded hash). The side that receives the loss gets `quality_warning`
//! (`poor_quality`, after 10 s of red) on `ctl events` and a red
//! `calls[].quality` in `status --json`; when the loss stops, `quality_ok`.
//! When the relay cuts one direction, the side that hears nothing gets
//! `quality_warning` kind `one_way_audio` with the cause; the other side
//! gets no warning at all.
#![cfg(unix)]
#![allow(clippy::disallowed_methods)]

#[path = "support/relay.rs"]
mod relay;
mod support;

use std::path::Path;
use std::process::Child;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use relay::{Dir, Relay};
use serde_json::{Value, json};
use softline::audio::wav::Wav;
use softline::media::tone::{rms_dbfs, sine, tone_share};
use support::{Phone, TestDir, call0, free_udp_port, phone_config};

const FIVE_S: Duration = Duration::from_secs(5);
const TONE_HZ: f64 = 700.0;
/// The advice texts of `runtime::quality_watch`.
const ADVICE_POOR: &str = "packet loss or delay on the network path: close bandwidth-hungry \
     programs, prefer a cable to Wi-Fi, or ask your admin about QoS for voice";
const ADVICE_ONE_WAY: &str = "the far end's RTP does not reach us: NAT/firewall; Softline \
     latches to where media comes from, so check the PBX's nat=yes / directmedia=no";

/// `softline ctl events` of `phone`, one parsed object per line.
struct Events {
    child: Child,
    rx: Receiver<Value>,
    /// Every event seen so far, with when it arrived.
    seen: Vec<(Instant, Value)>,
}

impl Events {
    fn of(phone: &Phone) -> Events {
        let (child, rx) = phone.events();
        Events {
            child,
            rx,
            seen: Vec::new(),
        }
    }

    /// Wait for the first event (after those already seen) that `pred`
    /// accepts; its arrival time and value.
    fn wait(&mut self, within: Duration, pred: impl Fn(&Value) -> bool) -> (Instant, Value) {
        let end = Instant::now() + within;
        loop {
            let left = end
                .checked_duration_since(Instant::now())
                .unwrap_or_else(|| panic!("no such event in {within:?}; seen {:?}", self.seen));
            let v = self
                .rx
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no such event in {within:?}; seen {:?}", self.seen));
            let t = Instant::now();
            self.seen.push((t, v.clone()));
            if pred(&v) {
                return (t, v);
            }
        }
    }

    /// Take what arrived meanwhile; the quality events among everything seen.
    fn quality(&mut self) -> Vec<Value> {
        while let Ok(v) = self.rx.try_recv() {
            self.seen.push((Instant::now(), v));
        }
        self.seen
            .iter()
            .filter(|(_, v)| {
                v["event"]
                    .as_str()
                    .is_some_and(|e| e.starts_with("quality_"))
            })
            .map(|(_, v)| v.clone())
            .collect()
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn is(event: &str, kind: &str) -> impl Fn(&Value) -> bool {
    let (event, kind) = (event.to_string(), kind.to_string());
    move |v: &Value| v["event"] == event.as_str() && v["kind"] == kind.as_str()
}

/// (share of the tone, level in dBFS) of the last second B played out.
fn last_second(path: &Path) -> (f64, f64) {
    let w = Wav::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let n = w.samples.len();
    let tail = w
        .samples
        .get(n.saturating_sub(w.sample_rate as usize)..)
        .unwrap_or(&[]);
    (tone_share(tail, w.sample_rate, TONE_HZ), rms_dbfs(tail))
}

/// Share of lost packets in a call's `media` statistics.
fn loss_share(call: &Value) -> f64 {
    let lost = call["media"]["packets_lost"].as_f64().unwrap();
    let received = call["media"]["packets_received"].as_f64().unwrap();
    lost / (lost + received)
}

#[test]
fn loss_warns_the_receiving_side_recovers_and_one_way_audio_is_named() {
    // A's microphone: a looped 700 Hz tone; B plays out into a WAV file.
    let dir = TestDir::new("quality-live");
    let tone = dir.file("tone.wav");
    let heard = dir.file("heard.wav");
    let w = Wav {
        sample_rate: 8000,
        samples: sine(TONE_HZ, 8000, 8000.0, 8000),
    };
    std::fs::write(&tone, w.to_bytes()).unwrap();
    let (pa, pb) = (free_udp_port(), free_udp_port());
    let a = Phone::start(&format!(
        "{}\n[media]\ncodecs = [\"PCMU\"]\n",
        phone_config(pa, &[]).replace(
            "input = \"null\"",
            &format!(
                "input = \"loop:{}\"\necho_cancellation = false\nnoise_suppression = false",
                tone.display()
            )
        )
    ));
    let b = Phone::start(&format!(
        "{}\n[media]\ncodecs = [\"PCMU\"]\nno_media_warning_secs = 3\n",
        phone_config(pb, &[]).replace(
            "output = \"null\"",
            &format!("output = \"file:{}\"", heard.display())
        )
    ));
    let relay = Relay::start(([127, 0, 0, 1], pb).into(), 0x5eed_0008);
    // 25 % of A's RTP never reaches B.
    relay.set_loss(Dir::Forward, 25);
    let mut ev_a = Events::of(&a);
    let mut ev_b = Events::of(&b);

    a.cmd(json!({"cmd": "call", "target": format!("sip:b@{}", relay.sip)}));
    b.wait_for(|s| call0(s)["state"] == "ringing", FIVE_S)
        .unwrap();
    b.cmd(json!({"cmd": "answer"}));
    let sb = b
        .wait_for(
            |s| call0(s)["media"]["packets_received"].as_u64() > Some(0),
            FIVE_S,
        )
        .unwrap();
    a.wait_for(
        |s| call0(s)["media"]["packets_received"].as_u64() > Some(0),
        FIVE_S,
    )
    .unwrap();
    let t0 = Instant::now();
    let call_b = call0(&sb)["id"].clone();
    // Media really flows through the relay, both ways, to the ports the
    // phones announced (nobody latched elsewhere).
    let learned = relay.learned();
    assert_eq!(
        call0(&sb)["media"]["remote"],
        json!(relay.media_for_callee.to_string())
    );
    assert_eq!(call0(&sb)["media"]["latched"], json!(false));
    assert!(learned.caller_rtp.is_some() && learned.callee_rtp.is_some());

    // Red from the first poll with loss; the warning after 10 s of it.
    let (t, warn) = ev_b.wait(
        Duration::from_secs(16),
        is("quality_warning", "poor_quality"),
    );
    let after = t - t0;
    assert!(
        after >= Duration::from_millis(9500) && after <= Duration::from_secs(13),
        "warned after {after:?}"
    );
    assert_eq!(warn["call"], call_b);
    let reason = warn["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("poor call quality for 10 s (estimated MOS "),
        "{reason}"
    );
    let mos = warn["mos"].as_f64().unwrap();
    assert!((1.5..3.0).contains(&mos), "{warn}");
    assert!(reason.ends_with(&format!("MOS {mos:.1})")), "{reason}");
    assert_eq!(warn["advice"], ADVICE_POOR);

    // status --json: B's quality red with the loss; A's green, no loss.
    let sb = b.status();
    let qb = &call0(&sb)["quality"];
    assert_eq!(qb["light"], "red", "{qb}");
    assert!(qb["mos"].as_f64().unwrap() < 3.0, "{qb}");
    let share = loss_share(call0(&sb));
    assert!((0.19..=0.31).contains(&share), "B lost {share}");
    let loss_pct = qb["loss_pct"].as_f64().unwrap();
    assert!((loss_pct - 100.0 * share).abs() < 1.0, "{qb} {share}");
    let (fwd, dropped) = relay.counts(Dir::Forward);
    let relay_share = dropped as f64 / (fwd + dropped) as f64;
    assert!((0.19..=0.31).contains(&relay_share), "{fwd} {dropped}");
    let sa = a.status();
    let qa = &call0(&sa)["quality"];
    assert_eq!(qa["light"], "green", "{qa}");
    assert!(qa["mos"].as_f64().unwrap() >= 4.0, "{qa}");
    assert_eq!(call0(&sa)["media"]["packets_lost"], json!(0));
    assert_eq!(qa["loss_pct"], json!(0.0));

    // The loss stops: quality_ok once the loss within the 5 s window is low
    // enough to leave red (PCMU: R < 70 needs more than about 7.4 % loss),
    // i.e. after about 3.5 s of clean packets.
    relay.set_loss(Dir::Forward, 0);
    let t1 = Instant::now();
    let (t, ok) = ev_b.wait(Duration::from_secs(10), is("quality_ok", "poor_quality"));
    let after = t - t1;
    assert!(
        after >= Duration::from_millis(2500) && after <= Duration::from_secs(6),
        "recovered after {after:?}"
    );
    assert_eq!(
        ok,
        json!({"event": "quality_ok", "call": call_b, "kind": "poor_quality"})
    );
    // B hears A's tone, clean, over the last second.
    let (share, level) = last_second(&heard);
    assert!(share > 0.9 && level > -25.0, "{share} {level}");

    // The relay cuts A → B: B hears nothing while it keeps sending.
    relay.set_loss(Dir::Forward, 100);
    let t2 = Instant::now();
    let (t, one_way) = ev_b.wait(
        Duration::from_secs(8),
        is("quality_warning", "one_way_audio"),
    );
    let after = t - t2;
    assert!(
        after >= Duration::from_millis(2900) && after <= Duration::from_secs(5),
        "one-way audio after {after:?}"
    );
    assert_eq!(
        one_way,
        json!({
            "event": "quality_warning",
            "call": call_b,
            "reason": "no audio received for 3 s (one-way audio)",
            "kind": "one_way_audio",
            "advice": ADVICE_ONE_WAY,
        })
    );
    // By signal: B's last second of playout is silence (concealment faded).
    let (_, level) = last_second(&heard);
    assert!(level < -60.0, "B still hears something: {level} dBFS");
    let sb = b.status();
    assert_eq!(call0(&sb)["state"], "connected");
    let warning = call0(&sb)["media"]["warning"].as_str().unwrap_or("");
    assert!(
        warning.starts_with(
            "no audio received for 3 s (one-way audio: check NAT/firewall for RTP from "
        ) || warning.starts_with("no audio received for 4 s (one-way audio"),
        "{warning}"
    );
    // B's RTP still reaches A.
    let back = relay.counts(Dir::Backward).0;
    std::thread::sleep(Duration::from_millis(500));
    assert!(relay.counts(Dir::Backward).0 >= back + 15);

    // Forwarding again: quality_ok for the one-way episode.
    relay.set_loss(Dir::Forward, 0);
    let (_, ok) = ev_b.wait(Duration::from_secs(3), is("quality_ok", "one_way_audio"));
    // After the 4 s gap the jitter buffer resyncs; a second later B hears
    // the tone again, clean.
    std::thread::sleep(Duration::from_millis(2500));
    let (share, level) = last_second(&heard);
    assert!(share > 0.9 && level > -25.0, "{share} {level}");
    assert_eq!(
        ok,
        json!({"event": "quality_ok", "call": call_b, "kind": "one_way_audio"})
    );

    // B saw exactly the four quality events, in order; A, which heard
    // everything, none.
    let kinds: Vec<(String, String)> = ev_b
        .quality()
        .iter()
        .map(|v| {
            (
                v["event"].as_str().unwrap().to_string(),
                v["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("quality_warning", "poor_quality"),
            ("quality_ok", "poor_quality"),
            ("quality_warning", "one_way_audio"),
            ("quality_ok", "one_way_audio"),
        ]
        .map(|(e, k)| (e.to_string(), k.to_string()))
    );
    assert_eq!(ev_a.quality(), Vec::<Value>::new());
    a.cmd(json!({"cmd": "hangup"}));
}
