//! Sample-rate conversion between an audio endpoint and the codec.
//!
//! Streaming linear interpolation with its phase carried across frames:
//! exact (a copy) when the rates match — the common case for file and
//! null endpoints — and adequate for level meters and tests otherwise.
//! Sound-device paths at 44.1/48 kHz need a band-limited resampler
//! (`rubato`), which arrives with the device backend.

/// Converts a stream of mono frames from `from` Hz to `to` Hz.
#[derive(Debug, Clone)]
pub struct Resampler {
    from: u32,
    to: u32,
    /// Position of the next output sample, in input samples, relative to
    /// the start of the next input frame (may be negative: between the
    /// previous frame's last sample and this frame's first).
    pos: f64,
    last: i16,
}

impl Resampler {
    pub fn new(from: u32, to: u32) -> Resampler {
        Resampler {
            from: from.max(1),
            to: to.max(1),
            pos: 0.0,
            last: 0,
        }
    }

    pub fn is_identity(&self) -> bool {
        self.from == self.to
    }

    /// Convert `input` (one frame) into `out` (cleared first).
    pub fn process(&mut self, input: &[i16], out: &mut Vec<i16>) {
        out.clear();
        if self.is_identity() {
            out.extend_from_slice(input);
            return;
        }
        let step = f64::from(self.from) / f64::from(self.to);
        let n = input.len() as f64;
        while self.pos < n - 1.0 + 1e-9 || (self.pos < 0.0) {
            let i = self.pos.floor();
            let frac = self.pos - i;
            let a = if i < 0.0 {
                f64::from(self.last)
            } else {
                f64::from(input.get(i as usize).copied().unwrap_or(0))
            };
            let b = f64::from(input.get((i + 1.0).max(0.0) as usize).copied().unwrap_or(0));
            out.push((a + (b - a) * frac).round() as i16);
            self.pos += step;
            if input.is_empty() {
                break;
            }
        }
        self.pos -= n;
        if let Some(&l) = input.last() {
            self.last = l;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::tone::{sine, tone_share};

    #[test]
    fn identity_is_a_copy() {
        let mut r = Resampler::new(8000, 8000);
        let mut out = Vec::new();
        r.process(&[1, 2, 3], &mut out);
        assert_eq!(out, [1, 2, 3]);
    }

    #[test]
    fn keeps_the_rate_ratio_over_many_frames_and_the_tone() {
        for (from, to) in [
            (8000u32, 16000u32),
            (16000, 8000),
            (8000, 48000),
            (48000, 8000),
            (44100, 8000),
        ] {
            let mut r = Resampler::new(from, to);
            let input = sine(440.0, from, 10_000.0, from as usize); // 1 s
            let mut total = Vec::new();
            let mut out = Vec::new();
            for frame in input.chunks((from / 50) as usize) {
                r.process(frame, &mut out);
                total.extend_from_slice(&out);
            }
            // The last input sample's worth of output waits for the next
            // frame (interpolation needs the sample after it).
            let slack = i64::from(to.div_ceil(from)) + 1;
            assert!(
                (total.len() as i64 - i64::from(to)).abs() <= slack,
                "{from}->{to}: {} samples",
                total.len()
            );
            let share = tone_share(&total[100..total.len() - 100], to, 440.0);
            assert!(share > 0.9, "{from}->{to}: tone share {share}");
        }
    }
}
