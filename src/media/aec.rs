//! Acoustic echo cancellation, noise suppression and automatic gain control
//! of the microphone signal, behind one small trait so the media task does
//! not depend on the engine.
//!
//! The default engine is [`sonora`], a pure-Rust port of the WebRTC audio
//! processing module: AEC3 (adaptive linear filter with its own delay
//! estimator, plus a residual echo suppressor), the WebRTC noise suppressor
//! and AGC2 (adaptive digital gain + limiter). It runs on 10 ms blocks at
//! the codec rate (8, 16, 48 kHz and any other multiple of 100 Hz in
//! 8–384 kHz); longer frames are split into blocks.
//!
//! Far-end (speaker) frames are queued and interleaved with the near-end
//! blocks (one render block, then one capture block), which is the call
//! pattern the WebRTC engine expects. The media task hands the played frame
//! over right after playout and cleans the next microphone frame, so every
//! far-end block reaches the canceller before the microphone block that can
//! contain its echo. Sans-IO: no clock, no threads; no allocation per frame
//! in this module once built.
//!
//! Known behaviour with steady test tones (not speech): the noise
//! suppressor lowers a steady near-end tone by about 12 dB, and AEC3 alone
//! suppresses a steady near-end tone by about 40 dB while the far end is a
//! steady tone of another frequency (with speech-like far ends the near end
//! is kept: see the double-talk test). Tone-level tests of the whole path
//! should turn both off.

use std::collections::VecDeque;

use sonora::config::{
    AdaptiveDigital, EchoCanceller as Aec3, GainController2, HighPassFilter, NoiseSuppression,
};
use sonora::{AudioProcessing, Config, StreamConfig};

/// An echo canceller (and whatever else cleans the microphone signal).
pub trait EchoCanceller: Send {
    /// The far-end signal just handed to the speaker (reference), one frame at `rate`.
    fn far_end(&mut self, pcm: &[i16]);
    /// Clean one near-end (microphone) frame in place.
    fn process_near_end(&mut self, pcm: &mut [i16]);
    fn name(&self) -> &'static str;
}

/// Which processing the microphone path gets (`[audio]` config keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AecConfig {
    pub echo_cancellation: bool,
    pub noise_suppression: bool,
    pub auto_gain: bool,
}

impl Default for AecConfig {
    /// Echo cancellation and noise suppression on, automatic gain off.
    fn default() -> Self {
        AecConfig {
            echo_cancellation: true,
            noise_suppression: true,
            auto_gain: false,
        }
    }
}

impl AecConfig {
    /// Everything off: the microphone signal is sent untouched.
    pub const OFF: AecConfig = AecConfig {
        echo_cancellation: false,
        noise_suppression: false,
        auto_gain: false,
    };

    pub fn is_off(&self) -> bool {
        !(self.echo_cancellation || self.noise_suppression || self.auto_gain)
    }

    /// What of it applies between these endpoints. Echo needs a
    /// loudspeaker and a microphone in the same air: with a file or `null`
    /// on either side there is none to cancel, and a canceller left running
    /// only costs CPU (AEC3: about half of a G.711 call's) and can suppress
    /// the near end during double talk. Noise suppression and gain control
    /// are for a microphone: a file input goes out as recorded (the
    /// suppressor reshapes clean speech a little).
    pub fn for_endpoints(self, mic_is_device: bool, speaker_is_device: bool) -> AecConfig {
        AecConfig {
            echo_cancellation: self.echo_cancellation && mic_is_device && speaker_is_device,
            noise_suppression: self.noise_suppression && mic_is_device,
            auto_gain: self.auto_gain && mic_is_device,
        }
    }
}

/// The canceller for a stream at `rate` Hz with frames of `frame_samples`
/// (mono). [`PassThrough`] when everything is off, or when `rate` is one the
/// engine cannot run at (not a multiple of 100 Hz in 8–384 kHz; logged).
pub fn echo_canceller(rate: u32, frame_samples: usize, cfg: &AecConfig) -> Box<dyn EchoCanceller> {
    if cfg.is_off() {
        return Box::new(PassThrough);
    }
    match WebRtcProcessor::new(rate, frame_samples, cfg) {
        Some(p) => Box::new(p),
        None => {
            tracing::warn!("audio processing unavailable at {rate} Hz: microphone sent untouched");
            Box::new(PassThrough)
        }
    }
}

/// No processing: the near-end frame is left exactly as it is.
#[derive(Debug, Default, Clone, Copy)]
pub struct PassThrough;

impl EchoCanceller for PassThrough {
    fn far_end(&mut self, _pcm: &[i16]) {}
    fn process_near_end(&mut self, _pcm: &mut [i16]) {}
    fn name(&self) -> &'static str {
        "off"
    }
}

/// Far-end audio kept for the canceller at most (in 10 ms blocks) when the
/// microphone side stops asking (older blocks are dropped first).
const MAX_QUEUED_BLOCKS: usize = 32;

/// A far-end block whose peak stays below this (about -60 dBFS) is silence
/// for the gate: no echo worth cancelling can come from it.
const FAR_SILENT_PEAK: i16 = 32;
/// The gate opens only for a far-end block peaking at least this (about
/// -45 dBFS: any talker, but not comfort or line noise), and then stays open
/// down to [`FAR_SILENT_PEAK`]. Echo of a quieter far end lies below a
/// microphone's own noise; waking AEC3 for it costs more than CPU: a
/// canceller that just woke (no echo path estimated yet) suppresses hard,
/// which took 0.6 PESQ off the first seconds of our talker's speech when the
/// far end sent -55 dBFS of noise (another Softline's canceller settling).
const FAR_OPEN_PEAK: i16 = 180;
/// The canceller keeps running this long after the far end's last non-silent
/// block (10 ms blocks: 600 ms), which covers the echo path's delay (device
/// buffers, air) and the room's tail.
const ECHO_HOLD_BLOCKS: u32 = 60;

/// The WebRTC audio processing pipeline (sonora): AEC3, noise suppression,
/// AGC2, each as configured.
///
/// AEC3 is most of the cost (at 8 kHz: about 4/5 of the pipeline) and has
/// nothing to do while the far end is silent, so a cheap energy gate runs
/// the microphone through a second pipeline without the canceller (noise
/// suppression, AGC and high-pass as configured) once the far end has been
/// silent for [`ECHO_HOLD_BLOCKS`]. The canceller's pipeline is then simply
/// not called: its adaptive filter and delay estimate stay as they were and
/// apply again when the far end talks. Each switch cross-fades one block
/// from one pipeline's output to the other's.
pub struct WebRtcProcessor {
    apm: AudioProcessing,
    /// The same processing without AEC3, for while the far end is silent
    /// (`None` when echo cancellation is off: `apm` has none then).
    quiet: Option<AudioProcessing>,
    /// Blocks the canceller still runs for (0: the far end is silent, the
    /// `quiet` pipeline runs).
    hold: u32,
    /// Which pipeline ran the previous block (`true`: the canceller's).
    was_active: bool,
    /// The other pipeline's output for a cross-faded block.
    fade: Vec<i16>,
    /// Samples per 10 ms block.
    block: usize,
    /// Far-end samples not yet given to the engine (whole or partial blocks).
    far: VecDeque<i16>,
    /// One far-end block, contiguous, for the engine.
    far_block: Vec<i16>,
    /// One near-end block in and out.
    near_in: Vec<i16>,
    near_out: Vec<i16>,
    echo: bool,
    name: &'static str,
}

impl WebRtcProcessor {
    /// `None` when `rate` is not a multiple of 100 Hz in 8–384 kHz.
    pub fn new(rate: u32, frame_samples: usize, cfg: &AecConfig) -> Option<WebRtcProcessor> {
        if !(8_000..=384_000).contains(&rate) || !rate.is_multiple_of(100) {
            return None;
        }
        let block = (rate / 100) as usize;
        let config = Config {
            echo_canceller: cfg.echo_cancellation.then(Aec3::default),
            noise_suppression: cfg.noise_suppression.then(NoiseSuppression::default),
            gain_controller2: cfg.auto_gain.then(|| GainController2 {
                adaptive_digital: Some(AdaptiveDigital::default()),
                ..Default::default()
            }),
            // Mains hum and handling noise off the mic (AEC3 asks for it too).
            high_pass_filter: Some(HighPassFilter::default()),
            ..Default::default()
        };
        let quiet_config = Config {
            echo_canceller: None,
            ..config.clone()
        };
        let apm = AudioProcessing::builder()
            .config(config)
            .capture_config(StreamConfig::new(rate, 1))
            .render_config(StreamConfig::new(rate, 1))
            .build();
        let quiet = cfg.echo_cancellation.then(|| {
            AudioProcessing::builder()
                .config(quiet_config)
                .capture_config(StreamConfig::new(rate, 1))
                .render_config(StreamConfig::new(rate, 1))
                .build()
        });
        let name = match (cfg.echo_cancellation, cfg.noise_suppression, cfg.auto_gain) {
            (true, true, true) => "webrtc-aec3+ns+agc2",
            (true, true, false) => "webrtc-aec3+ns",
            (true, false, true) => "webrtc-aec3+agc2",
            (true, false, false) => "webrtc-aec3",
            (false, true, true) => "webrtc-ns+agc2",
            (false, true, false) => "webrtc-ns",
            (false, false, _) => "webrtc-agc2",
        };
        let frame = frame_samples.max(block);
        Some(WebRtcProcessor {
            apm,
            quiet,
            hold: 0,
            was_active: false,
            fade: vec![0; block],
            block,
            far: VecDeque::with_capacity(MAX_QUEUED_BLOCKS * block + frame),
            far_block: vec![0; block],
            near_in: vec![0; block],
            near_out: vec![0; block],
            echo: cfg.echo_cancellation,
            name,
        })
    }

    /// Take one queued far-end block, if a whole one is there: it opens
    /// the gate when not silent, and goes to the canceller while the gate
    /// is open.
    fn feed_far_block(&mut self) {
        if self.far.len() < self.block {
            self.hold = self.hold.saturating_sub(1);
            return;
        }
        let mut peak = 0i16;
        for (d, s) in self.far_block.iter_mut().zip(self.far.drain(..self.block)) {
            *d = s;
            peak = peak.max(s.saturating_abs());
        }
        let threshold = if self.hold > 0 {
            FAR_SILENT_PEAK
        } else {
            FAR_OPEN_PEAK
        };
        self.hold = if peak >= threshold {
            ECHO_HOLD_BLOCKS
        } else {
            self.hold.saturating_sub(1)
        };
        // The canceller also runs the block that shuts the gate (it fades
        // out under the quiet pipeline): render and capture calls stay in
        // pairs, or AEC3 would take the odd one for a delay change.
        if self.hold > 0 || self.was_active || self.quiet.is_none() {
            // The output (a processed copy of the render signal) is not used.
            let _ = self
                .apm
                .process_render_i16(&self.far_block, &mut self.near_out);
        }
    }

    /// Clean `self.near_in` into `self.near_out` with the canceller's
    /// pipeline, or the quiet one while the gate is shut.
    fn process_block(&mut self) {
        let Some(quiet) = self.quiet.as_mut() else {
            capture(&mut self.apm, &self.near_in, &mut self.near_out);
            return;
        };
        let active = self.hold > 0;
        if active {
            // Only a hint: AEC3 finds the echo delay itself.
            let _ = self.apm.set_stream_delay_ms(0);
            capture(&mut self.apm, &self.near_in, &mut self.near_out);
        } else {
            capture(quiet, &self.near_in, &mut self.near_out);
        }
        if active != self.was_active {
            // One block from the other pipeline, faded out under this one.
            if active {
                capture(quiet, &self.near_in, &mut self.fade);
            } else {
                let _ = self.apm.set_stream_delay_ms(0);
                capture(&mut self.apm, &self.near_in, &mut self.fade);
            }
            let n = self.near_out.len().max(1) as i32;
            for (i, (o, f)) in self.near_out.iter_mut().zip(&self.fade).enumerate() {
                let w = i as i32 + 1;
                *o = ((i32::from(*o) * w + i32::from(*f) * (n - w)) / n) as i16;
            }
            self.was_active = active;
        }
    }
}

/// One capture block through `apm`; the input unchanged if it refuses.
fn capture(apm: &mut AudioProcessing, input: &[i16], out: &mut [i16]) {
    if apm.process_capture_i16(input, out).is_err() {
        out.copy_from_slice(input);
    }
}

impl EchoCanceller for WebRtcProcessor {
    fn far_end(&mut self, pcm: &[i16]) {
        if !self.echo {
            return;
        }
        self.far.extend(pcm.iter().copied());
        let limit = MAX_QUEUED_BLOCKS * self.block;
        if self.far.len() > limit {
            // The microphone side stopped: keep the newest audio, block-aligned.
            let excess = (self.far.len() - limit).div_ceil(self.block) * self.block;
            self.far.drain(..excess.min(self.far.len()));
        }
    }

    fn process_near_end(&mut self, pcm: &mut [i16]) {
        let block = self.block;
        for chunk in pcm.chunks_mut(block) {
            if self.echo {
                self.feed_far_block();
            }
            let n = chunk.len();
            // A short last piece (frames are whole 10 ms blocks in practice)
            // is padded with silence.
            self.near_in[..n].copy_from_slice(chunk);
            self.near_in[n..].fill(0);
            self.process_block();
            chunk.copy_from_slice(&self.near_out[..n]);
        }
    }

    fn name(&self) -> &'static str {
        self.name
    }
}

impl WebRtcProcessor {
    /// The canceller's pipeline ran the last block (the gate is open).
    pub fn canceller_running(&self) -> bool {
        self.quiet.is_none() || self.was_active
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic noise in −1..1 (xorshift).
    struct Noise(u64);
    impl Noise {
        fn next(&mut self) -> f64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 >> 11) as f64 / (1u64 << 52) as f64 - 1.0
        }
    }

    /// Speech-like far end: a voiced source (sawtooth, i.e. every harmonic
    /// of a pitch gliding 100–180 Hz at 1/k) plus a breath-noise part, under
    /// a syllable envelope (4 syllables/s, 20 % pause each).
    fn speech_like(rate: u32, secs: f64, seed: u64) -> Vec<f64> {
        let n = (f64::from(rate) * secs) as usize;
        let mut noise = Noise(seed);
        let mut phase = 0.0f64;
        (0..n)
            .map(|i| {
                let t = i as f64 / f64::from(rate);
                let syl = (t * 4.0).fract();
                let env = if syl < 0.8 {
                    (std::f64::consts::PI * syl / 0.8).sin().powi(2)
                } else {
                    0.0
                };
                let pitch = 140.0 + 40.0 * (t * 1.3).sin();
                phase = (phase + pitch / f64::from(rate)).fract();
                let voiced = 2.0 * phase - 1.0;
                env * (0.6 * voiced + 0.3 * noise.next()) * 9000.0
            })
            .collect()
    }

    /// Room: 100 ms of exponentially decaying (τ = 20 ms) random taps,
    /// scaled to about 6 dB of echo return loss.
    fn impulse_response(rate: u32) -> Vec<f64> {
        let len = rate as usize / 10;
        let mut noise = Noise(0x5eed);
        let tau = f64::from(rate) * 0.020;
        let h: Vec<f64> = (0..len)
            .map(|i| noise.next() * (-(i as f64) / tau).exp())
            .collect();
        let e: f64 = h.iter().map(|x| x * x).sum();
        h.iter().map(|x| x * 0.5 / e.sqrt()).collect()
    }

    fn convolve(x: &[f64], h: &[f64], delay: usize) -> Vec<f64> {
        let mut y = vec![0.0; x.len()];
        for (i, yi) in y.iter_mut().enumerate().skip(delay) {
            let j = i - delay;
            let mut acc = 0.0;
            for (k, hk) in h.iter().enumerate().take(j + 1) {
                acc += hk * x[j - k];
            }
            *yi = acc;
        }
        y
    }

    fn clip(x: f64) -> i16 {
        x.round().clamp(-32768.0, 32767.0) as i16
    }

    struct Run {
        /// Echo as it reaches the microphone.
        echo: Vec<f64>,
        /// Canceller output.
        out: Vec<i16>,
    }

    /// The media task's order per frame: clean the microphone frame, then
    /// hand over the frame just played. A frame played at the end of tick
    /// `k` sounds during tick `k + 1`, and the room adds 30 ms more.
    fn run(rate: u32, frame_ms: u32, cfg: &AecConfig, far: &[f64], near: &[f64]) -> Run {
        let frame = (rate * frame_ms / 1000) as usize;
        run_with(echo_canceller(rate, frame, cfg), rate, frame_ms, far, near)
    }

    fn run_with(
        mut aec: Box<dyn EchoCanceller>,
        rate: u32,
        frame_ms: u32,
        far: &[f64],
        near: &[f64],
    ) -> Run {
        let frame = (rate * frame_ms / 1000) as usize;
        let delay = frame + (rate * 30 / 1000) as usize;
        let echo = convolve(far, &impulse_response(rate), delay);
        let mut out = Vec::with_capacity(far.len());
        let mut mic = vec![0i16; frame];
        let mut spk = vec![0i16; frame];
        for start in (0..far.len() - frame + 1).step_by(frame) {
            for i in 0..frame {
                mic[i] = clip(echo[start + i] + near[start + i]);
                spk[i] = clip(far[start + i]);
            }
            aec.process_near_end(&mut mic);
            out.extend_from_slice(&mic);
            aec.far_end(&spk);
        }
        Run { echo, out }
    }

    fn energy_f(x: &[f64]) -> f64 {
        x.iter().map(|v| v * v).sum()
    }

    fn energy(x: &[i16]) -> f64 {
        x.iter().map(|&v| f64::from(v) * f64::from(v)).sum()
    }

    /// Echo return loss enhancement over `from..to` seconds, far end only.
    fn erle_db(rate: u32, frame_ms: u32, cfg: &AecConfig) -> f64 {
        let secs = 10.0;
        let far = speech_like(rate, secs, 7);
        let near = vec![0.0; far.len()];
        let r = run(rate, frame_ms, cfg, &far, &near);
        let (a, b) = (rate as usize * 5, r.out.len());
        10.0 * (energy_f(&r.echo[a..b]) / energy(&r.out[a..b]).max(1.0)).log10()
    }

    const AEC_ONLY: AecConfig = AecConfig {
        echo_cancellation: true,
        noise_suppression: false,
        auto_gain: false,
    };

    #[test]
    fn processing_follows_the_endpoints() {
        let all = AecConfig {
            auto_gain: true,
            ..AecConfig::default()
        };
        // (mic is a sound device, speaker is one) -> (AEC, NS, AGC)
        for (mic, speaker, want) in [
            (true, true, (true, true, true)),
            (true, false, (false, true, true)),
            (false, true, (false, false, false)),
            (false, false, (false, false, false)),
        ] {
            let c = all.for_endpoints(mic, speaker);
            assert_eq!(
                (c.echo_cancellation, c.noise_suppression, c.auto_gain),
                want,
                "mic {mic}, speaker {speaker}"
            );
        }
        // What the user switched off stays off.
        assert!(AecConfig::OFF.for_endpoints(true, true).is_off());
        // Between files the default pipeline is no pipeline: the frame is
        // left exactly as it is.
        let cfg = AecConfig::default().for_endpoints(false, false);
        let mut p = echo_canceller(16_000, 320, &cfg);
        assert_eq!(p.name(), "off");
        let far: Vec<i16> = (0..320).map(|i| ((i * 37) % 2000) as i16 - 1000).collect();
        let mut near = far.clone();
        p.far_end(&far);
        p.process_near_end(&mut near);
        assert_eq!(near, far);
        // A headset-less desk (mic and speakers) gets the canceller.
        let cfg = AecConfig::default().for_endpoints(true, true);
        assert_eq!(echo_canceller(16_000, 320, &cfg).name(), "webrtc-aec3+ns");
    }

    #[test]
    fn erle_after_convergence_16k_20ms() {
        let db = erle_db(16_000, 20, &AEC_ONLY);
        println!("ERLE 16 kHz, 20 ms frames, AEC only: {db:.1} dB");
        assert!(db >= 15.0, "ERLE {db:.1} dB");
        let db = erle_db(16_000, 20, &AecConfig::default());
        println!("ERLE 16 kHz, 20 ms frames, AEC + NS: {db:.1} dB");
        assert!(db >= 15.0, "ERLE {db:.1} dB");
    }

    #[test]
    fn erle_after_convergence_8k_and_48k() {
        for (rate, frame_ms) in [(8_000, 20), (8_000, 60), (48_000, 10), (48_000, 20)] {
            let db = erle_db(rate, frame_ms, &AEC_ONLY);
            println!("ERLE {rate} Hz, {frame_ms} ms frames: {db:.1} dB");
            assert!(db >= 15.0, "{rate} Hz, {frame_ms} ms: ERLE {db:.1} dB");
        }
    }

    /// Energy of `x` outside `lo..=hi` Hz (Hann-windowed 20 ms DFTs), to
    /// measure echo beside a near-end tone.
    fn energy_outside(x: &[f64], rate: u32, lo: f64, hi: f64) -> f64 {
        let n = rate as usize / 50;
        let hann: Vec<f64> = (0..n)
            .map(|i| (std::f64::consts::PI * i as f64 / n as f64).sin().powi(2))
            .collect();
        let mut total = 0.0;
        for chunk in x.chunks_exact(n) {
            for k in 1..n / 2 {
                let f = k as f64 * f64::from(rate) / n as f64;
                if (lo..=hi).contains(&f) {
                    continue;
                }
                let w = 2.0 * std::f64::consts::PI * k as f64 / n as f64;
                let (mut re, mut im) = (0.0, 0.0);
                for (i, (v, h)) in chunk.iter().zip(&hann).enumerate() {
                    let (s, c) = (w * i as f64).sin_cos();
                    re += v * h * c;
                    im += v * h * s;
                }
                total += re * re + im * im;
            }
        }
        total
    }

    /// Mean amplitude of a sine at `freq` (least-squares fit per 20 ms).
    fn tone_amplitude(x: &[f64], rate: u32, freq: f64) -> f64 {
        let win = rate as usize / 50;
        let w = 2.0 * std::f64::consts::PI * freq / f64::from(rate);
        let (mut amp, mut count) = (0.0, 0);
        for chunk in x.chunks_exact(win) {
            let (mut ss, mut cc, mut sc, mut xs, mut xc) = (0.0, 0.0, 0.0, 0.0, 0.0);
            for (i, v) in chunk.iter().enumerate() {
                let (s, c) = (w * i as f64).sin_cos();
                ss += s * s;
                cc += c * c;
                sc += s * c;
                xs += v * s;
                xc += v * c;
            }
            let det = ss * cc - sc * sc;
            let a = (xs * cc - xc * sc) / det;
            let b = (xc * ss - xs * sc) / det;
            amp += a.hypot(b);
            count += 1;
        }
        amp / f64::from(count)
    }

    /// Far end all along; from 6 s a near-end talker (a 1 kHz tone at
    /// amplitude 6000) joins. Returns (tone level change, echo suppression)
    /// in dB over the last 3 s.
    fn double_talk(rate: u32, cfg: &AecConfig) -> (f64, f64) {
        let secs = 12.0;
        let far = speech_like(rate, secs, 11);
        let start = rate as usize * 6;
        let w = 2.0 * std::f64::consts::PI * 1000.0 / f64::from(rate);
        let near: Vec<f64> = (0..far.len())
            .map(|i| {
                if i < start {
                    0.0
                } else {
                    6000.0 * (w * i as f64).sin()
                }
            })
            .collect();
        let r = run(rate, 20, cfg, &far, &near);
        let a = rate as usize * 9;
        let b = a + rate as usize * 3;
        let out: Vec<f64> = r.out[a..b].iter().map(|&v| f64::from(v)).collect();
        let amp = tone_amplitude(&out, rate, 1000.0);
        let echo = energy_outside(&r.echo[a..b], rate, 850.0, 1150.0);
        let rest = energy_outside(&out, rate, 850.0, 1150.0);
        (
            20.0 * (amp / 6000.0).log10(),
            10.0 * (echo / rest.max(1.0)).log10(),
        )
    }

    /// The gate: after 600 ms of far-end silence the canceller's pipeline
    /// is not run, and when the far end talks again the filter it had
    /// learned cancels the echo at once: ERLE in the first second after a
    /// 4 s pause is what the canceller run throughout gets (within 1 dB; an
    /// unpaired capture call at the switch once cost 15–45 dB here).
    /// A far end sending faint noise (-55 dBFS peaks, e.g. another phone's
    /// canceller settling) leaves the gate shut, so our talker's first words
    /// are not suppressed by a canceller that has just woken; a real talker
    /// opens it, and the faint level then keeps it open (hysteresis).
    #[test]
    fn faint_far_noise_does_not_wake_the_canceller() {
        let rate = 8_000;
        let r = rate as usize;
        let frame = r / 50;
        let mut noise = Noise(11);
        let far: Vec<f64> = (0..r * 3).map(|_| noise.next() * 56.0).collect();
        let near = speech_like(rate, 3.0, 3);
        let mut p = WebRtcProcessor::new(rate, frame, &AecConfig::default()).unwrap();
        let mut opened = false;
        let mut out = Vec::new();
        for (f, n) in far.chunks(frame).zip(near.chunks(frame)) {
            let spk: Vec<i16> = f.iter().map(|&x| clip(x)).collect();
            let mut mic: Vec<i16> = n.iter().map(|&x| clip(x)).collect();
            p.process_near_end(&mut mic);
            opened |= p.canceller_running();
            out.extend_from_slice(&mic);
            p.far_end(&spk);
        }
        assert!(!opened, "faint far-end noise opened the gate");
        // The talker passes as with a silent far end (NS and high-pass only).
        let silent = vec![0.0; near.len()];
        let reference = run(rate, 20, &AecConfig::default(), &silent, &near);
        let diff: f64 = out
            .iter()
            .zip(&reference.out)
            .map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2))
            .sum();
        let snr = 10.0 * (energy(&reference.out) / diff.max(1.0)).log10();
        assert!(
            snr >= 30.0,
            "near end changed by the faint far end: {snr:.1} dB"
        );

        // A talker opens the gate; the faint level then keeps it open.
        let talk: Vec<i16> = vec![2000; frame];
        let faint: Vec<i16> = far[..frame].iter().map(|&x| clip(x)).collect();
        let mut mic = vec![0i16; frame];
        // (The far end's last faint frame is still queued: two rounds.)
        for _ in 0..2 {
            p.far_end(&talk);
            p.process_near_end(&mut mic);
        }
        assert!(p.canceller_running());
        for _ in 0..ECHO_HOLD_BLOCKS {
            p.far_end(&faint);
            p.process_near_end(&mut mic);
        }
        assert!(p.canceller_running(), "faint far end after a talker");
    }

    #[test]
    fn gate_skips_the_canceller_in_far_silence_and_keeps_its_filter() {
        let rate = 16_000;
        let r = rate as usize;
        let mut far = speech_like(rate, 14.0, 5);
        far[r * 8..r * 12].fill(0.0); // the far end pauses 4 s
        let near = vec![0.0; far.len()];
        let erle = |run: &Run, a: usize, b: usize| {
            let e = energy_f(&run.echo[a..b]);
            let o = energy(&run.out[a..b]).max(1.0);
            10.0 * (e / o).log10()
        };
        let gated = run(rate, 20, &AEC_ONLY, &far, &near);
        let mut always = WebRtcProcessor::new(rate, r / 50, &AEC_ONLY).unwrap();
        always.quiet = None;
        let ungated = run_with(Box::new(always), rate, 20, &far, &near);
        let before = erle(&gated, r * 7, r * 8);
        let resumed = erle(&gated, r * 12, r * 13);
        let resumed_ungated = erle(&ungated, r * 12, r * 13);
        println!(
            "ERLE before the pause {before:.1} dB, first second after: {resumed:.1} dB gated, \
             {resumed_ungated:.1} dB with the canceller run throughout"
        );
        assert!(before >= 15.0, "{before:.1} dB");
        assert!(
            resumed >= resumed_ungated - 1.0,
            "{resumed:.1} dB gated vs {resumed_ungated:.1} dB"
        );

        // The gate shuts after the hold and opens on the first far block.
        let frame = r / 50;
        let mut p = WebRtcProcessor::new(rate, frame, &AecConfig::default()).unwrap();
        let talk: Vec<i16> = far[..frame].iter().map(|&x| clip(x * 4.0)).collect();
        let silence = vec![0i16; frame];
        let mut mic = vec![0i16; frame];
        p.far_end(&talk);
        p.process_near_end(&mut mic);
        assert!(p.canceller_running());
        for _ in 0..ECHO_HOLD_BLOCKS / 2 {
            p.far_end(&silence);
            p.process_near_end(&mut mic);
        }
        assert!(!p.canceller_running());
        p.far_end(&talk);
        p.process_near_end(&mut mic);
        assert!(p.canceller_running());
        // Without echo cancellation there is no gate (one pipeline).
        let ns = WebRtcProcessor::new(
            rate,
            frame,
            &AecConfig {
                echo_cancellation: false,
                ..AecConfig::default()
            },
        )
        .unwrap();
        assert!(ns.quiet.is_none());
    }

    #[test]
    fn double_talk_keeps_the_near_end_and_suppresses_the_echo() {
        for rate in [8_000, 16_000] {
            let (tone_db, echo_db) = double_talk(rate, &AEC_ONLY);
            println!(
                "double talk {rate} Hz: near-end tone {tone_db:+.1} dB, echo -{echo_db:.1} dB"
            );
            assert!(tone_db > -6.0, "{rate} Hz: near-end tone {tone_db:+.1} dB");
            assert!(echo_db >= 10.0, "{rate} Hz: echo only -{echo_db:.1} dB");
        }
        // The noise suppressor takes a steady tone for noise and lowers it
        // (speech is not steady); the echo goes down further.
        let (tone_db, echo_db) = double_talk(16_000, &AecConfig::default());
        println!(
            "double talk 16000 Hz with NS: near-end tone {tone_db:+.1} dB, echo -{echo_db:.1} dB"
        );
        assert!(echo_db >= 15.0, "echo only -{echo_db:.1} dB");
    }

    #[test]
    fn everything_off_is_bit_exact_identity() {
        let mut aec = echo_canceller(16_000, 320, &AecConfig::OFF);
        assert_eq!(aec.name(), "off");
        let mut noise = Noise(99);
        for _ in 0..50 {
            let frame: Vec<i16> = (0..320).map(|_| (noise.next() * 32767.0) as i16).collect();
            let mut pcm = frame.clone();
            aec.far_end(&frame);
            aec.process_near_end(&mut pcm);
            assert_eq!(pcm, frame);
        }
        assert!(AecConfig::OFF.is_off() && !AecConfig::default().is_off());
        // A rate the engine cannot run at falls back to pass-through.
        assert_eq!(
            echo_canceller(11_025, 220, &AecConfig::default()).name(),
            "off"
        );
        assert_eq!(
            echo_canceller(16_000, 320, &AecConfig::default()).name(),
            "webrtc-aec3+ns"
        );
    }

    #[test]
    fn silence_full_scale_and_odd_frames_do_not_panic() {
        let all = AecConfig {
            echo_cancellation: true,
            noise_suppression: true,
            auto_gain: true,
        };
        for rate in [8_000u32, 16_000, 48_000] {
            let frame = (rate / 50) as usize;
            let mut aec = echo_canceller(rate, frame, &all);
            assert_eq!(aec.name(), "webrtc-aec3+ns+agc2");
            // Two seconds of digital silence stay silent.
            let mut peak = 0i32;
            for _ in 0..100 {
                let mut pcm = vec![0i16; frame];
                aec.far_end(&vec![0; frame]);
                aec.process_near_end(&mut pcm);
                peak = peak.max(pcm.iter().map(|&v| i32::from(v).abs()).max().unwrap());
            }
            assert!(peak <= 1, "{rate} Hz: silence came out with peak {peak}");
            // Full-scale square waves both ways, i16::MIN included.
            for k in 0..100 {
                let v = if k % 2 == 0 { i16::MAX } else { i16::MIN };
                let mut pcm = vec![v; frame];
                aec.far_end(&vec![v; frame]);
                aec.process_near_end(&mut pcm);
                assert_eq!(pcm.len(), frame);
            }
            // Frames that are not whole 10 ms blocks, empty ones, and a far
            // end far longer than the queue.
            for n in [0, 1, frame / 2 + 3, frame * 3 + 7] {
                let mut pcm = vec![1000i16; n];
                aec.far_end(&vec![-1000; n]);
                aec.process_near_end(&mut pcm);
                assert_eq!(pcm.len(), n);
            }
            aec.far_end(&vec![5000; rate as usize * 2]);
            let mut pcm = vec![0i16; frame];
            aec.process_near_end(&mut pcm);
        }
    }

    #[test]
    fn noise_suppression_lowers_steady_noise() {
        let cfg = AecConfig {
            echo_cancellation: false,
            noise_suppression: true,
            auto_gain: false,
        };
        let rate = 16_000;
        let mut noise = Noise(5);
        let near: Vec<f64> = (0..rate as usize * 4)
            .map(|_| noise.next() * 1000.0)
            .collect();
        let far = vec![0.0; near.len()];
        let r = run(rate, 20, &cfg, &far, &near);
        let a = rate as usize * 2;
        let db = 10.0 * (energy_f(&near[a..]) / energy(&r.out[a..]).max(1.0)).log10();
        println!("noise suppression on white noise at -33 dBFS: -{db:.1} dB");
        assert!(db >= 6.0, "noise only -{db:.1} dB");
    }

    #[test]
    fn auto_gain_raises_a_quiet_talker() {
        let cfg = AecConfig {
            echo_cancellation: false,
            noise_suppression: false,
            auto_gain: true,
        };
        let rate = 16_000;
        let near: Vec<f64> = speech_like(rate, 8.0, 3).iter().map(|v| v / 30.0).collect();
        let far = vec![0.0; near.len()];
        let r = run(rate, 20, &cfg, &far, &near);
        let a = rate as usize * 5;
        let db = 10.0 * (energy(&r.out[a..]) / energy_f(&near[a..])).log10();
        println!("AGC on speech-like input at about -45 dBFS: {db:+.1} dB");
        assert!(db >= 6.0, "gain only {db:+.1} dB");
    }
}
