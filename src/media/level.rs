//! Level meters: peak and RMS of the audio that passed since the last
//! reading, in dBFS, for the faces' microphone and speaker meters. Fed one
//! frame at a time on the media side (never in a device callback); no
//! allocation.

use serde::Serialize;

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
}
