//! Test tones and their detection: a sine generator and the Goertzel
//! filter, used by the built-in audio test and by tests that verify audio
//! by signal (a tone goes in at one end and is found at the other).

/// `n` samples of a sine at `freq` Hz, amplitude `amp` (0..=32767).
pub fn sine(freq: f64, rate: u32, amp: f64, n: usize) -> Vec<i16> {
    let w = 2.0 * std::f64::consts::PI * freq / f64::from(rate);
    (0..n)
        .map(|i| (amp * (w * i as f64).sin()).round() as i16)
        .collect()
}

/// Share of the signal's energy at `freq` (Goertzel), from 0 (absent) to
/// about 1 (a pure tone at that frequency). 0 for silence.
pub fn tone_share(samples: &[i16], rate: u32, freq: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let w = 2.0 * std::f64::consts::PI * freq / f64::from(rate);
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    let mut energy = 0.0f64;
    for &x in samples {
        let x = f64::from(x);
        energy += x * x;
        let s0 = x + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    if energy == 0.0 {
        return 0.0;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    // A pure tone of N samples gives power ≈ energy · N / 2.
    (2.0 * power / (energy * samples.len() as f64)).min(1.0)
}

/// RMS level in dBFS (−∞ for silence, as `f64::NEG_INFINITY`).
pub fn rms_dbfs(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return f64::NEG_INFINITY;
    }
    let ms: f64 = samples
        .iter()
        .map(|&s| f64::from(s) * f64::from(s))
        .sum::<f64>()
        / samples.len() as f64;
    if ms == 0.0 {
        f64::NEG_INFINITY
    } else {
        10.0 * (ms / (32768.0 * 32768.0)).log10()
    }
}

/// A tone half a second on and half a second off, added frame by frame
/// with a continuous phase (the audio test's reference signal).
#[derive(Debug, Clone)]
pub struct ReferenceTone {
    freq: f64,
    amp: f64,
    /// Samples generated so far.
    n: u64,
}

impl ReferenceTone {
    pub fn new(freq: f64, amp: f64) -> Self {
        ReferenceTone { freq, amp, n: 0 }
    }

    /// Add the next `pcm.len()` samples at `rate` to `pcm`, saturating.
    pub fn add_to(&mut self, pcm: &mut [i16], rate: u32) {
        let rate = u64::from(rate.max(1));
        let w = 2.0 * std::f64::consts::PI * self.freq / rate as f64;
        for s in pcm.iter_mut() {
            let k = self.n % rate;
            if k < rate / 2 {
                let v = (self.amp * (w * self.n as f64).sin()).round() as i32;
                *s = (i32::from(*s) + v).clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16;
            }
            self.n += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_tone_it_generated_and_not_others() {
        let s = sine(1000.0, 8000, 10_000.0, 1600);
        assert!(tone_share(&s, 8000, 1000.0) > 0.95);
        assert!(tone_share(&s, 8000, 1300.0) < 0.01);
        assert!(tone_share(&s, 8000, 600.0) < 0.01);
        assert_eq!(tone_share(&[0; 100], 8000, 1000.0), 0.0);
        let mix: Vec<i16> = s
            .iter()
            .zip(sine(1300.0, 8000, 10_000.0, 1600))
            .map(|(a, b)| a / 2 + b / 2)
            .collect();
        let (a, b) = (
            tone_share(&mix, 8000, 1000.0),
            tone_share(&mix, 8000, 1300.0),
        );
        assert!(
            (0.4..0.6).contains(&a) && (0.4..0.6).contains(&b),
            "{a} {b}"
        );
    }

    #[test]
    fn levels() {
        let full = sine(1000.0, 8000, 32767.0, 8000);
        assert!((rms_dbfs(&full) + 3.01).abs() < 0.05, "{}", rms_dbfs(&full));
        assert_eq!(rms_dbfs(&[0; 10]), f64::NEG_INFINITY);
    }

    #[test]
    fn reference_tone_is_on_half_a_second_then_off_and_continuous() {
        let mut t = ReferenceTone::new(440.0, 3277.0);
        let mut out = Vec::new();
        for _ in 0..100 {
            let mut frame = [0i16; 160];
            t.add_to(&mut frame, 8000);
            out.extend_from_slice(&frame);
        }
        // Two cycles of 1 s: on for 4000 samples, off for 4000.
        assert!(tone_share(&out[..4000], 8000, 440.0) > 0.99);
        assert!(out[4000..8000].iter().all(|&s| s == 0));
        assert!(tone_share(&out[8000..12000], 8000, 440.0) > 0.99);
        let peak = out.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0);
        assert_eq!(peak, 3277, "−20 dBFS peak");
    }
}
