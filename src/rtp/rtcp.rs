//! RTCP packets (RFC 3550 §6.4 SR/RR, §6.5 SDES, §6.6 BYE) and compound
//! packets (§6.1). Other packet types (APP, RTPFB/PSFB, XR, …) are kept as bytes.

use super::packet::{RtpError, read_u16, read_u32};

pub const PT_SR: u8 = 200;
pub const PT_RR: u8 = 201;
pub const PT_SDES: u8 = 202;
pub const PT_BYE: u8 = 203;

/// SDES item types (RFC 3550 §6.5).
pub const SDES_CNAME: u8 = 1;
pub const SDES_NAME: u8 = 2;
pub const SDES_TOOL: u8 = 6;

const REPORT_BLOCK_LEN: usize = 24;
const MAX_COUNT: usize = 31;

/// One reception report block (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportBlock {
    pub ssrc: u32,
    /// Lost fraction since the previous report, in 1/256.
    pub fraction_lost: u8,
    /// 24-bit signed on the wire; written clamped to -0x800000..=0x7fffff.
    pub cumulative_lost: i32,
    /// Extended highest sequence number received (cycles << 16 | max seq).
    pub highest_seq: u32,
    /// Interarrival jitter in timestamp units.
    pub jitter: u32,
    /// Middle 32 bits of the NTP timestamp of the last SR received (0: none).
    pub last_sr: u32,
    /// Delay since that SR, in 1/65536 s.
    pub delay_since_last_sr: u32,
}

/// Sender report (PT 200). Profile-specific extensions are dropped on parse.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SenderReport {
    pub ssrc: u32,
    /// 64-bit NTP timestamp (seconds since 1900 << 32 | fraction).
    pub ntp_timestamp: u64,
    pub rtp_timestamp: u32,
    pub packet_count: u32,
    pub octet_count: u32,
    /// At most 31 are written.
    pub reports: Vec<ReportBlock>,
}

/// Receiver report (PT 201). Profile-specific extensions are dropped on parse.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReceiverReport {
    pub ssrc: u32,
    /// At most 31 are written.
    pub reports: Vec<ReportBlock>,
}

/// One RTCP packet of a compound packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RtcpPacket {
    SenderReport(SenderReport),
    ReceiverReport(ReceiverReport),
    /// Chunks of (SSRC/CSRC, items of (type, text)). Texts that are not UTF-8
    /// have each invalid byte replaced by `?` (the length is kept); texts are
    /// written truncated to 255 bytes; items of type 0 are not written.
    Sdes(Vec<(u32, Vec<(u8, String)>)>),
    Bye {
        ssrcs: Vec<u32>,
        reason: Option<String>,
    },
    /// Any other packet type. `data` is the whole packet from its first octet,
    /// padding removed. On write the version, padding bit, packet type and
    /// length are recomputed; the 5 count/format bits of `data[0]` are kept.
    Other {
        packet_type: u8,
        data: Vec<u8>,
    },
}

/// Replaces each byte of an invalid UTF-8 sequence with `?`, so the byte
/// length of the text is kept.
fn text_lossy(mut bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len());
    loop {
        match std::str::from_utf8(bytes) {
            Ok(valid) => {
                s.push_str(valid);
                return s;
            }
            Err(e) => {
                let (good, rest) = bytes.split_at(e.valid_up_to());
                s.push_str(std::str::from_utf8(good).unwrap_or_default());
                let bad = e.error_len().unwrap_or(rest.len());
                s.extend(std::iter::repeat_n('?', bad));
                bytes = rest.get(bad..).unwrap_or_default();
            }
        }
    }
}

/// The longest prefix of `s` of at most 255 bytes that ends on a char boundary.
fn text_255(s: &str) -> &[u8] {
    let mut end = s.len().min(255);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.as_bytes().get(..end).unwrap_or_default()
}

fn parse_block(b: &[u8]) -> ReportBlock {
    let lost24 = read_u32(b, 4) & 0x00ff_ffff;
    ReportBlock {
        ssrc: read_u32(b, 0),
        fraction_lost: b.get(4).copied().unwrap_or(0),
        // Sign-extend 24 → 32 bits.
        cumulative_lost: ((lost24 << 8) as i32) >> 8,
        highest_seq: read_u32(b, 8),
        jitter: read_u32(b, 12),
        last_sr: read_u32(b, 16),
        delay_since_last_sr: read_u32(b, 20),
    }
}

fn write_block(b: &ReportBlock, out: &mut Vec<u8>) {
    let lost = b.cumulative_lost.clamp(-0x80_0000, 0x7f_ffff) as u32 & 0x00ff_ffff;
    out.extend_from_slice(&b.ssrc.to_be_bytes());
    out.extend_from_slice(&((u32::from(b.fraction_lost) << 24) | lost).to_be_bytes());
    out.extend_from_slice(&b.highest_seq.to_be_bytes());
    out.extend_from_slice(&b.jitter.to_be_bytes());
    out.extend_from_slice(&b.last_sr.to_be_bytes());
    out.extend_from_slice(&b.delay_since_last_sr.to_be_bytes());
}

fn parse_blocks(
    packet_type: u8,
    count: usize,
    body: &[u8],
    at: usize,
) -> Result<Vec<ReportBlock>, RtpError> {
    let needed = at + REPORT_BLOCK_LEN * count;
    let blocks = body.get(at..needed).ok_or(RtpError::RtcpTruncated {
        packet_type,
        needed,
        got: body.len(),
    })?;
    Ok(blocks
        .chunks_exact(REPORT_BLOCK_LEN)
        .map(parse_block)
        .collect())
}

fn parse_sdes(count: usize, body: &[u8]) -> Result<RtcpPacket, RtpError> {
    let mut chunks = Vec::with_capacity(count);
    let mut pos = 0;
    for chunk in 0..count {
        if body.len() < pos + 4 {
            return Err(RtpError::RtcpTruncated {
                packet_type: PT_SDES,
                needed: pos + 4,
                got: body.len(),
            });
        }
        let ssrc = read_u32(body, pos);
        pos += 4;
        let mut items = Vec::new();
        loop {
            let kind = *body.get(pos).ok_or(RtpError::SdesUnterminated { chunk })?;
            if kind == 0 {
                // The null item, then null octets up to the next 32-bit boundary.
                pos = (pos + 1).next_multiple_of(4);
                break;
            }
            let len = usize::from(
                *body
                    .get(pos + 1)
                    .ok_or(RtpError::SdesUnterminated { chunk })?,
            );
            let text = body
                .get(pos + 2..pos + 2 + len)
                .ok_or(RtpError::SdesUnterminated { chunk })?;
            items.push((kind, text_lossy(text)));
            pos += 2 + len;
        }
        chunks.push((ssrc, items));
    }
    Ok(RtcpPacket::Sdes(chunks))
}

fn parse_bye(count: usize, body: &[u8]) -> Result<RtcpPacket, RtpError> {
    let needed = 4 * count;
    let ids = body.get(..needed).ok_or(RtpError::RtcpTruncated {
        packet_type: PT_BYE,
        needed,
        got: body.len(),
    })?;
    let ssrcs = ids.chunks_exact(4).map(|c| read_u32(c, 0)).collect();
    let rest = body.get(needed..).unwrap_or_default();
    let reason = match rest.first() {
        None => None,
        Some(&len) => {
            let len = usize::from(len);
            let text = rest.get(1..1 + len).ok_or(RtpError::ByeReasonTruncated {
                declared: len,
                available: rest.len() - 1,
            })?;
            Some(text_lossy(text))
        }
    };
    Ok(RtcpPacket::Bye { ssrcs, reason })
}

/// Parses a compound RTCP packet (RFC 3550 §6.1): every packet must be
/// version 2 and lie wholly inside `data`; padding (on any packet) is checked
/// and removed. The "first packet is SR/RR" rule is not enforced, so
/// reduced-size RTCP (RFC 5506) is accepted.
pub fn parse_compound(data: &[u8]) -> Result<Vec<RtcpPacket>, RtpError> {
    if data.is_empty() {
        return Err(RtpError::EmptyCompound);
    }
    let mut packets = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let (Some(&first), Some(&packet_type)) = (rest.first(), rest.get(1)) else {
            return Err(RtpError::TooShort {
                what: "RTCP header",
                needed: 4,
                got: rest.len(),
            });
        };
        if rest.len() < 4 {
            return Err(RtpError::TooShort {
                what: "RTCP header",
                needed: 4,
                got: rest.len(),
            });
        }
        let version = first >> 6;
        if version != 2 {
            return Err(RtpError::BadVersion(version));
        }
        let count = first & 0x1f;
        let declared = 4 * (usize::from(read_u16(rest, 2)) + 1);
        let packet = rest.get(..declared).ok_or(RtpError::RtcpLength {
            packet_type,
            declared,
            available: rest.len(),
        })?;
        rest = rest.get(declared..).unwrap_or_default();
        let mut body = packet.get(4..).unwrap_or_default();
        if first & 0x20 != 0 {
            let pad = packet.last().copied().unwrap_or(0);
            if pad == 0 || usize::from(pad) > body.len() {
                return Err(RtpError::BadPadding {
                    count: pad,
                    available: body.len(),
                });
            }
            body = body
                .get(..body.len() - usize::from(pad))
                .unwrap_or_default();
        }
        packets.push(parse_one(packet_type, count, body)?);
    }
    Ok(packets)
}

fn parse_one(packet_type: u8, count: u8, body: &[u8]) -> Result<RtcpPacket, RtpError> {
    let n = usize::from(count);
    Ok(match packet_type {
        PT_SR => {
            if body.len() < 24 {
                return Err(RtpError::RtcpTruncated {
                    packet_type,
                    needed: 24,
                    got: body.len(),
                });
            }
            RtcpPacket::SenderReport(SenderReport {
                ssrc: read_u32(body, 0),
                ntp_timestamp: (u64::from(read_u32(body, 4)) << 32) | u64::from(read_u32(body, 8)),
                rtp_timestamp: read_u32(body, 12),
                packet_count: read_u32(body, 16),
                octet_count: read_u32(body, 20),
                reports: parse_blocks(packet_type, n, body, 24)?,
            })
        }
        PT_RR => {
            if body.len() < 4 {
                return Err(RtpError::RtcpTruncated {
                    packet_type,
                    needed: 4,
                    got: body.len(),
                });
            }
            RtcpPacket::ReceiverReport(ReceiverReport {
                ssrc: read_u32(body, 0),
                reports: parse_blocks(packet_type, n, body, 4)?,
            })
        }
        PT_SDES => parse_sdes(n, body)?,
        PT_BYE => parse_bye(n, body)?,
        _ => {
            let mut data = Vec::with_capacity(4 + body.len());
            data.push(0x80 | count);
            data.push(packet_type);
            let words = (4 + body.len()).div_ceil(4) - 1;
            data.extend_from_slice(&(words.min(0xffff) as u16).to_be_bytes());
            data.extend_from_slice(body);
            RtcpPacket::Other { packet_type, data }
        }
    })
}

/// Writes the 4-byte header of a packet whose body (written after it) is a
/// multiple of 4 bytes; [`finish`] fills in the length.
fn start(out: &mut Vec<u8>, count: usize, packet_type: u8) -> usize {
    let at = out.len();
    out.extend_from_slice(&[0x80 | (count.min(MAX_COUNT) as u8), packet_type, 0, 0]);
    at
}

fn finish(out: &mut [u8], at: usize) {
    let words = ((out.len() - at) / 4).saturating_sub(1).min(0xffff) as u16;
    if let Some(len) = out.get_mut(at + 2..at + 4) {
        len.copy_from_slice(&words.to_be_bytes());
    }
}

fn pad_to_word(out: &mut Vec<u8>, at: usize) {
    while !(out.len() - at).is_multiple_of(4) {
        out.push(0);
    }
}

/// Appends the packets as one compound packet (no padding unless an `Other`
/// body needs it to reach a 32-bit boundary).
pub fn write_compound(packets: &[RtcpPacket], out: &mut Vec<u8>) {
    for packet in packets {
        write_one(packet, out);
    }
}

fn write_one(packet: &RtcpPacket, out: &mut Vec<u8>) {
    match packet {
        RtcpPacket::SenderReport(sr) => {
            let blocks = sr
                .reports
                .get(..sr.reports.len().min(MAX_COUNT))
                .unwrap_or_default();
            let at = start(out, blocks.len(), PT_SR);
            out.extend_from_slice(&sr.ssrc.to_be_bytes());
            out.extend_from_slice(&sr.ntp_timestamp.to_be_bytes());
            out.extend_from_slice(&sr.rtp_timestamp.to_be_bytes());
            out.extend_from_slice(&sr.packet_count.to_be_bytes());
            out.extend_from_slice(&sr.octet_count.to_be_bytes());
            for b in blocks {
                write_block(b, out);
            }
            finish(out, at);
        }
        RtcpPacket::ReceiverReport(rr) => {
            let blocks = rr
                .reports
                .get(..rr.reports.len().min(MAX_COUNT))
                .unwrap_or_default();
            let at = start(out, blocks.len(), PT_RR);
            out.extend_from_slice(&rr.ssrc.to_be_bytes());
            for b in blocks {
                write_block(b, out);
            }
            finish(out, at);
        }
        RtcpPacket::Sdes(chunks) => {
            let chunks = chunks
                .get(..chunks.len().min(MAX_COUNT))
                .unwrap_or_default();
            let at = start(out, chunks.len(), PT_SDES);
            for (ssrc, items) in chunks {
                out.extend_from_slice(&ssrc.to_be_bytes());
                for (kind, text) in items.iter().filter(|(kind, _)| *kind != 0) {
                    let text = text_255(text);
                    out.push(*kind);
                    out.push(text.len() as u8);
                    out.extend_from_slice(text);
                }
                out.push(0);
                pad_to_word(out, at);
            }
            finish(out, at);
        }
        RtcpPacket::Bye { ssrcs, reason } => {
            let ssrcs = ssrcs.get(..ssrcs.len().min(MAX_COUNT)).unwrap_or_default();
            let at = start(out, ssrcs.len(), PT_BYE);
            for s in ssrcs {
                out.extend_from_slice(&s.to_be_bytes());
            }
            if let Some(reason) = reason {
                let text = text_255(reason);
                out.push(text.len() as u8);
                out.extend_from_slice(text);
                pad_to_word(out, at);
            }
            finish(out, at);
        }
        RtcpPacket::Other { packet_type, data } => {
            let count = data.first().map_or(0, |b| usize::from(b & 0x1f));
            let body = data.get(4..).unwrap_or_default();
            let body = body.get(..body.len().min(4 * 0xffff)).unwrap_or_default();
            let at = start(out, count, *packet_type);
            out.extend_from_slice(body);
            let pad = (4 - body.len() % 4) % 4;
            if pad > 0 {
                // Padding (RFC 3550 §6.4.1): zeros, the last octet counts them.
                if let Some(first) = out.get_mut(at) {
                    *first |= 0x20;
                }
                out.resize(out.len() + pad - 1, 0);
                out.push(pad as u8);
            }
            finish(out, at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(packets: &[RtcpPacket]) -> Vec<u8> {
        let mut out = Vec::new();
        write_compound(packets, &mut out);
        assert_eq!(parse_compound(&out).unwrap(), packets);
        out
    }

    fn block(ssrc: u32, lost: i32) -> ReportBlock {
        ReportBlock {
            ssrc,
            fraction_lost: 64,
            cumulative_lost: lost,
            highest_seq: 0x0001_0005,
            jitter: 37,
            last_sr: 0xb705_2000,
            delay_since_last_sr: 0x0005_4000,
        }
    }

    #[test]
    fn sender_report_bytes_and_round_trip() {
        let sr = RtcpPacket::SenderReport(SenderReport {
            ssrc: 0x1122_3344,
            ntp_timestamp: 0x83aa_7e80_8000_0000,
            rtp_timestamp: 160,
            packet_count: 50,
            octet_count: 8000,
            reports: vec![block(7, -1), block(8, 300)],
        });
        let out = roundtrip(std::slice::from_ref(&sr));
        // 4 header + 24 sender info + 2 × 24 blocks = 76 bytes = 19 words → length 18.
        assert_eq!(out.len(), 76);
        assert_eq!(out[..4], [0x82, 200, 0, 18]);
        assert_eq!(out[8..16], [0x83, 0xaa, 0x7e, 0x80, 0x80, 0, 0, 0]);
        // First block: fraction 64, cumulative lost -1 = 0xffffff.
        assert_eq!(out[28..36], [0, 0, 0, 7, 64, 0xff, 0xff, 0xff]);
        // Second block: 300 = 0x00012c.
        assert_eq!(out[56..60], [64, 0x00, 0x01, 0x2c]);
    }

    #[test]
    fn cumulative_lost_is_24_bit_signed() {
        let rr = |lost| {
            RtcpPacket::ReceiverReport(ReceiverReport {
                ssrc: 1,
                reports: vec![block(2, lost)],
            })
        };
        let mut out = Vec::new();
        write_compound(&[rr(-0x80_0000)], &mut out);
        assert_eq!(out[13..16], [0x80, 0, 0]);
        roundtrip(&[rr(-0x80_0000)]);
        roundtrip(&[rr(0x7f_ffff)]);
        // Out of range values are clamped.
        out.clear();
        write_compound(&[rr(10_000_000)], &mut out);
        assert_eq!(out[13..16], [0x7f, 0xff, 0xff]);
        out.clear();
        write_compound(&[rr(-10_000_000)], &mut out);
        let parsed = parse_compound(&out).unwrap();
        let RtcpPacket::ReceiverReport(r) = &parsed[0] else {
            panic!("{parsed:?}")
        };
        assert_eq!(r.reports[0].cumulative_lost, -0x80_0000);
    }

    #[test]
    fn rr_sdes_bye_compound() {
        let packets = vec![
            RtcpPacket::ReceiverReport(ReceiverReport {
                ssrc: 0xaabb_ccdd,
                reports: vec![],
            }),
            RtcpPacket::Sdes(vec![
                (0xaabb_ccdd, vec![(SDES_CNAME, "ab".into())]),
                (5, vec![]),
                (
                    6,
                    vec![
                        (SDES_CNAME, "user@host".into()),
                        (SDES_TOOL, "softline é".into()),
                    ],
                ),
            ]),
            RtcpPacket::Bye {
                ssrcs: vec![0xaabb_ccdd],
                reason: Some("bye".into()),
            },
        ];
        let out = roundtrip(&packets);
        // RR without blocks: 8 bytes, length 1.
        assert_eq!(out[..8], [0x80, 201, 0, 1, 0xaa, 0xbb, 0xcc, 0xdd]);
        // SDES, 3 chunks: [ssrc][1,2,'a','b'][0,pad×3] = 12; [5][0,0,0,0] = 8;
        // [6][1,9,user@host][6,11,"softline é"][0] = 4+11+13+1 → 32 (pad 3).
        assert_eq!(out[8..12], [0x83, 202, 0, 13]);
        assert_eq!(out[16..24], [1, 2, b'a', b'b', 0, 0, 0, 0]);
        assert_eq!(out[24..32], [0, 0, 0, 5, 0, 0, 0, 0]);
        // BYE: header, SSRC, [3,'b','y','e'] = 12 bytes, length 2.
        let bye = &out[out.len() - 12..];
        assert_eq!(
            bye,
            [0x81, 203, 0, 2, 0xaa, 0xbb, 0xcc, 0xdd, 3, b'b', b'y', b'e']
        );
        assert_eq!(out.len(), 8 + 56 + 12);
    }

    #[test]
    fn bye_without_reason_and_with_padding() {
        roundtrip(&[RtcpPacket::Bye {
            ssrcs: vec![1, 2],
            reason: None,
        }]);
        // RR + BYE whose padding (P bit, 4 bytes, last = 4) must be removed.
        let data = [
            0x80, 201, 0, 1, 0, 0, 0, 9, // RR
            0xa1, 203, 0, 2, 0, 0, 0, 9, 0, 0, 0, 4, // BYE ssrc 9 + 4 padding bytes
        ];
        assert_eq!(
            parse_compound(&data).unwrap()[1],
            RtcpPacket::Bye {
                ssrcs: vec![9],
                reason: None
            }
        );
        let mut bad = data;
        bad[19] = 9; // more padding than body
        assert_eq!(
            parse_compound(&bad),
            Err(RtpError::BadPadding {
                count: 9,
                available: 8
            })
        );
    }

    #[test]
    fn other_packets_keep_their_format_bits() {
        // PSFB (206) FMT 1 = PLI, sender SSRC 1, media SSRC 2.
        let pli = [0x81, 206, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2];
        let parsed = parse_compound(&pli).unwrap();
        assert_eq!(
            parsed,
            [RtcpPacket::Other {
                packet_type: 206,
                data: pli.to_vec()
            }]
        );
        let mut out = Vec::new();
        write_compound(&parsed, &mut out);
        assert_eq!(out, pli);
        // An APP packet padded to a 3-byte body round-trips through padding.
        let app = RtcpPacket::Other {
            packet_type: 204,
            data: vec![0x83, 204, 0, 1, b'x', b'y', b'z'],
        };
        let out = roundtrip(std::slice::from_ref(&app));
        assert_eq!(out, [0xa3, 204, 0, 1, b'x', b'y', b'z', 1]);
    }

    #[test]
    fn sdes_text_that_is_not_utf8_keeps_its_length() {
        let data = [0x81, 202, 0, 3, 0, 0, 0, 1, 1, 3, b'a', 0xe9, b'b', 0, 0, 0];
        assert_eq!(
            parse_compound(&data).unwrap(),
            [RtcpPacket::Sdes(vec![(1, vec![(1, "a?b".into())])])]
        );
        // Unterminated chunk: item runs to the end with no null item.
        let data = [0x81, 202, 0, 2, 0, 0, 0, 1, 1, 2, b'a', b'b'];
        assert_eq!(
            parse_compound(&data),
            Err(RtpError::SdesUnterminated { chunk: 0 })
        );
    }

    #[test]
    fn long_texts_are_truncated_on_char_boundaries() {
        let long = "é".repeat(200); // 400 bytes
        let mut out = Vec::new();
        write_compound(
            &[RtcpPacket::Bye {
                ssrcs: vec![],
                reason: Some(long),
            }],
            &mut out,
        );
        assert_eq!(out[4], 254);
        let parsed = parse_compound(&out).unwrap();
        assert_eq!(
            parsed,
            [RtcpPacket::Bye {
                ssrcs: vec![],
                reason: Some("é".repeat(127))
            }]
        );
    }

    #[test]
    fn truncation_is_an_error_or_a_shorter_compound() {
        let packets = vec![
            RtcpPacket::SenderReport(SenderReport {
                ssrc: 3,
                reports: vec![block(4, 5)],
                ..Default::default()
            }),
            RtcpPacket::Sdes(vec![(3, vec![(SDES_CNAME, "x@y".into())])]),
        ];
        let out = roundtrip(&packets);
        let boundary = 4 + 24 + 24;
        for cut in 0..out.len() {
            match parse_compound(&out[..cut]) {
                Ok(p) => {
                    assert_eq!(cut, boundary);
                    assert_eq!(p, packets[..1]);
                }
                Err(e) => assert!(cut != boundary, "{cut}: {e}"),
            }
        }
        assert_eq!(parse_compound(&[]), Err(RtpError::EmptyCompound));
        // The SR's count says 2 blocks but the length only holds one.
        let mut lying = out[..boundary].to_vec();
        lying[0] = 0x82;
        assert_eq!(
            parse_compound(&lying),
            Err(RtpError::RtcpTruncated {
                packet_type: 200,
                needed: 72,
                got: 48
            })
        );
        lying[0] = 0x42;
        assert_eq!(parse_compound(&lying), Err(RtpError::BadVersion(1)));
    }
}
