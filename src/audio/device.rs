//! Sound devices through cpal: the microphone (`DeviceSource`) and the
//! speaker (`DeviceSink`).
//!
//! Input and output are two independent cpal streams (one full-duplex
//! stream hangs on some hosts). Each is bridged to the media task by a
//! lock-free SPSC ring (`rtrb`) of mono `i16` samples at the device's own
//! rate (its default configuration); the media task resamples.
//!
//! ```text
//!  mic callback ── InputBridge::process ──▶ ring ──▶ DeviceSource::read  (media tick)
//!  media tick   ── DeviceSink::write ─────▶ ring ──▶ OutputBridge::process ── speaker callback
//! ```
//!
//! The callback halves (`InputBridge`, `OutputBridge`) never block, lock or
//! allocate: they convert the device format (f32/i16/u16), mix channels to
//! mono or copy mono to every channel while they copy, and write counters and
//! levels into atomics. In debug builds their bodies run inside
//! `assert_no_alloc`, which aborts on an allocation when the binary installs
//! `assert_no_alloc::AllocDisabler` as its global allocator (the bridge tests
//! do).
//!
//! Full/empty rings: a full ring drops the **newest** samples (the producer
//! cannot drop what the consumer owns) and counts them as overrun; an empty
//! ring gives silence, counted as underrun, and then waits until the ring is
//! back at its target fill before it plays again (re-priming), so one glitch
//! does not turn into a stutter. The media half keeps the ring near its
//! target fill against clock drift with [`DriftControl`]. A fill far above
//! target (the media task stalled) is cut back at once.
//!
//! The cpal stream lives on a small owner thread (cpal streams are not
//! `Send` on every platform), as does a PulseAudio stream's handle (its
//! callbacks run on libpulse's mainloop thread); dropping the source/sink
//! stops it. Opening
//! waits at most [`OPEN_TIMEOUT`] for the device, so a hanging audio server
//! gives silence and a reason instead of a hung call.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use rtrb::{Consumer, Producer, RingBuffer};

use super::{AudioError, AudioSink, AudioSource, NullSink, NullSource};

/// How long opening a device may take before we give up and use silence.
pub const OPEN_TIMEOUT: Duration = Duration::from_secs(5);

/// Ring capacity in seconds of audio (at the device rate).
const RING_SECONDS_DIV: u32 = 2; // half a second

/// Drift correction rate: one sample skipped/repeated per this many samples
/// while correcting (1 %, twice the ±0.5 % drift we must absorb).
pub const DRIFT_EVERY: u32 = 100;

/// Frames the correction of an excess waits for a quiet frame before it
/// bends sound (about 2 s at 20 ms): speech pauses that often, true drift
/// adds at most 10 ms of delay meanwhile, and a fill more than four
/// margins over target is bent at once. A shortfall is not kept waiting:
/// it ends in an underrun, a gap.
pub const DRIFT_PATIENCE: u32 = 100;

/// A fill this many frames above target is cut back at once.
const RESYNC_FRAMES: usize = 4;

/// Frames after the device starts (or restarts) during which a fill far
/// from target is settled at once: the speaker tops a ring taken far below
/// target up with silence (PulseAudio asks for its whole queue at start)
/// or drops what is a margin above; the microphone cuts a backlog above the
/// margin (a device may deliver its first buffers in bursts).
const SETTLE_FRAMES: u32 = 50;

/// A frame whose peak is at most this (-40 dBFS), after another such, is
/// quiet: a correction under way is done there at once, by dropping or
/// adding samples, where nobody hears it, instead of bending the pitch of
/// what follows. (One quiet frame alone may be the closure before a
/// consonant; cutting time out of a word cost PESQ 0.27 in one call.)
pub const QUIET_PEAK: i16 = 328;

/// Whether every sample of `x` is within [`QUIET_PEAK`].
pub fn is_quiet(x: &[i16]) -> bool {
    x.iter().all(|&s| s.unsigned_abs() <= QUIET_PEAK as u16)
}

// ---------------------------------------------------------------- samples

/// A device sample format the bridges convert to and from `i16`.
pub trait DeviceSample: Copy + Send + 'static {
    fn to_i16(self) -> i16;
    fn from_i16(v: i16) -> Self;
}

impl DeviceSample for i16 {
    fn to_i16(self) -> i16 {
        self
    }
    fn from_i16(v: i16) -> i16 {
        v
    }
}

impl DeviceSample for u16 {
    /// Offset binary: 32768 is silence.
    fn to_i16(self) -> i16 {
        (self ^ 0x8000) as i16
    }
    fn from_i16(v: i16) -> u16 {
        (v as u16) ^ 0x8000
    }
}

impl DeviceSample for f32 {
    /// [-1, 1) ↔ [-32768, 32767]; out of range and NaN clip (NaN → 0).
    fn to_i16(self) -> i16 {
        let v = (self * 32768.0).round();
        if v.is_nan() {
            0
        } else {
            v.clamp(-32768.0, 32767.0) as i16
        }
    }
    fn from_i16(v: i16) -> f32 {
        f32::from(v) / 32768.0
    }
}

// ---------------------------------------------------------- shared state

/// What a device stream is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceHealth {
    Running,
    /// The stream reported an error (device unplugged…): silence from now on.
    Failed(String),
}

/// Counters of one device bridge (samples, at the device rate).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct DeviceStats {
    /// Silence inserted because the ring was empty (source: in `read`;
    /// sink: in the device callback).
    pub underrun_samples: u64,
    /// Samples dropped because the ring was full or far above target
    /// (source: mic samples in the callback or cut in `read`; sink: played
    /// samples in `write`). Always the newest ones except the source's cut,
    /// which drops the oldest.
    pub overrun_samples: u64,
    /// Drift control: samples skipped / repeated.
    pub skipped: u64,
    pub repeated: u64,
    /// Sink only: silence added at once because the device, just started,
    /// took the ring far below its target (instead of repeating samples
    /// for seconds to refill it).
    pub padded_samples: u64,
    /// Ring fill seen at the last read/write, and the target.
    pub fill: usize,
    pub target: usize,
}

/// State shared by the callback half and the media half; all atomics.
#[derive(Debug, Default)]
struct Shared {
    underrun: AtomicU64,
    overrun: AtomicU64,
    peak: AtomicU32,
    rms: AtomicU32,
    /// Frames per callback seen last (device period).
    period: AtomicUsize,
    /// Output: the callback starts playing once the ring holds this many.
    prime_level: AtomicUsize,
    /// Output: the callback is playing from the ring (not priming).
    playing: AtomicBool,
    failed: AtomicBool,
    /// Written only by the stream's error callback (never the data callback).
    reason: Mutex<Option<String>>,
}

impl Shared {
    fn fail(&self, why: String) {
        if let Ok(mut r) = self.reason.lock() {
            r.get_or_insert(why);
        }
        self.failed.store(true, Ordering::Release);
    }

    fn health(&self) -> DeviceHealth {
        if !self.failed.load(Ordering::Acquire) {
            return DeviceHealth::Running;
        }
        let why = self
            .reason
            .lock()
            .ok()
            .and_then(|r| r.clone())
            .unwrap_or_else(|| "stream error".into());
        DeviceHealth::Failed(why)
    }

    fn set_levels(&self, peak: i32, sum_sq: u64, n: usize) {
        let peak = peak as f32 / 32768.0;
        let rms = if n == 0 {
            0.0
        } else {
            ((sum_sq as f64 / n as f64).sqrt() / 32768.0) as f32
        };
        self.peak.store(peak.to_bits(), Ordering::Relaxed);
        self.rms.store(rms.to_bits(), Ordering::Relaxed);
    }

    fn levels(&self) -> (f32, f32) {
        (
            f32::from_bits(self.peak.load(Ordering::Relaxed)),
            f32::from_bits(self.rms.load(Ordering::Relaxed)),
        )
    }
}

fn ring_capacity(rate: u32) -> usize {
    (rate / RING_SECONDS_DIV).max(64) as usize
}

/// Target fill for a media frame of `frame` samples and a device period of
/// `period` samples: two frames, or a frame plus a period if that is more.
fn target_fill(frame: usize, period: usize) -> usize {
    (2 * frame).max(frame + period)
}

// ---------------------------------------------------------- drift control

/// What the drift control is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Keep,
    /// Drop one sample per cycle (the ring is too full).
    Skip,
    /// Add one sample per cycle (the ring is too empty).
    Repeat,
}

/// Keeps a ring's fill level near a target against the drift between the
/// device clock and the media frame tick. Pure logic: feed it the fill once
/// per frame (`observe`) and the samples one by one (`push`).
///
/// The fill is smoothed (exponential average, 1/16 per frame) because it
/// saw-tooths with the device period. Above `target + margin` it drops one
/// sample per cycle of `every` until the average is back at target; below
/// `target - margin` it adds one per cycle likewise. The sample is not cut
/// or doubled at one point, which clicks on wideband sound at 48 kHz:
/// through the cycle the samples are interpolated (linearly) at a rate of
/// 1 ± 1/`every`, a 1 % change of pitch while it corrects. Outside a
/// correction the samples pass unchanged.
///
/// A quiet frame (see [`QUIET_PEAK`]) ends a correction at once: the
/// caller drops or adds the samples [`DriftControl::quiet_step`] names and
/// reports them with [`DriftControl::stepped`]. A step of the fill (a
/// device that stalled and lost its place, one that took a buffer at once)
/// then costs nothing audible and no seconds of 1 % pitch shift, which
/// also misaligns speech against itself (PESQ took 0.4 off a call for
/// 22 ms made up so); true clock drift is taken in the pauses of speech.
/// So removing an excess waits [`DRIFT_PATIENCE`] frames for such a
/// pause, unless the average strays more than four margins above target;
/// a shortfall, which a stall would turn into a gap, is bent at once.
#[derive(Debug, Clone)]
pub struct DriftControl {
    target: usize,
    margin: usize,
    every: u32,
    avg: Option<f64>,
    mode: Step,
    /// The last input sample, and where the next output lies past it, in
    /// `every`ths of a sample (`every`: on the next input sample).
    prev: i16,
    pos: u32,
    /// This cycle's correction: +1 drops a sample, -1 adds one.
    change: i32,
    /// Frames observed since the correction was called for, the frames
    /// it waits before it bends sound, and whether it bends now.
    waited: u32,
    patience: u32,
    bend: bool,
    skipped: u64,
    repeated: u64,
}

impl DriftControl {
    pub fn new(target: usize, margin: usize, every: u32) -> DriftControl {
        let every = every.max(2);
        DriftControl {
            target,
            margin,
            every,
            avg: None,
            mode: Step::Keep,
            prev: 0,
            pos: every,
            change: 0,
            waited: 0,
            patience: DRIFT_PATIENCE,
            bend: false,
            skipped: 0,
            repeated: 0,
        }
    }

    pub fn set_target(&mut self, target: usize, margin: usize) {
        self.target = target;
        self.margin = margin;
    }

    pub fn target(&self) -> usize {
        self.target
    }

    /// Frames to wait for a quiet frame before bending ([`DRIFT_PATIENCE`]).
    pub fn set_patience(&mut self, frames: u32) {
        self.patience = frames;
    }

    /// Forget the average (after a resync or an underrun).
    pub fn reset(&mut self) {
        self.avg = None;
        self.mode = Step::Keep;
        self.waited = 0;
        self.bend = false;
    }

    /// After a gap of silence: the next input starts from zero.
    pub fn silence(&mut self) {
        self.reset();
        self.prev = 0;
        self.pos = self.every;
        self.change = 0;
    }

    /// The fill level before this frame's read/write.
    pub fn observe(&mut self, fill: usize) {
        let f = fill as f64;
        let avg = match self.avg {
            None => f,
            Some(a) => a + (f - a) / 16.0,
        };
        self.avg = Some(avg);
        let t = self.target as f64;
        let m = self.margin as f64;
        self.mode = match self.mode {
            Step::Keep if avg > t + m => Step::Skip,
            Step::Keep if avg < t - m => Step::Repeat,
            Step::Skip if avg <= t => Step::Keep,
            Step::Repeat if avg >= t => Step::Keep,
            m => m,
        };
        self.settle_bend();
    }

    /// Whether the correction bends sound now (see the type's doc).
    fn settle_bend(&mut self) {
        let (t, m) = (self.target as f64, self.margin as f64);
        let avg = self.avg.unwrap_or(t);
        if self.mode == Step::Keep {
            self.waited = 0;
        } else {
            self.waited = self.waited.saturating_add(1);
        }
        self.bend = match self.mode {
            Step::Keep => false,
            Step::Repeat => true,
            Step::Skip => avg > t + 4.0 * m || self.waited > self.patience,
        };
    }

    /// Feeds one input sample; emits none, one or two output samples.
    /// Outputs lie between the previous input and this one, the last of
    /// them on this one while no correction is under way.
    pub fn push(&mut self, sample: i16, mut emit: impl FnMut(i16)) {
        let every = self.every;
        if self.pos == every && !self.bend {
            // On a whole sample with nothing to correct: the sample passes
            // as it is (what the loop below computes, without its division
            // per sample on this per-sample path).
            self.change = 0;
            self.prev = sample;
            emit(sample);
            return;
        }
        while self.pos <= every {
            if self.pos == every {
                // On a whole sample: a cycle starts, with its correction.
                self.change = match self.mode {
                    _ if !self.bend => 0,
                    Step::Keep => 0,
                    Step::Skip => {
                        self.skipped += 1;
                        1
                    }
                    Step::Repeat => {
                        self.repeated += 1;
                        -1
                    }
                };
            }
            let (a, b) = (i32::from(self.prev), i32::from(sample));
            emit((a + (b - a) * self.pos as i32 / every as i32) as i16);
            self.pos = (self.pos as i32 + every as i32 + self.change) as u32;
        }
        self.pos -= every;
        self.prev = sample;
    }

    /// The samples to drop (positive) or add (negative) at once in a quiet
    /// frame of `n`: the excess or deficit of the average over the target
    /// while a correction is under way, at most `n`; 0 otherwise.
    pub fn quiet_step(&self, n: usize) -> isize {
        let (Some(avg), t) = (self.avg, self.target as f64) else {
            return 0;
        };
        let n = n as f64;
        match self.mode {
            Step::Keep => 0,
            Step::Skip => (avg - t).clamp(0.0, n).round() as isize,
            Step::Repeat => -((t - avg).clamp(0.0, n).round() as isize),
        }
    }

    /// `k` samples were dropped (positive) or added (negative) at once (0:
    /// none, the samples were passed on past the control), and `last` was
    /// the last input sample passed on: the fill is `k` lower from now on,
    /// and the next sample follows `last` directly.
    pub fn stepped(&mut self, k: isize, last: i16) {
        if k > 0 {
            self.skipped += k.unsigned_abs() as u64;
        } else {
            self.repeated += k.unsigned_abs() as u64;
        }
        if let Some(avg) = self.avg.as_mut() {
            *avg -= k as f64;
            let t = self.target as f64;
            self.mode = match self.mode {
                Step::Skip if *avg <= t => Step::Keep,
                Step::Repeat if *avg >= t => Step::Keep,
                m => m,
            };
        }
        if self.mode == Step::Keep {
            self.waited = 0;
            self.bend = false;
        }
        self.prev = last;
        self.pos = self.every;
        self.change = 0;
    }

    pub fn mode(&self) -> Step {
        self.mode
    }

    pub fn average(&self) -> Option<f64> {
        self.avg
    }

    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    pub fn repeated(&self) -> u64 {
        self.repeated
    }
}

// ---------------------------------------------------------- callback half

/// The microphone callback's half: interleaved device samples in, mono
/// `i16` into the ring.
pub struct InputBridge {
    ring: Producer<i16>,
    channels: usize,
    shared: Arc<Shared>,
}

impl InputBridge {
    /// The callback body: `data` is interleaved, `channels` per frame;
    /// channels are averaged. A trailing partial frame is ignored. Never
    /// allocates, locks or blocks.
    pub fn process<T: DeviceSample>(&mut self, data: &[T]) {
        let ch = self.channels;
        let mut peak = 0i32;
        let mut sum_sq = 0u64;
        let mut dropped = 0u64;
        let mut n = 0usize;
        for frame in data.chunks_exact(ch) {
            let acc: i32 = frame.iter().map(|s| i32::from(s.to_i16())).sum();
            // Rounds toward zero; |acc / ch| ≤ 32768, and −32768 fits.
            let m = (acc / ch as i32) as i16;
            let a = i32::from(m).abs();
            peak = peak.max(a);
            sum_sq += (a as u64) * (a as u64);
            n += 1;
            if self.ring.push(m).is_err() {
                dropped += 1;
            }
        }
        if dropped > 0 {
            self.shared.overrun.fetch_add(dropped, Ordering::Relaxed);
        }
        self.shared.period.store(n, Ordering::Relaxed);
        self.shared.set_levels(peak, sum_sq, n);
    }
}

/// The speaker callback's half: mono `i16` from the ring, copied to every
/// channel of the interleaved device buffer.
pub struct OutputBridge {
    ring: Consumer<i16>,
    channels: usize,
    primed: bool,
    shared: Arc<Shared>,
}

impl OutputBridge {
    /// The callback body: fills `data` completely (silence where the ring
    /// has nothing). Before the ring first reaches the sink's target fill
    /// (and again after it ran dry) it plays silence without counting it.
    pub fn process<T: DeviceSample>(&mut self, data: &mut [T]) {
        let ch = self.channels;
        let frames = data.len() / ch;
        if !self.primed {
            let level = self.shared.prime_level.load(Ordering::Relaxed);
            self.primed = level > 0 && self.ring.slots() >= level;
        }
        let mut peak = 0i32;
        let mut sum_sq = 0u64;
        let mut missing = 0u64;
        for frame in data.chunks_exact_mut(ch) {
            let s = if self.primed {
                match self.ring.pop() {
                    Ok(s) => s,
                    Err(_) => {
                        missing += 1;
                        0
                    }
                }
            } else {
                0
            };
            let a = i32::from(s).abs();
            peak = peak.max(a);
            sum_sq += (a as u64) * (a as u64);
            frame.fill(T::from_i16(s));
        }
        let tail = frames * ch;
        if let Some(rest) = data.get_mut(tail..) {
            rest.fill(T::from_i16(0));
        }
        if missing > 0 {
            self.primed = false;
            self.shared.underrun.fetch_add(missing, Ordering::Relaxed);
        }
        self.shared.playing.store(self.primed, Ordering::Relaxed);
        self.shared.period.store(frames, Ordering::Relaxed);
        self.shared.set_levels(peak, sum_sq, frames);
    }
}

// ------------------------------------------------------------- media half

/// Keeps the cpal stream's owner thread alive; dropping it stops the
/// stream. The thread is not joined (closing a device can block on some
/// audio servers; the media task must not).
struct StreamGuard {
    _stop: mpsc::Sender<()>,
}

/// The microphone, read by the media task.
pub struct DeviceSource {
    ring: Consumer<i16>,
    shared: Arc<Shared>,
    rate: u32,
    name: String,
    drift: DriftControl,
    primed: bool,
    /// A sample the drift control emitted past the end of the last read.
    pending: Option<i16>,
    /// Reads left of the settling period after priming, during which a
    /// backlog above the margin is cut at once (a device may deliver its
    /// first buffers in bursts).
    settle_reads: u32,
    /// Whether the last frame read was quiet (see [`QUIET_PEAK`]).
    last_quiet: bool,
    fill: usize,
    _stream: Option<StreamGuard>,
}

/// The speaker, written by the media task.
pub struct DeviceSink {
    ring: Producer<i16>,
    shared: Arc<Shared>,
    rate: u32,
    name: String,
    drift: DriftControl,
    overrun: u64,
    padded: u64,
    /// Whether the device was taking samples at the last write, and how
    /// many writes of the settling period are left.
    was_playing: bool,
    settle_writes: u32,
    /// Whether the last frame written was quiet (see [`QUIET_PEAK`]).
    last_quiet: bool,
    fill: usize,
    _stream: Option<StreamGuard>,
}

/// A connected input pair without a device: the callback half and the
/// media half, `channels` interleaved at `rate`. `open_*` use it; tests
/// drive both halves directly.
pub fn input_bridge(channels: u16, rate: u32) -> (InputBridge, DeviceSource) {
    let (tx, rx) = RingBuffer::new(ring_capacity(rate));
    let shared = Arc::new(Shared::default());
    (
        InputBridge {
            ring: tx,
            channels: usize::from(channels.max(1)),
            shared: shared.clone(),
        },
        DeviceSource {
            ring: rx,
            shared,
            rate,
            name: String::new(),
            drift: DriftControl::new(0, 0, DRIFT_EVERY),
            primed: false,
            pending: None,
            settle_reads: 0,
            last_quiet: false,
            fill: 0,
            _stream: None,
        },
    )
}

/// A connected output pair without a device (see [`input_bridge`]).
pub fn output_bridge(channels: u16, rate: u32) -> (DeviceSink, OutputBridge) {
    let (tx, rx) = RingBuffer::new(ring_capacity(rate));
    let shared = Arc::new(Shared::default());
    (
        DeviceSink {
            ring: tx,
            shared: shared.clone(),
            rate,
            name: String::new(),
            drift: DriftControl::new(0, 0, DRIFT_EVERY),
            overrun: 0,
            padded: 0,
            was_playing: false,
            settle_writes: 0,
            last_quiet: false,
            fill: 0,
            _stream: None,
        },
        OutputBridge {
            ring: rx,
            channels: usize::from(channels.max(1)),
            primed: false,
            shared,
        },
    )
}

impl DeviceSource {
    pub fn health(&self) -> DeviceHealth {
        self.shared.health()
    }

    /// Peak and RMS (full scale = 1.0) of the last device buffer.
    pub fn levels(&self) -> (f32, f32) {
        self.shared.levels()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn stats(&self) -> DeviceStats {
        DeviceStats {
            underrun_samples: self.shared.underrun.load(Ordering::Relaxed),
            overrun_samples: self.shared.overrun.load(Ordering::Relaxed),
            skipped: self.drift.skipped(),
            repeated: self.drift.repeated(),
            padded_samples: 0,
            fill: self.fill,
            target: self.drift.target(),
        }
    }
}

impl AudioSource for DeviceSource {
    fn sample_rate(&self) -> u32 {
        self.rate
    }

    fn device_stats(&self) -> Option<DeviceStats> {
        Some(self.stats())
    }

    fn failure(&self) -> Option<String> {
        match self.health() {
            DeviceHealth::Running => None,
            DeviceHealth::Failed(why) => Some(format!("microphone {}: {why}", self.name)),
        }
    }

    /// Fills `out`: silence while priming, after a stream error, or where
    /// the ring ran dry (counted).
    fn read(&mut self, out: &mut [i16]) {
        if self.shared.failed.load(Ordering::Relaxed) {
            out.fill(0);
            return;
        }
        let n = out.len();
        let period = self.shared.period.load(Ordering::Relaxed);
        let target = target_fill(n, period);
        self.drift.set_target(target, n / 2);
        let mut fill = self.ring.slots();
        // Drop the oldest down to target at once: when the media task fell
        // far behind, and on the first read after priming starts, any
        // backlog above the margin (a PulseAudio stream may start with one)
        // rather than draining it by skipping samples (a pitch shift) for
        // seconds.
        let limit = if self.primed && self.settle_reads == 0 {
            target + RESYNC_FRAMES * n
        } else {
            target + n / 2
        };
        self.settle_reads = self.settle_reads.saturating_sub(1);
        if fill > limit {
            let cut = fill - target;
            if let Ok(chunk) = self.ring.read_chunk(cut) {
                chunk.commit_all();
                self.shared.overrun.fetch_add(cut as u64, Ordering::Relaxed);
                fill -= cut;
            }
            self.drift.reset();
        }
        self.fill = fill;
        if !self.primed {
            if fill < target {
                out.fill(0);
                return;
            }
            self.primed = true;
            self.settle_reads = SETTLE_FRAMES;
        }
        self.drift.observe(fill);
        // The drift control emits 0–2 samples per sample taken from the
        // ring; one emitted past the end of `out` waits for the next read.
        let mut k = if let (Some(v), Some(first)) = (self.pending, out.first_mut()) {
            *first = v;
            self.pending = None;
            1
        } else {
            self.quiet_step(out)
        };
        let mut missing = 0u64;
        while k < n {
            let Ok(s) = self.ring.pop() else {
                out[k..].fill(0);
                missing = (n - k) as u64;
                break;
            };
            let pending = &mut self.pending;
            self.drift.push(s, |v| {
                if k < n {
                    out[k] = v;
                    k += 1;
                } else {
                    *pending = Some(v);
                }
            });
        }
        if missing > 0 {
            self.shared.underrun.fetch_add(missing, Ordering::Relaxed);
            self.primed = false;
            self.pending = None;
            self.drift.silence();
        }
        self.last_quiet = is_quiet(out);
    }
}

impl DeviceSource {
    /// A correction done at once where the ring's next samples are quiet
    /// (see [`DriftControl::quiet_step`]): drops samples from the ring, or
    /// starts `out` with silence. Returns how much of `out` it filled.
    fn quiet_step(&mut self, out: &mut [i16]) -> usize {
        let n = out.len();
        let step = if self.last_quiet {
            self.drift.quiet_step(n)
        } else {
            0
        };
        if step == 0 {
            return 0;
        }
        let (cut, add) = (step.max(0) as usize, (-step).max(0) as usize);
        // The samples it drops and those this read then takes.
        let Ok(chunk) = self.ring.read_chunk(cut + n - add) else {
            return 0;
        };
        let (a, b) = chunk.as_slices();
        if !(is_quiet(a) && is_quiet(b)) {
            return 0; // nothing taken from the ring
        }
        if cut > 0 {
            let last = a.get(cut - 1).or_else(|| b.get(cut - 1 - a.len()));
            let last = last.copied().unwrap_or(0);
            chunk.commit(cut);
            self.drift.stepped(step, last);
            0
        } else {
            out[..add].fill(0);
            self.drift.stepped(step, 0);
            add
        }
    }
}

impl DeviceSink {
    /// Queues samples as they are, past the drift control (a full ring
    /// drops them, counted).
    fn push_raw(&mut self, samples: impl Iterator<Item = i16>) {
        for s in samples {
            if self.ring.push(s).is_err() {
                self.overrun += 1;
            }
        }
    }

    pub fn health(&self) -> DeviceHealth {
        self.shared.health()
    }

    /// Peak and RMS (full scale = 1.0) of the last device buffer played.
    pub fn levels(&self) -> (f32, f32) {
        self.shared.levels()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn stats(&self) -> DeviceStats {
        DeviceStats {
            underrun_samples: self.shared.underrun.load(Ordering::Relaxed),
            overrun_samples: self.overrun,
            padded_samples: self.padded,
            skipped: self.drift.skipped(),
            repeated: self.drift.repeated(),
            fill: self.fill,
            target: self.drift.target(),
        }
    }
}

impl AudioSink for DeviceSink {
    fn sample_rate(&self) -> u32 {
        self.rate
    }

    fn device_stats(&self) -> Option<DeviceStats> {
        Some(self.stats())
    }

    fn failure(&self) -> Option<String> {
        match self.health() {
            DeviceHealth::Running => None,
            DeviceHealth::Failed(why) => Some(format!("speaker {}: {why}", self.name)),
        }
    }

    /// Queues `pcm` for the device. A full ring drops the newest samples
    /// (counted); a fill far above target drops the whole frame.
    fn write(&mut self, pcm: &[i16]) -> io::Result<()> {
        if pcm.is_empty() || self.shared.failed.load(Ordering::Relaxed) {
            return Ok(());
        }
        let n = pcm.len();
        let period = self.shared.period.load(Ordering::Relaxed);
        let target = target_fill(n, period);
        self.drift.set_target(target, n / 2);
        self.shared.prime_level.store(target, Ordering::Relaxed);
        let mut fill = self.ring.buffer().capacity() - self.ring.slots();
        self.fill = fill;
        if fill > target + RESYNC_FRAMES * n {
            self.overrun += n as u64;
            self.drift.reset();
            return Ok(());
        }
        let playing = self.shared.playing.load(Ordering::Relaxed);
        if !playing && fill >= target {
            // The device has not started taking samples (a PulseAudio
            // stream can take a second): hold no more than the target, so
            // that playout starts at the target delay instead of draining
            // an excess by skipping samples (a pitch shift) for seconds.
            self.overrun += n as u64;
            return Ok(());
        }
        if playing && !self.was_playing {
            self.settle_writes = SETTLE_FRAMES;
        }
        self.was_playing = playing;
        if playing && self.settle_writes > 0 {
            self.settle_writes -= 1;
            if fill + n / 2 < target {
                // Just started and already far below target: the device
                // took a buffer's worth at once. Refill with silence now
                // rather than repeat a sample in a hundred for seconds.
                let mut pushed = 0;
                while fill + pushed < target && self.ring.push(0).is_ok() {
                    pushed += 1;
                }
                self.padded += pushed as u64;
                fill += pushed;
                // The next samples follow silence.
                self.drift.silence();
            } else if fill > target + n / 2 {
                // Just started and already far above target: the device
                // paused after its first request. Drop the excess (from
                // this frame) now rather than bend the sound for seconds.
                let cut = (fill - target).min(n);
                self.overrun += cut as u64;
                self.push_raw(pcm[cut..].iter().copied());
                self.drift.reset();
                self.drift.stepped(0, pcm[n - 1]);
                return Ok(());
            }
        }
        if playing {
            self.drift.observe(fill);
            let quiet = is_quiet(pcm);
            let step = if quiet && self.last_quiet {
                self.drift.quiet_step(n)
            } else {
                0
            };
            self.last_quiet = quiet;
            if step != 0 {
                // A quiet frame: the correction at once (see DriftControl).
                let (cut, add) = (step.max(0) as usize, (-step).max(0) as usize);
                let zeros = std::iter::repeat_n(0, add);
                self.push_raw(pcm[cut..].iter().copied().chain(zeros));
                let last = if add > 0 { 0 } else { pcm[n - 1] };
                self.drift.stepped(step, last);
                return Ok(());
            }
        } else {
            // Priming: the fill is meant to be below target.
            self.drift.reset();
        }
        for &s in pcm {
            let (ring, overrun) = (&mut self.ring, &mut self.overrun);
            self.drift.push(s, |v| {
                if ring.push(v).is_err() {
                    *overrun += 1;
                }
            });
        }
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        Ok(())
    }
}

// ---------------------------------------------------------------- devices

/// One sound device, for `softline ctl devices`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    pub name: String,
    pub is_input: bool,
    pub is_output: bool,
    pub is_default: bool,
    pub default_rate: u32,
    pub channels: u16,
}

/// The default host's devices that have a usable configuration (empty on a
/// machine without sound hardware).
pub fn list_devices() -> Vec<DeviceInfo> {
    let host = cpal::default_host();
    let def_in = host.default_input_device().and_then(|d| d.name().ok());
    let def_out = host.default_output_device().and_then(|d| d.name().ok());
    let Ok(devices) = host.devices() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for d in devices {
        let Ok(name) = d.name() else { continue };
        let inp = d.default_input_config().ok();
        let outp = d.default_output_config().ok();
        let Some(cfg) = outp.as_ref().or(inp.as_ref()) else {
            continue;
        };
        out.push(DeviceInfo {
            is_default: Some(&name) == def_in.as_ref() || Some(&name) == def_out.as_ref(),
            default_rate: cfg.sample_rate().0,
            channels: cfg.channels(),
            is_input: inp.is_some(),
            is_output: outp.is_some(),
            name,
        });
    }
    out
}

/// Index of the first name containing `wanted`, ignoring case.
pub fn match_device(names: &[String], wanted: &str) -> Option<usize> {
    let w = wanted.to_lowercase();
    names.iter().position(|n| n.to_lowercase().contains(&w))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Dir {
    Input,
    Output,
}

/// Picks the device: `wanted` None = default. Returns the device, its name
/// and, when the wanted one was missing, the error to report.
fn pick(
    host: &cpal::Host,
    dir: Dir,
    wanted: Option<&str>,
) -> Result<(cpal::Device, String, Option<AudioError>), AudioError> {
    let wanted_s = wanted.unwrap_or("default").to_string();
    let mut missing = false;
    if let Some(w) = wanted {
        let devs: Vec<cpal::Device> = match dir {
            Dir::Input => host.input_devices().map(|d| d.collect()),
            Dir::Output => host.output_devices().map(|d| d.collect()),
        }
        .unwrap_or_default();
        let names: Vec<String> = devs.iter().map(|d| d.name().unwrap_or_default()).collect();
        if let Some(i) = match_device(&names, w)
            && let (Some(d), Some(n)) = (devs.into_iter().nth(i), names.get(i))
        {
            return Ok((d, n.clone(), None));
        }
        missing = true;
    }
    let def = match dir {
        Dir::Input => host.default_input_device(),
        Dir::Output => host.default_output_device(),
    };
    let Some(d) = def else {
        return Err(AudioError::NoDevice {
            wanted: wanted_s,
            why: "the audio host has no default device".into(),
        });
    };
    let name = d.name().unwrap_or_else(|_| "default".into());
    let note = missing.then(|| AudioError::DeviceMissing {
        wanted: wanted_s,
        using: name.clone(),
    });
    Ok((d, name, note))
}

enum Half {
    Source(DeviceSource),
    Sink(DeviceSink),
}

type Opened = Result<(Half, Option<AudioError>), AudioError>;

fn err_fn(shared: Arc<Shared>) -> impl FnMut(cpal::StreamError) + Send + 'static {
    move |e| shared.fail(e.to_string())
}

fn build_input<T: DeviceSample + cpal::SizedSample>(
    dev: &cpal::Device,
    cfg: &cpal::StreamConfig,
    mut bridge: InputBridge,
) -> Result<cpal::Stream, cpal::BuildStreamError> {
    let shared = bridge.shared.clone();
    dev.build_input_stream(
        cfg,
        move |data: &[T], _: &cpal::InputCallbackInfo| {
            assert_no_alloc::assert_no_alloc(|| bridge.process(data))
        },
        err_fn(shared),
        None,
    )
}

fn build_output<T: DeviceSample + cpal::SizedSample>(
    dev: &cpal::Device,
    cfg: &cpal::StreamConfig,
    mut bridge: OutputBridge,
) -> Result<cpal::Stream, cpal::BuildStreamError> {
    let shared = bridge.shared.clone();
    dev.build_output_stream(
        cfg,
        move |data: &mut [T], _: &cpal::OutputCallbackInfo| {
            assert_no_alloc::assert_no_alloc(|| bridge.process(data))
        },
        err_fn(shared),
        None,
    )
}

/// Runs on the owner thread: open, start, and hand back the media half.
fn open_on_thread(
    dir: Dir,
    wanted: Option<&str>,
) -> Result<(Half, Option<AudioError>, cpal::Stream), AudioError> {
    let host = cpal::default_host();
    let (dev, name, note) = pick(&host, dir, wanted)?;
    let is_default = wanted.is_none() || note.is_some();
    let failed = |why: String| {
        if is_default {
            // The default device exists on paper only (ALSA always names
            // one): no sound hardware.
            AudioError::NoDevice {
                wanted: wanted.unwrap_or("default").to_string(),
                why,
            }
        } else {
            AudioError::DeviceFailed {
                name: name.clone(),
                why,
            }
        }
    };
    let sup = match dir {
        Dir::Input => dev.default_input_config(),
        Dir::Output => dev.default_output_config(),
    }
    .map_err(|e| failed(e.to_string()))?;
    let cfg = sup.config();
    let rate = cfg.sample_rate.0;
    let channels = cfg.channels;
    use cpal::SampleFormat as F;
    let (half, stream) = match dir {
        Dir::Input => {
            let (bridge, mut src) = input_bridge(channels, rate);
            src.name = name.clone();
            let s = match sup.sample_format() {
                F::F32 => build_input::<f32>(&dev, &cfg, bridge),
                F::I16 => build_input::<i16>(&dev, &cfg, bridge),
                F::U16 => build_input::<u16>(&dev, &cfg, bridge),
                f => return Err(failed(format!("unsupported sample format {f}"))),
            };
            (Half::Source(src), s)
        }
        Dir::Output => {
            let (mut sink, bridge) = output_bridge(channels, rate);
            sink.name = name.clone();
            let s = match sup.sample_format() {
                F::F32 => build_output::<f32>(&dev, &cfg, bridge),
                F::I16 => build_output::<i16>(&dev, &cfg, bridge),
                F::U16 => build_output::<u16>(&dev, &cfg, bridge),
                f => return Err(failed(format!("unsupported sample format {f}"))),
            };
            (Half::Sink(sink), s)
        }
    };
    let stream = stream.map_err(|e| failed(e.to_string()))?;
    stream.play().map_err(|e| failed(e.to_string()))?;
    Ok((half, note, stream))
}

/// The microphone's PulseAudio handler: blocks from the mainloop thread
/// into the ring, as a cpal callback would.
#[cfg(target_os = "linux")]
struct PulseMic(InputBridge);

#[cfg(target_os = "linux")]
impl pulse_dl::Handler for PulseMic {
    fn recorded(&mut self, pcm: &[i16]) {
        assert_no_alloc::assert_no_alloc(|| self.0.process(pcm));
    }

    fn failed(&mut self, why: &str) {
        self.0.shared.fail(why.to_string());
    }
}

/// The speaker's PulseAudio handler. A new stream asks for its whole
/// target length at once. Given from the ring, that drained it far below
/// its target, and the sink's drift control then had to make up for it;
/// silence fills the server's queue instead, and the ring is drained a
/// block per 10 ms from the first block on.
#[cfg(target_os = "linux")]
struct PulseSpeaker {
    bridge: OutputBridge,
    /// Samples of silence still to give before the ring's.
    silent: usize,
}

#[cfg(target_os = "linux")]
impl pulse_dl::Handler for PulseSpeaker {
    fn play(&mut self, out: &mut [i16]) {
        if self.silent > 0 {
            self.silent = self.silent.saturating_sub(out.len());
            out.fill(0);
        } else {
            assert_no_alloc::assert_no_alloc(|| self.bridge.process(out));
        }
    }

    fn failed(&mut self, why: &str) {
        self.bridge.shared.fail(why.to_string());
    }
}

/// Opens the default device as a PulseAudio stream; the stream runs (on
/// the shared mainloop thread) until the returned handle is dropped.
#[cfg(target_os = "linux")]
fn pulse_open(dir: Dir) -> Result<(Half, super::pulse::PulseStream), String> {
    use super::pulse::{BLOCK, PLAYBACK_BLOCKS, PulseStream, RATE};
    let name = "default (PulseAudio)".to_string();
    Ok(match dir {
        Dir::Input => {
            let (bridge, mut src) = input_bridge(1, RATE);
            src.name = name;
            let stream = PulseStream::record(Box::new(PulseMic(bridge)))?;
            (Half::Source(src), stream)
        }
        Dir::Output => {
            let (mut sink, bridge) = output_bridge(1, RATE);
            sink.name = name;
            let speaker = PulseSpeaker {
                bridge,
                silent: PLAYBACK_BLOCKS as usize * BLOCK,
            };
            let stream = PulseStream::playback(Box::new(speaker))?;
            (Half::Sink(sink), stream)
        }
    })
}

/// Opens the device on its owner thread and waits at most `OPEN_TIMEOUT`.
fn open(dir: Dir, wanted: Option<&str>) -> Opened {
    let wanted_s = wanted.map(str::to_string);
    let label = wanted.unwrap_or("default").to_string();
    let (res_tx, res_rx) = mpsc::channel::<Opened>();
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let spawned = std::thread::Builder::new()
        .name(match dir {
            Dir::Input => "softline-mic".into(),
            Dir::Output => "softline-speaker".into(),
        })
        .spawn(move || {
            // The default devices on a PulseAudio desktop: its own stream,
            // run on this thread until the source/sink is dropped.
            #[cfg(target_os = "linux")]
            if wanted_s.is_none() && super::pulse::server_present() {
                match pulse_open(dir) {
                    Ok((half, stream)) => {
                        if res_tx.send(Ok((half, None))).is_ok() {
                            // Keep the stream until the source/sink is
                            // dropped; its handler runs meanwhile.
                            let _ = stop_rx.recv();
                        }
                        drop(stream);
                        return;
                    }
                    Err(e) => tracing::info!("{e}; the default device goes through ALSA"),
                }
            }
            match open_on_thread(dir, wanted_s.as_deref()) {
                Ok((half, note, stream)) => {
                    if res_tx.send(Ok((half, note))).is_ok() {
                        // Keep the stream until the source/sink is dropped.
                        let _ = stop_rx.recv();
                    }
                    drop(stream);
                }
                Err(e) => {
                    let _ = res_tx.send(Err(e));
                }
            }
        });
    if let Err(e) = spawned {
        return Err(AudioError::DeviceFailed {
            name: label,
            why: format!("cannot start the audio thread: {e}"),
        });
    }
    match res_rx.recv_timeout(OPEN_TIMEOUT) {
        Ok(Ok((mut half, note))) => {
            let guard = Some(StreamGuard { _stop: stop_tx });
            match &mut half {
                Half::Source(s) => s._stream = guard,
                Half::Sink(s) => s._stream = guard,
            }
            Ok((half, note))
        }
        Ok(Err(e)) => Err(e),
        Err(_) => Err(AudioError::DeviceFailed {
            name: label,
            why: format!("did not open within {} s", OPEN_TIMEOUT.as_secs()),
        }),
    }
}

/// The microphone: `wanted` None = the default device. Falls back to the
/// default device when the named one is missing (and says so), to silence
/// at `rate` when there is no device at all.
pub fn open_device_source(
    wanted: Option<&str>,
    rate: u32,
) -> (Box<dyn AudioSource>, Option<AudioError>) {
    match open(Dir::Input, wanted) {
        Ok((Half::Source(s), note)) => (Box::new(s), note),
        Ok((Half::Sink(_), _)) => (Box::new(NullSource(rate)), None),
        Err(e) => (Box::new(NullSource(rate)), Some(e)),
    }
}

/// The speaker; see [`open_device_source`].
pub fn open_device_sink(
    wanted: Option<&str>,
    rate: u32,
) -> (Box<dyn AudioSink>, Option<AudioError>) {
    match open(Dir::Output, wanted) {
        Ok((Half::Sink(s), note)) => (Box::new(s), note),
        Ok((Half::Source(_), _)) => (Box::new(NullSink(rate)), None),
        Err(e) => (Box::new(NullSink(rate)), Some(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_format_conversion() {
        assert_eq!(0.5f32.to_i16(), 16384);
        assert_eq!((-1.0f32).to_i16(), -32768);
        assert_eq!(1.0f32.to_i16(), 32767, "+1.0 clips to the largest i16");
        assert_eq!(2.5f32.to_i16(), 32767);
        assert_eq!((-7.0f32).to_i16(), -32768);
        assert_eq!(f32::NAN.to_i16(), 0);
        assert_eq!(f32::from_i16(-16384), -0.5);
        assert_eq!(0x8000u16.to_i16(), 0);
        assert_eq!(0u16.to_i16(), -32768);
        assert_eq!(0xffffu16.to_i16(), 32767);
        assert_eq!(u16::from_i16(-1), 0x7fff);
        // Every i16 survives a trip through each device format exactly.
        for v in i16::MIN..=i16::MAX {
            assert_eq!(f32::from_i16(v).to_i16(), v);
            assert_eq!(u16::from_i16(v).to_i16(), v);
            assert_eq!(i16::from_i16(v).to_i16(), v);
        }
    }

    #[test]
    fn input_downmixes_counts_overrun_and_measures_levels() {
        let (mut cb, mut src) = input_bridge(2, 8000);
        assert_eq!(src.sample_rate(), 8000);
        // Stereo f32: frames (0.25, 0.75) and (-0.5, -0.25) → 16384, -12288;
        // the trailing half frame is ignored.
        cb.process(&[0.25f32, 0.75, -0.5, -0.25, 0.9]);
        let (peak, rms) = src.levels();
        assert_eq!(peak, 0.5);
        let want = ((16384f64 * 16384.0 + 12288.0 * 12288.0) / 2.0).sqrt() / 32768.0;
        assert!((f64::from(rms) - want).abs() < 1e-6, "{rms} vs {want}");
        assert_eq!(src.ring.slots(), 2);
        assert_eq!(src.ring.pop(), Ok(16384));
        assert_eq!(src.ring.pop(), Ok(-12288));
        // Ring of 4000 (half a second at 8 kHz): 4100 mono u16 samples →
        // the 100 newest are dropped and counted.
        let (mut cb, mut src) = input_bridge(1, 8000);
        let data: Vec<u16> = (0..4100u32).map(|i| (0x8000 + i) as u16).collect();
        cb.process(&data);
        assert_eq!(src.stats().overrun_samples, 100);
        assert_eq!(src.ring.slots(), 4000);
        assert_eq!(src.ring.pop(), Ok(0));
        let last = src.ring.read_chunk(3999).unwrap();
        let (a, b) = last.as_slices();
        assert_eq!(b.last().or(a.last()), Some(&3999));
    }

    #[test]
    fn source_primes_then_underruns_fill_silence_and_count() {
        let (mut cb, mut src) = input_bridge(1, 8000);
        let mut out = [7i16; 160];
        // Period 80, frame 160 → target max(320, 240) = 320.
        cb.process(&[1i16; 80]);
        src.read(&mut out);
        assert_eq!(out, [0; 160], "priming: silence below target");
        assert_eq!(src.stats().underrun_samples, 0);
        assert_eq!(src.stats().target, 320);
        for _ in 0..3 {
            cb.process(&[1i16; 80]);
        }
        src.read(&mut out); // 320 in the ring: primed, reads 160
        assert_eq!(out, [1; 160]);
        cb.process(&[2i16; 80]); // 240 left
        src.read(&mut out);
        assert_eq!(out, [1; 160]);
        src.read(&mut out); // 80 left: 80 samples then 80 of silence
        assert_eq!(out[..80], [2; 80]);
        assert_eq!(out[80..], [0; 80]);
        assert_eq!(src.stats().underrun_samples, 80);
        // After the dry run it waits for the target again.
        cb.process(&[3i16; 80]);
        out.fill(9);
        src.read(&mut out);
        assert_eq!(out, [0; 160]);
        assert_eq!(src.stats().underrun_samples, 80);
    }

    #[test]
    fn source_cuts_a_stalled_backlog_to_target() {
        let (mut cb, mut src) = input_bridge(1, 48000);
        let data: Vec<i16> = (0..20000).map(|i| (i % 30000) as i16).collect();
        cb.process(&data); // period 20000
        let mut out = vec![0i16; 960];
        // target = 960 + 20000 = 20960 > fill: no cut. Use a short period.
        cb.process(&[5i16; 480]); // fill 20480, period 480 → target 1920
        src.read(&mut out);
        // 20480 > 1920 + 4·960: cut the oldest 18560, then read 960.
        assert_eq!(src.stats().overrun_samples, 18560);
        assert_eq!(src.stats().fill, 1920);
        assert_eq!(out[0], 18560, "the oldest were dropped");
        assert_eq!(src.ring.slots(), 960);
    }

    #[test]
    fn output_upmixes_primes_and_counts_underrun() {
        let (mut sink, mut cb) = output_bridge(2, 8000);
        let mut dev = [0.3f32; 8];
        cb.process(&mut dev);
        assert_eq!(dev, [0.0; 8], "nothing written yet: silence");
        assert_eq!(sink.stats().underrun_samples, 0);
        let frame: Vec<i16> = (0..160).map(|i| i as i16 * 100).collect();
        sink.write(&frame).unwrap(); // target: period 4 → max(320, 164) = 320
        cb.process(&mut dev);
        assert_eq!(dev, [0.0; 8], "160 < 320: still priming");
        sink.write(&frame).unwrap();
        let mut dev = [0i16; 7]; // 3 stereo frames + a stray sample
        cb.process(&mut dev);
        assert_eq!(dev, [0, 0, 100, 100, 200, 200, 0]);
        let (peak, _) = sink.levels();
        assert_eq!(peak, 200.0 / 32768.0);
        // Drain the rest (317) and run 3 past the end: counted underrun.
        let mut big = vec![0u16; 2 * 320];
        cb.process(&mut big);
        assert_eq!(big[0], u16::from_i16(300));
        assert_eq!(big[2 * 316], u16::from_i16(15900));
        assert_eq!(big[2 * 317], 0x8000);
        assert_eq!(sink.stats().underrun_samples, 3);
    }

    #[test]
    fn sink_drops_newest_when_full_or_far_ahead() {
        let (mut sink, _cb) = output_bridge(1, 8000); // ring 4000
        let frame = [1000i16; 800];
        // Before the device plays, the sink holds no more than its target
        // (two frames, 1600); later frames are dropped.
        for _ in 0..6 {
            sink.write(&frame).unwrap();
        }
        let s = sink.stats();
        assert_eq!(s.fill, 1600);
        assert_eq!(s.overrun_samples, 4 * 800);
        // Playing for a while (past the settling period, which would cut
        // an excess at once), but nobody takes samples now: the ring fills
        // to 4000; the far-ahead limit, 1600 + 4·800 = 4800, is not
        // reached before that.
        sink.shared.playing.store(true, Ordering::Relaxed);
        sink.was_playing = true;
        for _ in 0..4 {
            sink.write(&frame).unwrap();
        }
        let s = sink.stats();
        assert_eq!(s.fill, 4000);
        assert_eq!(
            s.overrun_samples,
            5 * 800,
            "3 more frames fit, the 4th did not"
        );
        assert_eq!(sink.ring.slots(), 0);
    }

    /// The other way round: a device that starts, then pauses after its
    /// first request (the server playing out the silence it was given),
    /// leaves the ring above target; the excess goes at once.
    #[test]
    fn sink_drops_a_start_up_excess_at_once() {
        let (mut sink, mut cb) = output_bridge(1, 48000);
        let frame = [1000i16; 960];
        let mut block = [0i16; 480];
        sink.write(&frame).unwrap();
        sink.write(&frame).unwrap();
        cb.process(&mut block); // starts playing
        for _ in 0..3 {
            sink.write(&frame).unwrap(); // the device pauses meanwhile
        }
        // 1440 after the device's block, 2400, 3360: the third write finds
        // the ring more than a margin (480) over target and is dropped.
        let s = sink.stats();
        assert_eq!((s.fill, s.overrun_samples), (3360, 960), "{s:?}");
        assert_eq!((s.skipped, s.repeated), (0, 0), "{s:?}");
        for _ in 0..200 {
            cb.process(&mut block);
            cb.process(&mut block);
            sink.write(&frame).unwrap();
        }
        // Within the margin from then on: nothing more dropped or bent.
        let s = sink.stats();
        assert_eq!(s.overrun_samples, 960, "{s:?}");
        assert!(s.fill.abs_diff(s.target) <= 480, "{s:?}");
        assert_eq!(
            (s.skipped, s.repeated, s.underrun_samples),
            (0, 0, 0),
            "{s:?}"
        );
    }

    #[test]
    fn sink_refills_at_once_when_the_device_starts_with_a_gulp() {
        let (mut sink, mut cb) = output_bridge(1, 48000);
        let frame = [1000i16; 960];
        let mut block = [0i16; 480];
        // Primed at the target, two 20 ms frames (1920); then the device
        // starts and takes its whole 40 ms queue at once, as PulseAudio
        // does, before settling at a 10 ms block per 10 ms.
        sink.write(&frame).unwrap();
        sink.write(&frame).unwrap();
        for _ in 0..4 {
            cb.process(&mut block);
        }
        let steady = |sink: &mut DeviceSink, cb: &mut OutputBridge, writes: usize| {
            let mut block = [0i16; 480];
            for _ in 0..writes {
                sink.write(&frame).unwrap();
                cb.process(&mut block);
                cb.process(&mut block);
            }
        };
        steady(&mut sink, &mut cb, 200);
        let s = sink.stats();
        assert_eq!(s.padded_samples, 1920, "{s:?}");
        assert_eq!(
            (s.repeated, s.skipped, s.underrun_samples),
            (0, 0, 0),
            "{s:?}"
        );
        // Later, past the settling period, a dip is the drift control's to
        // correct (gradually), not padded.
        cb.process(&mut block);
        cb.process(&mut block);
        steady(&mut sink, &mut cb, 300);
        let s = sink.stats();
        assert_eq!(s.padded_samples, 1920, "{s:?}");
        assert!(s.repeated > 0, "{s:?}");
    }

    #[test]
    fn source_drops_a_start_up_backlog_at_once() {
        let (mut cb, mut src) = input_bridge(1, 8000);
        // 100 ms arrived before the first read, in 10 ms periods.
        for _ in 0..10 {
            cb.process(&[1000i16; 80]);
        }
        let mut out = [0i16; 160];
        src.read(&mut out);
        // Target: two 20 ms frames (320); the 480 above it go at once
        // instead of being skipped one sample in a hundred.
        assert_eq!(src.stats().overrun_samples, 480);
        assert_eq!(out, [1000; 160]);
        for _ in 0..50 {
            cb.process(&[1000i16; 80]);
            cb.process(&[1000i16; 80]);
            src.read(&mut out);
        }
        let s = src.stats();
        assert_eq!(s.overrun_samples, 480);
        assert_eq!((s.skipped, s.repeated), (0, 0), "{s:?}");
    }

    #[test]
    fn failed_stream_reports_health_and_silence() {
        let (mut cb, mut src) = input_bridge(1, 8000);
        for _ in 0..10 {
            cb.process(&[1000i16; 80]);
        }
        assert_eq!(src.health(), DeviceHealth::Running);
        src.shared
            .fail("The requested device is no longer available".into());
        src.shared.fail("second error is ignored".into());
        let mut out = [5i16; 160];
        src.read(&mut out);
        assert_eq!(out, [0; 160]);
        assert_eq!(
            src.health(),
            DeviceHealth::Failed("The requested device is no longer available".into())
        );
        let (mut sink, _cb) = output_bridge(1, 8000);
        sink.shared.fail("unplugged".into());
        sink.write(&[1; 160]).unwrap();
        assert_eq!(sink.ring.slots(), 4000, "nothing queued after a failure");
        assert_eq!(sink.health(), DeviceHealth::Failed("unplugged".into()));
    }

    #[test]
    fn device_names_match_case_insensitively() {
        let names: Vec<String> = ["HDA Intel PCH: ALC257 Analog", "Jabra EVOLVE 75", "default"]
            .map(String::from)
            .to_vec();
        assert_eq!(match_device(&names, "jabra"), Some(1));
        assert_eq!(match_device(&names, "evolve"), Some(1));
        assert_eq!(match_device(&names, "alc257"), Some(0));
        assert_eq!(match_device(&names, "a"), Some(0), "first match wins");
        assert_eq!(match_device(&names, "Plantronics"), None);
    }

    /// Output direction: the media tick writes 960 samples every 20 ms
    /// (true time); the device takes 480 per callback at 48 kHz·(1+drift).
    /// Every sample is `level` (at most [`QUIET_PEAK`]: quiet frames).
    /// Returns (repeated, skipped, min fill, max fill, underruns) after the
    /// first 10 s.
    fn simulate(drift: f64, seconds: u32, level: i16) -> (u64, u64, usize, usize, u64) {
        let (frame, period, rate) = (960usize, 480usize, 48000.0f64);
        let target = target_fill(frame, period);
        let mut dc = DriftControl::new(target, frame / 2, DRIFT_EVERY);
        let mut fill = 0usize;
        let mut primed = false;
        let (mut lo, mut hi, mut under) = (usize::MAX, 0usize, 0u64);
        let cb_dt = period as f64 / (rate * (1.0 + drift));
        let (mut tick, mut cb) = (0u64, 0u64);
        let ticks = u64::from(seconds) * 50;
        while tick < ticks {
            let t_tick = tick as f64 * 0.02;
            let t_cb = cb as f64 * cb_dt;
            if t_tick <= t_cb {
                if primed {
                    dc.observe(fill);
                } else {
                    dc.reset();
                }
                let step = if level.unsigned_abs() <= QUIET_PEAK as u16 {
                    dc.quiet_step(frame)
                } else {
                    0
                };
                if step == 0 {
                    for _ in 0..frame {
                        dc.push(level, |_| fill += 1);
                    }
                } else {
                    fill = (fill as isize + frame as isize - step) as usize;
                    dc.stepped(step, level);
                }
                tick += 1;
            } else {
                primed |= fill >= target;
                if primed {
                    if fill < period {
                        under += (period - fill) as u64;
                        fill = 0;
                        primed = false;
                    } else {
                        fill -= period;
                    }
                }
                cb += 1;
                if t_cb > 10.0 {
                    lo = lo.min(fill);
                    hi = hi.max(fill);
                }
            }
        }
        (dc.repeated(), dc.skipped(), lo, hi, under)
    }

    #[test]
    fn drift_control_holds_fill_against_half_a_percent_for_ten_minutes() {
        // Device 0.5 % fast: it takes 600 s · 48000 · 0.005 = 144000 more
        // samples than the tick gives; drift control repeats them.
        let (rep, skip, lo, hi, under) = simulate(0.005, 600, 1000);
        assert_eq!(skip, 0);
        assert!((rep as i64 - 144_000).abs() < 2000, "repeated {rep}");
        assert_eq!(under, 0);
        assert!(lo > 0 && hi <= 1920 + 2 * 960, "fill {lo}..{hi}");
        // Device 0.5 % slow: 144000 skipped. The only repeats are at the
        // start: priming leaves the fill a frame (960) below target.
        let (rep, skip, lo, hi, under) = simulate(-0.005, 600, 1000);
        assert!(rep <= 1000, "repeated {rep}");
        assert!((skip as i64 - 144_000).abs() < 2000, "skipped {skip}");
        assert_eq!(under, 0);
        assert!(lo > 0 && hi <= 1920 + 2 * 960, "fill {lo}..{hi}");
        // No drift: only the start-up fill-up from a frame below target
        // (~960 plus the average's overshoot), nothing afterwards.
        let (rep, skip, _, _, under) = simulate(0.0, 600, 1000);
        assert!(rep + skip < 1500, "{rep} + {skip}");
        let (rep10, skip10, _, _, _) = simulate(0.0, 10, 1000);
        assert_eq!((rep, skip), (rep10, skip10), "no correction after 10 s");
        assert_eq!(under, 0);
    }

    /// In quiet frames the same drift is taken in steps at once: the same
    /// count of samples, and the fill never strays further than with the
    /// gradual correction.
    #[test]
    fn drift_in_quiet_frames_is_corrected_at_once() {
        for (drift, want_rep, want_skip) in [(0.005, 144_000, 0), (-0.005, 0, 144_000)] {
            let (rep, skip, lo, hi, under) = simulate(drift, 600, 0);
            let off = |got: u64, want: i64| (got as i64 - want).abs();
            assert!(off(rep, want_rep) < 2000, "{drift}: repeated {rep}");
            assert!(off(skip, want_skip) < 2000, "{drift}: skipped {skip}");
            assert_eq!(under, 0);
            assert!(lo > 0 && hi <= 1920 + 2 * 960, "{drift}: fill {lo}..{hi}");
        }
    }

    /// The sink after a stall of the device (its queue ran dry and it
    /// resumed where it was, so the ring holds 20 ms too many): speech
    /// is not bent to catch up; the first pause drops the excess: the
    /// second quiet frame in a row (one may be inside a word).
    #[test]
    fn sink_drops_an_excess_in_the_first_pause() {
        let (mut sink, mut cb) = output_bridge(1, 48000);
        let (loud, quiet) = ([1000i16; 960], [40i16; 960]);
        let mut block = [0i16; 480];
        let mut run = |sink: &mut DeviceSink, cb: &mut OutputBridge, frame: &[i16], n: usize| {
            for _ in 0..n {
                sink.write(frame).unwrap();
                cb.process(&mut block);
                cb.process(&mut block);
            }
        };
        sink.write(&loud).unwrap();
        sink.write(&loud).unwrap();
        run(&mut sink, &mut cb, &loud, 100);
        let before = sink.stats();
        assert_eq!((before.skipped, before.repeated), (0, 0), "{before:?}");
        // The stall: two writes, no device block taken.
        sink.write(&loud).unwrap();
        run(&mut sink, &mut cb, &loud, 30);
        let s = sink.stats();
        assert_eq!(s.skipped, 0, "speech not bent: {s:?}");
        run(&mut sink, &mut cb, &quiet, 1);
        assert_eq!(sink.stats().skipped, 0, "one quiet frame is no pause");
        run(&mut sink, &mut cb, &quiet, 1);
        let s = sink.stats();
        // The average (1/16 per frame) has seen 86 % of the 960 by now.
        assert!(s.skipped >= 800, "the excess went at once: {s:?}");
        run(&mut sink, &mut cb, &loud, 100);
        let after = sink.stats();
        // Back within the margin of the target, without dropping much
        // more than the excess (the rest went at 1 % after the patience).
        assert!(after.fill.abs_diff(1920) <= 480, "{after:?}");
        assert!(after.skipped <= 960 + 120, "{after:?}");
        assert_eq!(after.underrun_samples, 0, "{after:?}");
    }

    /// The microphone likewise: a device that delivered a burst (the ring
    /// 20 ms over target) loses the excess where the sound is quiet, and
    /// a deficit is made up with silence there.
    #[test]
    fn source_steps_in_quiet_sound() {
        let (mut cb, mut src) = input_bridge(1, 8000);
        let mut out = [0i16; 160];
        let mut feed = |cb: &mut InputBridge, src: &mut DeviceSource, level: i16, n: usize| {
            for _ in 0..n {
                cb.process(&[level; 80]);
                cb.process(&[level; 80]);
                src.read(&mut out);
            }
        };
        // Primed at the target (320) before each read, steadily.
        cb.process(&[1000i16; 80]);
        cb.process(&[1000i16; 80]);
        // Past the settling period (50 reads), which would cut it at once.
        feed(&mut cb, &mut src, 1000, 60);
        assert_eq!((src.stats().skipped, src.stats().repeated), (0, 0));
        // A burst of 20 ms beyond the steady flow.
        cb.process(&[1000i16; 80]);
        cb.process(&[1000i16; 80]);
        feed(&mut cb, &mut src, 1000, 20);
        let loud = src.stats();
        assert!(loud.skipped < 100, "{loud:?}");
        feed(&mut cb, &mut src, 20, 6);
        let s = src.stats();
        // Of the 160, what the average has seen (about 3/4).
        assert!(s.skipped >= 120, "dropped at once in quiet: {s:?}");
        assert!(s.fill <= 320 + 80, "{s:?}");
        // A device that fell 20 ms behind: made up with silence in quiet.
        src.read(&mut [0i16; 160]);
        feed(&mut cb, &mut src, 1000, 20);
        let before = src.stats();
        feed(&mut cb, &mut src, 20, 3);
        let s = src.stats();
        // Of the 160, what the average has seen (about 3/5).
        assert!(s.repeated >= before.repeated + 80, "{before:?} -> {s:?}");
        assert_eq!(s.underrun_samples, 0, "{s:?}");
    }

    /// Correcting bends the waveform over a cycle instead of cutting it:
    /// the sharpest turn of a 3 kHz tone at 48 kHz (its second difference)
    /// stays that of the tone, where a dropped or doubled sample makes a
    /// corner 2.5 times sharper.
    #[test]
    fn drift_correction_does_not_click() {
        let tone = crate::media::tone::sine(3000.0, 48000, 10_000.0, 4800);
        let sharpest = |x: &[i16]| {
            x.windows(3)
                .map(|w| (i32::from(w[0]) - 2 * i32::from(w[1]) + i32::from(w[2])).abs())
                .max()
                .unwrap_or(0)
        };
        for mode_fill in [3000usize, 0] {
            let mut dc = DriftControl::new(1000, 100, DRIFT_EVERY);
            dc.observe(mode_fill);
            assert_ne!(dc.mode(), Step::Keep);
            let mut out = Vec::new();
            for &s in &tone {
                dc.push(s, |v| out.push(v));
            }
            // Dropping: cycles of 101 inputs give 100 outputs, the sample
            // dropped early in the cycle (48 cycles begun); adding: 99
            // inputs give 100, the sample added at the end (49 begun).
            let counts = (dc.skipped(), dc.repeated(), out.len());
            if mode_fill > 0 {
                assert_eq!(counts, (48, 0, 4800 - 48));
            } else {
                assert_eq!(counts, (0, 49, 4800 + 48));
            }
            // 1 % higher or lower pitch moves the sharpest turn by ~2 %.
            let (x, y) = (sharpest(&tone), sharpest(&out[1..]));
            assert!(
                y * 100 <= x * 105,
                "fill {mode_fill}: {y} vs the tone's {x}"
            );
        }
    }

    #[test]
    fn drift_control_hysteresis() {
        let mut dc = DriftControl::new(1000, 100, 4);
        dc.set_patience(0);
        dc.observe(1050);
        assert_eq!(dc.mode(), Step::Keep, "inside the margin");
        dc.observe(3000); // avg 1050 + 1950/16 = 1171.9 > 1100
        assert_eq!(dc.mode(), Step::Skip);
        // Two cycles of 4 outputs, each taking 5 inputs.
        let mut outputs = 0;
        for _ in 0..10 {
            dc.push(0, |_| outputs += 1);
        }
        assert_eq!(outputs, 8);
        dc.observe(1050); // avg still above 1000: keeps skipping
        assert_eq!(dc.mode(), Step::Skip);
        for _ in 0..40 {
            dc.observe(900);
        }
        assert_eq!(dc.mode(), Step::Keep, "back at target");
        assert_eq!(dc.skipped(), 2);
    }

    #[test]
    fn opening_without_sound_hardware_gives_silence_and_a_reason() {
        // Never asserts on a real device: on a machine with one, only
        // "no panic, no hang, frames filled" is checked.
        let none = list_devices().is_empty();
        let (mut src, e1) = open_device_source(None, 16000);
        let (mut sink, e2) = open_device_sink(None, 16000);
        let (mut named, e3) = open_device_source(Some("no such device 42"), 8000);
        let mut out = [3i16; 320];
        src.read(&mut out);
        sink.write(&out).unwrap();
        named.read(&mut out);
        if none {
            assert!(matches!(e1, Some(AudioError::NoDevice { .. })), "{e1:?}");
            assert!(matches!(e2, Some(AudioError::NoDevice { .. })), "{e2:?}");
            assert!(matches!(e3, Some(AudioError::NoDevice { .. })), "{e3:?}");
            assert_eq!(src.sample_rate(), 16000);
            assert_eq!(sink.sample_rate(), 16000);
            assert_eq!(named.sample_rate(), 8000);
            assert_eq!(out, [0; 320]);
            let msg = e1.map(|e| e.to_string()).unwrap_or_default();
            assert!(msg.starts_with("no sound device for `default`"), "{msg}");
        }
    }
}
