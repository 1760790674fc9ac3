//! Media path cost per call: `cargo bench --bench media` (or `cargo xtask
//! bench audio`). Two `MediaSession`s exchange 100 s of audio in memory;
//! each frame is encoded, packetized, parsed, jitter-buffered, decoded and
//! played out. Prints µs per 20 ms frame and the share of one core a
//! two-way call costs (both directions). Then the sound-device resampling
//! and echo cancellation on their own. `SOFTLINE_BENCH=resample` runs only
//! the resampling, `SOFTLINE_BENCH=aec` skips the codecs.
#![allow(clippy::disallowed_methods)] // a benchmark reads the clock

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use softline::media::aec::{AecConfig, echo_canceller};
use softline::media::resample::Resampler;
use softline::media::session::{MediaConfig, MediaSession};
use softline::media::tone::sine;
use softline::sdp::{CodecSpec, NegotiatedMedia};

fn main() {
    let frames = 5000u32; // 100 s of 20 ms frames
    let (addr_a, addr_b): (SocketAddr, SocketAddr) = (
        "10.0.0.1:4000".parse().unwrap(),
        "10.0.0.2:5000".parse().unwrap(),
    );
    let only = std::env::var("SOFTLINE_BENCH").unwrap_or_default();
    resampling(frames);
    if only == "resample" {
        return;
    }
    let only_aec = only == "aec";
    let codecs = if only_aec {
        Vec::new()
    } else {
        vec![
            CodecSpec::pcmu(),
            CodecSpec::pcma(),
            CodecSpec::g722(),
            CodecSpec::opus(111),
        ]
    };
    for codec in codecs {
        let t0 = Instant::now();
        let cfg = MediaConfig::default();
        let mut a = MediaSession::new(
            t0,
            &NegotiatedMedia::sendrecv(addr_b, codec.clone()),
            &cfg,
            1,
        )
        .unwrap();
        let mut b = MediaSession::new(
            t0,
            &NegotiatedMedia::sendrecv(addr_a, codec.clone()),
            &cfg,
            2,
        )
        .unwrap();
        let n = a.frame_samples();
        let speechlike: Vec<i16> = sine(180.0, a.pcm_rate(), 6000.0, n * 50)
            .iter()
            .zip(sine(1230.0, a.pcm_rate(), 2500.0, n * 50))
            .map(|(x, y)| x + y)
            .collect();
        let (mut pkt, mut out) = (Vec::with_capacity(1500), Vec::with_capacity(n));
        let start = Instant::now();
        for i in 0..frames {
            let at = t0 + Duration::from_millis(20 * u64::from(i));
            let off = (i as usize % 50) * n;
            let frame = &speechlike[off..off + n];
            // A → B and B → A: one two-way call.
            a.send_frame(at, frame, &mut pkt);
            b.on_datagram(at, addr_a, &pkt);
            b.playout(at, &mut out);
            black_box(&out);
            b.send_frame(at, frame, &mut pkt);
            a.on_datagram(at, addr_b, &pkt);
            a.playout(at, &mut out);
            black_box(&out);
        }
        let per_frame = start.elapsed() / frames;
        let core_share = per_frame.as_secs_f64() / 0.020 * 100.0;
        println!(
            "{:<5} {:>7.1} µs per 20 ms frame (both directions) = {:>5.2} % of one core per call",
            codec.name,
            per_frame.as_secs_f64() * 1e6,
            core_share
        );
    }

    // Echo cancellation + noise suppression (sonora) on the microphone path,
    // with the far end as reference: one direction of one call. The far end
    // talks in turns (3 s on, 3 s off, as in a conversation), or is a steady
    // signal, or silent; `SOFTLINE_BENCH=aec` skips the codecs.
    let cases: [AecCase; 5] = [
        ("defaults, far end steady", AecConfig::default(), |_| true),
        (
            "defaults, far end talks in 3 s turns",
            AecConfig::default(),
            turns,
        ),
        ("defaults, far end silent", AecConfig::default(), |_| false),
        (
            "AEC3 only, far end steady",
            AecConfig {
                noise_suppression: false,
                ..AecConfig::default()
            },
            |_| true,
        ),
        (
            "NS only",
            AecConfig {
                echo_cancellation: false,
                ..AecConfig::default()
            },
            |_| true,
        ),
    ];
    for rate in [8_000u32, 16_000, 48_000] {
        for (what, cfg, far_on) in &cases {
            if rate != 8_000 && !what.starts_with("defaults, far end steady") {
                continue;
            }
            let n = (rate / 50) as usize;
            let far = sine(180.0, rate, 6000.0, n * 50);
            let near = sine(310.0, rate, 300.0, n * 50);
            let silence = vec![0i16; n];
            let mut aec = echo_canceller(rate, n, cfg);
            let mut mic = vec![0i16; n];
            let start = Instant::now();
            for i in 0..frames as usize {
                let off = (i % 50) * n;
                let f = if far_on(i) {
                    &far[off..off + n]
                } else {
                    &silence[..]
                };
                // Echo (the far end, 12 dB down) plus a quiet near talker.
                for ((m, e), s) in mic.iter_mut().zip(f).zip(&near[off..off + n]) {
                    *m = (e / 4).saturating_add(*s);
                }
                aec.process_near_end(&mut mic);
                aec.far_end(f);
                black_box(&mic);
            }
            let per_frame = start.elapsed() / frames;
            println!(
                "{} at {rate} Hz, {what}: {:>6.1} µs per 20 ms frame = {:>5.2} % of one core",
                aec.name(),
                per_frame.as_secs_f64() * 1e6,
                per_frame.as_secs_f64() / 0.020 * 100.0
            );
        }
    }
}

/// Sound device <-> codec rate conversion, both directions of one call (the
/// microphone down to the codec, the far end up to the speaker).
fn resampling(frames: u32) {
    for (device, codec) in [(48_000u32, 8_000u32), (48_000, 16_000), (44_100, 8_000)] {
        let (dn, cn) = ((device / 50) as usize, (codec / 50) as usize);
        let mic = sine(440.0, device, 8000.0, dn * 50);
        let far = sine(440.0, codec, 8000.0, cn * 50);
        let mut down = Resampler::new(device, codec);
        let mut up = Resampler::new(codec, device);
        let (mut to_codec, mut to_device) =
            (Vec::with_capacity(cn + 2), Vec::with_capacity(dn + 2));
        let start = Instant::now();
        for i in 0..frames as usize {
            let (d, c) = ((i % 50) * dn, (i % 50) * cn);
            down.process(&mic[d..d + dn], &mut to_codec);
            up.process(&far[c..c + cn], &mut to_device);
            black_box((&to_codec, &to_device));
        }
        let per_frame = start.elapsed() / frames;
        println!(
            "resample {device} <-> {codec} Hz: {:>6.1} µs per 20 ms frame (both directions) = {:>5.2} % of one core",
            per_frame.as_secs_f64() * 1e6,
            per_frame.as_secs_f64() / 0.020 * 100.0
        );
    }
}

/// What the canceller runs with, and whether the far end talks in frame `i`.
type AecCase = (&'static str, AecConfig, fn(usize) -> bool);

/// Frame `i` (20 ms) falls in one of the far end's 3 s turns.
fn turns(i: usize) -> bool {
    (i / 150).is_multiple_of(2)
}
