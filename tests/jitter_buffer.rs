//! The jitter buffer on a fake clock with scripted networks: a sender emits
//! one 20 ms G.711 frame per packet (optionally on a drifting clock), a
//! seeded network delays, loses, duplicates and reorders them, and the media
//! loop pops every 20 ms of receiver time. Every played frame is checked
//! against what was sent (its payload encodes seq + timestamp).
//!
//! `cargo test --test jitter_buffer -- --nocapture` prints the figures.
#![allow(clippy::disallowed_methods)] // one Instant::now() per run as the fake clock's origin
#![allow(unsafe_code)] // the counting allocator below (a thin wrapper over System)

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::{Duration, Instant};

use softline::media::jitter::{JitterBuffer, JitterConfig, JitterStats, Playout};

// ---- allocation counter (per thread, so parallel tests do not interfere) ----

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards to System unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs() -> u64 {
    ALLOCS.with(Cell::get)
}

// ---- simulator ---------------------------------------------------------------

const FRAME_NS: u64 = 20_000_000;
const SPF: u32 = 160; // 20 ms at 8 kHz

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    fn f(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[derive(Clone, Copy)]
struct Net {
    frames: usize,
    /// Sender clock rate relative to the receiver (1.005 = 0.5 % fast).
    sender_speed: f64,
    base_ms: f64,
    /// Uniform jitter ± this, independent per packet.
    jitter_ms: f64,
    loss: f64,
    dup: f64,
    /// Every n-th packet arrives 1–5 ms after its successor.
    reorder_every: usize,
    /// From this frame on, a new SSRC with a fresh seq/timestamp base.
    ssrc_change_at: Option<usize>,
    /// From this frame on, timestamps jump by this many samples.
    ts_jump_at: Option<(usize, u32, bool)>,
    seed: u64,
}

impl Net {
    fn clean(frames: usize) -> Self {
        Net {
            frames,
            sender_speed: 1.0,
            base_ms: 40.0,
            jitter_ms: 0.0,
            loss: 0.0,
            dup: 0.0,
            reorder_every: 0,
            ssrc_change_at: None,
            ts_jump_at: None,
            seed: 1,
        }
    }
}

#[derive(Clone)]
struct Packet {
    frame: usize,
    seq: u16,
    ts: u32,
    ssrc: u32,
    marker: bool,
    arrive_ns: u64,
}

fn payload(seq: u16, ts: u32) -> [u8; 6] {
    let s = seq.to_be_bytes();
    let t = ts.to_be_bytes();
    [s[0], s[1], t[0], t[1], t[2], t[3]]
}

struct Script {
    arrivals: Vec<Packet>,
    /// Per frame: (send time, first arrival time or None if lost).
    sent: Vec<(u64, Option<u64>)>,
    lost: usize,
    dups: usize,
    reorders: usize,
}

fn script(net: &Net) -> Script {
    let mut rng = Rng(net.seed);
    let mut arrivals = Vec::new();
    let mut sent = Vec::new();
    let (mut lost, mut dups, mut reorders) = (0, 0, 0);
    for k in 0..net.frames {
        let send_ns = (k as f64 * FRAME_NS as f64 / net.sender_speed) as u64;
        let (mut ssrc, mut seq, mut ts) = (
            0x1111_1111u32,
            40_000u16.wrapping_add(k as u16),
            0xFFFF_0000u32.wrapping_add(k as u32 * SPF),
        );
        let mut marker = k == 0;
        if let Some(at) = net.ssrc_change_at
            && k >= at
        {
            ssrc = 0x2222_2222;
            seq = 7u16.wrapping_add((k - at) as u16);
            ts = 123_456u32.wrapping_add((k - at) as u32 * SPF);
            marker |= k == at;
        }
        if let Some((at, jump, m)) = net.ts_jump_at
            && k >= at
        {
            ts = ts.wrapping_add(jump);
            marker |= m && k == at;
        }
        let mut delay_ms = net.base_ms + (rng.f() * 2.0 - 1.0) * net.jitter_ms;
        if net.reorder_every > 0
            && k % net.reorder_every == net.reorder_every - 1
            && k + 1 < net.frames
        {
            // Arrives 1–5 ms after the next packet.
            delay_ms = net.base_ms + 20.0 + 1.0 + rng.f() * 4.0;
            reorders += 1;
        }
        let arrive_ns = send_ns + (delay_ms * 1e6) as u64;
        let p = Packet {
            frame: k,
            seq,
            ts,
            ssrc,
            marker,
            arrive_ns,
        };
        if rng.f() < net.loss {
            lost += 1;
            sent.push((send_ns, None));
            continue;
        }
        sent.push((send_ns, Some(arrive_ns)));
        if rng.f() < net.dup {
            dups += 1;
            let mut d = p.clone();
            d.arrive_ns += (rng.f() * 30e6) as u64;
            arrivals.push(d);
        }
        arrivals.push(p);
    }
    arrivals.sort_by_key(|p| p.arrive_ns);
    Script {
        arrivals,
        sent,
        lost,
        dups,
        reorders,
    }
}

#[derive(Default)]
struct Outcome {
    stats: JitterStats,
    /// Per pop: the frame index played, if any.
    played_frames: Vec<usize>,
    /// Pop index at which each frame was played.
    play_pop: Vec<Option<usize>>,
    lost_pops: usize,
    empty_pops_after_start: usize,
    max_cur_delay_ms: u32,
    min_cur_delay_ms: u32,
    max_wait_ms: f64,
    max_e2e_ms: f64,
    /// Max current delay per minute of simulated time.
    minute_max_delay: Vec<u32>,
    lost_with_next: usize,
}

fn run(cfg: JitterConfig, net: &Net, pops: usize, pop_phase_ns: u64) -> (Outcome, Script) {
    let sc = script(net);
    let t0 = Instant::now();
    let at = |ns: u64| t0 + Duration::from_nanos(ns);
    let mut jb = JitterBuffer::new(cfg);
    let mut out = Outcome {
        play_pop: vec![None; net.frames],
        min_cur_delay_ms: u32::MAX,
        ..Outcome::default()
    };
    // Which frame has which (ssrc, ts): payload → frame via seq+ts.
    let frame_of = |pl: &[u8]| -> Option<usize> {
        sc.arrivals
            .iter()
            .find(|p| payload(p.seq, p.ts) == *pl)
            .map(|p| p.frame)
    };
    let mut next_arrival = 0;
    let mut started = false;
    for j in 0..pops {
        if next_arrival == sc.arrivals.len() && jb.buffered() == 0 {
            break; // the stream has ended: no tail of losses to count
        }
        let now_ns = j as u64 * FRAME_NS + pop_phase_ns;
        while let Some(p) = sc.arrivals.get(next_arrival)
            && p.arrive_ns <= now_ns
        {
            jb.push(
                at(p.arrive_ns),
                p.seq,
                p.ts,
                p.ssrc,
                p.marker,
                &payload(p.seq, p.ts),
            );
            next_arrival += 1;
        }
        match jb.pop(at(now_ns)) {
            Playout::Frame {
                payload: pl,
                timestamp,
            } => {
                started = true;
                let f = frame_of(&pl).expect("played payload was sent");
                let p = sc.arrivals.iter().find(|p| p.frame == f).unwrap();
                assert_eq!(p.ts, timestamp, "timestamp matches payload");
                assert!(out.play_pop[f].is_none(), "frame {f} played twice");
                out.play_pop[f] = Some(j);
                out.played_frames.push(f);
                let (send, arrive) = sc.sent[f];
                let arrive = arrive.unwrap_or(send);
                out.max_wait_ms = out.max_wait_ms.max((now_ns - arrive) as f64 / 1e6);
                out.max_e2e_ms = out.max_e2e_ms.max((now_ns - send) as f64 / 1e6);
                jb.recycle(pl);
            }
            Playout::Lost { next } => {
                out.lost_pops += 1;
                if let Some(n) = next {
                    out.lost_with_next += 1;
                    jb.recycle(n);
                }
            }
            Playout::Empty => {
                if started {
                    out.empty_pops_after_start += 1;
                }
            }
        }
        let st = jb.stats();
        if started && st.current_delay_ms > 0 {
            out.max_cur_delay_ms = out.max_cur_delay_ms.max(st.current_delay_ms);
            out.min_cur_delay_ms = out.min_cur_delay_ms.min(st.current_delay_ms);
            let minute = j / 3000;
            if out.minute_max_delay.len() <= minute {
                out.minute_max_delay.push(0);
            }
            if let Some(m) = out.minute_max_delay.get_mut(minute) {
                *m = (*m).max(st.current_delay_ms);
            }
        }
    }
    out.stats = jb.stats();
    // Frames are played in sending order.
    assert!(
        out.played_frames.windows(2).all(|w| w[0] < w[1]),
        "frames played out of order"
    );
    (out, sc)
}

fn g711() -> JitterConfig {
    JitterConfig::new(8000, 20)
}

fn show(name: &str, o: &Outcome, sc: &Script) {
    let s = &o.stats;
    println!(
        "{name}: played {} concealed {} inserted {} late {} dup {} reord {} dropped {} resyncs {} | \
         sent-lost {} dups {} reorders {} | target {} ms, delay {}..{} ms, max wait {:.1} ms, max e2e {:.1} ms, empty-after-start {}",
        s.played,
        s.concealed,
        s.inserted,
        s.late,
        s.duplicates,
        s.reordered,
        s.dropped_for_latency,
        s.resyncs,
        sc.lost,
        sc.dups,
        sc.reorders,
        s.target_delay_ms,
        o.min_cur_delay_ms,
        o.max_cur_delay_ms,
        o.max_wait_ms,
        o.max_e2e_ms,
        o.empty_pops_after_start
    );
}

// ---- scenarios ---------------------------------------------------------------

#[test]
fn clean_stream_plays_everything_at_about_20ms() {
    let net = Net::clean(3000);
    let (o, sc) = run(g711(), &net, 3010, 7_000_000);
    show("clean", &o, &sc);
    assert_eq!(o.stats.concealed, 0);
    assert_eq!(o.stats.inserted, 0);
    assert_eq!(o.stats.played, 3000);
    // No jitter: the target is half a frame (the 10 ms floor).
    assert_eq!(o.stats.target_delay_ms, 10);
    assert!(o.max_cur_delay_ms <= 30, "{}", o.max_cur_delay_ms);
    assert!(o.min_cur_delay_ms >= 10, "{}", o.min_cur_delay_ms);
    // Frames wait in the buffer 10..30 ms (exactly 27 ms with this phase).
    assert!(o.max_wait_ms <= 30.0, "{}", o.max_wait_ms);
    assert_eq!(o.empty_pops_after_start, 0);
}

#[test]
fn packets_landing_just_after_a_playout_tick_wait_one_frame_not_two() {
    // Sender and receiver clocks in phase (both started by the same call
    // set-up): every packet lands 1 ± 0.5 ms after a pop. It can play at
    // the next pop, 19–20 ms later; a 20 ms floor made it wait for the one
    // after (39–40 ms), which is what the bench's clean PCMU calls showed.
    let net = Net {
        base_ms: 41.0,
        jitter_ms: 0.5,
        ..Net::clean(3000)
    };
    let (o, sc) = run(g711(), &net, 3010, 0);
    show("landing 1 ms after the tick", &o, &sc);
    assert_eq!(o.stats.played, 3000);
    assert_eq!(
        (o.stats.concealed, o.stats.inserted, o.stats.late),
        (0, 0, 0)
    );
    assert!(o.stats.target_delay_ms <= 12, "{}", o.stats.target_delay_ms);
    assert!(o.max_cur_delay_ms <= 20, "{}", o.max_cur_delay_ms);
    assert!(o.max_wait_ms <= 20.0, "{}", o.max_wait_ms);
    assert_eq!(o.empty_pops_after_start, 0);
}

#[test]
fn jitter_30_plus_minus_20_ms_conceals_under_1_percent() {
    for seed in [1, 2, 3] {
        let net = Net {
            base_ms: 30.0,
            jitter_ms: 20.0,
            seed,
            ..Net::clean(3000)
        };
        let (o, sc) = run(g711(), &net, 3010, 3_000_000);
        show(&format!("jitter30±20 seed {seed}"), &o, &sc);
        assert!(o.stats.concealed < 30, "concealed {}", o.stats.concealed);
        assert!(
            o.stats.concealed + o.stats.inserted < 30,
            "all concealment {}",
            o.stats.concealed + o.stats.inserted
        );
        // Spread is 40 ms: target = p97 (~39) + half a 20 ms frame.
        assert!(
            (40..=60).contains(&o.stats.target_delay_ms),
            "target {}",
            o.stats.target_delay_ms
        );
        assert!(o.max_cur_delay_ms <= 120, "delay {}", o.max_cur_delay_ms);
        assert!(o.max_e2e_ms <= 120.0, "mouth-to-ear {}", o.max_e2e_ms);
    }
}

#[test]
fn random_loss_5_percent_conceals_exactly_the_lost_frames() {
    let net = Net {
        loss: 0.05,
        seed: 9,
        ..Net::clean(3000)
    };
    let (o, sc) = run(g711(), &net, 3010, 7_000_000);
    show("loss 5%", &o, &sc);
    assert!((100..=200).contains(&sc.lost), "script lost {}", sc.lost);
    assert_eq!(o.stats.concealed as usize, sc.lost);
    // G.711 only conceals: no extra frame for loss, nothing inserted.
    assert_eq!(o.stats.inserted, 0);
    assert_eq!(o.stats.target_delay_ms, 10);
    assert_eq!(o.stats.dropped_for_latency, 0);
    assert_eq!(o.stats.played as usize, 3000 - sc.lost);
    assert!(o.max_cur_delay_ms <= 30, "{}", o.max_cur_delay_ms);
    // A codec that repairs from the next packet (Opus FEC, RED): loss above
    // 2.5 % gives the target one frame more, inserted once; nothing dropped.
    let repairing = JitterConfig {
        repair_frames: 1,
        ..g711()
    };
    let (o, sc) = run(repairing, &net, 3010, 7_000_000);
    show("loss 5%, repairing codec", &o, &sc);
    assert_eq!(o.stats.concealed as usize, sc.lost);
    assert_eq!(o.stats.inserted, 1);
    assert_eq!(o.stats.target_delay_ms, 30);
    assert_eq!(o.stats.dropped_for_latency, 0);
    assert_eq!(o.stats.played as usize, 3000 - sc.lost);
    assert!(o.max_cur_delay_ms <= 50, "{}", o.max_cur_delay_ms);
}

#[test]
fn reordering_by_one_slot_is_fixed_without_concealment() {
    let net = Net {
        reorder_every: 10,
        ..Net::clean(3000)
    };
    let (o, sc) = run(g711(), &net, 3010, 7_000_000);
    show("reorder 1/10", &o, &sc);
    // Every 10th packet but the very last one overtakes its successor.
    assert_eq!(sc.reorders, 299);
    assert_eq!(o.stats.reordered, 299);
    assert_eq!(o.stats.concealed, 0);
    // The first reorder, before the window knew, cost one inserted frame.
    assert!(o.stats.inserted <= 1);
    assert_eq!(o.stats.late, 0);
    assert_eq!(o.stats.played, 3000);
    // A reordered packet is 21–25 ms late: the target (+ half a frame)
    // covers it.
    assert!(o.stats.target_delay_ms >= 31 && o.stats.target_delay_ms <= 36);
}

#[test]
fn duplicates_are_counted_and_dropped() {
    let net = Net {
        dup: 0.05,
        seed: 4,
        ..Net::clean(3000)
    };
    let (o, sc) = run(g711(), &net, 3010, 7_000_000);
    show("dup 5%", &o, &sc);
    assert!(sc.dups > 100);
    assert_eq!(o.stats.duplicates as usize, sc.dups);
    assert_eq!(o.stats.played, 3000);
    assert_eq!(o.stats.concealed, 0);
    assert_eq!(o.stats.received as usize, 3000 + sc.dups);
}

fn assert_resync_within_2_frames(name: &str, net: Net, at: usize) {
    let (o, sc) = run(g711(), &net, 3010, 7_000_000);
    show(name, &o, &sc);
    assert_eq!(o.stats.resyncs, 1);
    let arrival_pop = sc.sent[at].1.unwrap().div_ceil(FRAME_NS) as usize;
    let played = o.play_pop[at].expect("first frame after the change is played");
    assert!(
        played <= arrival_pop + 2,
        "played at pop {played}, arrived before pop {arrival_pop}"
    );
    // No burst of losses and no silence around the change.
    assert_eq!(o.stats.concealed, 0);
    assert!(o.stats.inserted <= 1);
    assert_eq!(o.empty_pops_after_start, 0);
    assert_eq!(o.stats.played, 3000);
}

#[test]
fn ssrc_change_resyncs_within_2_frames() {
    let net = Net {
        ssrc_change_at: Some(1500),
        ..Net::clean(3000)
    };
    assert_resync_within_2_frames("ssrc change", net, 1500);
}

#[test]
fn ten_second_timestamp_jump_resyncs_within_2_frames() {
    let net = Net {
        ts_jump_at: Some((1500, 80_000, false)),
        ..Net::clean(3000)
    };
    assert_resync_within_2_frames("ts +10 s", net, 1500);
    let net = Net {
        ts_jump_at: Some((1500, 80_000u32.wrapping_neg(), true)),
        ..Net::clean(3000)
    };
    assert_resync_within_2_frames("ts -10 s, marker", net, 1500);
}

fn drift(speed: f64) -> (Outcome, Script) {
    let frames = (30_000.0 * speed) as usize; // 10 min of receiver time
    let net = Net {
        sender_speed: speed,
        base_ms: 30.0,
        jitter_ms: 5.0,
        seed: 5,
        ..Net::clean(frames)
    };
    run(g711(), &net, 30_000, 7_000_000)
}

#[test]
fn sender_clock_0_5_percent_fast_stays_bounded_over_10_minutes() {
    let (o, sc) = drift(1.005);
    show("drift +0.5%", &o, &sc);
    println!("  per-minute max delay: {:?}", o.minute_max_delay);
    // 10 min * 0.5 % = 3 s = 150 frames to shed.
    assert!(
        (140..=160).contains(&o.stats.dropped_for_latency),
        "dropped {}",
        o.stats.dropped_for_latency
    );
    assert_eq!(o.stats.concealed, 0);
    assert!(o.min_cur_delay_ms >= 20 && o.max_cur_delay_ms <= 300);
    let last = *o.minute_max_delay.last().unwrap();
    assert!(
        last <= o.minute_max_delay[0] + 10,
        "delay grew: {:?}",
        o.minute_max_delay
    );
}

#[test]
fn sender_clock_0_5_percent_slow_stays_bounded_over_10_minutes() {
    let (o, sc) = drift(1.0 / 1.005);
    show("drift -0.5%", &o, &sc);
    println!("  per-minute max delay: {:?}", o.minute_max_delay);
    assert!(
        (140..=160).contains(&o.stats.inserted),
        "inserted {}",
        o.stats.inserted
    );
    assert_eq!(o.stats.concealed, 0);
    assert!(o.min_cur_delay_ms >= 20 && o.max_cur_delay_ms <= 300);
    let last = *o.minute_max_delay.last().unwrap();
    assert!(
        last <= o.minute_max_delay[0] + 10,
        "delay grew: {:?}",
        o.minute_max_delay
    );
}

#[test]
fn lost_carries_the_next_frame_when_it_is_here() {
    // A codec that repairs from the next packet (Opus FEC) gets a frame
    // more of delay under loss, so the frame after a loss is here.
    let net = Net {
        loss: 0.05,
        base_ms: 30.0,
        jitter_ms: 20.0,
        seed: 11,
        ..Net::clean(3000)
    };
    let repairing = JitterConfig {
        repair_frames: 1,
        ..g711()
    };
    let (o, sc) = run(repairing, &net, 3010, 3_000_000);
    show("loss+jitter", &o, &sc);
    assert!(o.stats.concealed as usize >= sc.lost);
    // Every loss whose successor was not lost too gets it as `next`.
    let isolated = (1..sc.sent.len() - 1)
        .filter(|&k| sc.sent[k].1.is_none() && sc.sent[k + 1].1.is_some())
        .count();
    assert!(
        o.lost_with_next >= isolated * 95 / 100,
        "{} of {isolated}",
        o.lost_with_next
    );
}

#[test]
fn outage_gives_empty_then_resumes_at_target() {
    // 1 s outage (frames 1000..1050 never arrive) on a clean 40 ms path.
    let sc = script(&Net::clean(3000));
    let arrivals: Vec<_> = sc
        .arrivals
        .iter()
        .filter(|p| !(1000..1050).contains(&p.frame))
        .cloned()
        .collect();
    let t0 = Instant::now();
    let mut jb = JitterBuffer::new(g711());
    let (mut idx, mut empty_after_start, mut resumed_at) = (0, 0, None);
    for j in 0..3010usize {
        if idx == arrivals.len() && jb.buffered() == 0 {
            break;
        }
        let now = j as u64 * FRAME_NS + 7_000_000;
        while let Some(p) = arrivals.get(idx)
            && p.arrive_ns <= now
        {
            let t = t0 + Duration::from_nanos(p.arrive_ns);
            jb.push(t, p.seq, p.ts, p.ssrc, p.marker, &payload(p.seq, p.ts));
            idx += 1;
        }
        match jb.pop(t0 + Duration::from_nanos(now)) {
            Playout::Frame { timestamp, .. }
                if timestamp == 0xFFFF_0000u32.wrapping_add(1050 * SPF) =>
            {
                resumed_at = Some(j);
            }
            Playout::Empty if j > 10 => empty_after_start += 1,
            _ => {}
        }
    }
    let st = jb.stats();
    // Frame 1050 is sent at 21.000 s and arrives at 21.040 s, i.e. before pop 1052.
    let arrival_pop = (1050 * FRAME_NS + 40_000_000).div_ceil(FRAME_NS) as usize;
    println!(
        "outage 1 s: concealed {} empty {empty_after_start} resumed at pop {resumed_at:?} (arrival before pop {arrival_pop})",
        st.concealed
    );
    // 60 ms of concealment, then comfort noise for the other 47 slots.
    assert_eq!(st.concealed, 3);
    assert_eq!(empty_after_start, 47);
    assert_eq!(st.played, 2950);
    assert!(resumed_at.unwrap() <= arrival_pop + 1);
}

#[test]
fn warmed_up_push_and_pop_do_not_allocate() {
    let net = Net {
        loss: 0.05,
        base_ms: 30.0,
        jitter_ms: 20.0,
        seed: 21,
        ..Net::clean(3000)
    };
    let sc = script(&net);
    let t0 = Instant::now();
    let mut jb = JitterBuffer::new(g711());
    let mut idx = 0;
    let mut counted = 0;
    let mut lost_next = 0;
    for j in 0..3000usize {
        let now = j as u64 * FRAME_NS + 3_000_000;
        let before = allocs();
        while let Some(p) = sc.arrivals.get(idx)
            && p.arrive_ns <= now
        {
            let t = t0 + Duration::from_nanos(p.arrive_ns);
            let pl = payload(p.seq, p.ts);
            jb.push(t, p.seq, p.ts, p.ssrc, p.marker, &pl);
            idx += 1;
        }
        let out = jb.pop(t0 + Duration::from_nanos(now));
        let after = allocs();
        match out {
            Playout::Frame { payload, .. } => jb.recycle(payload),
            Playout::Lost { next: Some(n) } => {
                lost_next += 1;
                jb.recycle(n)
            }
            _ => {}
        }
        if j >= 500 {
            counted += after - before;
        }
    }
    println!("allocations in push+pop over pops 500..3000: {counted} ({lost_next} Lost with next)");
    assert!(lost_next > 50);
    assert_eq!(counted, 0);
}
