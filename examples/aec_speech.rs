//! Offline: the microphone pipeline on speech with a silent far end.
//! usage: aec_speech IN16k.wav OUT16k.wav defaults|ns|aec|open
use softline::media::aec::{AecConfig, echo_canceller};
use softline::media::resample::Resampler;
use std::io::Write;

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let b = std::fs::read(&a[1]).unwrap();
    let i = b.windows(4).position(|w| w == b"data").unwrap();
    let x: Vec<i16> = b[i + 8..]
        .chunks_exact(2)
        .map(|c| i16::from_le_bytes([c[0], c[1]]))
        .collect();
    let rate: u32 = a.get(4).map(|r| r.parse().unwrap()).unwrap_or(48000);
    let mut up = Resampler::new(16000, rate);
    let mut pcm = Vec::new();
    up.process(&x, &mut pcm);
    let n = rate as usize / 50;
    let cfg = match a[3].as_str() {
        "ns" => AecConfig {
            echo_cancellation: false,
            ..AecConfig::default()
        },
        "aec" => AecConfig {
            noise_suppression: false,
            ..AecConfig::default()
        },
        _ => AecConfig::default(),
    };
    let mut aec = echo_canceller(rate, n, &cfg);
    // "open": a far end of faint noise (peak 40) keeps the canceller running.
    let far: Vec<i16> = (0..n)
        .map(|k| {
            if a[3] == "open" {
                if k % 2 == 0 { 40 } else { -40 }
            } else {
                0
            }
        })
        .collect();
    let mut out = Vec::new();
    for f in pcm.chunks_exact(n) {
        let mut m = f.to_vec();
        aec.process_near_end(&mut m);
        aec.far_end(&far);
        out.extend_from_slice(&m);
    }
    let mut down = Resampler::new(rate, 16000);
    let mut o = Vec::new();
    down.process(&out, &mut o);
    let mut f = std::fs::File::create(&a[2]).unwrap();
    let nb = (o.len() * 2) as u32;
    let mut h = Vec::new();
    h.extend_from_slice(b"RIFF");
    h.extend_from_slice(&(36 + nb).to_le_bytes());
    h.extend_from_slice(b"WAVEfmt ");
    h.extend_from_slice(&16u32.to_le_bytes());
    for v in [1u16, 1] {
        h.extend_from_slice(&v.to_le_bytes());
    }
    for v in [16000u32, 32000] {
        h.extend_from_slice(&v.to_le_bytes());
    }
    for v in [2u16, 16] {
        h.extend_from_slice(&v.to_le_bytes());
    }
    h.extend_from_slice(b"data");
    h.extend_from_slice(&nb.to_le_bytes());
    f.write_all(&h).unwrap();
    for s in o {
        f.write_all(&s.to_le_bytes()).unwrap();
    }
}
