//! Sample-rate conversion between an audio endpoint (a sound card at
//! 44.1/48 kHz, a file at any rate) and the codec (8, 16 or 48 kHz).
//!
//! Band-limited interpolation with a Hann-windowed sinc kernel whose
//! cut-off follows the lower of the two rates, so downsampling does not
//! fold the upper band into speech (aliasing) and upsampling does not
//! image. Streaming: history is carried across frames; the delay is half a
//! kernel (about 1 ms). Equal rates are an exact copy.
//!
//! Polyphase: an output sample falls between two input samples at one of
//! `to / gcd(from, to)` fractional positions (6 for 8 → 48 kHz, 1 for
//! 48 → 8 kHz, 80 for 44.1 → 8 kHz). The kernel is sampled once per
//! position into a row of taps, so each output is one dot product of
//! contiguous `f32`s, which the compiler vectorises. Rates with more than
//! [`MAX_PHASES`] positions (an odd file rate) use the nearest of that many
//! rows, a timing error under 1/1000 of a sample; the output count follows
//! the exact ratio either way.

/// Kernel half-width in output-rate zero crossings (quality vs cost).
const HALF_TAPS: f64 = 16.0;
/// Most kernel rows (fractional positions) kept.
const MAX_PHASES: u64 = 512;
/// Lanes of the dot product's partial sums (one AVX register of f32).
const LANES: usize = 8;

/// Converts a stream of mono frames from `from` Hz to `to` Hz.
#[derive(Debug, Clone)]
pub struct Resampler {
    from: u32,
    to: u32,
    /// Input samples per output sample, as the fraction `num / den`
    /// (`from / to` in lowest terms).
    num: u64,
    den: u64,
    /// Kernel half-width in input samples.
    half: usize,
    /// Taps per row: `2 * half`.
    taps: usize,
    /// Kernel rows, `taps` each; row `r` is for an output `r / rows` of an
    /// input sample past the centre tap.
    rows: usize,
    kernel: Vec<f32>,
    /// Input history and the frame being converted.
    buf: Vec<f32>,
    /// The next output's centre input sample in `buf`, and how far past it
    /// the output lies, in `den`ths of a sample.
    centre: usize,
    frac: u64,
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl Resampler {
    pub fn new(from: u32, to: u32) -> Resampler {
        let (from, to) = (from.max(1), to.max(1));
        let g = gcd(u64::from(from), u64::from(to));
        let (num, den) = (u64::from(from) / g, u64::from(to) / g);
        let cutoff = (f64::from(to) / f64::from(from)).min(1.0) * 0.97;
        let half = (HALF_TAPS / cutoff).ceil() as usize;
        let taps = 2 * half;
        let rows = den.min(MAX_PHASES) as usize;
        let mut kernel = Vec::new();
        if from != to {
            kernel.reserve(rows * taps);
            for r in 0..rows {
                let offset = r as f64 / rows as f64;
                // Tap j multiplies input sample centre - half + 1 + j.
                for j in 0..taps {
                    let x = offset + half as f64 - 1.0 - j as f64;
                    kernel.push(kernel_at(x, cutoff, half) as f32);
                }
            }
        }
        Resampler {
            from,
            to,
            num,
            den,
            half,
            taps,
            rows,
            kernel,
            // Start with a half-kernel of silence so output begins at once.
            buf: vec![0.0; half],
            centre: half,
            frac: 0,
        }
    }

    pub fn is_identity(&self) -> bool {
        self.from == self.to
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
        self.buf.extend(input.iter().map(|&s| f32::from(s)));
        while self.centre + self.half < self.buf.len() {
            let row = (self.frac * self.rows as u64 / self.den) as usize;
            let taps = &self.kernel[row * self.taps..(row + 1) * self.taps];
            let first = self.centre + 1 - self.half;
            let acc = dot(&self.buf[first..first + self.taps], taps);
            out.push(acc.round().clamp(-32768.0, 32767.0) as i16);
            self.frac += self.num;
            self.centre += (self.frac / self.den) as usize;
            self.frac %= self.den;
        }
        // Keep only what the next outputs can still reach.
        let keep_from = (self.centre + 1 - self.half).min(self.buf.len());
        if keep_from > 0 {
            self.buf.drain(..keep_from);
            self.centre -= keep_from;
        }
    }
}

/// The windowed sinc at `x` input samples from the output position.
fn kernel_at(x: f64, cutoff: f64, half: usize) -> f64 {
    let w = x / (half as f64 + 1.0);
    if w.abs() >= 1.0 {
        return 0.0;
    }
    let window = 0.5 * (1.0 + (std::f64::consts::PI * w).cos());
    let t = std::f64::consts::PI * cutoff * x;
    let sinc = if t.abs() < 1e-12 { 1.0 } else { t.sin() / t };
    cutoff * sinc * window
}

/// `a · b` over equal lengths, with one partial sum per lane so the main
/// loop vectorises.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let (xs, x_tail) = a.as_chunks::<LANES>();
    let (ys, y_tail) = b.as_chunks::<LANES>();
    let mut acc = [0.0f32; LANES];
    for (x, y) in xs.iter().zip(ys) {
        for ((s, x), y) in acc.iter_mut().zip(x).zip(y) {
            *s += x * y;
        }
    }
    let tail: f32 = x_tail.iter().zip(y_tail).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f32>() + tail
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

    fn convert_in(from: u32, to: u32, input: &[i16], frame: usize) -> Vec<i16> {
        let mut r = Resampler::new(from, to);
        let (mut total, mut out) = (Vec::new(), Vec::new());
        for chunk in input.chunks(frame) {
            r.process(chunk, &mut out);
            total.extend_from_slice(&out);
        }
        total
    }

    fn convert(from: u32, to: u32, input: &[i16]) -> Vec<i16> {
        convert_in(from, to, input, (from / 50) as usize)
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
            (16000, 44100),
            // 640 positions: more than MAX_PHASES rows, the nearest is used.
            (11025, 16000),
        ] {
            let input = sine(440.0, from, 10_000.0, from as usize); // 1 s
            let total = convert(from, to, &input);
            // The kernel's delay (half a kernel, ≤ 2.2 ms) is still in the pipe.
            let r = Resampler::new(from, to);
            let step = r.num as f64 / r.den as f64;
            let max_short = (r.half as f64 / step).ceil() as i64 + 2;
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
    fn the_frame_size_does_not_change_the_output() {
        let input = sine(1234.0, 44100, 12_000.0, 44100);
        let whole = convert_in(44100, 8000, &input, input.len());
        for frame in [1, 7, 441, 882, 1000] {
            assert_eq!(
                convert_in(44100, 8000, &input, frame),
                whole,
                "frame {frame}"
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

    #[test]
    fn upsampling_does_not_image_speech_into_the_upper_band() {
        // 1 kHz at 8 kHz has images at 7 and 9 kHz once at 48 kHz.
        let input = sine(1000.0, 8000, 10_000.0, 8000);
        let total = convert(8000, 48000, &input);
        let mid = &total[12_000..36_000];
        let kept = tone_share(mid, 48000, 1000.0);
        assert!(kept > 0.999, "1 kHz share {kept}");
        for image in [7000.0, 9000.0] {
            let share = tone_share(mid, 48000, image);
            assert!(share < 1e-4, "{image} Hz image share {share}");
        }
    }
}
