//! Sample-rate conversion between an audio endpoint (a sound card at
//! 44.1/48 kHz, a file at any rate) and the codec (8, 16 or 48 kHz).
//!
//! Band-limited interpolation with a Hann-windowed sinc kernel whose
//! cut-off follows the lower of the two rates, so downsampling does not
//! fold the upper band into speech (aliasing) and upsampling does not
//! image. Streaming: history is carried across frames; the delay is half a
//! kernel (about 1 ms). Equal rates are an exact copy.

/// Kernel half-width in output-rate zero crossings (quality vs cost).
const HALF_TAPS: f64 = 16.0;
/// Kernel table resolution: entries per input sample.
const TABLE_STEPS: f64 = 512.0;

/// Converts a stream of mono frames from `from` Hz to `to` Hz.
#[derive(Debug, Clone)]
pub struct Resampler {
    from: u32,
    to: u32,
    /// Input samples per output sample.
    step: f64,
    /// Cut-off relative to the input Nyquist frequency (≤ 1).
    cutoff: f64,
    /// Kernel half-width in input samples.
    half: usize,
    /// Input history and the frame being converted, as f64.
    buf: Vec<f64>,
    /// Position of the next output sample in `buf`.
    pos: f64,
    /// The kernel sampled every 1/TABLE_STEPS input samples from 0 out.
    table: Vec<f64>,
}

impl Resampler {
    pub fn new(from: u32, to: u32) -> Resampler {
        let (from, to) = (from.max(1), to.max(1));
        let cutoff = (f64::from(to) / f64::from(from)).min(1.0) * 0.97;
        let half = (HALF_TAPS / cutoff).ceil() as usize;
        let mut r = Resampler {
            from,
            to,
            step: f64::from(from) / f64::from(to),
            cutoff,
            half,
            // Start with a half-kernel of silence so output begins at once.
            buf: vec![0.0; half],
            pos: half as f64,
            table: Vec::new(),
        };
        if from != to {
            let n = ((half as f64 + 2.0) * TABLE_STEPS) as usize;
            r.table = (0..=n)
                .map(|k| r.kernel_exact(k as f64 / TABLE_STEPS))
                .collect();
        }
        r
    }

    pub fn is_identity(&self) -> bool {
        self.from == self.to
    }

    /// The kernel from the table (linear between entries).
    fn kernel(&self, x: f64) -> f64 {
        let p = x.abs() * TABLE_STEPS;
        let i = p as usize;
        match (self.table.get(i), self.table.get(i + 1)) {
            (Some(a), Some(b)) => a + (b - a) * (p - i as f64),
            _ => 0.0,
        }
    }

    fn kernel_exact(&self, x: f64) -> f64 {
        let w = x / (self.half as f64 + 1.0);
        if w.abs() >= 1.0 {
            return 0.0;
        }
        let window = 0.5 * (1.0 + (std::f64::consts::PI * w).cos());
        let t = std::f64::consts::PI * self.cutoff * x;
        let sinc = if t.abs() < 1e-12 { 1.0 } else { t.sin() / t };
        self.cutoff * sinc * window
    }

    /// Convert `input` (one frame) into `out` (cleared first). Over time the
    /// output count follows the rate ratio exactly; a single frame may
    /// differ by one sample.
    pub fn process(&mut self, input: &[i16], out: &mut Vec<i16>) {
        out.clear();
        if self.is_identity() {
            out.extend_from_slice(input);
            return;
        }
        self.buf.extend(input.iter().map(|&s| f64::from(s)));
        let half = self.half as f64;
        while self.pos + half < self.buf.len() as f64 {
            let centre = self.pos.floor();
            let first = (centre - half + 1.0).max(0.0) as usize;
            let last = ((centre + half) as usize).min(self.buf.len() - 1);
            let mut acc = 0.0;
            for i in first..=last {
                acc += self.buf[i] * self.kernel(self.pos - i as f64);
            }
            out.push(acc.round().clamp(-32768.0, 32767.0) as i16);
            self.pos += self.step;
        }
        // Keep only what the next outputs can still reach.
        let keep_from = (self.pos.floor() as usize).saturating_sub(self.half);
        if keep_from > 0 {
            self.buf.drain(..keep_from.min(self.buf.len()));
            self.pos -= keep_from as f64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::tone::{rms_dbfs, sine, tone_share};

    #[test]
    fn identity_is_a_copy() {
        let mut r = Resampler::new(8000, 8000);
        let mut out = Vec::new();
        r.process(&[1, 2, 3], &mut out);
        assert_eq!(out, [1, 2, 3]);
    }

    fn convert(from: u32, to: u32, input: &[i16]) -> Vec<i16> {
        let mut r = Resampler::new(from, to);
        let (mut total, mut out) = (Vec::new(), Vec::new());
        for frame in input.chunks((from / 50) as usize) {
            r.process(frame, &mut out);
            total.extend_from_slice(&out);
        }
        total
    }

    #[test]
    fn keeps_the_rate_ratio_the_tone_and_its_level() {
        for (from, to) in [
            (8000u32, 16000u32),
            (16000, 8000),
            (8000, 48000),
            (48000, 8000),
            (44100, 8000),
            (48000, 16000),
        ] {
            let input = sine(440.0, from, 10_000.0, from as usize); // 1 s
            let total = convert(from, to, &input);
            // The kernel's delay (half a kernel, ≤ 2.2 ms) is still in the pipe.
            let r = Resampler::new(from, to);
            let max_short = (r.half as f64 / r.step).ceil() as i64 + 2;
            let short = i64::from(to) - total.len() as i64;
            assert!(
                (0..=max_short).contains(&short) && max_short <= i64::from(to) / 400,
                "{from}->{to}: {} samples",
                total.len()
            );
            let mid = &total[total.len() / 4..total.len() * 3 / 4];
            let share = tone_share(mid, to, 440.0);
            assert!(share > 0.99, "{from}->{to}: tone share {share}");
            let level = rms_dbfs(mid) - rms_dbfs(&input);
            assert!(
                level.abs() < 0.3,
                "{from}->{to}: level changed by {level:.2} dB"
            );
        }
    }

    #[test]
    fn downsampling_does_not_fold_the_upper_band_into_speech() {
        // A 7 kHz tone at 48 kHz would alias to 1 kHz at 8 kHz.
        let input = sine(7000.0, 48000, 10_000.0, 48000);
        let total = convert(48000, 8000, &input);
        let mid = &total[2000..6000];
        let attenuation = rms_dbfs(mid) - rms_dbfs(&input);
        assert!(attenuation < -40.0, "alias only {attenuation:.1} dB down");
        // Speech band passes: 3 kHz at 48 kHz → 8 kHz within 1 dB.
        let speech = sine(3000.0, 48000, 10_000.0, 48000);
        let t = convert(48000, 8000, &speech);
        let loss = rms_dbfs(&t[2000..6000]) - rms_dbfs(&speech);
        assert!(loss.abs() < 1.0, "3 kHz changed by {loss:.2} dB");
    }
}
