//! RTP payload for redundant audio data, RED (RFC 2198).
//!
//! A RED payload is a chain of block headers followed by the blocks' data
//! (§3): each redundant block has a 4-byte header
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! |F|   block PT  |  timestamp offset         |   block length    |
//! ```
//!
//! with F = 1 (another header follows), the block's payload type, its
//! timestamp as an offset (14 bits) *before* the packet's RTP timestamp and
//! its length in bytes (10 bits); the last header is one byte, F = 0 and
//! the primary's payload type, whose data runs to the end of the payload.
//! Redundant blocks come oldest first, as RFC 2198 §3 recommends.
//!
//! Parsing borrows from the input and allocates nothing; blocks beyond
//! [`MAX_BLOCKS`] or lengths that run past the payload are errors, never
//! panics.

/// Largest timestamp offset a block header holds (14 bits).
pub const MAX_TIMESTAMP_OFFSET: u16 = (1 << 14) - 1;
/// Largest block length a block header holds (10 bits).
pub const MAX_BLOCK_LEN: usize = (1 << 10) - 1;
/// Redundant blocks accepted in one packet (we send one or two; a packet
/// with more is refused rather than walked without bound).
pub const MAX_BLOCKS: usize = 4;

/// Why a RED payload cannot be parsed or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedError {
    /// The headers run past the end of the payload (or it is empty).
    #[error("RED headers need {needed} bytes, got {got}")]
    TooShort { needed: usize, got: usize },
    /// The redundant blocks' lengths add up to more than the payload holds.
    #[error("RED blocks declare {declared} bytes, {available} available")]
    BlockOverrun { declared: usize, available: usize },
    /// More redundant blocks than [`MAX_BLOCKS`].
    #[error("more than {MAX_BLOCKS} redundant blocks")]
    TooManyBlocks,
    /// The primary block carries no data.
    #[error("RED primary block is empty")]
    EmptyPrimary,
    /// A field does not fit its header bits (writing only).
    #[error("RED {field} = {value} does not fit (at most {max})")]
    FieldTooLarge {
        field: &'static str,
        value: usize,
        max: usize,
    },
}

/// One block of a RED payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedBlock<'a> {
    /// Payload type of the block's data (7 bits).
    pub payload_type: u8,
    /// How far (in RTP clock units) the block's timestamp lies before the
    /// packet's; 0 for the primary.
    pub timestamp_offset: u16,
    pub data: &'a [u8],
}

impl RedBlock<'_> {
    /// The block's RTP timestamp in a packet stamped `packet_ts`.
    pub fn timestamp(&self, packet_ts: u32) -> u32 {
        packet_ts.wrapping_sub(u32::from(self.timestamp_offset))
    }
}

/// A parsed RED payload: redundant blocks (oldest first) and the primary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedPayload<'a> {
    blocks: [RedBlock<'a>; MAX_BLOCKS],
    count: usize,
    pub primary: RedBlock<'a>,
}

const EMPTY: RedBlock<'static> = RedBlock {
    payload_type: 0,
    timestamp_offset: 0,
    data: &[],
};

impl<'a> RedPayload<'a> {
    /// Parse a RED payload (the RTP payload of a packet whose type is the
    /// negotiated `red`).
    pub fn parse(data: &'a [u8]) -> Result<RedPayload<'a>, RedError> {
        let mut blocks = [EMPTY; MAX_BLOCKS];
        let mut count = 0;
        let mut at = 0;
        let mut lens = [0usize; MAX_BLOCKS];
        // Headers.
        let primary_pt = loop {
            let first = *data.get(at).ok_or(RedError::TooShort {
                needed: at + 1,
                got: data.len(),
            })?;
            if first & 0x80 == 0 {
                at += 1;
                break first & 0x7f;
            }
            let h = data.get(at..at + 4).ok_or(RedError::TooShort {
                needed: at + 4,
                got: data.len(),
            })?;
            if count == MAX_BLOCKS {
                return Err(RedError::TooManyBlocks);
            }
            let word = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
            blocks[count] = RedBlock {
                payload_type: (h[0] & 0x7f),
                timestamp_offset: ((word >> 10) & u32::from(MAX_TIMESTAMP_OFFSET)) as u16,
                data: &[],
            };
            lens[count] = (word & MAX_BLOCK_LEN as u32) as usize;
            count += 1;
            at += 4;
        };
        // Data, in header order; the primary takes the rest.
        let declared: usize = lens[..count].iter().sum();
        let available = data.len() - at;
        if declared > available {
            return Err(RedError::BlockOverrun {
                declared,
                available,
            });
        }
        for (b, len) in blocks[..count].iter_mut().zip(lens) {
            b.data = data.get(at..at + len).unwrap_or_default();
            at += len;
        }
        let rest = data.get(at..).unwrap_or_default();
        if rest.is_empty() {
            return Err(RedError::EmptyPrimary);
        }
        Ok(RedPayload {
            blocks,
            count,
            primary: RedBlock {
                payload_type: primary_pt,
                timestamp_offset: 0,
                data: rest,
            },
        })
    }

    /// The redundant blocks, oldest first as they were sent.
    pub fn redundant(&self) -> &[RedBlock<'a>] {
        self.blocks.get(..self.count).unwrap_or_default()
    }
}

/// Append a RED payload to `out`: `redundant` blocks (oldest first) and
/// the primary. On error `out` is unchanged.
pub fn write_red(
    redundant: &[RedBlock<'_>],
    primary_pt: u8,
    primary: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), RedError> {
    let too_large =
        |field, value: usize, max: usize| Err(RedError::FieldTooLarge { field, value, max });
    if redundant.len() > MAX_BLOCKS {
        return Err(RedError::TooManyBlocks);
    }
    for b in redundant.iter().chain([&RedBlock {
        payload_type: primary_pt,
        timestamp_offset: 0,
        data: primary,
    }]) {
        if b.payload_type > 0x7f {
            return too_large("payload type", b.payload_type.into(), 0x7f);
        }
        if b.timestamp_offset > MAX_TIMESTAMP_OFFSET {
            return too_large(
                "timestamp offset",
                b.timestamp_offset.into(),
                MAX_TIMESTAMP_OFFSET.into(),
            );
        }
    }
    if let Some(b) = redundant.iter().find(|b| b.data.len() > MAX_BLOCK_LEN) {
        return too_large("block length", b.data.len(), MAX_BLOCK_LEN);
    }
    if primary.is_empty() {
        return Err(RedError::EmptyPrimary);
    }
    for b in redundant {
        let word = 0x8000_0000
            | u32::from(b.payload_type) << 24
            | u32::from(b.timestamp_offset) << 10
            | b.data.len() as u32;
        out.extend_from_slice(&word.to_be_bytes());
    }
    out.push(primary_pt);
    for b in redundant {
        out.extend_from_slice(b.data);
    }
    out.extend_from_slice(primary);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(pt: u8, off: u16, data: &[u8]) -> RedBlock<'_> {
        RedBlock {
            payload_type: pt,
            timestamp_offset: off,
            data,
        }
    }

    #[test]
    fn pack_and_unpack_round_trip_with_the_rfc_layout() {
        let (old, prev, now) = ([1u8, 2, 3], [4u8, 5], [6u8, 7, 8, 9]);
        let mut out = Vec::new();
        write_red(
            &[block(111, 1920, &old), block(111, 960, &prev)],
            111,
            &now,
            &mut out,
        )
        .unwrap();
        // F=1 | PT 111, offset 1920 (14 bits), length 3 (10 bits) ...
        let w1 = 0x8000_0000u32 | 111 << 24 | 1920 << 10 | 3;
        let w2 = 0x8000_0000u32 | 111 << 24 | 960 << 10 | 2;
        let mut expect = w1.to_be_bytes().to_vec();
        expect.extend(w2.to_be_bytes());
        expect.push(111);
        expect.extend([1, 2, 3, 4, 5, 6, 7, 8, 9]);
        assert_eq!(out, expect);
        let p = RedPayload::parse(&out).unwrap();
        assert_eq!(
            p.redundant(),
            [block(111, 1920, &old), block(111, 960, &prev)]
        );
        assert_eq!(p.primary, block(111, 0, &now));
        assert_eq!(p.redundant()[1].timestamp(1000), 40);
        // Primary only: one header byte.
        out.clear();
        write_red(&[], 96, &now, &mut out).unwrap();
        assert_eq!(out, [96, 6, 7, 8, 9]);
        let p = RedPayload::parse(&out).unwrap();
        assert!(p.redundant().is_empty());
        assert_eq!(p.primary, block(96, 0, &now));
    }

    #[test]
    fn header_fields_at_and_past_their_limits() {
        let big = vec![0xAB; MAX_BLOCK_LEN];
        let mut out = Vec::new();
        write_red(
            &[block(127, MAX_TIMESTAMP_OFFSET, &big)],
            127,
            &[1],
            &mut out,
        )
        .unwrap();
        assert_eq!(&out[..5], [0xFF, 0xFF, 0xFF, 0xFF, 0x7F]);
        let p = RedPayload::parse(&out).unwrap();
        assert_eq!(p.redundant(), [block(127, MAX_TIMESTAMP_OFFSET, &big)]);
        let mut out = Vec::new();
        let too_long = vec![0; MAX_BLOCK_LEN + 1];
        assert_eq!(
            write_red(&[block(111, 960, &too_long)], 111, &[1], &mut out),
            Err(RedError::FieldTooLarge {
                field: "block length",
                value: 1024,
                max: 1023
            })
        );
        assert_eq!(
            write_red(&[block(111, 16384, &[1])], 111, &[1], &mut out),
            Err(RedError::FieldTooLarge {
                field: "timestamp offset",
                value: 16384,
                max: 16383
            })
        );
        assert_eq!(
            write_red(&[], 128, &[1], &mut out),
            Err(RedError::FieldTooLarge {
                field: "payload type",
                value: 128,
                max: 127
            })
        );
        assert_eq!(
            write_red(&[block(111, 960, &[1])], 111, &[], &mut out),
            Err(RedError::EmptyPrimary)
        );
        assert!(out.is_empty());
    }

    #[test]
    fn malformed_payloads_are_errors() {
        assert_eq!(
            RedPayload::parse(&[]),
            Err(RedError::TooShort { needed: 1, got: 0 })
        );
        // A redundant header cut short, and no final header.
        assert_eq!(
            RedPayload::parse(&[0xEF, 0x0F]),
            Err(RedError::TooShort { needed: 4, got: 2 })
        );
        assert_eq!(
            RedPayload::parse(&[0xEF, 0x0F, 0x00, 0x01]),
            Err(RedError::TooShort { needed: 5, got: 4 })
        );
        // A block length past the end.
        assert_eq!(
            RedPayload::parse(&[0xEF, 0x0F, 0x00, 0x05, 0x6F, 1, 2]),
            Err(RedError::BlockOverrun {
                declared: 5,
                available: 2
            })
        );
        // Blocks that leave nothing for the primary.
        assert_eq!(
            RedPayload::parse(&[0xEF, 0x0F, 0x00, 0x02, 0x6F, 1, 2]),
            Err(RedError::EmptyPrimary)
        );
        let mut many = [0xEF, 0x0F, 0x00, 0x00].repeat(MAX_BLOCKS + 1);
        many.extend([0x6F, 1]);
        assert_eq!(RedPayload::parse(&many), Err(RedError::TooManyBlocks));
    }
}
