//! ITU-T G.711 µ-law and A-law, 8 kHz, one byte per sample.
//!
//! Encoding follows the segment/mantissa definition of G.711 applied to
//! 16-bit PCM (µ-law: 14-bit magnitude with bias 33, A-law: 13-bit with
//! 8 segments). Decoding uses 256-entry tables built at compile time from
//! the same definition. Decoders conceal lost frames with [`Plc`].

use super::{CodecError, CodecKind, Decoder, Encoder};
use crate::media::plc::Plc;

/// µ-law bias in the 16-bit domain (33 in the 14-bit domain of G.711).
const MU_BIAS: i32 = 0x84;
/// Largest magnitude µ-law can represent before the bias is added.
const MU_CLIP: i32 = 32635;

/// Encodes one 16-bit sample as µ-law.
pub fn linear_to_ulaw(sample: i16) -> u8 {
    let s = i32::from(sample);
    let (mag, mask) = if s < 0 { (-s, 0x7F) } else { (s, 0xFF) };
    let biased = mag.min(MU_CLIP) + MU_BIAS; // 132..=32767
    // Segment = position of the highest set bit above bit 7.
    let seg = (31 - biased.leading_zeros() as i32) - 7; // 0..=7
    let mantissa = (biased >> (seg + 3)) & 0x0F;
    (((seg << 4) | mantissa) as u8) ^ mask
}

const fn ulaw_decode(code: u8) -> i16 {
    let u = !code;
    let seg = ((u >> 4) & 0x07) as i32;
    let mantissa = (u & 0x0F) as i32;
    let t = ((mantissa << 3) + MU_BIAS) << seg;
    if u & 0x80 != 0 {
        (MU_BIAS - t) as i16
    } else {
        (t - MU_BIAS) as i16
    }
}

/// Encodes one 16-bit sample as A-law.
pub fn linear_to_alaw(sample: i16) -> u8 {
    let s = i32::from(sample);
    // Negative values are mapped with one's complement so that -1..-8 land
    // in the lowest step, as G.711 does for its 13-bit input.
    let (mag, mask) = if s >= 0 { (s, 0xD5) } else { (-s - 1, 0x55) };
    // Segment 0 and 1 share the step 16 (in the 16-bit domain); segment k>=1
    // spans [256 << (k-1), 256 << k).
    let seg = if mag < 256 {
        0
    } else {
        (31 - mag.leading_zeros() as i32) - 7 // 1..=7
    };
    let mantissa = if seg < 2 {
        (mag >> 4) & 0x0F
    } else {
        (mag >> (seg + 3)) & 0x0F
    };
    (((seg << 4) | mantissa) as u8) ^ mask
}

const fn alaw_decode(code: u8) -> i16 {
    let a = code ^ 0x55;
    let mantissa = ((a & 0x0F) as i32) << 4;
    let seg = ((a >> 4) & 0x07) as i32;
    let t = match seg {
        0 => mantissa + 8,
        1 => mantissa + 0x108,
        _ => (mantissa + 0x108) << (seg - 1),
    };
    if a & 0x80 != 0 { t as i16 } else { -t as i16 }
}

// Decoding tables, built at compile time.
const ULAW_TABLE: [i16; 256] = {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = ulaw_decode(i as u8);
        i += 1;
    }
    t
};
const ALAW_TABLE: [i16; 256] = {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = alaw_decode(i as u8);
        i += 1;
    }
    t
};

/// Decodes one µ-law byte.
#[inline]
pub fn ulaw_to_linear(code: u8) -> i16 {
    ULAW_TABLE[usize::from(code)]
}

/// Decodes one A-law byte.
#[inline]
pub fn alaw_to_linear(code: u8) -> i16 {
    ALAW_TABLE[usize::from(code)]
}

/// Which G.711 companding law.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Law {
    /// µ-law (PCMU, North America / Japan).
    Mu,
    /// A-law (PCMA, Europe / rest of the world).
    A,
}

impl Law {
    fn kind(self) -> CodecKind {
        match self {
            Law::Mu => CodecKind::Pcmu,
            Law::A => CodecKind::Pcma,
        }
    }
}

/// G.711 encoder; any number of samples makes a frame.
#[derive(Debug)]
pub struct G711Encoder {
    law: Law,
}

impl G711Encoder {
    pub fn new(law: Law) -> Self {
        G711Encoder { law }
    }
}

impl Encoder for G711Encoder {
    fn kind(&self) -> CodecKind {
        self.law.kind()
    }
    fn sample_rate(&self) -> u32 {
        8000
    }
    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<(), CodecError> {
        match self.law {
            Law::Mu => out.extend(pcm.iter().map(|&s| linear_to_ulaw(s))),
            Law::A => out.extend(pcm.iter().map(|&s| linear_to_alaw(s))),
        }
        Ok(())
    }
}

/// G.711 decoder with G.711 Appendix I style loss concealment.
#[derive(Debug)]
pub struct G711Decoder {
    law: Law,
    plc: Plc,
}

impl G711Decoder {
    pub fn new(law: Law) -> Self {
        G711Decoder {
            law,
            plc: Plc::new(8000),
        }
    }
}

impl Decoder for G711Decoder {
    fn kind(&self) -> CodecKind {
        self.law.kind()
    }
    fn sample_rate(&self) -> u32 {
        8000
    }
    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<(), CodecError> {
        let start = out.len();
        let table = match self.law {
            Law::Mu => &ULAW_TABLE,
            Law::A => &ALAW_TABLE,
        };
        out.extend(payload.iter().map(|&b| table[usize::from(b)]));
        self.plc.good_frame(&mut out[start..]);
        Ok(())
    }
    fn conceal(
        &mut self,
        samples: usize,
        _next: Option<&[u8]>,
        out: &mut Vec<i16>,
    ) -> Result<(), CodecError> {
        super::check_conceal(self.law.kind(), samples)?;
        self.plc.conceal(samples, out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::codec::testutil::{sine, snr_db, voiced};

    #[test]
    fn ulaw_decode_then_encode_is_identity_for_every_code_word() {
        for code in 0..=255u8 {
            let back = linear_to_ulaw(ulaw_to_linear(code));
            // 0x7F is "negative zero": it decodes to 0, which encodes as 0xFF.
            let expected = if code == 0x7F { 0xFF } else { code };
            assert_eq!(back, expected, "code {code:#04x}");
        }
    }

    #[test]
    fn alaw_decode_then_encode_is_identity_for_every_code_word() {
        for code in 0..=255u8 {
            assert_eq!(linear_to_alaw(alaw_to_linear(code)), code, "{code:#04x}");
        }
    }

    #[test]
    fn known_values() {
        // µ-law: zero is 0xFF, full scale 0x80/0x00, decoded peak ±32124.
        assert_eq!(linear_to_ulaw(0), 0xFF);
        assert_eq!(linear_to_ulaw(i16::MAX), 0x80);
        assert_eq!(linear_to_ulaw(i16::MIN), 0x00);
        assert_eq!(ulaw_to_linear(0x80), 32124);
        assert_eq!(ulaw_to_linear(0x00), -32124);
        assert_eq!(ulaw_to_linear(0xFF), 0);
        // 1000: biased 1132 = 0b100_0110_1100 -> segment 3, mantissa 0b0001.
        assert_eq!(linear_to_ulaw(1000), 0xCE); // !(0x31)
        assert_eq!(ulaw_to_linear(0xCE), 988); // ((1<<3)+132)<<3 - 132
        // A-law: zero is 0xD5 (decodes to +8), full scale 0xAA / 0x2A = ±32256.
        assert_eq!(linear_to_alaw(0), 0xD5);
        assert_eq!(alaw_to_linear(0xD5), 8);
        assert_eq!(linear_to_alaw(-1), 0x55);
        assert_eq!(alaw_to_linear(0x55), -8);
        assert_eq!(linear_to_alaw(i16::MAX), 0xAA);
        assert_eq!(linear_to_alaw(i16::MIN), 0x2A);
        assert_eq!(alaw_to_linear(0xAA), 32256);
        assert_eq!(alaw_to_linear(0x2A), -32256);
        // 1000: segment 2 ([512,1024)), mantissa (1000>>5)&15 = 15 -> 0x2F ^ 0xD5.
        assert_eq!(linear_to_alaw(1000), 0xFA);
        assert_eq!(alaw_to_linear(0xFA), 1008); // ((15<<4)+0x108)<<1
    }

    #[test]
    fn decoding_is_monotonic_and_odd_symmetric() {
        // Positive µ-law codes 0xFF..=0x80 decode in increasing order, and
        // each negative code mirrors its positive twin.
        let pos: Vec<i16> = (0x80..=0xFFu8).rev().map(ulaw_to_linear).collect();
        assert!(pos.windows(2).all(|w| w[0] < w[1]));
        for c in 0x80..=0xFFu8 {
            assert_eq!(ulaw_to_linear(c & 0x7F), -ulaw_to_linear(c));
            assert_eq!(alaw_to_linear(c & 0x7F), -alaw_to_linear(c));
        }
    }

    #[test]
    fn sine_1khz_snr_above_35_db() {
        // -6 dBFS 1 kHz tone, 1 s.
        let x = sine(1000.0, 8000, 16000.0, 8000);
        for law in [Law::Mu, Law::A] {
            let mut enc = G711Encoder::new(law);
            let mut dec = G711Decoder::new(law);
            let (mut bytes, mut y) = (Vec::new(), Vec::new());
            enc.encode(&x, &mut bytes).unwrap();
            dec.decode(&bytes, &mut y).unwrap();
            let snr = snr_db(&x, &y);
            // G.711's theoretical SNR is ~38 dB over most of its range.
            assert!(snr > 35.0, "{law:?}: {snr:.1} dB");
        }
    }

    #[test]
    fn decoder_conceals_a_lost_frame_through_the_trait() {
        // 150 Hz voiced signal through PCMU in 20 ms packets, packet 10 lost.
        let x = voiced(150.0, 8000, 4000);
        let (mut enc, mut dec) = (G711Encoder::new(Law::Mu), G711Decoder::new(Law::Mu));
        let (mut bytes, mut y, mut clean) = (Vec::new(), Vec::new(), Vec::new());
        for (i, f) in x.chunks(160).enumerate() {
            bytes.clear();
            enc.encode(f, &mut bytes).unwrap();
            clean.extend(bytes.iter().map(|&b| ulaw_to_linear(b)));
            if i == 10 {
                dec.conceal(160, Some(&[0xFF; 160]), &mut y).unwrap();
            } else {
                dec.decode(&bytes, &mut y).unwrap();
            }
        }
        assert_eq!(y.len(), x.len());
        let snr = snr_db(&clean[1600..1760], &y[1600..1760]);
        eprintln!("PCMU 20 ms loss: concealed SNR {snr:.1} dB (zero fill: 0 dB)");
        assert!(snr > 8.0, "{snr:.1} dB");
        // After the overlap-add (≤ 10 ms) decoding is exact again.
        assert_eq!(&clean[1840..], &y[1840..]);
    }
}
