//! Hearing protection: an output limiter against acoustic shock (a sudden
//! loud tone or a feedback squeal in an agent's headset). Below the
//! threshold it is the identity, so normal speech passes untouched; above
//! it the gain drops within about a millisecond and recovers slowly.

/// A peak limiter on mono 16-bit PCM.
#[derive(Debug, Clone)]
pub struct Limiter {
    ceiling: f32,
    gain: f32,
    attack: f32,
    release: f32,
    /// Samples whose gain was below 1 (for statistics).
    pub limited_samples: u64,
}

impl Limiter {
    /// `ceiling_dbfs`: the highest output peak (e.g. -6.0); `rate`: Hz.
    pub fn new(ceiling_dbfs: f32, rate: u32) -> Limiter {
        let rate = rate.max(1) as f32;
        // One-pole smoothing: ~1 ms attack, ~150 ms release.
        let coeff = |secs: f32| (-1.0 / (secs * rate)).exp();
        Limiter {
            ceiling: 32767.0 * 10f32.powf(ceiling_dbfs.min(0.0) / 20.0),
            gain: 1.0,
            attack: coeff(0.001),
            release: coeff(0.150),
            limited_samples: 0,
        }
    }

    /// Limit `pcm` in place.
    pub fn process(&mut self, pcm: &mut [i16]) {
        for s in pcm.iter_mut() {
            let x = f32::from(*s);
            let peak = x.abs();
            // The gain that would put this sample exactly at the ceiling.
            let wanted = if peak > self.ceiling {
                self.ceiling / peak
            } else {
                1.0
            };
            let c = if wanted < self.gain {
                self.attack
            } else {
                self.release
            };
            self.gain = wanted + c * (self.gain - wanted);
            // Never let a sample through above the ceiling, even during the
            // attack.
            let g = if peak * self.gain > self.ceiling {
                self.ceiling / peak
            } else {
                self.gain
            };
            if g < 0.999 {
                self.limited_samples += 1;
            }
            *s = (x * g).round().clamp(-32768.0, 32767.0) as i16;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::tone::{rms_dbfs, sine};

    #[test]
    fn speech_level_signal_passes_untouched() {
        let mut l = Limiter::new(-6.0, 8000);
        // A -20 dBFS mix of voice-band tones.
        let a = sine(220.0, 8000, 2000.0, 8000);
        let b = sine(1330.0, 8000, 1200.0, 8000);
        let mut x: Vec<i16> = a.iter().zip(&b).map(|(p, q)| p + q).collect();
        let orig = x.clone();
        l.process(&mut x);
        assert_eq!(x, orig);
        assert_eq!(l.limited_samples, 0);
    }

    #[test]
    fn a_full_scale_squeal_is_held_at_the_ceiling() {
        let mut l = Limiter::new(-6.0, 16000);
        let mut quiet = sine(300.0, 16000, 1500.0, 1600);
        l.process(&mut quiet);
        let mut squeal = sine(3000.0, 16000, 32767.0, 16000);
        l.process(&mut squeal);
        let ceiling = (32767.0 * 10f64.powf(-6.0 / 20.0)).ceil() as i16;
        let peak = squeal.iter().map(|s| s.unsigned_abs()).max().unwrap();
        assert!(
            peak <= ceiling as u16,
            "peak {peak} above ceiling {ceiling}"
        );
        // It is still audible (not muted): about -9 dBFS RMS for a sine at -6 dBFS peak.
        let level = rms_dbfs(&squeal);
        assert!((-10.0..-8.0).contains(&level), "{level}");
        // After the squeal, normal audio recovers its level within ~0.5 s.
        let mut after = sine(300.0, 16000, 1500.0, 16000);
        l.process(&mut after);
        let tail = &after[8000..];
        let want = sine(300.0, 16000, 1500.0, 16000);
        assert!((rms_dbfs(tail) - rms_dbfs(&want[8000..])).abs() < 0.2);
    }
}
