//! Level meters: peak and RMS of the audio that passed since the last
//! reading, in dBFS, for the faces' microphone and speaker meters. Fed one
//! frame at a time on the media side (never in a device callback); no
//! allocation.

use serde::Serialize;

/// The gains the microphone and speaker take (`[audio] input_gain_db`,
/// `output_gain_db`, `ctl gain`).
pub const GAIN_RANGE_DB: std::ops::RangeInclusive<f32> = -20.0..=20.0;

/// A gain in dB as the factor [`apply_gain`] takes.
pub fn gain_factor(db: f32) -> f32 {
    10f32.powf(db.clamp(*GAIN_RANGE_DB.start(), *GAIN_RANGE_DB.end()) / 20.0)
}

/// Scale a frame in place, saturating at full scale (the speaker's limiter
/// comes after). A factor of 1 leaves it untouched.
pub fn apply_gain(pcm: &mut [i16], factor: f32) {
    if factor == 1.0 {
        return;
    }
    for s in pcm.iter_mut() {
        *s = (f32::from(*s) * factor)
            .round()
            .clamp(f32::from(i16::MIN), f32::from(i16::MAX)) as i16;
    }
}

/// Below this a meter reads as silence.
pub const FLOOR_DBFS: f32 = -90.0;

/// Levels of one direction over a reading window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Level {
    pub peak_dbfs: f32,
    pub rms_dbfs: f32,
}

/// Microphone (after echo cancellation, before mute: a muted agent who
/// talks still sees the meter move) and speaker (what is played, after the
/// limiter).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct AudioLevels {
    pub mic: Level,
    pub speaker: Level,
}

/// Accumulates one direction between readings.
#[derive(Debug, Default, Clone)]
pub struct LevelMeter {
    peak: i32,
    sum_sq: f64,
    n: u64,
}

fn dbfs(x: f64) -> f32 {
    if x <= 0.0 {
        FLOOR_DBFS
    } else {
        ((20.0 * (x / 32768.0).log10()) as f32).max(FLOOR_DBFS)
    }
}

impl LevelMeter {
    pub fn feed(&mut self, pcm: &[i16]) {
        for &s in pcm {
            let a = i32::from(s).abs();
            self.peak = self.peak.max(a);
            self.sum_sq += f64::from(s) * f64::from(s);
        }
        self.n += pcm.len() as u64;
    }

    /// The levels since the last reading; starts a new window.
    pub fn take(&mut self) -> Level {
        let rms = if self.n == 0 {
            0.0
        } else {
            (self.sum_sq / self.n as f64).sqrt()
        };
        let level = Level {
            peak_dbfs: dbfs(f64::from(self.peak)),
            rms_dbfs: dbfs(rms),
        };
        *self = LevelMeter::default();
        level
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::tone::sine;

    #[test]
    fn a_sine_reads_its_peak_and_rms_then_the_window_restarts() {
        let mut m = LevelMeter::default();
        // Amplitude 16384 = −6 dBFS peak, RMS 3 dB lower.
        m.feed(&sine(1000.0, 8000, 16384.0, 800));
        let l = m.take();
        assert!((l.peak_dbfs + 6.02).abs() < 0.1, "{l:?}");
        assert!((l.rms_dbfs + 9.03).abs() < 0.1, "{l:?}");
        let quiet = m.take();
        assert_eq!(quiet.peak_dbfs, FLOOR_DBFS);
        assert_eq!(quiet.rms_dbfs, FLOOR_DBFS);
        m.feed(&[i16::MIN, 0]);
        assert!(m.take().peak_dbfs.abs() < 0.01, "full scale is 0 dBFS");
    }

    #[test]
    fn gain_scales_saturates_and_is_bounded() {
        let mut x = [1000i16, -1000, 20000, -20000, 0];
        apply_gain(&mut x, gain_factor(6.0));
        assert_eq!(x, [1995, -1995, i16::MAX, i16::MIN, 0]);
        let mut y = [1000i16];
        apply_gain(&mut y, gain_factor(-40.0)); // clamped to -20 dB
        assert_eq!(y, [100]);
        let mut z = [123i16, -7];
        apply_gain(&mut z, gain_factor(0.0));
        assert_eq!(z, [123, -7]);
    }
}
