//! Local conference mixing and local tones, sans-IO.
//!
//! A three-way conference joins the local microphone and two calls. Each
//! party must hear the other two, never itself:
//!
//! ```text
//!   to call A  = mic + B        to call B = mic + A        speaker = A + B
//! ```
//!
//! The two calls' media loops run on their own frame clocks (10/20/30 ms)
//! and codec rates (8, 16, 48 kHz), so frames travel between them through a
//! [`Pipe`]: resampled to the reader's rate, buffered a little, bounded (the
//! oldest audio is dropped rather than letting delay grow), padded with
//! silence when the writer falls behind. [`Mix3`] does one tick's sums with
//! saturating adds. [`Beeps`] adds short local tone bursts (call waiting,
//! auto-answer zip tone) to what the local speaker plays.
//!
//! Nothing here allocates once warm, and nothing here runs in a real-time
//! audio callback: the media task calls it once per frame.

use std::collections::VecDeque;

use super::resample::Resampler;

/// Add `src` into `dst`, sample by sample, saturating at full scale (no
/// wrap-around: two loud voices clip instead of turning into noise).
pub fn mix_into(dst: &mut [i16], src: &[i16]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d = d.saturating_add(*s);
    }
}

/// A one-way PCM stream between two separately clocked loops, possibly at
/// different rates.
#[derive(Debug)]
pub struct Pipe {
    /// (writer rate, reader rate) the resampler converts between.
    rates: Option<(u32, u32)>,
    resampler: Resampler,
    fifo: VecDeque<i16>,
    tmp: Vec<i16>,
    /// Buffered audio (reader samples) before reading starts, and after an
    /// underrun: absorbs the two loops' different frame sizes and jitter.
    prime_ms: u32,
    /// The most audio kept (reader samples); older audio is dropped.
    max_ms: u32,
    primed: bool,
    /// Samples dropped because the writer ran ahead (statistics, tests).
    pub dropped: u64,
    /// Silent samples handed out because the writer fell behind.
    pub padded: u64,
}

impl Pipe {
    /// A pipe that waits for `prime_ms` of audio before it plays and keeps
    /// at most `max_ms` (at least `prime_ms` plus a frame).
    pub fn new(prime_ms: u32, max_ms: u32) -> Pipe {
        Pipe {
            rates: None,
            resampler: Resampler::new(8000, 8000),
            fifo: VecDeque::with_capacity(48 * max_ms as usize),
            tmp: Vec::with_capacity(2048),
            prime_ms,
            max_ms: max_ms.max(prime_ms + 40),
            primed: false,
            dropped: 0,
            padded: 0,
        }
    }

    /// The reader's rate (what `fifo` holds), once known.
    fn out_rate(&self) -> Option<u32> {
        self.rates.map(|(_, to)| to)
    }

    /// Write one frame at `rate` Hz. Before the reader has said its rate,
    /// the frame is kept at the writer's rate.
    pub fn push(&mut self, pcm: &[i16], rate: u32) {
        let to = self.out_rate().unwrap_or(rate);
        self.set_rates(rate, to);
        self.resampler.process(pcm, &mut self.tmp);
        self.fifo.extend(self.tmp.iter().copied());
        let max = samples(to, self.max_ms);
        if self.fifo.len() > max {
            // Fall back to the priming level, not just under the bound:
            // one jump instead of a drop every frame.
            let excess = self.fifo.len() - samples(to, self.prime_ms);
            self.fifo.drain(..excess);
            self.dropped += excess as u64;
        }
    }

    /// Read exactly `out.len()` samples at `rate` Hz (silence where there
    /// is nothing to read yet).
    pub fn pull(&mut self, out: &mut [i16], rate: u32) {
        if self.out_rate() != Some(rate) {
            // The reader's rate is new (first read, or a new codec): what is
            // buffered was converted for another rate; start over.
            let from = self.rates.map_or(rate, |(from, _)| from);
            self.fifo.clear();
            self.primed = false;
            self.set_rates(from, rate);
        }
        if !self.primed && self.fifo.len() >= samples(rate, self.prime_ms).max(out.len()) {
            self.primed = true;
        }
        if !self.primed {
            out.fill(0);
            self.padded += out.len() as u64;
            return;
        }
        let n = out.len().min(self.fifo.len());
        for (o, s) in out.iter_mut().zip(self.fifo.drain(..n)) {
            *o = s;
        }
        if n < out.len() {
            out[n..].fill(0);
            self.padded += (out.len() - n) as u64;
            self.primed = false;
        }
    }

    fn set_rates(&mut self, from: u32, to: u32) {
        if self.rates != Some((from, to)) {
            if self.rates.is_some_and(|(_, old_to)| old_to != to) {
                self.fifo.clear();
                self.primed = false;
            }
            self.rates = Some((from, to));
            self.resampler = Resampler::new(from, to);
        }
    }

    /// Buffered samples (at the reader's rate).
    pub fn len(&self) -> usize {
        self.fifo.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fifo.is_empty()
    }
}

fn samples(rate: u32, ms: u32) -> usize {
    (u64::from(rate) * u64::from(ms) / 1000) as usize
}

/// One tick of a three-way conference, all at one rate and frame size.
#[derive(Debug, Default)]
pub struct Mix3 {
    /// What call A is sent: the microphone and call B.
    pub to_a: Vec<i16>,
    /// What call B is sent: the microphone and call A.
    pub to_b: Vec<i16>,
    /// What the local speaker plays: calls A and B.
    pub local: Vec<i16>,
}

impl Mix3 {
    /// Mix one frame. `mic`, `from_a` and `from_b` should be equally long
    /// (the outputs take the microphone's length; a short input counts as
    /// silence past its end).
    pub fn process(&mut self, mic: &[i16], from_a: &[i16], from_b: &[i16]) {
        let n = mic.len();
        for (out, (x, y)) in [
            (&mut self.to_a, (mic, from_b)),
            (&mut self.to_b, (mic, from_a)),
            (&mut self.local, (from_a, from_b)),
        ] {
            out.clear();
            out.extend_from_slice(x.get(..n).unwrap_or(x));
            out.resize(n, 0);
            mix_into(out, y);
        }
    }
}

/// A local tone: bursts of a sine, added to what the speaker plays.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ToneSpec {
    pub freq: f64,
    /// Peak amplitude (0..=32767).
    pub amp: f64,
    pub on_ms: u32,
    pub off_ms: u32,
    pub bursts: u32,
}

impl ToneSpec {
    /// Call waiting (ITU-T E.180 style): one 440 Hz burst of 300 ms, at
    /// about −16 dBFS; the core repeats it every 10 s while the call rings.
    pub const CALL_WAITING: ToneSpec = ToneSpec {
        freq: 440.0,
        amp: 5000.0,
        on_ms: 300,
        off_ms: 0,
        bursts: 1,
    };
    /// Auto-answer zip tone: two 100 ms beeps at 1 kHz, 100 ms apart.
    pub const ZIP: ToneSpec = ToneSpec {
        freq: 1000.0,
        amp: 6000.0,
        on_ms: 100,
        off_ms: 100,
        bursts: 2,
    };

    fn total_ms(&self) -> u64 {
        u64::from(self.on_ms + self.off_ms) * u64::from(self.bursts)
    }
}

/// Plays queued [`ToneSpec`]s one after the other into frames of PCM.
#[derive(Debug, Default)]
pub struct Beeps {
    queue: VecDeque<ToneSpec>,
    /// Position in the current tone, in samples at `rate`.
    pos: u64,
    rate: u32,
}

impl Beeps {
    pub fn play(&mut self, tone: ToneSpec) {
        if self.queue.len() < 8 {
            self.queue.push_back(tone);
        }
    }

    pub fn is_playing(&self) -> bool {
        !self.queue.is_empty()
    }

    /// Add the tone (if one is playing) into `out`, a frame at `rate` Hz.
    pub fn add_to(&mut self, out: &mut [i16], rate: u32) {
        if rate != self.rate {
            // Keep the position in time across a rate change.
            self.pos = self.pos * u64::from(rate) / u64::from(self.rate.max(1));
            self.rate = rate;
        }
        let mut i = 0;
        while i < out.len() {
            let Some(tone) = self.queue.front().copied() else {
                return;
            };
            let total = tone.total_ms() * u64::from(rate) / 1000;
            let period = u64::from(tone.on_ms + tone.off_ms) * u64::from(rate) / 1000;
            let on = u64::from(tone.on_ms) * u64::from(rate) / 1000;
            let w = 2.0 * std::f64::consts::PI * tone.freq / f64::from(rate);
            while i < out.len() && self.pos < total {
                let in_period = self.pos % period.max(1);
                if in_period < on {
                    let s = (tone.amp * (w * in_period as f64).sin()).round() as i16;
                    if let Some(o) = out.get_mut(i) {
                        *o = o.saturating_add(s);
                    }
                }
                self.pos += 1;
                i += 1;
            }
            if self.pos >= total {
                self.queue.pop_front();
                self.pos = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::tone::{rms_dbfs, sine, tone_share};

    #[test]
    fn mixing_saturates_instead_of_wrapping() {
        let mut a = [30_000i16, -30_000, 100, 0];
        mix_into(&mut a, &[10_000, -10_000, -50, 7]);
        assert_eq!(a, [32_767, -32_768, 50, 7]);
    }

    #[test]
    fn each_party_hears_the_other_two_and_not_itself() {
        let n = 1600;
        let (mic, a, b) = (
            sine(700.0, 8000, 6000.0, n),
            sine(1100.0, 8000, 6000.0, n),
            sine(1700.0, 8000, 6000.0, n),
        );
        let mut m = Mix3::default();
        m.process(&mic, &a, &b);
        for (out, hears, not) in [
            (&m.to_a, [700.0, 1700.0], 1100.0),
            (&m.to_b, [700.0, 1100.0], 1700.0),
            (&m.local, [1100.0, 1700.0], 700.0),
        ] {
            for f in hears {
                let share = tone_share(out, 8000, f);
                assert!((0.4..0.6).contains(&share), "{f} Hz: {share}");
            }
            assert!(tone_share(out, 8000, not) < 0.01);
            // Two uncorrelated tones of equal level: +3 dB over one.
            let gain = rms_dbfs(out) - rms_dbfs(&mic);
            assert!((gain - 3.01).abs() < 0.2, "level {gain}");
        }
        // A missing party is silence, not garbage.
        m.process(&mic, &a, &[]);
        assert_eq!(m.to_a, mic);
        assert_eq!(m.local, a);
    }

    #[test]
    fn loud_parties_clip_at_full_scale() {
        let loud = vec![25_000i16; 160];
        let mut m = Mix3::default();
        m.process(&loud, &loud, &[-25_000; 160]);
        assert!(m.to_a.iter().all(|&s| s == 0));
        assert!(m.to_b.iter().all(|&s| s == 32_767));
        assert!(m.local.iter().all(|&s| s == 0));
    }

    /// Frames of `frame_ms` from a tone at `from` Hz, read back at `to` Hz
    /// in frames of `read_ms`, interleaved as two loops would run.
    fn through_pipe(from: u32, to: u32, frame_ms: u32, read_ms: u32) -> (Vec<i16>, Pipe) {
        let mut pipe = Pipe::new(40, 200);
        let input = sine(1100.0, from, 8000.0, from as usize * 2);
        let (wn, rn) = (samples(from, frame_ms), samples(to, read_ms));
        let mut out = Vec::new();
        let mut frame = vec![0i16; rn];
        let (mut t_w, mut t_r) = (0u32, 0u32);
        let mut chunks = input.chunks(wn);
        // Both loops run for two seconds, each on its own frame clock.
        while t_w < 2000 || t_r < 2000 {
            if t_w <= t_r {
                if let Some(c) = chunks.next() {
                    pipe.push(c, from);
                }
                t_w += frame_ms;
            } else {
                pipe.pull(&mut frame, to);
                out.extend_from_slice(&frame);
                t_r += read_ms;
            }
        }
        (out, pipe)
    }

    #[test]
    fn pipe_carries_a_tone_across_rates_and_frame_sizes() {
        for (from, to, wms, rms) in [
            (8000, 8000, 20, 20),
            (8000, 16000, 20, 20),
            (16000, 8000, 20, 30),
            (48000, 8000, 10, 20),
            (8000, 48000, 30, 20),
        ] {
            let (out, pipe) = through_pipe(from, to, wms, rms);
            assert!(out.len() >= to as usize * 2, "{from}->{to}");
            let mid = &out[to as usize / 2..to as usize * 3 / 2];
            let share = tone_share(mid, to, 1100.0);
            assert!(share > 0.95, "{from}->{to} ({wms}/{rms} ms): {share}");
            let level = rms_dbfs(mid) - rms_dbfs(&sine(1100.0, to, 8000.0, to as usize));
            assert!(level.abs() < 0.5, "{from}->{to}: level {level}");
            // Steady state: no drops, silence only while priming.
            assert_eq!(pipe.dropped, 0, "{from}->{to}");
            assert!(
                pipe.padded <= u64::from(to) * 80 / 1000,
                "{from}->{to}: padded {}",
                pipe.padded
            );
        }
    }

    #[test]
    fn pipe_delay_is_bounded_when_the_reader_stalls() {
        let mut pipe = Pipe::new(40, 200);
        let mut frame = [0i16; 160];
        pipe.pull(&mut frame, 8000);
        for _ in 0..100 {
            pipe.push(&[1000; 160], 8000);
        }
        assert!(pipe.len() <= 1600, "{} samples buffered", pipe.len());
        assert!(pipe.dropped > 0);
        // And the writer stalling: silence, then audio again once primed.
        let mut got = Vec::new();
        for _ in 0..20 {
            pipe.pull(&mut frame, 8000);
            got.push(frame[0]);
        }
        assert!(got.contains(&1000) && got.ends_with(&[0]));
        assert!(pipe.padded > 0);
    }

    #[test]
    fn beeps_play_their_pattern_once() {
        let mut b = Beeps::default();
        b.play(ToneSpec::ZIP);
        let mut out = vec![0i16; 8000];
        for frame in out.chunks_mut(160) {
            b.add_to(frame, 8000);
        }
        assert!(!b.is_playing());
        // 100 ms of 1 kHz, 100 ms of silence, 100 ms of 1 kHz, then nothing.
        let win = |ms: usize| &out[ms * 8..ms * 8 + 640];
        assert!(tone_share(win(10), 8000, 1000.0) > 0.95);
        assert_eq!(rms_dbfs(win(110)), f64::NEG_INFINITY);
        assert!(tone_share(win(210), 8000, 1000.0) > 0.95);
        assert!(out[300 * 8..].iter().all(|&s| s == 0));
        // Added on top of what is there.
        let mut b = Beeps::default();
        b.play(ToneSpec::CALL_WAITING);
        let mut voice = sine(1100.0, 16000, 5000.0, 3200);
        for frame in voice.chunks_mut(320) {
            b.add_to(frame, 16000);
        }
        let (w, v) = (
            tone_share(&voice[..4800.min(voice.len())], 16000, 440.0),
            tone_share(&voice, 16000, 1100.0),
        );
        assert!(w > 0.3 && v > 0.3, "{w} {v}");
    }
}
