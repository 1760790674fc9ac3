//! Adaptive jitter buffer for one RTP audio stream (sans-IO).
//!
//! The network side calls [`JitterBuffer::push`] for every RTP packet (header
//! fields already parsed, payload undecoded); the media loop calls
//! [`JitterBuffer::pop`] once per frame (`frame_ms`) of real time and plays,
//! conceals or fills with comfort noise what it gets back. Time is always
//! passed in; nothing here reads a clock.
//!
//! # Model (all arithmetic in RTP timestamp units)
//!
//! * Arrival clock `a`: time since the first packet, converted to RTP units.
//! * Every packet gets an *extended* timestamp `e` on one continuous timeline
//!   (wrap-free, re-anchored on resync). Its transit is `a - e`.
//! * A sliding window of the last ~4 s of transits gives `min` (the fastest
//!   packet) and the 97th percentile. The *relative delay* of a packet is
//!   `transit - min` (RFC 3550 §6.4.1 style relative transit).
//! * Target delay = clamp(p97 - min + half a frame, min_delay, max_delay).
//!   It rises as soon as 3 % of the window is slower (fast), and falls only
//!   when those samples leave the window (slow).
//! * Current delay = `a(now) - next_ts - min`: how long a packet that had the
//!   minimum transit waits before being played. A packet is on time iff its
//!   relative delay ≤ current delay.
//! * Playout starts (and restarts after a silence gap or a re-anchoring
//!   talkspurt) when the first frame has waited `target`, so the current delay
//!   starts in `[target, target + frame)`. It is then steered one frame at a
//!   time: below `target` a frame is inserted (a `Lost{next: None}`
//!   without advancing), above `target + 5/4 frame` a frame is dropped (at
//!   most one per 250 ms, unless above `max_delay`; a missing frame is skipped
//!   for free). This also absorbs sender/receiver clock drift.
//! * Discontinuities: a new SSRC or a packet whose transit is off by more than
//!   the buffer can hold (a timestamp jump) re-anchors the timeline so that
//!   the packet continues the current schedule: no silence, no loss burst. A
//!   jump without marker bit needs a second packet to confirm it (a single
//!   stray packet is dropped as late); the slot it would fill is held once.
//!
//! Assumption: one frame per packet with a timestamp step of one frame
//! (`clock_rate * frame_ms / 1000`), as with ptime = frame.

use std::time::Instant;

/// Configuration of a [`JitterBuffer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JitterConfig {
    /// RTP clock: 8000 for G.711/G.722, 48000 for Opus.
    pub clock_rate: u32,
    /// Frame duration = ptime, 10 or 20 ms.
    pub frame_ms: u32,
    /// Lowest target delay (default 10 ms). The target is the 97th
    /// percentile of the relative delay plus half a frame, so on a clean
    /// link with 20 ms frames it is about 10 ms plus the timer jitter, and
    /// a frame waits between the target and a frame more, depending on
    /// where packets land between two playout ticks: 10–30 ms.
    pub min_delay_ms: u32,
    /// Highest target delay and bound on the buffer (default 300 ms).
    pub max_delay_ms: u32,
    /// The decoder rebuilds a lost frame from one of the packets after it
    /// (Opus in-band FEC: the next one; RFC 2198 copies: up to their depth):
    /// the target then gets this many frames more while loss is seen, so
    /// that packet is here when the lost slot plays. 0 for codecs that only
    /// conceal (G.711, G.722): there the delay buys nothing and its
    /// insertion costs quality.
    pub repair_frames: u32,
}

impl JitterConfig {
    /// The defaults (min 10 ms, max 300 ms) for a clock rate and frame size.
    pub fn new(clock_rate: u32, frame_ms: u32) -> Self {
        Self {
            clock_rate,
            frame_ms,
            min_delay_ms: 10,
            max_delay_ms: 300,
            repair_frames: 0,
        }
    }
}

impl Default for JitterConfig {
    /// G.711 at 20 ms.
    fn default() -> Self {
        Self::new(8000, 20)
    }
}

/// What to play for one frame slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Playout {
    /// The frame for this slot.
    Frame { payload: Vec<u8>, timestamp: u32 },
    /// The frame for this slot is missing (or a frame is inserted to raise
    /// the delay: then `next` is `None`); `next` = payload of the following
    /// frame when already here (lets Opus decode its FEC).
    Lost { next: Option<Vec<u8>> },
    /// Nothing to play yet (before the first packet or after a long gap):
    /// play comfort noise/silence, do not count as loss.
    Empty,
}

/// Counters and delays. Frames concealed = `concealed + inserted`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JitterStats {
    pub target_delay_ms: u32,
    pub current_delay_ms: u32,
    /// Packets pushed (all of them, duplicates included).
    pub received: u64,
    /// `Playout::Frame` returned.
    pub played: u64,
    /// `Playout::Lost` returned for a slot whose frame is missing.
    pub concealed: u64,
    /// Packets that arrived after their slot was played (dropped).
    pub late: u64,
    pub duplicates: u64,
    /// Packets that arrived after a packet with a higher sequence number.
    pub reordered: u64,
    /// Frames (or missing slots) skipped to bring the delay down.
    pub dropped_for_latency: u64,
    pub resyncs: u64,
    /// `Playout::Lost { next: None }` returned to raise the delay by one
    /// frame (not a loss: no frame was skipped).
    pub inserted: u64,
    /// `Playout::Frame` returned from a redundant copy ([`JitterBuffer::fill`],
    /// RFC 2198) because the packet itself never came (counted in `played`).
    pub redundant_played: u64,
}

/// One stored frame.
#[derive(Debug)]
struct Slot {
    ext: i64,
    ts: u32,
    payload: Vec<u8>,
    /// From a redundant copy, not the frame's own packet.
    redundant: bool,
}

/// A packet that does not fit the current timeline, waiting for a second one
/// that confirms the jump.
#[derive(Debug)]
struct Candidate {
    ssrc: u32,
    seq: u16,
    ts: u32,
    arr: i64,
    marker: bool,
    payload: Vec<u8>,
    /// The missing slot was already held once for it.
    held: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// No packet yet.
    Idle,
    /// Waiting until the earliest buffered frame has waited `target`.
    Starting,
    /// Playing `next_ts` at each pop.
    Playing,
}

/// Percentile of the relative delay used for the target.
const PERCENTILE: usize = 97;
/// Window of transit samples, in ms of packets.
const WINDOW_MS: u32 = 4000;
/// Missing frames with nothing buffered before the buffer calls it a gap
/// (returns `Empty` and restarts at the next packet).
const GAP_MS: u32 = 60;
/// Minimum spacing between two frame drops (unless above `max_delay`).
const DROP_SPACING_MS: u32 = 250;
/// Frames over which the recent loss rate is averaged (exponential weight).
const LOSS_WINDOW: u32 = 64;
/// Above this loss rate (Q16: 2.5 %; one loss alone is 1.6 %, two within
/// about 40 frames are more) the target gets the repair frames, below
/// [`LOSS_EXTRA_OFF_Q16`] (1 %) and after [`REPAIR_HOLD_MS`] without loss
/// it goes back.
const LOSS_EXTRA_ON_Q16: u32 = 65_536 * 5 / 200;
const LOSS_EXTRA_OFF_Q16: u32 = 65_536 / 100;
/// Once on, the extra repair delay stays until no slot has been missing for
/// this long: switching it off and on again costs a dropped and an
/// inserted frame, each a glitch in speech, while keeping it costs only
/// latency. Loss in the field comes and goes in seconds.
const REPAIR_HOLD_MS: u32 = 10_000;
/// A packet later than this (beyond `2 * max_delay`) is a timestamp jump.
const JUMP_LATE_MIN_MS: u32 = 1000;

/// Adaptive jitter buffer for one RTP stream of audio frames.
#[derive(Debug)]
pub struct JitterBuffer {
    clock_rate: u64,
    spf: i64,
    min_delay: i64,
    max_delay: i64,
    late_thr: i64,
    early_thr: i64,
    gap_frames: u32,
    drop_spacing: u32,

    epoch: Option<Instant>,
    mode: Mode,
    ssrc: u32,
    prev_ssrc: Option<u32>,
    anchor_ts: u32,
    anchor_ext: i64,
    /// Next slot to play (Playing) / lowest slot still playable (Starting).
    next_ts: i64,

    slots: Vec<Slot>,
    cap: usize,
    pool: Vec<Vec<u8>>,
    pool_cap: usize,

    high_seq: u16,
    seq_mask: u128,

    win: Vec<i64>,
    win_cursor: usize,
    win_cap: usize,
    scratch: Vec<i64>,
    min_transit: i64,
    /// Target from the delay percentile alone.
    base_target: i64,
    target: i64,
    cur_delay: i64,
    /// Recent loss (missing slots among played ones), Q16, exponentially
    /// weighted over about [`LOSS_WINDOW`] frames.
    loss_q16: u32,
    /// `repair_delay` is added to the target while loss is seen, so that the
    /// packets after a lost one are usually here when the lost slot is
    /// played (Opus FEC, RED copies).
    fec_extra: bool,
    /// `JitterConfig::repair_frames`, in timestamp units: the extra delay
    /// while `fec_extra` (0: it never switches on).
    repair_delay: i64,

    missing_run: u32,
    /// Slots played since the last missing one, and how many of them keep
    /// the repair delay on ([`REPAIR_HOLD_MS`]).
    clean_slots: u32,
    repair_hold: u32,
    since_drop: u32,
    candidate: Option<Candidate>,
    stats: JitterStats,
}

impl JitterBuffer {
    /// A buffer for one stream. Out-of-range settings are clamped (frame ≥ 1
    /// sample, max_delay ≥ min_delay and ≥ one frame).
    pub fn new(cfg: JitterConfig) -> Self {
        let clock_rate = u64::from(cfg.clock_rate.max(1));
        let frame_ms = cfg.frame_ms.max(1);
        let ms = |v: u32| (u64::from(v) * clock_rate / 1000) as i64;
        let spf = ms(frame_ms).max(1);
        let min_delay = ms(cfg.min_delay_ms);
        let max_delay = ms(cfg.max_delay_ms).max(min_delay).max(spf);
        let cap = (max_delay / spf) as usize + 6;
        let win_cap = (WINDOW_MS / frame_ms).clamp(16, 1024) as usize;
        let pool_cap = cap + 8;
        Self {
            clock_rate,
            spf,
            min_delay,
            max_delay,
            late_thr: (2 * max_delay).max(ms(JUMP_LATE_MIN_MS)),
            early_thr: max_delay + spf,
            gap_frames: GAP_MS.div_ceil(frame_ms).max(1),
            drop_spacing: (DROP_SPACING_MS / frame_ms).max(1),
            epoch: None,
            mode: Mode::Idle,
            ssrc: 0,
            prev_ssrc: None,
            anchor_ts: 0,
            anchor_ext: 0,
            next_ts: i64::MIN / 4,
            slots: Vec::with_capacity(cap + 1),
            cap,
            pool: Vec::with_capacity(pool_cap),
            pool_cap,
            high_seq: 0,
            seq_mask: 0,
            win: Vec::with_capacity(win_cap),
            win_cursor: 0,
            win_cap,
            scratch: Vec::with_capacity(win_cap),
            min_transit: 0,
            base_target: min_delay.max(spf),
            target: min_delay.max(spf),
            loss_q16: 0,
            fec_extra: false,
            repair_delay: spf * i64::from(cfg.repair_frames.min(4)),
            cur_delay: 0,
            missing_run: 0,
            clean_slots: 0,
            repair_hold: REPAIR_HOLD_MS / frame_ms,
            since_drop: 0,
            candidate: None,
            stats: JitterStats::default(),
        }
    }

    /// Feed one received RTP packet (`now` = its arrival time).
    pub fn push(
        &mut self,
        now: Instant,
        seq: u16,
        timestamp: u32,
        ssrc: u32,
        marker: bool,
        payload: &[u8],
    ) {
        self.stats.received += 1;
        let epoch = *self.epoch.get_or_insert(now);
        let arr = self.arrival(epoch, now);
        let pkt = Pkt {
            arr,
            seq,
            ts: timestamp,
            ssrc,
            marker,
        };

        if self.mode == Mode::Idle {
            self.ssrc = ssrc;
            self.anchor_ts = timestamp;
            self.anchor_ext = arr;
            self.reset_seq(seq);
            self.record_transit(0);
            self.mode = Mode::Starting;
            let buf = self.copy_payload(payload);
            self.accept(arr, arr, timestamp, marker, buf);
            return;
        }
        if ssrc != self.ssrc {
            if Some(ssrc) == self.prev_ssrc {
                // A straggler of the stream we left, or a switch back: confirm.
                self.consider_candidate(pkt, payload);
            } else {
                let buf = self.copy_payload(payload);
                self.resync((pkt, buf), None);
            }
            return;
        }
        match self.seq_check(seq) {
            SeqKind::Duplicate => {
                self.stats.duplicates += 1;
                return;
            }
            SeqKind::Reordered => self.stats.reordered += 1,
            SeqKind::InOrder => {}
        }
        let ext = self.ext_of(timestamp);
        let transit = arr - ext;
        let dev = transit - self.min_transit;
        if dev > self.late_thr || -dev > self.early_thr {
            if marker {
                let buf = self.copy_payload(payload);
                self.resync((pkt, buf), None);
            } else {
                self.consider_candidate(pkt, payload);
            }
            return;
        }
        self.record_transit(transit);
        let buf = self.copy_payload(payload);
        self.accept(arr, ext, timestamp, marker, buf);
    }

    /// The frame for the slot that starts now. Call once per frame of real
    /// time. Allocates nothing except, when the pool is empty, the `next`
    /// copy of `Lost`.
    pub fn pop(&mut self, now: Instant) -> Playout {
        let Some(epoch) = self.epoch else {
            return Playout::Empty;
        };
        let arr = self.arrival(epoch, now);
        match self.mode {
            Mode::Idle => Playout::Empty,
            Mode::Starting => self.pop_starting(arr),
            Mode::Playing => self.pop_playing(arr, true),
        }
    }

    /// A redundant copy (RFC 2198) of the frame stamped `timestamp`, from
    /// a packet of `ssrc` just [`push`](Self::push)ed. It takes the frame's
    /// slot only while that slot is still missing and not yet played, on
    /// the current timeline, no later than the newest frame and with room
    /// in the buffer; otherwise it is ignored. Its arrival does not count
    /// as a packet (no transit sample, no sequence number). Returns
    /// whether the copy was stored.
    pub fn fill(&mut self, timestamp: u32, ssrc: u32, payload: &[u8]) -> bool {
        if self.mode == Mode::Idle || ssrc != self.ssrc || self.slots.len() >= self.cap {
            return false;
        }
        let ext = self.ext_of(timestamp);
        let half = self.spf / 2;
        let playable = match self.mode {
            Mode::Playing => ext >= self.next_ts - half,
            // Not started: only a gap between frames already here.
            _ => self.slots.iter().any(|s| s.ext < ext),
        };
        if !playable || ext > self.anchor_ext + half || self.find(ext).is_some() {
            return false;
        }
        let payload = self.copy_payload(payload);
        self.slots.push(Slot {
            ext,
            ts: timestamp,
            payload,
            redundant: true,
        });
        true
    }

    /// Counters and the target/current delays.
    /// Change `JitterConfig::repair_frames` (e.g. to the number of RFC 2198
    /// copies the sender's packets turn out to carry).
    pub fn set_repair_frames(&mut self, frames: u32) {
        self.repair_delay = self.spf * i64::from(frames.min(4));
        if self.repair_delay == 0 {
            self.fec_extra = false;
        }
        self.update_target();
    }

    pub fn stats(&self) -> JitterStats {
        let mut s = self.stats;
        s.target_delay_ms = self.to_ms(self.target);
        s.current_delay_ms = if self.mode == Mode::Playing {
            self.to_ms(self.cur_delay)
        } else {
            0
        };
        s
    }

    /// Give a payload `Vec` returned by [`pop`](Self::pop) back for reuse,
    /// so that a warmed-up buffer does not allocate.
    pub fn recycle(&mut self, buf: Vec<u8>) {
        if self.pool.len() < self.pool_cap {
            self.pool.push(buf);
        }
    }

    /// Frames currently buffered.
    pub fn buffered(&self) -> usize {
        self.slots.len()
    }

    // ---- push side -------------------------------------------------------

    fn arrival(&self, epoch: Instant, now: Instant) -> i64 {
        let ns = now.saturating_duration_since(epoch).as_nanos();
        i64::try_from(ns * u128::from(self.clock_rate) / 1_000_000_000).unwrap_or(i64::MAX / 4)
    }

    fn to_ms(&self, units: i64) -> u32 {
        let ms = units.max(0) as u128 * 1000 / u128::from(self.clock_rate);
        u32::try_from(ms).unwrap_or(u32::MAX)
    }

    fn ext_of(&self, ts: u32) -> i64 {
        self.anchor_ext + i64::from(ts.wrapping_sub(self.anchor_ts) as i32)
    }

    fn copy_payload(&mut self, payload: &[u8]) -> Vec<u8> {
        let mut v = self.pool.pop().unwrap_or_default();
        v.clear();
        v.extend_from_slice(payload);
        v
    }

    fn reset_seq(&mut self, seq: u16) {
        self.high_seq = seq;
        self.seq_mask = 1;
    }

    fn seq_check(&mut self, seq: u16) -> SeqKind {
        let d = seq.wrapping_sub(self.high_seq) as i16;
        if d > 0 {
            let d = d as u32;
            self.seq_mask = if d >= 128 { 0 } else { self.seq_mask << d };
            self.seq_mask |= 1;
            self.high_seq = seq;
            SeqKind::InOrder
        } else {
            let back = (-i32::from(d)) as u32;
            if back < 128 {
                let bit = 1u128 << back;
                if self.seq_mask & bit != 0 {
                    return SeqKind::Duplicate;
                }
                self.seq_mask |= bit;
            }
            SeqKind::Reordered
        }
    }

    /// Add a transit sample; update `min` and the target.
    fn record_transit(&mut self, transit: i64) {
        if self.win.len() < self.win_cap {
            self.win.push(transit);
        } else if let Some(slot) = self.win.get_mut(self.win_cursor) {
            *slot = transit;
            self.win_cursor = (self.win_cursor + 1) % self.win_cap;
        }
        self.scratch.clear();
        self.scratch.extend_from_slice(&self.win);
        let n = self.scratch.len();
        let Some(&min) = self.scratch.iter().min() else {
            return;
        };
        let k = (n * PERCENTILE).div_ceil(100).saturating_sub(1).min(n - 1);
        let (_, &mut p, _) = self.scratch.select_nth_unstable(k);
        self.min_transit = min;
        self.base_target = (p - min + self.spf / 2).clamp(self.min_delay, self.max_delay);
        self.update_target();
    }

    /// Store a packet that fits the timeline.
    fn accept(&mut self, arr: i64, ext: i64, ts: u32, marker: bool, payload: Vec<u8>) {
        if ext > self.anchor_ext {
            self.anchor_ext = ext;
            self.anchor_ts = ts;
        }
        let half = self.spf / 2;
        if ext < self.next_ts - half {
            if marker && self.mode == Mode::Playing && self.slots.is_empty() {
                // A talkspurt that starts "late" after silence: re-anchor
                // backwards instead of dropping it.
                self.mode = Mode::Starting;
                self.next_ts = ext;
            } else {
                self.stats.late += 1;
                self.recycle(payload);
                return;
            }
        } else if marker && self.mode == Mode::Playing && !self.slots.iter().any(|s| s.ext < ext) {
            // Talkspurt start after silence: adjust the delay in one step if
            // the current schedule would need an insert or a drop anyway.
            let est = arr - self.next_ts - self.min_transit;
            if est + self.spf < self.target || est > self.target + self.spf + self.spf / 4 {
                self.mode = Mode::Starting;
            }
        }
        if let Some(s) = self
            .slots
            .iter_mut()
            .find(|s| s.redundant && (s.ext - ext).abs() <= half)
        {
            // The packet itself after its redundant copy (reordered): it
            // takes the slot back; nothing was recovered.
            s.redundant = false;
            let old = std::mem::replace(&mut s.payload, payload);
            self.recycle(old);
            return;
        }
        if self.slots.iter().any(|s| (s.ext - ext).abs() <= half) {
            // Same slot, other sequence number: a re-sent duplicate.
            self.stats.duplicates += 1;
            self.recycle(payload);
            return;
        }
        if self.slots.len() >= self.cap {
            let oldest = self
                .slots
                .iter()
                .enumerate()
                .min_by_key(|(_, s)| s.ext)
                .map(|(i, s)| (i, s.ext));
            match oldest {
                Some((_, e)) if ext < e => {
                    self.stats.dropped_for_latency += 1;
                    self.recycle(payload);
                    return;
                }
                Some((i, e)) => {
                    let old = self.slots.swap_remove(i);
                    self.recycle(old.payload);
                    self.stats.dropped_for_latency += 1;
                    if self.mode == Mode::Playing && e + self.spf > self.next_ts {
                        self.next_ts = e + self.spf;
                    }
                }
                None => {}
            }
        }
        self.slots.push(Slot {
            ext,
            ts,
            payload,
            redundant: false,
        });
    }

    fn consider_candidate(&mut self, pkt: Pkt, payload: &[u8]) {
        if let Some(c) = self.candidate.take() {
            let fwd = pkt.seq.wrapping_sub(c.seq);
            let back = c.seq.wrapping_sub(pkt.seq);
            let close = (1..=16).contains(&fwd) || (1..=16).contains(&back);
            let skew = (pkt.arr - c.arr) - i64::from(pkt.ts.wrapping_sub(c.ts) as i32);
            if c.ssrc == pkt.ssrc && close && skew.abs() <= self.max_delay {
                let first = Pkt {
                    arr: c.arr,
                    seq: c.seq,
                    ts: c.ts,
                    ssrc: c.ssrc,
                    marker: c.marker,
                };
                let buf = self.copy_payload(payload);
                self.resync((first, c.payload), Some((pkt, buf)));
                return;
            }
            // The old candidate was a stray packet.
            self.stats.late += 1;
            self.recycle(c.payload);
        }
        let buf = self.copy_payload(payload);
        self.candidate = Some(Candidate {
            ssrc: pkt.ssrc,
            seq: pkt.seq,
            ts: pkt.ts,
            arr: pkt.arr,
            marker: pkt.marker,
            payload: buf,
            held: false,
        });
    }

    /// Re-anchor the timeline on `first` (and `second`, when a jump was
    /// confirmed by two packets): a new SSRC, or a timestamp jump. They are
    /// mapped as if the fastest of them had the minimum transit, so they
    /// continue the current schedule.
    fn resync(&mut self, first: (Pkt, Vec<u8>), second: Option<(Pkt, Vec<u8>)>) {
        let (p0, buf0) = first;
        self.stats.resyncs += 1;
        if p0.ssrc != self.ssrc {
            self.prev_ssrc = Some(self.ssrc);
            self.ssrc = p0.ssrc;
        }
        if let Some(c) = self.candidate.take() {
            self.recycle(c.payload);
        }
        let rel = |p: &Pkt| i64::from(p.ts.wrapping_sub(p0.ts) as i32);
        let mut base = p0.arr - self.min_transit;
        if let Some((p1, _)) = &second {
            base = base.min(p1.arr - self.min_transit - rel(p1));
        }
        self.anchor_ts = p0.ts;
        self.anchor_ext = base;
        // Frames of the old timeline that would overlap the new one go.
        let half = self.spf / 2;
        let mut i = 0;
        while let Some(s) = self.slots.get(i) {
            if s.ext >= base - half {
                let old = self.slots.swap_remove(i);
                self.recycle(old.payload);
                self.stats.dropped_for_latency += 1;
            } else {
                i += 1;
            }
        }
        if self.mode == Mode::Playing && base < self.next_ts - half {
            // The schedule has moved past the new stream (its confirming
            // packet came late): restart on it.
            self.mode = Mode::Starting;
            self.next_ts = base;
        }
        self.reset_seq(p0.seq);
        self.record_transit(p0.arr - base);
        self.accept(p0.arr, base, p0.ts, false, buf0);
        if let Some((p1, buf1)) = second {
            let _ = self.seq_check(p1.seq);
            let ext = base + rel(&p1);
            self.record_transit(p1.arr - ext);
            self.accept(p1.arr, ext, p1.ts, false, buf1);
        }
    }

    // ---- pop side --------------------------------------------------------

    fn find(&self, ext: i64) -> Option<usize> {
        let half = self.spf / 2;
        self.slots.iter().position(|s| (s.ext - ext).abs() <= half)
    }

    fn pop_starting(&mut self, arr: i64) -> Playout {
        loop {
            let earliest = self
                .slots
                .iter()
                .enumerate()
                .min_by_key(|(_, s)| s.ext)
                .map(|(i, s)| (i, s.ext));
            let Some((i, ext)) = earliest else {
                self.cur_delay = 0;
                return Playout::Empty;
            };
            let waited = arr - self.min_transit - ext;
            if waited > self.target + self.spf && self.slots.len() > 1 {
                // Burst after an outage: start on a fresher frame.
                let old = self.slots.swap_remove(i);
                self.recycle(old.payload);
                self.stats.dropped_for_latency += 1;
                continue;
            }
            if waited < self.target {
                return Playout::Empty;
            }
            self.mode = Mode::Playing;
            self.next_ts = ext;
            self.missing_run = 0;
            self.since_drop = 0;
            return self.pop_playing(arr, false);
        }
    }

    fn pop_playing(&mut self, arr: i64, adjust: bool) -> Playout {
        self.purge_stale();
        let mut cur = arr - self.next_ts - self.min_transit;
        self.since_drop = self.since_drop.saturating_add(1);
        if adjust {
            let over = cur > self.target + self.spf + self.spf / 4;
            let missing = self.find(self.next_ts).is_none();
            if over
                && (missing
                    || self.since_drop > self.drop_spacing
                    || cur > self.max_delay + self.spf)
            {
                if let Some(i) = self.find(self.next_ts) {
                    let old = self.slots.swap_remove(i);
                    self.recycle(old.payload);
                    self.since_drop = 0;
                }
                self.stats.dropped_for_latency += 1;
                self.next_ts += self.spf;
                cur -= self.spf;
            } else if cur < self.target {
                self.cur_delay = cur + self.spf;
                self.stats.inserted += 1;
                return Playout::Lost { next: None };
            }
        }
        self.cur_delay = cur;
        if let Some(i) = self.find(self.next_ts) {
            let slot = self.slots.swap_remove(i);
            self.next_ts += self.spf;
            self.missing_run = 0;
            self.stats.played += 1;
            if slot.redundant {
                self.stats.redundant_played += 1;
            }
            // A frame played from its redundant copy was a lost packet: it
            // keeps the extra frame of delay the copy needed to be here.
            self.note_slot(slot.redundant);
            return Playout::Frame {
                payload: slot.payload,
                timestamp: slot.ts,
            };
        }
        if let Some(c) = self.candidate.as_mut()
            && !c.held
        {
            // A timestamp jump may be confirmed by the next packet: hold.
            c.held = true;
            self.stats.inserted += 1;
            return Playout::Lost { next: None };
        }
        if self.slots.is_empty() && self.missing_run >= self.gap_frames {
            // Long gap (silence suppression, outage): comfort noise until
            // the next packet, which restarts playout at the target delay.
            self.mode = Mode::Starting;
            return Playout::Empty;
        }
        self.missing_run += 1;
        self.stats.concealed += 1;
        if !self.slots.is_empty() {
            // A later frame is here: this one was lost (or late), not the
            // end of a talkspurt.
            self.note_slot(true);
        }
        let next = match self.find(self.next_ts + self.spf) {
            Some(i) => {
                let mut v = self.pool.pop().unwrap_or_default();
                v.clear();
                if let Some(s) = self.slots.get(i) {
                    v.extend_from_slice(&s.payload);
                }
                Some(v)
            }
            None => None,
        };
        self.next_ts += self.spf;
        Playout::Lost { next }
    }

    /// Follow the loss rate of played slots; switch the repair delay.
    fn note_slot(&mut self, missing: bool) {
        let l = self.loss_q16;
        self.loss_q16 = if missing {
            l + (65_536 - l) / LOSS_WINDOW
        } else {
            l - l / LOSS_WINDOW
        };
        self.clean_slots = if missing {
            0
        } else {
            self.clean_slots.saturating_add(1)
        };
        let extra = self.repair_delay > 0
            && if self.fec_extra {
                self.loss_q16 >= LOSS_EXTRA_OFF_Q16 || self.clean_slots < self.repair_hold
            } else {
                self.loss_q16 > LOSS_EXTRA_ON_Q16
            };
        if extra != self.fec_extra {
            self.fec_extra = extra;
            self.update_target();
        }
    }

    /// Target = percentile target, plus `repair_frames` while loss is seen
    /// (the packets after a lost one then usually wait in the buffer, and
    /// the lost frame is rebuilt from their FEC or RED copy), within
    /// `max_delay`.
    fn update_target(&mut self) {
        let extra = if self.fec_extra { self.repair_delay } else { 0 };
        self.target = (self.base_target + extra).min(self.max_delay);
    }

    /// Drop frames whose slot has passed (cannot normally exist).
    fn purge_stale(&mut self) {
        let floor = self.next_ts - self.spf / 2;
        let mut i = 0;
        while let Some(s) = self.slots.get(i) {
            if s.ext < floor {
                let old = self.slots.swap_remove(i);
                self.recycle(old.payload);
                self.stats.late += 1;
            } else {
                i += 1;
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Pkt {
    arr: i64,
    seq: u16,
    ts: u32,
    ssrc: u32,
    marker: bool,
}

enum SeqKind {
    InOrder,
    Reordered,
    Duplicate,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ms(t0: Instant, v: u64) -> Instant {
        t0 + Duration::from_millis(v)
    }

    fn frame_ts(p: &Playout) -> Option<u32> {
        match p {
            Playout::Frame { timestamp, .. } => Some(*timestamp),
            _ => None,
        }
    }

    use crate::runtime::test_epoch as origin;

    #[test]
    fn empty_before_first_packet_then_plays_after_target() {
        let t0 = origin();
        let mut jb = JitterBuffer::new(JitterConfig::default());
        assert_eq!(jb.pop(t0), Playout::Empty);
        jb.push(ms(t0, 5), 1, 1000, 7, true, b"a");
        // Target 10 ms: at 10 ms the frame has waited 5 ms.
        assert_eq!(jb.pop(ms(t0, 10)), Playout::Empty);
        let p = jb.pop(ms(t0, 30));
        assert_eq!(
            p,
            Playout::Frame {
                payload: b"a".to_vec(),
                timestamp: 1000
            }
        );
        let s = jb.stats();
        assert_eq!(
            (s.target_delay_ms, s.current_delay_ms, s.played),
            (10, 25, 1)
        );
    }

    /// A steady stream (arrival = send time + 5 ms) where every packet whose
    /// index is in `lost` never arrives; returns the target delay after it.
    fn target_after(frames: u64, lost: impl Fn(u64) -> bool) -> (u32, JitterStats) {
        target_after_with(1, frames, lost)
    }

    fn target_after_with(
        repair_frames: u32,
        frames: u64,
        lost: impl Fn(u64) -> bool,
    ) -> (u32, JitterStats) {
        let t0 = origin();
        let mut jb = JitterBuffer::new(JitterConfig {
            repair_frames,
            ..JitterConfig::default()
        });
        for k in 0..frames {
            if !lost(k) {
                jb.push(
                    ms(t0, k * 20 + 5),
                    k as u16,
                    k as u32 * 160,
                    9,
                    k == 0,
                    b"x",
                );
            }
            let _ = jb.pop(ms(t0, k * 20 + 10));
        }
        let s = jb.stats();
        (s.target_delay_ms, s)
    }

    #[test]
    fn loss_above_two_percent_adds_one_frame_for_fec_and_clean_takes_it_back() {
        // Clean: the percentile target (a steady stream: half a frame, 10 ms, the minimum).
        let (clean, s) = target_after(500, |_| false);
        assert_eq!((clean, s.concealed), (10, 0));
        // 10 % loss (every 10th packet): one frame more, so the packet after
        // a lost one is buffered when the lost slot plays.
        let (lossy, s) = target_after(500, |k| k > 20 && k % 10 == 0);
        assert_eq!(lossy, 30);
        assert!(s.concealed >= 40, "{s:?}");
        // 1 % loss: below the threshold, no extra delay.
        let (light, _) = target_after(1000, |k| k > 20 && k % 100 == 0);
        assert_eq!(light, 10);
        // Loss that stops: the extra frame stays 10 s after the last loss
        // (6 s here), and goes after that (14 s).
        let (held, s) = target_after(600, |k| k > 20 && k < 300 && k % 10 == 0);
        assert_eq!((held, s.dropped_for_latency), (30, 0));
        let (after, _) = target_after(1000, |k| k > 20 && k < 300 && k % 10 == 0);
        assert_eq!(after, 10);
        // RED with two copies per packet waits two frames more.
        let (red2, _) = target_after_with(2, 500, |k| k > 20 && k % 10 == 0);
        assert_eq!(red2, 50);
        // A codec that only conceals (G.711, G.722) gets no extra frame.
        let (conceal_only, _) = target_after_with(0, 500, |k| k > 20 && k % 10 == 0);
        assert_eq!(conceal_only, 10);
    }

    #[test]
    fn lost_carries_the_following_frame() {
        let t0 = origin();
        let mut jb = JitterBuffer::new(JitterConfig::default());
        jb.push(ms(t0, 0), 10, 0, 7, false, b"f0");
        // seq 11 (ts 160) never arrives; seq 12 does, on time.
        jb.push(ms(t0, 40), 12, 320, 7, false, b"f2");
        assert_eq!(frame_ts(&jb.pop(ms(t0, 20))), Some(0));
        assert_eq!(
            jb.pop(ms(t0, 40)),
            Playout::Lost {
                next: Some(b"f2".to_vec())
            }
        );
        assert_eq!(frame_ts(&jb.pop(ms(t0, 60))), Some(320));
        let s = jb.stats();
        assert_eq!((s.played, s.concealed, s.inserted), (2, 1, 0));
    }

    #[test]
    fn a_redundant_copy_fills_only_a_missing_unplayed_slot() {
        let t0 = origin();
        let mut jb = JitterBuffer::new(JitterConfig::default());
        // Nothing to fill before the first packet, nor from another SSRC.
        assert!(!jb.fill(0, 7, b"x"));
        jb.push(ms(t0, 0), 10, 0, 7, false, b"f0");
        assert!(!jb.fill(0, 7, b"copy of f0"), "slot already here");
        // seq 11 (ts 160) lost; seq 12 carries its copy.
        jb.push(ms(t0, 40), 12, 320, 7, false, b"f2");
        assert!(!jb.fill(160, 8, b"f1"), "another stream");
        assert!(!jb.fill(640, 7, b"f4"), "newer than anything received");
        assert!(jb.fill(160, 7, b"f1"));
        assert!(!jb.fill(160, 7, b"f1"), "once");
        assert_eq!(frame_ts(&jb.pop(ms(t0, 20))), Some(0));
        assert_eq!(
            jb.pop(ms(t0, 40)),
            Playout::Frame {
                payload: b"f1".to_vec(),
                timestamp: 160
            }
        );
        assert_eq!(frame_ts(&jb.pop(ms(t0, 60))), Some(320));
        // A copy of a slot already played is ignored.
        jb.push(ms(t0, 80), 13, 480, 7, false, b"f3");
        assert!(!jb.fill(320, 7, b"f2"));
        let s = jb.stats();
        assert_eq!(
            (s.played, s.redundant_played, s.concealed, s.received),
            (3, 1, 0, 3)
        );
    }

    #[test]
    fn the_packet_itself_after_its_copy_takes_the_slot_back() {
        let t0 = origin();
        let mut jb = JitterBuffer::new(JitterConfig::default());
        jb.push(ms(t0, 0), 10, 0, 7, false, b"f0");
        jb.push(ms(t0, 40), 12, 320, 7, false, b"f2");
        assert!(jb.fill(160, 7, b"copy"));
        // seq 11 was only reordered: it arrives before its slot plays.
        jb.push(ms(t0, 40), 11, 160, 7, false, b"f1");
        let mut played = Vec::new();
        for i in 1..8 {
            if let Playout::Frame { payload, timestamp } = jb.pop(ms(t0, 20 * i)) {
                played.push((timestamp, payload));
            }
        }
        assert_eq!(
            played,
            [
                (0, b"f0".to_vec()),
                (160, b"f1".to_vec()),
                (320, b"f2".to_vec())
            ]
        );
        let s = jb.stats();
        assert_eq!((s.redundant_played, s.duplicates, s.reordered), (0, 0, 1));
    }

    #[test]
    fn late_duplicate_and_reordered_packets_are_counted() {
        let t0 = origin();
        let mut jb = JitterBuffer::new(JitterConfig::default());
        jb.push(ms(t0, 0), 1, 0, 7, false, b"0");
        jb.push(ms(t0, 1), 1, 0, 7, false, b"0"); // duplicate
        assert_eq!(frame_ts(&jb.pop(ms(t0, 20))), Some(0));
        jb.push(ms(t0, 40), 3, 320, 7, false, b"2");
        // Slot 160 is concealed with `next` = frame 320.
        assert!(matches!(
            jb.pop(ms(t0, 40)),
            Playout::Lost { next: Some(_) }
        ));
        jb.push(ms(t0, 45), 2, 160, 7, false, b"1"); // its slot is gone
        // It was 25 ms late: target = 25 + half a frame = 35 ms at once, so
        // a frame is inserted (current delay 20 -> 40 ms) before 320 plays.
        assert_eq!(jb.stats().target_delay_ms, 35);
        assert_eq!(jb.pop(ms(t0, 60)), Playout::Lost { next: None });
        assert_eq!(frame_ts(&jb.pop(ms(t0, 80))), Some(320));
        assert_eq!(jb.stats().current_delay_ms, 40);
        let s = jb.stats();
        assert_eq!(
            (
                s.received,
                s.duplicates,
                s.reordered,
                s.late,
                s.concealed,
                s.inserted
            ),
            (4, 1, 1, 1, 1, 1)
        );
    }

    #[test]
    fn sequence_and_timestamp_wrap_are_continuous() {
        let t0 = origin();
        let mut jb = JitterBuffer::new(JitterConfig::default());
        let mut out = Vec::new();
        for k in 0..6u32 {
            let seq = 65533u16.wrapping_add(k as u16);
            let ts = 0xFFFF_FE00u32.wrapping_add(k * 160);
            jb.push(ms(t0, u64::from(k) * 20), seq, ts, 9, false, &[k as u8]);
            if let Some(ts) = frame_ts(&jb.pop(ms(t0, u64::from(k) * 20 + 5))) {
                out.push(ts);
            }
        }
        assert_eq!(
            out,
            [0xFFFF_FE00, 0xFFFF_FEA0, 0xFFFF_FF40, 0xFFFF_FFE0, 0x80]
        );
        let s = jb.stats();
        assert_eq!(
            (s.reordered, s.duplicates, s.late, s.concealed),
            (0, 0, 0, 0)
        );
    }

    #[test]
    fn single_stray_jump_is_dropped_without_resync() {
        let t0 = origin();
        let mut jb = JitterBuffer::new(JitterConfig::default());
        for k in 0..10u16 {
            let t = u64::from(k) * 20;
            jb.push(ms(t0, t), k, u32::from(k) * 160, 9, false, b"x");
            if k == 5 {
                // One packet claiming to be 10 s ahead, unconfirmed.
                jb.push(ms(t0, t + 1), 100, 80_000, 9, false, b"?");
            }
            let _ = jb.pop(ms(t0, t + 5));
        }
        let s = jb.stats();
        assert_eq!(s.resyncs, 0);
        assert_eq!(s.played, 9);
        assert_eq!((s.concealed, s.inserted, s.dropped_for_latency), (0, 0, 0));
    }

    #[test]
    fn talkspurt_after_silence_on_a_slower_path_is_played_not_dropped() {
        let t0 = origin();
        let mut jb = JitterBuffer::new(JitterConfig::default());
        let mut frames = 0;
        let mut empties = 0;
        let mut k = 50u64;
        // Frame 99 arrives at 2040 ms and plays at 2065 ms (pop 103).
        for j in 0..104u64 {
            let now = j * 20 + 5;
            if j < 20 {
                jb.push(ms(t0, j * 20), j as u16, j as u32 * 160, 9, j == 0, b"s");
            }
            // Silence: frames 20..49 not sent; frame 50 (marker) arrives
            // 60 ms later than the old path delay.
            while k < 100 && k * 20 + 60 <= now {
                jb.push(
                    ms(t0, k * 20 + 60),
                    (k - 30) as u16,
                    k as u32 * 160,
                    9,
                    k == 50,
                    b"t",
                );
                k += 1;
            }
            match jb.pop(ms(t0, now)) {
                Playout::Frame { .. } => frames += 1,
                Playout::Empty => empties += 1,
                Playout::Lost { .. } => {}
            }
        }
        let s = jb.stats();
        assert_eq!(s.late, 0, "no talkspurt packet dropped");
        assert_eq!(s.concealed, 3, "60 ms of PLC at the end of the first spurt");
        assert_eq!(frames, 70);
        // 27 slots of silence + the wait for the slower talkspurt.
        assert!(empties >= 27, "{empties}");
    }

    #[test]
    fn burst_is_bounded_by_max_delay() {
        let t0 = origin();
        let mut jb = JitterBuffer::new(JitterConfig::default());
        // 100 frames (2 s of audio) arrive in one millisecond.
        for k in 0..100u16 {
            jb.push(ms(t0, 0), k, u32::from(k) * 160, 9, false, b"b");
        }
        // 300 ms / 20 ms + 6 slots.
        assert_eq!(jb.buffered(), 21);
        assert_eq!(jb.stats().dropped_for_latency, 79);
    }

    #[test]
    fn nonsense_config_does_not_panic() {
        let t0 = origin();
        let mut jb = JitterBuffer::new(JitterConfig {
            clock_rate: 0,
            frame_ms: 0,
            min_delay_ms: 5000,
            max_delay_ms: 0,
            repair_frames: 1,
        });
        jb.push(t0, 0, 0, 0, false, &[]);
        for k in 0..10 {
            let _ = jb.pop(ms(t0, k));
        }
        let _ = jb.stats();
    }
}
