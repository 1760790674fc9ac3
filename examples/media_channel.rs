//! Offline: the bench's call in memory. Two `MediaSession`s on a fake clock
//! exchange a speech file through the same per-packet impairment as
//! `cargo xtask bench audio` (seeded loss, uniform delay, RTCP never
//! dropped), and the receiver's playout, ticked every frame, is written to a
//! WAV file to score with `xtask/src/pesq_score.py`. Seconds per run
//! instead of the bench's real-time minute: for trying jitter-buffer,
//! concealment and RED changes.
//!
//! usage: media_channel CODEC IN.wav OUT.wav LOSS% SEED [BURST] [DELAY_MIN DELAY_MAX]
//!   CODEC: pcmu | g722 | opus | opus-red. IN at 8 kHz (pcmu) or 16 kHz.
#![allow(clippy::disallowed_methods)]

use softline::audio::wav::{Wav, WavWriter};
use softline::media::resample::Resampler;
use softline::media::session::{MediaConfig, MediaSession};
use softline::sdp::{CodecSpec, NegotiatedMedia};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

// The bench relay's fates (xtask/src/impair.rs): the same hash (SplitMix64's
// finaliser), so a seed drops the same packets here as there.
fn mix(z: u64) -> u64 {
    softline::sip::rng::splitmix64(&mut z.clone())
}
fn hash(seed: u64, dir: u64, k: u64, field: u64) -> u64 {
    mix(mix(mix(mix(seed) ^ dir) ^ k) ^ field)
}
fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

struct Fates {
    seed: u64,
    loss: f64,
    burst: f64,
    dmin: u32,
    dmax: u32,
    bad: [bool; 2],
}

impl Fates {
    fn next(&mut self, dir: usize, k: u64) -> Option<u32> {
        let u = unit(hash(self.seed, dir as u64, k, 1));
        let lost = if self.burst <= 1.0 {
            u < self.loss
        } else {
            let r = 1.0 / self.burst;
            let p = self.loss * r / (1.0 - self.loss);
            let bad = &mut self.bad[dir];
            *bad = if *bad { u >= r } else { u < p };
            *bad
        };
        if lost {
            return None;
        }
        let span = u64::from(self.dmax.saturating_sub(self.dmin)) + 1;
        Some(self.dmin + (hash(self.seed, dir as u64, k, 2) % span) as u32)
    }
}

/// A datagram on the wire: (arrival, send order, to the receiver?, bytes).
type InFlight = (Duration, u64, bool, Vec<u8>);

/// Puts a datagram on the wire, due at `at`.
fn post(
    wire: &mut BinaryHeap<Reverse<InFlight>>,
    order: &mut u64,
    at: Duration,
    to_rx: bool,
    bytes: &[u8],
) {
    *order += 1;
    wire.push(Reverse((at, *order, to_rx, bytes.to_vec())));
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() < 6 {
        eprintln!(
            "usage: media_channel pcmu|g722|opus|opus-red IN.wav OUT.wav LOSS% SEED [BURST] [DMIN DMAX]"
        );
        std::process::exit(2);
    }
    let (codec, red) = match a[1].as_str() {
        "pcmu" => (CodecSpec::pcmu(), false),
        "g722" => (CodecSpec::g722(), false),
        "opus" => (CodecSpec::opus(111), false),
        "opus-red" => (CodecSpec::opus(111), true),
        o => panic!("unknown codec {o}"),
    };
    let wav = Wav::read(std::path::Path::new(&a[2])).unwrap_or_else(|e| panic!("{}: {e}", a[2]));
    let (in_rate, input) = (wav.sample_rate, wav.samples);
    let loss: f64 = a[4].parse::<f64>().unwrap() / 100.0;
    let seed: u64 = a[5].parse().unwrap();
    let burst: f64 = a.get(6).map_or(1.0, |s| s.parse().unwrap());
    let dmin: u32 = a.get(7).map_or(10, |s| s.parse().unwrap());
    let dmax: u32 = a.get(8).map_or(50, |s| s.parse().unwrap());
    let mut fates = Fates {
        seed,
        loss,
        burst,
        dmin,
        dmax,
        bad: [false; 2],
    };

    let addr_a: SocketAddr = "10.0.0.1:4000".parse().unwrap();
    let addr_b: SocketAddr = "10.0.0.2:4000".parse().unwrap();
    let media = |remote: SocketAddr| NegotiatedMedia {
        red: red.then_some(100),
        ..NegotiatedMedia::sendrecv(remote, codec.clone())
    };
    let mut config = MediaConfig::default();
    if let Ok(d) = std::env::var("RED_DEPTH") {
        config.red_depth = d.parse().expect("RED_DEPTH");
    }
    let t0 = Instant::now();
    let mut tx = MediaSession::new(t0, &media(addr_b), &config, 1).unwrap();
    let mut rx = MediaSession::new(t0, &media(addr_a), &config, 2).unwrap();
    let rate = tx.pcm_rate();
    let n = tx.frame_samples();
    let mut up = Resampler::new(in_rate, rate);
    let mut pcm = Vec::new();
    up.process(&input, &mut pcm);

    let mut wire: BinaryHeap<Reverse<InFlight>> = BinaryHeap::new();
    let (mut pkt, mut out, mut rtcp) = (Vec::new(), Vec::new(), Vec::new());
    let mut played = Vec::new();
    let silence = vec![0i16; n];
    let frames = pcm.len() / n + 50;
    let mut order = 0u64;
    let (mut k_fwd, mut k_back) = (0u64, 0u64);
    for i in 0..frames {
        let now = Duration::from_millis(20 * i as u64);
        let at = t0 + now;
        let frame = pcm.get(i * n..(i + 1) * n).unwrap_or(&silence);
        // Sender → receiver, and receiver → sender (silence, for its RTCP
        // and symmetry): each RTP packet meets its seeded fate.
        tx.send_frame(at, frame, &mut pkt).unwrap();
        if let Some(d) = fates.next(0, k_fwd) {
            post(
                &mut wire,
                &mut order,
                now + Duration::from_millis(d.into()),
                true,
                &pkt,
            );
        }
        k_fwd += 1;
        rx.send_frame(at, &silence, &mut pkt).unwrap();
        if let Some(d) = fates.next(1, k_back) {
            post(
                &mut wire,
                &mut order,
                now + Duration::from_millis(d.into()),
                false,
                &pkt,
            );
        }
        k_back += 1;
        for (s, to_rx) in [(&mut tx, true), (&mut rx, false)] {
            if s.poll_rtcp(at, 0, &mut rtcp).is_some() {
                post(
                    &mut wire,
                    &mut order,
                    now + Duration::from_millis(10),
                    to_rx,
                    &rtcp,
                );
            }
        }
        // Everything due by this tick arrives, then the receiver plays.
        while let Some(Reverse((when, _, _, _))) = wire.peek() {
            if *when > now {
                break;
            }
            let Some(Reverse((when, _, to_rx, bytes))) = wire.pop() else {
                break;
            };
            if to_rx {
                rx.on_datagram(t0 + when, addr_a, &bytes);
            } else {
                tx.on_datagram(t0 + when, addr_b, &bytes);
            }
        }
        rx.playout(at, &mut out);
        played.extend_from_slice(&out);
        if std::env::var_os("TRACE_FRAMES").is_some() {
            let st = rx.stats(at);
            eprintln!(
                "tick {i}: jb {} concealed {} red {} inserted {} dropped {}",
                st.jitter_buffer_ms,
                st.concealed_frames,
                st.red_recovered,
                st.inserted_frames,
                st.dropped_frames
            );
        }
    }
    let s = rx.stats(t0 + Duration::from_millis(20 * frames as u64));
    let mut down = Resampler::new(rate, in_rate);
    let mut o = Vec::new();
    down.process(&played, &mut o);
    let mut w = WavWriter::create(std::path::Path::new(&a[3]), in_rate).unwrap();
    w.write(&o).unwrap();
    w.finish().unwrap();
    eprintln!(
        "received {} lost {} concealed {} fec {} red {} late {} inserted {} dropped {} jb {} ms",
        s.packets_received,
        s.packets_lost,
        s.concealed_frames,
        s.fec_recovered,
        s.red_recovered,
        s.late_packets,
        s.inserted_frames,
        s.dropped_frames,
        s.jitter_buffer_ms
    );
}
