//! The telephone-event payload (RFC 4733 §2.3) and the DTMF event codes
//! (RFC 4733 §3.2, Table 3).

use super::packet::RtpError;

/// One named event: 4 bytes on the wire.
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// |     event     |E|R| volume    |          duration             |
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TelephoneEvent {
    pub event: u8,
    /// E bit: the last packet(s) of the event.
    pub end: bool,
    /// Power level in −dBm0, 0..=63 (6 bits; higher bits are not written).
    pub volume: u8,
    /// Duration so far, in RTP timestamp units from the event's timestamp.
    pub duration: u16,
}

/// Length of one event on the wire.
pub const TELEPHONE_EVENT_LEN: usize = 4;

impl TelephoneEvent {
    /// Parses the first event of a telephone-event payload; the R bit is ignored
    /// (RFC 4733 §2.3.3) and any bytes after the first 4 are ignored.
    pub fn parse(payload: &[u8]) -> Result<Self, RtpError> {
        let b = payload
            .get(..TELEPHONE_EVENT_LEN)
            .ok_or(RtpError::TooShort {
                what: "telephone-event",
                needed: TELEPHONE_EVENT_LEN,
                got: payload.len(),
            })?;
        Ok(TelephoneEvent {
            event: b[0],
            end: b[1] & 0x80 != 0,
            volume: b[1] & 0x3f,
            duration: u16::from_be_bytes([b[2], b[3]]),
        })
    }

    /// Appends the 4 bytes (R bit 0) to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.push(self.event);
        out.push((u8::from(self.end) << 7) | (self.volume & 0x3f));
        out.extend_from_slice(&self.duration.to_be_bytes());
    }
}

/// The DTMF character of events 0–15 ('0'–'9', '*', '#', 'A'–'D').
pub fn event_to_char(event: u8) -> Option<char> {
    match event {
        0..=9 => Some(char::from(b'0' + event)),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some(char::from(b'A' + event - 12)),
        _ => None,
    }
}

/// The event code of a DTMF character; 'a'–'d' are accepted as 'A'–'D'.
pub fn char_to_event(c: char) -> Option<u8> {
    match c {
        '0'..='9' => Some(c as u8 - b'0'),
        '*' => Some(10),
        '#' => Some(11),
        'A'..='D' => Some(c as u8 - b'A' + 12),
        'a'..='d' => Some(c as u8 - b'a' + 12),
        _ => None,
    }
}

/// What [`TelephoneEventReceiver::on_packet`] reports, once per event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtmfReport {
    /// A new event started (its first packet to arrive, marker or not). A
    /// `Began` while another event never got its end packet also ends that one.
    Began { event: u8 },
    /// The first end packet (E bit) of the event; its retransmissions are not reported.
    /// `duration` is in timestamp units, summed over long-event segments.
    Ended { event: u8, duration: u32 },
}

/// Receiver side of RFC 4733 §2.5.2: turns the stream of telephone-event
/// packets (updates with a growing duration, end packets sent three times,
/// long events split into segments) into one `Began` and one `Ended` per event.
#[derive(Debug, Clone, Default)]
pub struct TelephoneEventReceiver {
    /// (segment timestamp, event, ended, duration of earlier segments)
    current: Option<(u32, u8, bool, u32)>,
}

impl TelephoneEventReceiver {
    pub fn new() -> Self {
        Self::default()
    }

    /// Accounts one telephone-event packet: its RTP timestamp and marker bit
    /// and its parsed payload.
    pub fn on_packet(
        &mut self,
        rtp_ts: u32,
        marker: bool,
        ev: &TelephoneEvent,
    ) -> Option<DtmfReport> {
        if let Some((ts, event, ended, before)) = &mut self.current {
            let age = rtp_ts.wrapping_sub(*ts) as i32;
            if age < 0 {
                return None; // a reordered packet of an earlier event or segment
            }
            if age == 0 && ev.event == *event {
                if ev.end && !*ended {
                    *ended = true;
                    return Some(DtmfReport::Ended {
                        event: *event,
                        duration: *before + u32::from(ev.duration),
                    });
                }
                return None; // an update, or a retransmitted end packet
            }
            if !marker && !*ended && ev.event == *event {
                // RFC 4733 §2.5.1.3: the next segment of a long event starts
                // where the previous one's 0xffff duration ran out.
                *before += rtp_ts.wrapping_sub(*ts);
                *ts = rtp_ts;
                if ev.end {
                    *ended = true;
                    return Some(DtmfReport::Ended {
                        event: *event,
                        duration: *before + u32::from(ev.duration),
                    });
                }
                return None;
            }
        }
        self.current = Some((rtp_ts, ev.event, ev.end, 0));
        if ev.end {
            // Only the end packet(s) arrived: report the whole event now.
            return Some(DtmfReport::Ended {
                event: ev.event,
                duration: u32::from(ev.duration),
            });
        }
        Some(DtmfReport::Began { event: ev.event })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_vectors() {
        // Digit 9, end, volume 10 (−10 dBm0), duration 1600 (200 ms at 8 kHz):
        // 0x09, E=1 R=0 vol=001010 → 0x8a, 1600 = 0x0640.
        let end9 = TelephoneEvent {
            event: 9,
            end: true,
            volume: 10,
            duration: 1600,
        };
        let mut out = Vec::new();
        end9.write(&mut out);
        assert_eq!(out, [0x09, 0x8a, 0x06, 0x40]);
        assert_eq!(TelephoneEvent::parse(&out), Ok(end9));
        // '#' (11) in progress, volume 63, duration 65535; R bit set on the wire is ignored.
        let hash = TelephoneEvent::parse(&[0x0b, 0x7f, 0xff, 0xff, 0xee]).unwrap();
        assert_eq!(
            hash,
            TelephoneEvent {
                event: 11,
                end: false,
                volume: 63,
                duration: 65535
            }
        );
        out.clear();
        hash.write(&mut out);
        assert_eq!(out, [0x0b, 0x3f, 0xff, 0xff]);
        // Volume above 6 bits is masked on write.
        out.clear();
        TelephoneEvent {
            volume: 0xff,
            ..hash
        }
        .write(&mut out);
        assert_eq!(out[1], 0x3f);
    }

    #[test]
    fn short_payloads_are_errors() {
        for n in 0..4 {
            assert_eq!(
                TelephoneEvent::parse(&[0u8; 4][..n]),
                Err(RtpError::TooShort {
                    what: "telephone-event",
                    needed: 4,
                    got: n
                })
            );
        }
    }

    fn te(event: u8, end: bool, duration: u16) -> TelephoneEvent {
        TelephoneEvent {
            event,
            end,
            volume: 10,
            duration,
        }
    }

    #[test]
    fn receiver_reports_each_event_once() {
        use DtmfReport::*;
        let mut r = TelephoneEventReceiver::new();
        // Digit 1 at ts 8000: start (marker), updates every 50 ms (400 units),
        // three end packets at 1200 units (150 ms), one arriving twice late.
        assert_eq!(
            r.on_packet(8000, true, &te(1, false, 400)),
            Some(Began { event: 1 })
        );
        assert_eq!(r.on_packet(8000, false, &te(1, false, 800)), None);
        assert_eq!(
            r.on_packet(8000, false, &te(1, true, 1200)),
            Some(Ended {
                event: 1,
                duration: 1200
            })
        );
        assert_eq!(r.on_packet(8000, false, &te(1, true, 1200)), None);
        assert_eq!(r.on_packet(8000, false, &te(1, true, 1200)), None);
        // Digit 1 again (new timestamp, marker): a new event.
        assert_eq!(
            r.on_packet(12_000, true, &te(1, false, 160)),
            Some(Began { event: 1 })
        );
        // A reordered packet of the first press is ignored.
        assert_eq!(r.on_packet(8000, false, &te(1, false, 800)), None);
        // '#' starts before the end of the second '1' arrived: Began ends it implicitly.
        assert_eq!(
            r.on_packet(16_000, true, &te(11, false, 160)),
            Some(Began { event: 11 })
        );
        // Only the end packet of '*' arrives (start and updates lost).
        assert_eq!(
            r.on_packet(24_000, false, &te(10, true, 640)),
            Some(Ended {
                event: 10,
                duration: 640
            })
        );
    }

    #[test]
    fn receiver_joins_long_event_segments() {
        use DtmfReport::*;
        let mut r = TelephoneEventReceiver::new();
        // A 10 s '0' at 8 kHz = 80 000 units: segment 1 at ts 0 up to 65 535,
        // segment 2 at ts 65 535 (no marker) ending at 14 465 more.
        assert_eq!(
            r.on_packet(0, true, &te(0, false, 400)),
            Some(Began { event: 0 })
        );
        assert_eq!(r.on_packet(0, false, &te(0, false, 65_535)), None);
        assert_eq!(r.on_packet(65_535, false, &te(0, false, 400)), None);
        assert_eq!(
            r.on_packet(65_535, false, &te(0, true, 14_465)),
            Some(Ended {
                event: 0,
                duration: 80_000
            })
        );
    }

    #[test]
    fn dtmf_characters() {
        let all = "0123456789*#ABCD";
        for (code, c) in all.chars().enumerate() {
            assert_eq!(event_to_char(code as u8), Some(c));
            assert_eq!(char_to_event(c), Some(code as u8));
        }
        assert_eq!(char_to_event('b'), Some(13));
        assert_eq!(char_to_event('E'), None);
        assert_eq!(char_to_event('é'), None);
        assert_eq!(event_to_char(16), None); // 16 = flash (RFC 4733 Table 3): no DTMF char
        assert_eq!(event_to_char(255), None);
    }
}
