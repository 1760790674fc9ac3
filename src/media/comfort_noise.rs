//! Comfort noise for the gaps in what the far end sends (silence
//! suppression, Opus DTX pauses, outages): instead of dead digital silence,
//! which makes a listener think the line dropped, the gap gets noise at the
//! far end's own background level.
//!
//! The level is the far end's noise floor, tracked over the frames that
//! were heard: it falls at once to a quieter frame and rises slowly (0.1 dB
//! per frame, at least 0.05 of a step) while frames stay louder, so speech
//! does not lift it but the pauses between words hold it down. It counts as
//! a background only when the far end was heard at least [`BELOW_DB`] above
//! it recently (its talk level falls 1 dB per second): a steady signal
//! without pauses, a tone or music, is not a background, and its gaps stay
//! silent. It is never above [`MAX_DBFS`], and a far end that sends digital
//! silence gets silence. Sans-IO, no allocation.

/// Loudest comfort noise, in dBFS (a quiet office; speech is around -20).
pub const MAX_DBFS: f32 = -50.0;
/// How far below the far end's talk level a floor must be to count as its
/// background.
pub const BELOW_DB: f32 = 15.0;
/// Fall of the talk level per frame: about 0.02 dB.
const TALK_DECAY: f32 = 0.997_7;
/// Rise of the floor estimate per louder frame: 0.1 dB.
const RISE: f32 = 1.011_579;
/// And at least this much (i16 units), so that a floor of zero can rise.
const RISE_MIN: f32 = 0.05;

/// The far end's background level, and noise at that level for the gaps.
#[derive(Debug, Clone)]
pub struct ComfortNoise {
    /// RMS of the background in i16 units; `None` until a frame was heard.
    floor: Option<f32>,
    /// The far end's recent talk level: the loudest frame RMS, decaying.
    talk: f32,
    rng: u32,
}

impl ComfortNoise {
    pub fn new(seed: u32) -> Self {
        ComfortNoise {
            floor: None,
            talk: 0.0,
            rng: seed | 1,
        }
    }

    /// A frame of the far end's audio was played (decoded from its packet,
    /// not concealed).
    pub fn heard(&mut self, pcm: &[i16]) {
        if pcm.is_empty() {
            return;
        }
        let sum: f64 = pcm.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
        let rms = (sum / pcm.len() as f64).sqrt() as f32;
        self.floor = Some(match self.floor {
            None => rms,
            Some(f) => rms.min((f * RISE).max(f + RISE_MIN)),
        });
        self.talk = rms.max(self.talk * TALK_DECAY);
    }

    /// The level the noise is played at, in dBFS (`None`: silence).
    pub fn level_dbfs(&self) -> Option<f32> {
        let rms = self.rms();
        (rms >= 1.0).then(|| 20.0 * (rms / 32768.0).log10())
    }

    fn rms(&self) -> f32 {
        let max = 32768.0 * 10f32.powf(MAX_DBFS / 20.0);
        let floor = self.floor.unwrap_or(0.0);
        if floor * 10f32.powf(BELOW_DB / 20.0) > self.talk {
            // No pauses heard: not a background.
            return 0.0;
        }
        floor.min(max)
    }

    /// Fill `out` with comfort noise (silence while nothing was heard, or
    /// when the far end's background is digital silence).
    pub fn fill(&mut self, out: &mut [i16]) {
        let rms = self.rms();
        if rms < 1.0 {
            out.fill(0);
            return;
        }
        // Uniform noise in [-1, 1) has an RMS of 1/√3.
        let scale = rms * 3f32.sqrt();
        for s in out.iter_mut() {
            *s = (uniform(&mut self.rng) * scale).round() as i16;
        }
    }
}

/// Uniform in [-1, 1) (xorshift32; `rng` must not be 0).
fn uniform(rng: &mut u32) -> f32 {
    *rng ^= *rng << 13;
    *rng ^= *rng >> 17;
    *rng ^= *rng << 5;
    (*rng >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rms_dbfs(x: &[i16]) -> f32 {
        let sum: f64 = x.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
        let rms = (sum / x.len() as f64).sqrt();
        (20.0 * (rms / 32768.0).log10()) as f32
    }

    /// White noise at about `dbfs` (deterministic).
    fn noise(dbfs: f32, n: usize, seed: u32) -> Vec<i16> {
        let mut rng = seed | 1;
        let scale = 32768.0 * 10f32.powf(dbfs / 20.0) * 3f32.sqrt();
        (0..n)
            .map(|_| (uniform(&mut rng) * scale).round() as i16)
            .collect()
    }

    #[test]
    fn silence_until_something_was_heard() {
        let mut cn = ComfortNoise::new(1);
        let mut out = vec![7i16; 160];
        cn.fill(&mut out);
        assert!(out.iter().all(|&s| s == 0));
        assert_eq!(cn.level_dbfs(), None);
    }

    #[test]
    fn the_gap_gets_the_background_level_of_speech_with_pauses() {
        let mut cn = ComfortNoise::new(1);
        let bg = noise(-62.0, 160 * 200, 5);
        let loud = noise(-18.0, 160 * 200, 6);
        // 4 s: talk 300 ms, pause 100 ms, over a -62 dBFS background.
        for (k, frame) in bg.chunks(160).enumerate() {
            if k % 20 < 15 {
                cn.heard(&loud[k * 160..][..160]);
            } else {
                cn.heard(frame);
            }
        }
        let mut out = vec![0i16; 8000];
        cn.fill(&mut out);
        let got = rms_dbfs(&out);
        assert!((got + 62.0).abs() < 2.0, "comfort noise at {got:.1} dBFS");
    }

    #[test]
    fn a_steady_signal_without_pauses_is_no_background() {
        let mut cn = ComfortNoise::new(1);
        for frame in noise(-40.0, 160 * 200, 3).chunks(160) {
            cn.heard(frame);
        }
        let mut out = vec![5i16; 1600];
        cn.fill(&mut out);
        assert!(out.iter().all(|&s| s == 0));
        assert_eq!(cn.level_dbfs(), None);
    }

    #[test]
    fn loud_background_is_capped_and_digital_silence_stays_silent() {
        let mut cn = ComfortNoise::new(1);
        // Talk at -10 dBFS with pauses over a -30 dBFS background.
        let (bg, loud) = (noise(-30.0, 160 * 100, 3), noise(-10.0, 160 * 100, 4));
        for (k, frame) in bg.chunks(160).enumerate() {
            cn.heard(if k % 10 < 7 {
                &loud[k * 160..][..160]
            } else {
                frame
            });
        }
        let mut out = vec![0i16; 8000];
        cn.fill(&mut out);
        let got = rms_dbfs(&out);
        assert!((got - MAX_DBFS).abs() < 1.0, "{got:.1} dBFS");
        // One frame of digital silence (a sender with nothing behind it).
        cn.heard(&[0; 160]);
        cn.fill(&mut out);
        assert!(out.iter().all(|&s| s == 0));
    }
}
