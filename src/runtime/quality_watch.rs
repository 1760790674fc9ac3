//! Live call-quality warnings: when a call's estimated quality (E-model,
//! `media::quality`) stays red for [`RED_FOR`], or no RTP arrives while we
//! send (one-way audio), emit `quality_warning` once per episode, and
//! `quality_ok` when it recovers. Fed by the driver's media poll with each
//! call's statistics; time is passed in.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::media::quality::{Light, estimate};
use crate::media::session::MediaStats;
use crate::phone::CallId;

/// How long quality must stay red before the warning.
pub const RED_FOR: Duration = Duration::from_secs(10);
/// Loss is rated over this recent window (not the whole call).
const WINDOW: Duration = Duration::from_secs(5);

pub const ADVICE_ONE_WAY: &str = "the far end's RTP does not reach us: NAT/firewall; Softline \
     latches to where media comes from, so check the PBX's nat=yes / directmedia=no";
pub const ADVICE_POOR: &str = "packet loss or delay on the network path: close bandwidth-hungry \
     programs, prefer a cable to Wi-Fi, or ask your admin about QoS for voice";

#[derive(Default)]
struct CallWatch {
    /// (time, received, lost) samples within the window.
    samples: VecDeque<(Instant, u64, i64)>,
    red_since: Option<Instant>,
    poor: bool,
    one_way: bool,
    last_sent: Option<u64>,
}

/// Watches every call's quality.
pub struct QualityWatch {
    calls: HashMap<CallId, CallWatch>,
    /// No RTP for this long while we send = one-way audio.
    no_rtp_after: Duration,
}

impl QualityWatch {
    pub fn new(no_rtp_after: Duration) -> QualityWatch {
        QualityWatch {
            calls: HashMap::new(),
            no_rtp_after,
        }
    }

    /// Feed the statistics of every call with running media; returns the
    /// events (JSON lines) to emit.
    pub fn poll(&mut self, now: Instant, stats: &[(CallId, MediaStats)]) -> Vec<String> {
        self.calls
            .retain(|id, _| stats.iter().any(|(call, _)| call == id));
        let mut events = Vec::new();
        for (call, s) in stats {
            let w = self.calls.entry(*call).or_default();
            // One-way audio: nothing received for a while although we send.
            let sending = w.last_sent.is_some_and(|n| s.packets_sent > n);
            w.last_sent = Some(s.packets_sent);
            let silent = s.silent_for_ms >= self.no_rtp_after.as_millis() as u64;
            if silent && sending && !w.one_way {
                w.one_way = true;
                events.push(
                    json!({
                        "event": "quality_warning",
                        "call": call,
                        "reason": format!(
                            "no audio received for {} s (one-way audio)",
                            s.silent_for_ms / 1000
                        ),
                        "kind": "one_way_audio",
                        "advice": ADVICE_ONE_WAY,
                    })
                    .to_string(),
                );
            } else if !silent && w.one_way {
                w.one_way = false;
                events.push(
                    json!({"event": "quality_ok", "call": call, "kind": "one_way_audio"})
                        .to_string(),
                );
            }

            // Poor quality: the E-model light red for RED_FOR, rated on the
            // recent window's loss.
            w.samples
                .push_back((now, s.packets_received, s.packets_lost));
            while w
                .samples
                .front()
                .is_some_and(|(t, _, _)| now.saturating_duration_since(*t) > WINDOW)
            {
                w.samples.pop_front();
            }
            let Some(&(_, r0, l0)) = w.samples.front() else {
                continue;
            };
            let received = s.packets_received.saturating_sub(r0) as f64;
            let lost = (s.packets_lost - l0).max(0) as f64;
            let light = if s.packets_received == 0 || received + lost == 0.0 {
                None
            } else {
                let loss = 100.0 * lost / (received + lost);
                let delay =
                    s.rtt_ms.map(|r| r / 2.0).unwrap_or(0.0) + f64::from(s.jitter_buffer_ms) + 20.0;
                Some(estimate(&s.codec, loss, delay))
            };
            match light {
                Some(q) if q.light == Light::Red => {
                    let since = *w.red_since.get_or_insert(now);
                    if !w.poor && now.saturating_duration_since(since) >= RED_FOR {
                        w.poor = true;
                        events.push(
                            json!({
                                "event": "quality_warning",
                                "call": call,
                                "reason": format!(
                                    "poor call quality for {} s (estimated MOS {:.1})",
                                    RED_FOR.as_secs(),
                                    q.mos
                                ),
                                "kind": "poor_quality",
                                "mos": (q.mos * 10.0).round() / 10.0,
                                "advice": ADVICE_POOR,
                            })
                            .to_string(),
                        );
                    }
                }
                Some(_) => {
                    w.red_since = None;
                    if w.poor {
                        w.poor = false;
                        events.push(
                            json!({"event": "quality_ok", "call": call, "kind": "poor_quality"})
                                .to_string(),
                        );
                    }
                }
                // Nothing arrived in the window: the one-way rule speaks.
                None => {}
            }
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(sent: u64, received: u64, lost: i64, silent_ms: u64) -> MediaStats {
        MediaStats {
            codec: "PCMU".into(),
            srtp: false,
            srtp_failures: 0,
            dtmf_received: String::new(),
            remote: "127.0.0.1:4000".into(),
            latched: false,
            packets_sent: sent,
            packets_received: received,
            packets_lost: lost,
            jitter_ms: 0.0,
            rtt_ms: None,
            jitter_buffer_ms: 40,
            jitter_target_ms: 20,
            concealed_frames: 0,
            fec_recovered: 0,
            red_recovered: 0,
            fec_expected_loss_pct: None,
            late_packets: 0,
            inserted_frames: 0,
            dropped_frames: 0,
            bad_packets: 0,
            silent_for_ms: silent_ms,
            warning: None,
            far_end_bye: false,
            levels: None,
            mic_device: None,
            speaker_device: None,
        }
    }

    fn parse(events: &[String]) -> Vec<serde_json::Value> {
        events
            .iter()
            .map(|e| serde_json::from_str(e).unwrap())
            .collect()
    }

    const TICK: Duration = Duration::from_millis(250);

    #[test]
    fn red_for_ten_seconds_warns_once_then_recovers() {
        let t0 = crate::runtime::test_epoch();
        let mut w = QualityWatch::new(Duration::from_secs(5));
        let (mut sent, mut recv, mut lost) = (0u64, 0u64, 0i64);
        let mut all = Vec::new();
        // 20 s with 30 % loss: 50 packets/s sent, 35 received, 15 lost.
        for i in 1..=80u32 {
            sent += 12;
            recv += 9;
            lost += 3;
            let now = t0 + TICK * i;
            let ev = parse(&w.poll(now, &[(7, stats(sent, recv, lost, 10))]));
            if !ev.is_empty() {
                all.push((i, ev));
            }
        }
        // Red from the first poll with loss (tick 2); 10 s later: tick 42.
        assert_eq!(all.len(), 1, "{all:?}");
        let (tick, ev) = &all[0];
        assert_eq!(*tick, 42);
        assert_eq!(ev[0]["event"], "quality_warning");
        assert_eq!(ev[0]["call"], 7);
        assert_eq!(ev[0]["kind"], "poor_quality");
        assert!(
            ev[0]["reason"]
                .as_str()
                .unwrap()
                .starts_with("poor call quality for 10 s")
        );
        assert_eq!(ev[0]["advice"], ADVICE_POOR);
        // Clean again: once the 5 s window holds no loss, quality_ok.
        let mut ok = Vec::new();
        for i in 81..=120u32 {
            sent += 12;
            recv += 12;
            let ev = parse(&w.poll(t0 + TICK * i, &[(7, stats(sent, recv, lost, 10))]));
            if !ev.is_empty() {
                ok.push((i, ev));
            }
        }
        assert_eq!(ok.len(), 1, "{ok:?}");
        assert_eq!(ok[0].1[0]["event"], "quality_ok");
        assert_eq!(ok[0].1[0]["kind"], "poor_quality");
        assert!(ok[0].0 > 81 && ok[0].0 <= 102, "{ok:?}");
    }

    #[test]
    fn a_short_red_spell_does_not_warn() {
        let t0 = crate::runtime::test_epoch();
        let mut w = QualityWatch::new(Duration::from_secs(5));
        let (mut sent, mut recv, mut lost) = (0u64, 0u64, 0i64);
        for i in 1..=200u32 {
            sent += 12;
            // 4 s of heavy loss, then clean.
            if (20..36).contains(&i) {
                recv += 8;
                lost += 4;
            } else {
                recv += 12;
            }
            let ev = w.poll(t0 + TICK * i, &[(1, stats(sent, recv, lost, 10))]);
            assert!(ev.is_empty(), "tick {i}: {ev:?}");
        }
    }

    #[test]
    fn one_way_audio_while_sending_warns_once_with_nat_advice() {
        let t0 = crate::runtime::test_epoch();
        let mut w = QualityWatch::new(Duration::from_secs(5));
        let mut events = Vec::new();
        for i in 1..=40u32 {
            let silent = u64::from(i) * 250;
            let ev = parse(&w.poll(
                t0 + TICK * i,
                &[(3, stats(u64::from(i) * 12, 0, 0, silent))],
            ));
            events.extend(ev.into_iter().map(|e| (i, e)));
        }
        assert_eq!(events.len(), 1, "{events:?}");
        let (tick, e) = &events[0];
        assert_eq!(*tick, 20, "after 5 s of silence");
        assert_eq!(e["event"], "quality_warning");
        assert_eq!(e["kind"], "one_way_audio");
        assert_eq!(e["reason"], "no audio received for 5 s (one-way audio)");
        assert!(
            e["advice"]
                .as_str()
                .unwrap()
                .contains("nat=yes / directmedia=no")
        );
        // Audio arrives: quality_ok once.
        let ev = parse(&w.poll(t0 + TICK * 41, &[(3, stats(41 * 12, 5, 0, 20))]));
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0]["event"], "quality_ok");
        assert_eq!(ev[0]["kind"], "one_way_audio");
        // Silence while we do not send either (hold): no warning.
        let mut w = QualityWatch::new(Duration::from_secs(5));
        for i in 1..=40u32 {
            let ev = w.poll(t0 + TICK * i, &[(3, stats(100, 50, 0, u64::from(i) * 250))]);
            assert!(ev.is_empty(), "{ev:?}");
        }
        // A call that ends is forgotten.
        assert!(w.poll(t0 + TICK * 41, &[]).is_empty());
        assert!(w.calls.is_empty());
    }
}
