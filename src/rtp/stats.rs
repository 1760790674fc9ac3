//! Reception statistics of one RTP source (RFC 3550 Appendix A.1 sequence
//! validation, A.3 loss, A.8 interarrival jitter), sender counters, and the
//! NTP arithmetic of SR/RR round-trip time (RFC 3550 §6.4.1).

use std::time::{Duration, Instant};

use super::rtcp::{ReportBlock, RtcpPacket, SenderReport};

const RTP_SEQ_MOD: u64 = 1 << 16;
/// A.1: a forward jump smaller than this is in order (packets were lost).
const MAX_DROPOUT: u16 = 3000;
/// A.1: a backward step up to this is a late or duplicate packet.
const MAX_MISORDER: u16 = 100;
/// A.1: sequential packets needed before a new source is valid.
const MIN_SEQUENTIAL: u8 = 2;
/// How far behind the highest sequence number duplicates are told from late packets.
const HISTORY: u16 = 64;

/// What [`ReceiveStats::on_packet`] made of a sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqStatus {
    /// Counted; the highest sequence number so far (possibly after a gap).
    New,
    /// Counted (RFC 3550 counts duplicates, so the loss can go negative);
    /// a sequence number already received among the last 64.
    Duplicate,
    /// Counted; older than the highest but not received before (reordered),
    /// or too old to tell.
    Late,
    /// Not counted: the source is on probation (its first packet, or a jump
    /// of ≥ 3000 forward / > 100 back) until `remaining` more sequential
    /// packets arrive. The caller decides whether to play it.
    Probation { remaining: u8 },
    /// Counted: a jump confirmed by the next sequential packet; the source
    /// restarted and its statistics were reset to start at this packet.
    Restarted,
}

/// Reception statistics of one SSRC. Make a new one when the SSRC changes.
#[derive(Debug, Clone)]
pub struct ReceiveStats {
    clock_rate: u32,
    started: bool,
    valid: bool,
    max_seq: u16,
    /// Sequence number cycles × 65536.
    cycles: u64,
    base_seq: u16,
    /// The sequence number that would confirm a jump (> 0xffff: none).
    bad_seq: u32,
    probation: u8,
    received: u64,
    expected_prior: u64,
    received_prior: u64,
    /// Bit i set: `max_seq - i` was received.
    seen: u64,
    arrival_base: Option<Instant>,
    last_transit: Option<u32>,
    /// Interarrival jitter × 16, in timestamp units (A.8 integer form).
    jitter_q4: u32,
    last_sr: u32,
    last_sr_arrival: Option<Instant>,
}

impl ReceiveStats {
    /// `clock_rate`: RTP timestamp units per second (8000 for G.711); 0 is taken as 1.
    pub fn new(clock_rate: u32) -> Self {
        ReceiveStats {
            clock_rate: clock_rate.max(1),
            started: false,
            valid: false,
            max_seq: 0,
            cycles: 0,
            base_seq: 0,
            bad_seq: RTP_SEQ_MOD as u32 + 1,
            probation: MIN_SEQUENTIAL,
            received: 0,
            expected_prior: 0,
            received_prior: 0,
            seen: 0,
            arrival_base: None,
            last_transit: None,
            jitter_q4: 0,
            last_sr: 0,
            last_sr_arrival: None,
        }
    }

    /// A.1 `init_seq`: counting starts again at `seq`.
    fn init_seq(&mut self, seq: u16) {
        self.valid = true;
        self.base_seq = seq;
        self.max_seq = seq;
        self.bad_seq = RTP_SEQ_MOD as u32 + 1;
        self.cycles = 0;
        self.received = 0;
        self.received_prior = 0;
        self.expected_prior = 0;
        self.seen = 0;
        self.last_transit = None;
    }

    /// Accounts one RTP packet of this source: its sequence number, RTP
    /// timestamp and arrival time. Jitter is updated for counted packets
    /// except duplicates.
    pub fn on_packet(&mut self, seq: u16, rtp_ts: u32, arrival: Instant) -> SeqStatus {
        if !self.started {
            self.started = true;
            self.max_seq = seq.wrapping_sub(1);
            self.probation = MIN_SEQUENTIAL;
            self.arrival_base = Some(arrival);
        }
        let status = self.update_seq(seq);
        if matches!(
            status,
            SeqStatus::New | SeqStatus::Late | SeqStatus::Restarted
        ) {
            self.update_jitter(rtp_ts, arrival);
        }
        status
    }

    /// A.1 `update_seq`, with duplicates told apart from late packets.
    fn update_seq(&mut self, seq: u16) -> SeqStatus {
        let udelta = seq.wrapping_sub(self.max_seq);
        if self.probation > 0 {
            if seq == self.max_seq.wrapping_add(1) {
                self.probation -= 1;
                self.max_seq = seq;
                if self.probation == 0 {
                    self.init_seq(seq);
                    self.count_new(0);
                    return SeqStatus::New;
                }
            } else {
                self.probation = MIN_SEQUENTIAL - 1;
                self.max_seq = seq;
            }
            return SeqStatus::Probation {
                remaining: self.probation,
            };
        }
        if udelta == 0 {
            self.received += 1;
            return SeqStatus::Duplicate;
        }
        if udelta < MAX_DROPOUT {
            if seq < self.max_seq {
                self.cycles += RTP_SEQ_MOD;
            }
            self.max_seq = seq;
            self.count_new(udelta);
            return SeqStatus::New;
        }
        if u64::from(udelta) <= RTP_SEQ_MOD - u64::from(MAX_MISORDER) {
            if u32::from(seq) == self.bad_seq {
                // Two sequential packets after the jump: the other side restarted.
                self.init_seq(seq);
                self.count_new(0);
                return SeqStatus::Restarted;
            }
            self.bad_seq = u32::from(seq.wrapping_add(1));
            return SeqStatus::Probation { remaining: 1 };
        }
        // Up to MAX_MISORDER behind the highest: late or duplicate.
        self.received += 1;
        let back = self.max_seq.wrapping_sub(seq);
        if back < HISTORY {
            let bit = 1u64 << back;
            if self.seen & bit != 0 {
                return SeqStatus::Duplicate;
            }
            self.seen |= bit;
        }
        SeqStatus::Late
    }

    /// Counts a packet that became the highest, `advance` past the previous highest.
    fn count_new(&mut self, advance: u16) {
        self.received += 1;
        self.seen = if advance >= HISTORY {
            0
        } else {
            self.seen << advance
        } | 1;
    }

    /// A.8: J += (|D(i-1,i)| - J) / 16, in the scaled-integer form.
    fn update_jitter(&mut self, rtp_ts: u32, arrival: Instant) {
        let base = *self.arrival_base.get_or_insert(arrival);
        let units = arrival.saturating_duration_since(base).as_nanos()
            * u128::from(self.clock_rate)
            / 1_000_000_000;
        // Timestamp arithmetic is modulo 2^32 on both sides.
        let transit = (units as u32).wrapping_sub(rtp_ts);
        if let Some(last) = self.last_transit {
            let d = i64::from((transit.wrapping_sub(last) as i32).unsigned_abs());
            let j = i64::from(self.jitter_q4);
            self.jitter_q4 = (j + d - ((j + 8) >> 4)).clamp(0, i64::from(u32::MAX)) as u32;
        }
        self.last_transit = Some(transit);
    }

    /// Packets expected since the source became valid (A.3): extended highest
    /// sequence number − base + 1; 0 before the source is valid.
    pub fn expected(&self) -> u64 {
        if !self.valid {
            return 0;
        }
        (self.cycles + u64::from(self.max_seq) + 1).saturating_sub(u64::from(self.base_seq))
    }

    /// Packets counted (duplicates and late packets included).
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Cumulative loss: expected − received; negative when duplicates outnumber losses.
    pub fn lost(&self) -> i64 {
        self.expected() as i64 - self.received as i64
    }

    /// Extended highest sequence number (cycles × 65536 + highest), as in report blocks.
    pub fn extended_highest(&self) -> u32 {
        if !self.valid {
            return 0;
        }
        (self.cycles + u64::from(self.max_seq)) as u32
    }

    /// Interarrival jitter in timestamp units, as reported in report blocks.
    pub fn jitter(&self) -> u32 {
        self.jitter_q4 >> 4
    }

    /// Interarrival jitter in milliseconds.
    pub fn jitter_ms(&self) -> f64 {
        f64::from(self.jitter_q4) / 16.0 * 1000.0 / f64::from(self.clock_rate)
    }

    /// Remembers a sender report of this source: the middle 32 bits of its NTP
    /// timestamp and when it arrived (for LSR/DLSR).
    pub fn on_sender_report(&mut self, ntp_middle32: u32, now: Instant) {
        self.last_sr = ntp_middle32;
        self.last_sr_arrival = Some(now);
    }

    /// A report block for this source at `now`. The lost fraction covers the
    /// packets since the previous call (A.3).
    pub fn report_block(&mut self, ssrc: u32, now: Instant) -> ReportBlock {
        let expected = self.expected();
        let expected_interval = expected.saturating_sub(self.expected_prior);
        let received_interval = self.received.saturating_sub(self.received_prior);
        self.expected_prior = expected;
        self.received_prior = self.received;
        let lost_interval = expected_interval as i64 - received_interval as i64;
        let fraction_lost = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / expected_interval as i64).min(255) as u8
        };
        let delay_since_last_sr = match self.last_sr_arrival {
            Some(at) => {
                let d = now.saturating_duration_since(at);
                (d.as_nanos() * 65536 / 1_000_000_000).min(u128::from(u32::MAX)) as u32
            }
            None => 0,
        };
        ReportBlock {
            ssrc,
            fraction_lost,
            cumulative_lost: self.lost().clamp(-0x80_0000, 0x7f_ffff) as i32,
            highest_seq: self.extended_highest(),
            jitter: self.jitter(),
            last_sr: self.last_sr,
            delay_since_last_sr,
        }
    }
}

/// What a sender counts for its sender reports (RFC 3550 §6.4.1); both wrap.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SendStats {
    pub packets: u32,
    /// Payload octets (no header or padding).
    pub octets: u32,
}

impl SendStats {
    /// Counts one sent RTP packet with `payload_len` payload octets.
    pub fn on_packet(&mut self, payload_len: usize) {
        self.packets = self.packets.wrapping_add(1);
        self.octets = self.octets.wrapping_add(payload_len as u32);
    }

    /// A sender report: `ntp` is the 64-bit NTP time of `rtp_ts` (same instant).
    pub fn sender_report(
        &self,
        ssrc: u32,
        ntp: u64,
        rtp_ts: u32,
        blocks: Vec<ReportBlock>,
    ) -> RtcpPacket {
        RtcpPacket::SenderReport(SenderReport {
            ssrc,
            ntp_timestamp: ntp,
            rtp_timestamp: rtp_ts,
            packet_count: self.packets,
            octet_count: self.octets,
            reports: blocks,
        })
    }
}

/// Seconds from 1900-01-01 (NTP era 0) to 1970-01-01.
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// 64-bit NTP timestamp (seconds since 1900 in the high 32 bits, modulo the
/// era; fraction in the low 32) of a time given as the duration since the UNIX epoch.
pub fn ntp_from_unix(d: Duration) -> u64 {
    let secs = (d.as_secs() + NTP_UNIX_OFFSET) & 0xffff_ffff;
    let frac = (u64::from(d.subsec_nanos()) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

/// The middle 32 bits of a 64-bit NTP timestamp (16.16 fixed point seconds),
/// as carried in LSR.
pub fn ntp_middle32(ntp: u64) -> u32 {
    (ntp >> 16) as u32
}

/// Round-trip time from a report block about our stream (RFC 3550 §6.4.1):
/// A − LSR − DLSR in 1/65536 s, where A is the block's arrival time as middle
/// 32 NTP bits. `None` without an SR (LSR 0) or when DLSR exceeds A − LSR.
pub fn rtt_from_block(block: &ReportBlock, arrival_ntp_middle32: u32) -> Option<Duration> {
    if block.last_sr == 0 {
        return None;
    }
    let since_sr = arrival_ntp_middle32.wrapping_sub(block.last_sr);
    let rtt = since_sr.checked_sub(block.delay_since_last_sr)?;
    Some(Duration::from_nanos(u64::from(rtt) * 1_000_000_000 / 65536))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::runtime::test_epoch as t0;

    fn ms(base: Instant, ms: u64) -> Instant {
        base + Duration::from_millis(ms)
    }

    /// Feeds (seq, ts, arrival ms) and returns the statuses.
    fn feed(
        stats: &mut ReceiveStats,
        base: Instant,
        packets: &[(u16, u32, u64)],
    ) -> Vec<SeqStatus> {
        packets
            .iter()
            .map(|&(seq, ts, at)| stats.on_packet(seq, ts, ms(base, at)))
            .collect()
    }

    use SeqStatus::*;

    #[test]
    fn jitter_matches_a_hand_computation() {
        // 8 kHz, 20 ms = 160 units per packet. Arrival in units = ms × 8.
        // seq ts   arrival   transit = arrival − ts   |D|   J×16 += |D| − (J×16 + 8) >> 4
        // 100 0    0 ms      (probation: ignored)
        // 101 160  20 → 160  0                        —     0
        // 102 320  50 → 400  80                       80    0 + 80 − 0 = 80
        // 103 480  60 → 480  0                        80    80 + 80 − 5 = 155
        // 104 640  80 → 640  0                        0     155 + 0 − 10 = 145
        // 105 800 130 → 1040 240                      240   145 + 240 − 9 = 376
        // J = 376 / 16 = 23.5 units → reported 23; 23.5 / 8000 s = 2.9375 ms.
        // (The real-valued A.8 recurrence gives 5, 9.6875, 9.08, 23.51.)
        let base = t0();
        let mut s = ReceiveStats::new(8000);
        let st = feed(
            &mut s,
            base,
            &[
                (100, 0, 0),
                (101, 160, 20),
                (102, 320, 50),
                (103, 480, 60),
                (104, 640, 80),
                (105, 800, 130),
            ],
        );
        assert_eq!(st, [Probation { remaining: 1 }, New, New, New, New, New]);
        assert_eq!(s.jitter(), 23);
        assert!((s.jitter_ms() - 2.9375).abs() < 1e-12, "{}", s.jitter_ms());
        assert_eq!(s.report_block(1, ms(base, 140)).jitter, 23);
    }

    #[test]
    fn jitter_is_zero_for_a_steady_stream_with_a_random_timestamp_base() {
        let base = t0();
        let mut s = ReceiveStats::new(48_000);
        let ts0 = 0xffff_ff00u32; // wraps during the stream
        for i in 0..100u16 {
            s.on_packet(
                i,
                ts0.wrapping_add(960 * u32::from(i)),
                ms(base, 20 * u64::from(i)),
            );
        }
        assert_eq!(s.jitter(), 0);
        assert_eq!(s.expected(), 99);
        assert_eq!(s.lost(), 0);
    }

    #[test]
    fn loss_with_gaps_duplicates_and_reordering() {
        let base = t0();
        let mut s = ReceiveStats::new(8000);
        let seqs = [1000u16, 1001, 1002, 1005, 1003, 1005, 1006];
        let st: Vec<_> = seqs.iter().map(|&q| s.on_packet(q, 0, base)).collect();
        assert_eq!(
            st,
            [
                Probation { remaining: 1 },
                New,
                New,
                New,
                Late,
                Duplicate,
                New
            ]
        );
        // Base 1001 (first counted), highest 1006: expected 6. Received 1001,
        // 1002, 1005, 1003, 1005 again, 1006 = 6: 1004 is missing but the
        // duplicate hides it (RFC 3550 §6.4.1 counts duplicates).
        assert_eq!((s.expected(), s.received(), s.lost()), (6, 6, 0));
        let b = s.report_block(7, base);
        assert_eq!(
            (b.fraction_lost, b.cumulative_lost, b.highest_seq),
            (0, 0, 1006)
        );
        // Next interval: 1007, 1010 → 1008 and 1009 lost: 2 of 4 = 128/256.
        assert_eq!(s.on_packet(1007, 0, base), New);
        assert_eq!(s.on_packet(1010, 0, base), New);
        let b = s.report_block(7, base);
        assert_eq!(
            (b.fraction_lost, b.cumulative_lost, b.highest_seq),
            (128, 2, 1010)
        );
        // Nothing arrives: an empty interval reports fraction 0, loss unchanged.
        let b = s.report_block(7, base);
        assert_eq!((b.fraction_lost, b.cumulative_lost), (0, 2));
        // More duplicates than losses: negative cumulative loss.
        for _ in 0..5 {
            assert_eq!(s.on_packet(1010, 0, base), Duplicate);
        }
        assert_eq!(s.lost(), -3);
        assert_eq!(s.report_block(7, base).cumulative_lost, -3);
    }

    #[test]
    fn sequence_wrap_at_65535() {
        let base = t0();
        let mut s = ReceiveStats::new(8000);
        let seqs = [65533u16, 65534, 0, 65535, 2, 3];
        let st: Vec<_> = seqs.iter().map(|&q| s.on_packet(q, 0, base)).collect();
        assert_eq!(st, [Probation { remaining: 1 }, New, New, Late, New, New]);
        // Extended highest = 1 cycle + 3 = 65539; base 65534 → expected 6;
        // received 65534, 0, 65535, 2, 3 = 5; seq 1 lost; fraction 256/6 = 42.
        assert_eq!(s.extended_highest(), 0x0001_0003);
        assert_eq!((s.expected(), s.received(), s.lost()), (6, 5, 1));
        let b = s.report_block(9, base);
        assert_eq!(
            (b.fraction_lost, b.cumulative_lost, b.highest_seq),
            (42, 1, 65539)
        );
    }

    #[test]
    fn probation_jumps_and_restart() {
        let base = t0();
        let mut s = ReceiveStats::new(8000);
        // A new source: a non-sequential second packet restarts the probation.
        assert_eq!(s.on_packet(500, 0, base), Probation { remaining: 1 });
        assert_eq!(s.on_packet(502, 0, base), Probation { remaining: 1 });
        assert_eq!(s.expected(), 0);
        assert_eq!(s.on_packet(503, 0, base), New);
        assert_eq!((s.expected(), s.received()), (1, 1));
        assert_eq!(s.on_packet(504, 0, base), New);
        // A stray jump is not counted and does not move the highest.
        assert_eq!(s.on_packet(20_000, 0, base), Probation { remaining: 1 });
        assert_eq!(s.on_packet(505, 0, base), New);
        assert_eq!(
            (s.expected(), s.received(), s.extended_highest()),
            (3, 3, 505)
        );
        // Forward by 2999 is a gap; by 3000 a jump.
        assert_eq!(s.on_packet(505 + 2999, 0, base), New);
        assert_eq!(s.lost(), 2998);
        assert_eq!(
            s.on_packet(3504 + 3000, 0, base),
            Probation { remaining: 1 }
        );
        // A jump confirmed by the next sequential packet: restart from there.
        assert_eq!(s.on_packet(30_000, 0, base), Probation { remaining: 1 });
        assert_eq!(s.on_packet(30_001, 0, base), Restarted);
        assert_eq!((s.expected(), s.received(), s.lost()), (1, 1, 0));
        assert_eq!(s.extended_highest(), 30_001);
        // 99 behind is late; 100 behind is a jump.
        assert_eq!(s.on_packet(30_001 - 99, 0, base), Late);
        assert_eq!(
            s.on_packet(30_001 - 100, 0, base),
            Probation { remaining: 1 }
        );
        assert_eq!(s.on_packet(30_001 - 99, 0, base), Late); // too old to tell
        assert_eq!(s.on_packet(30_000, 0, base), Late);
        assert_eq!(s.on_packet(30_000, 0, base), Duplicate);
        // A new SSRC gets new stats, on probation again.
        let mut fresh = ReceiveStats::new(8000);
        assert_eq!(fresh.on_packet(7, 0, base), Probation { remaining: 1 });
    }

    #[test]
    fn lsr_and_dlsr_in_report_blocks() {
        let base = t0();
        let mut s = ReceiveStats::new(8000);
        assert_eq!(s.report_block(1, base).last_sr, 0);
        s.on_sender_report(0xb705_2000, base);
        let b = s.report_block(1, base + Duration::from_millis(5250));
        assert_eq!(b.last_sr, 0xb705_2000);
        assert_eq!(b.delay_since_last_sr, 0x0005_4000); // 5.25 s × 65536
    }

    #[test]
    fn rtt_example_of_rfc3550_figure_2() {
        // §6.4.1, Figure 2: A = 0xb710:8000 (46864.500 s), LSR = 0xb705:2000
        // (46853.125 s), DLSR = 0x0005:4000 (5.250 s) → 0x0006:2000 = 6.125 s.
        let block = ReportBlock {
            last_sr: 0xb705_2000,
            delay_since_last_sr: 0x0005_4000,
            ..Default::default()
        };
        assert_eq!(
            rtt_from_block(&block, 0xb710_8000),
            Some(Duration::from_millis(6125))
        );
        // No SR yet, or a DLSR longer than the time since the SR: no RTT.
        let none = ReportBlock {
            last_sr: 0,
            ..block
        };
        assert_eq!(rtt_from_block(&none, 0xb710_8000), None);
        assert_eq!(rtt_from_block(&block, 0xb70a_0000), None);
        // Across the wrap of the 16.16 seconds.
        let wrapped = ReportBlock {
            last_sr: 0xffff_0000,
            delay_since_last_sr: 0x0000_8000,
            ..Default::default()
        };
        assert_eq!(
            rtt_from_block(&wrapped, 0x0001_0000),
            Some(Duration::from_millis(1500))
        );
    }

    #[test]
    fn ntp_timestamps() {
        assert_eq!(ntp_from_unix(Duration::ZERO), 0x83aa_7e80_0000_0000);
        assert_eq!(
            ntp_from_unix(Duration::from_millis(1500)),
            0x83aa_7e81_8000_0000
        );
        // 2036-02-07T06:28:16Z is the end of NTP era 0: seconds wrap to 0.
        assert_eq!(ntp_from_unix(Duration::from_secs(2_085_978_496)), 0);
        assert_eq!(ntp_middle32(0x83aa_7e81_8000_0000), 0x7e81_8000);
    }

    #[test]
    fn sender_counters_and_report() {
        let mut s = SendStats::default();
        for _ in 0..3 {
            s.on_packet(160);
        }
        let RtcpPacket::SenderReport(sr) = s.sender_report(5, 1 << 32, 480, vec![]) else {
            panic!()
        };
        assert_eq!((sr.packet_count, sr.octet_count, sr.ssrc), (3, 480, 5));
        assert_eq!((sr.ntp_timestamp, sr.rtp_timestamp), (1 << 32, 480));
        let mut w = SendStats {
            packets: u32::MAX,
            octets: u32::MAX - 10,
        };
        w.on_packet(20);
        assert_eq!((w.packets, w.octets), (0, 9));
    }
}
