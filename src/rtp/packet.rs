//! RTP data packets (RFC 3550 §5.1, §5.3.1) and RTP/RTCP demultiplexing on one
//! port (RFC 5761 §4).

use thiserror::Error;

/// Length of the fixed RTP header.
pub const RTP_HEADER_LEN: usize = 12;

/// Why RTP, RTCP or telephone-event bytes were rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RtpError {
    /// Fewer bytes than the fixed part of the packet needs.
    #[error("{what} needs {needed} bytes, got {got}")]
    TooShort {
        what: &'static str,
        needed: usize,
        got: usize,
    },
    /// The version field is not 2.
    #[error("RTP/RTCP version {0}, expected 2")]
    BadVersion(u8),
    /// The padding count (last octet) is zero or larger than the bytes that can hold it.
    #[error("padding count {count} does not fit in the {available} bytes after the header")]
    BadPadding { count: u8, available: usize },
    /// The header extension declares more bytes than the packet holds.
    #[error("header extension declares {declared} bytes, {available} available")]
    ExtensionTruncated { declared: usize, available: usize },
    /// An RTCP packet's length field runs past the end of the compound packet.
    #[error("RTCP packet (type {packet_type}) declares {declared} bytes, {available} available")]
    RtcpLength {
        packet_type: u8,
        declared: usize,
        available: usize,
    },
    /// An RTCP packet's body is shorter than its count field requires.
    #[error("RTCP packet (type {packet_type}) needs {needed} body bytes for its count, has {got}")]
    RtcpTruncated {
        packet_type: u8,
        needed: usize,
        got: usize,
    },
    /// An SDES chunk runs out of bytes before its terminating null item.
    #[error("SDES chunk {chunk} is not terminated by a null item")]
    SdesUnterminated { chunk: usize },
    /// A BYE reason length runs past the end of the packet.
    #[error("BYE reason declares {declared} bytes, {available} available")]
    ByeReasonTruncated { declared: usize, available: usize },
    /// A compound RTCP packet with no packet in it.
    #[error("empty RTCP compound packet")]
    EmptyCompound,
}

/// One RTP packet (RFC 3550 §5.1). Padding is removed on parse and never written.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RtpPacket {
    pub marker: bool,
    /// 7 bits; higher bits are ignored by [`RtpPacket::write`].
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    /// At most 15 are written.
    pub csrc: Vec<u32>,
    /// Header extension (RFC 3550 §5.3.1): profile-defined 16 bits and the data,
    /// whose length is a multiple of 4 on parse (written zero-padded to one).
    pub extension: Option<(u16, Vec<u8>)>,
    pub payload: Vec<u8>,
}

fn be16(data: &[u8], at: usize) -> Option<u16> {
    let b = data.get(at..at + 2)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

fn be32(data: &[u8], at: usize) -> Option<u32> {
    let b = data.get(at..at + 4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

pub(crate) fn read_u16(data: &[u8], at: usize) -> u16 {
    be16(data, at).unwrap_or(0)
}

pub(crate) fn read_u32(data: &[u8], at: usize) -> u32 {
    be32(data, at).unwrap_or(0)
}

impl RtpPacket {
    /// Parses one RTP packet (RFC 3550 §5.1); the padding is checked and removed.
    pub fn parse(data: &[u8]) -> Result<Self, RtpError> {
        let mut packet = RtpPacket::default();
        packet.parse_into(data)?;
        Ok(packet)
    }

    /// Like [`RtpPacket::parse`] but reuses `self`'s vectors (no allocation
    /// once they have grown). On error `self` holds unspecified contents.
    pub fn parse_into(&mut self, data: &[u8]) -> Result<(), RtpError> {
        let too_short = |needed| RtpError::TooShort {
            what: "RTP header",
            needed,
            got: data.len(),
        };
        let first = *data.first().ok_or(too_short(RTP_HEADER_LEN))?;
        if data.len() < RTP_HEADER_LEN {
            return Err(too_short(RTP_HEADER_LEN));
        }
        let version = first >> 6;
        if version != 2 {
            return Err(RtpError::BadVersion(version));
        }
        let has_padding = first & 0x20 != 0;
        let has_extension = first & 0x10 != 0;
        let csrc_count = usize::from(first & 0x0f);
        let second = data.get(1).copied().unwrap_or(0);
        self.marker = second & 0x80 != 0;
        self.payload_type = second & 0x7f;
        self.sequence = read_u16(data, 2);
        self.timestamp = read_u32(data, 4);
        self.ssrc = read_u32(data, 8);

        let mut pos = RTP_HEADER_LEN + 4 * csrc_count;
        if data.len() < pos {
            return Err(too_short(pos));
        }
        self.csrc.clear();
        self.csrc
            .extend((0..csrc_count).map(|i| read_u32(data, RTP_HEADER_LEN + 4 * i)));

        if has_extension {
            if data.len() < pos + 4 {
                return Err(too_short(pos + 4));
            }
            let profile = read_u16(data, pos);
            let declared = 4 * usize::from(read_u16(data, pos + 2));
            pos += 4;
            let ext = data
                .get(pos..pos + declared)
                .ok_or(RtpError::ExtensionTruncated {
                    declared,
                    available: data.len() - pos,
                })?;
            match &mut self.extension {
                Some((p, bytes)) => {
                    *p = profile;
                    bytes.clear();
                    bytes.extend_from_slice(ext);
                }
                None => self.extension = Some((profile, ext.to_vec())),
            }
            pos += declared;
        } else {
            self.extension = None;
        }

        let mut end = data.len();
        if has_padding {
            let available = end - pos;
            let count = data.last().copied().unwrap_or(0);
            if count == 0 || usize::from(count) > available {
                return Err(RtpError::BadPadding { count, available });
            }
            end -= usize::from(count);
        }
        self.payload.clear();
        self.payload
            .extend_from_slice(data.get(pos..end).unwrap_or_default());
        Ok(())
    }

    /// Appends the packet to `out` (the caller clears a reused buffer).
    /// No padding is written; the extension data is zero-padded to a multiple of 4.
    pub fn write(&self, out: &mut Vec<u8>) {
        let csrc = self.csrc.get(..self.csrc.len().min(15)).unwrap_or_default();
        let mut first = 0x80 | csrc.len() as u8;
        if self.extension.is_some() {
            first |= 0x10;
        }
        out.push(first);
        out.push((u8::from(self.marker) << 7) | (self.payload_type & 0x7f));
        out.extend_from_slice(&self.sequence.to_be_bytes());
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        for c in csrc {
            out.extend_from_slice(&c.to_be_bytes());
        }
        if let Some((profile, data)) = &self.extension {
            let words = data.len().div_ceil(4).min(usize::from(u16::MAX));
            out.extend_from_slice(&profile.to_be_bytes());
            out.extend_from_slice(&(words as u16).to_be_bytes());
            let data = data.get(..data.len().min(4 * words)).unwrap_or_default();
            out.extend_from_slice(data);
            out.resize(out.len() + (4 * words - data.len()), 0);
        }
        out.extend_from_slice(&self.payload);
    }
}

/// RFC 5761 §4: on a port shared by RTP and RTCP, a packet whose second octet
/// (the RTCP packet type, or the RTP marker bit and payload type) is in
/// 192..=223 is RTCP. Packets shorter than 2 bytes are not RTCP.
pub fn is_rtcp(data: &[u8]) -> bool {
    matches!(data.get(1), Some(192..=223))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PCMU packet: V=2, no P/X/CC, M=1, PT=0, seq 0x1234, ts 0xdeadbeef,
    /// SSRC 0x01020304, payload 4 bytes.
    const PCMU: [u8; 16] = [
        0x80, 0x80, 0x12, 0x34, 0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04, 0xff, 0x7f, 0x00,
        0x55,
    ];

    #[test]
    fn parses_fixed_header_fields() {
        let p = RtpPacket::parse(&PCMU).unwrap();
        assert!(p.marker);
        assert_eq!(p.payload_type, 0);
        assert_eq!(p.sequence, 0x1234);
        assert_eq!(p.timestamp, 0xdead_beef);
        assert_eq!(p.ssrc, 0x0102_0304);
        assert!(p.csrc.is_empty());
        assert_eq!(p.extension, None);
        assert_eq!(p.payload, [0xff, 0x7f, 0x00, 0x55]);
        let mut out = Vec::new();
        p.write(&mut out);
        assert_eq!(out, PCMU);
    }

    #[test]
    fn csrc_extension_and_padding() {
        // V=2 P=1 X=1 CC=2; PT 8; two CSRCs; extension profile 0xBEDE, 1 word;
        // payload 3 bytes; padding 5 bytes (last = 5).
        let mut data = vec![0xb2, 0x08, 0x00, 0x01, 0, 0, 0, 160, 0xaa, 0xbb, 0xcc, 0xdd];
        data.extend_from_slice(&[0, 0, 0, 7, 0, 0, 0, 9]);
        data.extend_from_slice(&[0xbe, 0xde, 0x00, 0x01, 0x10, 0x42, 0x00, 0x00]);
        data.extend_from_slice(&[1, 2, 3]);
        data.extend_from_slice(&[0, 0, 0, 0, 5]);
        let p = RtpPacket::parse(&data).unwrap();
        assert!(!p.marker);
        assert_eq!(p.payload_type, 8);
        assert_eq!(p.timestamp, 160);
        assert_eq!(p.csrc, [7, 9]);
        assert_eq!(p.extension, Some((0xbede, vec![0x10, 0x42, 0, 0])));
        assert_eq!(p.payload, [1, 2, 3]);
        // Written back: same header with P cleared, no padding.
        let mut out = Vec::new();
        p.write(&mut out);
        assert_eq!(out[0], 0x92);
        assert_eq!(out[1..], data[1..data.len() - 5]);
        assert_eq!(RtpPacket::parse(&out).unwrap(), p);
    }

    #[test]
    fn padding_count_is_checked() {
        let mut data = PCMU.to_vec();
        data[0] |= 0x20;
        // Last byte 0x55 = 85 > 4 bytes after the header.
        assert_eq!(
            RtpPacket::parse(&data),
            Err(RtpError::BadPadding {
                count: 85,
                available: 4
            })
        );
        *data.last_mut().unwrap() = 0;
        assert_eq!(
            RtpPacket::parse(&data),
            Err(RtpError::BadPadding {
                count: 0,
                available: 4
            })
        );
        // Padding that eats the whole payload is fine.
        *data.last_mut().unwrap() = 4;
        assert!(RtpPacket::parse(&data).unwrap().payload.is_empty());
    }

    #[test]
    fn extension_is_padded_on_write() {
        let p = RtpPacket {
            payload_type: 96,
            extension: Some((0x1000, vec![1, 2, 3, 4, 5])),
            payload: vec![9],
            ..Default::default()
        };
        let mut out = Vec::new();
        p.write(&mut out);
        assert_eq!(out.len(), 12 + 4 + 8 + 1);
        assert_eq!(out[12..16], [0x10, 0x00, 0x00, 0x02]);
        let back = RtpPacket::parse(&out).unwrap();
        assert_eq!(back.extension, Some((0x1000, vec![1, 2, 3, 4, 5, 0, 0, 0])));
    }

    #[test]
    fn truncated_packets_are_errors() {
        for cut in 0..12 {
            assert!(matches!(
                RtpPacket::parse(&PCMU[..cut]),
                Err(RtpError::TooShort { needed: 12, .. })
            ));
        }
        let mut data = PCMU.to_vec();
        data[0] = 0x83; // 3 CSRCs = 24 bytes needed, 16 present
        assert!(matches!(
            RtpPacket::parse(&data),
            Err(RtpError::TooShort {
                needed: 24,
                got: 16,
                ..
            })
        ));
        data[0] = 0x90; // extension header at 12..16, declares 0xff7f words
        assert!(matches!(
            RtpPacket::parse(&data),
            Err(RtpError::ExtensionTruncated { available: 0, .. })
        ));
        data[0] = 0x40;
        assert_eq!(RtpPacket::parse(&data), Err(RtpError::BadVersion(1)));
    }

    #[test]
    fn parse_into_reuses_buffers() {
        let mut p = RtpPacket::default();
        p.parse_into(&PCMU).unwrap();
        let cap = p.payload.capacity();
        let ptr = p.payload.as_ptr();
        p.parse_into(&PCMU).unwrap();
        assert_eq!(p.payload.as_ptr(), ptr);
        assert_eq!(p.payload.capacity(), cap);
        assert_eq!(p, RtpPacket::parse(&PCMU).unwrap());
    }

    #[test]
    fn demux_by_rfc5761_packet_type_range() {
        // SR (200), RR (201), SDES (202), BYE (203), APP (204), RTPFB (205), PSFB (206).
        for pt in [192u8, 200, 201, 202, 203, 204, 205, 206, 223] {
            assert!(is_rtcp(&[0x80, pt]), "{pt}");
        }
        // RTP: PT 0 with and without marker, PT 96/127 with marker = 224/255.
        for b in [0u8, 0x80, 96, 127, 191, 224, 255] {
            assert!(!is_rtcp(&[0x80, b]), "{b}");
        }
        assert!(!is_rtcp(&[0x80]));
        assert!(!is_rtcp(&[]));
    }
}
