//! Offline: Opus over a seeded random-loss channel with FEC/PLC, to try
//! encoder settings quickly. usage: opus_loss IN16k.wav OUT16k.wav BITRATE PLAN% LOSS% SEED [MAXBW]
use softline::media::codec::{self, CodecKind, CodecOptions};
use softline::media::resample::Resampler;
use std::io::Write;

fn read_wav(p: &str) -> Vec<i16> {
    let b = std::fs::read(p).unwrap();
    // find "data"
    let i = b.windows(4).position(|w| w == b"data").unwrap();
    b[i + 8..]
        .chunks_exact(2)
        .map(|c| i16::from_le_bytes([c[0], c[1]]))
        .collect()
}
fn write_wav(p: &str, x: &[i16], rate: u32) {
    let mut f = std::fs::File::create(p).unwrap();
    let n = (x.len() * 2) as u32;
    let mut h = Vec::new();
    h.extend_from_slice(b"RIFF");
    h.extend_from_slice(&(36 + n).to_le_bytes());
    h.extend_from_slice(b"WAVEfmt ");
    h.extend_from_slice(&16u32.to_le_bytes());
    h.extend_from_slice(&1u16.to_le_bytes());
    h.extend_from_slice(&1u16.to_le_bytes());
    h.extend_from_slice(&rate.to_le_bytes());
    h.extend_from_slice(&(rate * 2).to_le_bytes());
    h.extend_from_slice(&2u16.to_le_bytes());
    h.extend_from_slice(&16u16.to_le_bytes());
    h.extend_from_slice(b"data");
    h.extend_from_slice(&n.to_le_bytes());
    f.write_all(&h).unwrap();
    for s in x {
        f.write_all(&s.to_le_bytes()).unwrap();
    }
}
fn hash(seed: u64, k: u64) -> f64 {
    let mut z = seed.wrapping_mul(0x9E3779B97F4A7C15) ^ k.wrapping_mul(0xBF58476D1CE4E5B9);
    z ^= z >> 31;
    z = z.wrapping_mul(0x94D049BB133111EB);
    z ^= z >> 29;
    (z >> 11) as f64 / (1u64 << 53) as f64
}
fn main() {
    let a: Vec<String> = std::env::args().collect();
    let input = read_wav(&a[1]);
    let bitrate: u32 = a[3].parse().unwrap();
    let plan: u8 = a[4].parse().unwrap();
    let loss: f64 = a[5].parse::<f64>().unwrap() / 100.0;
    let seed: u64 = a[6].parse().unwrap();
    let opts = CodecOptions {
        opus_bitrate: bitrate,
        opus_expected_loss_pct: plan,
        ..CodecOptions::default()
    };
    let mut enc = codec::encoder(CodecKind::Opus, &opts).unwrap();
    let mut dec = codec::decoder(CodecKind::Opus, &opts).unwrap();
    let mut up = Resampler::new(16000, 48000);
    let mut pcm = Vec::new();
    up.process(&input, &mut pcm);
    let mut pkts = Vec::new();
    for f in pcm.chunks_exact(960) {
        let mut p = Vec::new();
        enc.encode(f, &mut p).unwrap();
        pkts.push(p);
    }
    let lost: Vec<bool> = (0..pkts.len())
        .map(|k| hash(seed, k as u64) < loss)
        .collect();
    let mut out = Vec::new();
    let mut fec = 0;
    for k in 0..pkts.len() {
        if lost[k] {
            let next = pkts
                .get(k + 1)
                .filter(|_| !lost.get(k + 1).copied().unwrap_or(true));
            if next.is_some() {
                fec += 1;
            }
            dec.conceal(960, next.map(|v| &v[..]), &mut out).unwrap();
        } else {
            dec.decode(&pkts[k], &mut out).unwrap();
        }
    }
    let mut down = Resampler::new(48000, 16000);
    let mut o16 = Vec::new();
    down.process(&out, &mut o16);
    write_wav(&a[2], &o16, 16000);
    let bytes: usize = pkts.iter().map(|p| p.len()).sum();
    eprintln!(
        "lost {} fec-tried {} avg {} B/pkt",
        lost.iter().filter(|x| **x).count(),
        fec,
        bytes / pkts.len()
    );
}
