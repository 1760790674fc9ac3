//! Opus (RFC 6716) through libopus: 48 kHz mono, VoIP application.
//!
//! Encoder frames must be 2.5, 5, 10, 20, 40 or 60 ms (the phone uses 20 ms).
//! `conceal` runs libopus' PLC, or decodes the in-band FEC (LBRR) carried in
//! the next packet when the caller has it.
//!
//! libopus is 1.6, built from source by `opusic-sys` with OSCE, which also
//! compiles its deep PLC; the decoder turns both on through its complexity
//! ([`DECODER_COMPLEXITY`]). `opusic-c` is the safe API over it; its sample
//! type is `u16`, so PCM is cast to and from `i16` in place (bytemuck).

use super::{CodecError, CodecKind, CodecOptions, Decoder, Encoder};
use opusic_c::{Application, Bandwidth, Bitrate, Channels, ErrorCode, InbandFec, SampleRate};

const RATE: u32 = 48_000;
/// Largest payload libopus produces for one packet (RFC 6716 §3.2.1: 1275
/// bytes per frame; 3 frames of 20 ms fit a 60 ms packet) plus headroom.
const MAX_PACKET: usize = 4000;
/// Largest packet duration: 120 ms at 48 kHz.
const MAX_SAMPLES: usize = 5760;
/// 2.5 ms at 48 kHz: every Opus duration is a multiple.
const QUANTUM: usize = 120;

/// The decoder's complexity: 5 and above run libopus' deep PLC for lost
/// frames, 7 and above NoLACE, which enhances SILK-coded speech. Measured
/// offline on the bench speech at 24 kbit/s (docs/benchmarks.md): clean
/// PESQ 3.96 → 4.10 and 10 % loss with in-band FEC 2.24 → 2.45 (mean of 3
/// seeds) against complexity 0, for about 0.36 % of a core more decoding.
pub const DECODER_COMPLEXITY: u8 = 7;

/// A libopus call and the error it returned.
fn opus_err(function: &'static str) -> impl Fn(ErrorCode) -> CodecError {
    move |code| CodecError::Opus { function, code }
}

/// Opus encoder.
pub struct OpusEncoder {
    enc: opusic_c::Encoder,
    fec: bool,
    /// The loss rate libopus plans for now (`set_packet_loss_perc`).
    expected_loss: u8,
}

impl std::fmt::Debug for OpusEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OpusEncoder")
    }
}

impl OpusEncoder {
    pub fn new(opts: &CodecOptions) -> Result<Self, CodecError> {
        let bad = |option, value: u32, expected| CodecError::BadOption {
            kind: CodecKind::Opus,
            option,
            value,
            expected,
        };
        if !(6_000..=510_000).contains(&opts.opus_bitrate) {
            return Err(bad("opus_bitrate", opts.opus_bitrate, "6000..=510000"));
        }
        if opts.opus_expected_loss_pct > 100 {
            return Err(bad(
                "opus_expected_loss_pct",
                u32::from(opts.opus_expected_loss_pct),
                "0..=100",
            ));
        }
        let mut enc =
            opusic_c::Encoder::new(Channels::Mono, SampleRate::Hz48000, Application::Voip)
                .map_err(opus_err("opus_encoder_create"))?;
        enc.set_bitrate(Bitrate::Value(opts.opus_bitrate))
            .map_err(opus_err("OPUS_SET_BITRATE"))?;
        // Mode 1: libopus moves to SILK (which carries the FEC) when the
        // planned loss calls for it.
        let fec = if opts.opus_fec {
            InbandFec::Mode1
        } else {
            InbandFec::Off
        };
        enc.set_inband_fec(fec)
            .map_err(opus_err("OPUS_SET_INBAND_FEC"))?;
        enc.set_packet_loss(opts.opus_expected_loss_pct)
            .map_err(opus_err("OPUS_SET_PACKET_LOSS_PERC"))?;
        enc.set_dtx(opts.opus_dtx)
            .map_err(opus_err("OPUS_SET_DTX"))?;
        enc.set_max_bandwidth(max_bandwidth(opts.opus_max_playback_rate))
            .map_err(opus_err("OPUS_SET_MAX_BANDWIDTH"))?;
        Ok(OpusEncoder {
            enc,
            fec: opts.opus_fec,
            expected_loss: opts.opus_expected_loss_pct,
        })
    }
}

/// The widest Opus audio bandwidth a receiver rendering at most `rate` Hz
/// can use (RFC 7587 §6.1 maps `maxplaybackrate` so: up to 8000 Hz
/// narrowband, 12000 mediumband, 16000 wideband, 24000 super-wideband).
pub fn max_bandwidth(rate: u32) -> Bandwidth {
    match rate {
        0..=8_000 => Bandwidth::Narrow,
        8_001..=12_000 => Bandwidth::Medium,
        12_001..=16_000 => Bandwidth::Wide,
        16_001..=24_000 => Bandwidth::Superwide,
        _ => Bandwidth::Full,
    }
}

impl Encoder for OpusEncoder {
    fn kind(&self) -> CodecKind {
        CodecKind::Opus
    }
    fn sample_rate(&self) -> u32 {
        RATE
    }
    fn set_expected_loss(&mut self, pct: u8) -> Result<(), CodecError> {
        let pct = pct.min(100);
        if !self.fec || pct == self.expected_loss {
            return Ok(());
        }
        self.enc
            .set_packet_loss(pct)
            .map_err(opus_err("OPUS_SET_PACKET_LOSS_PERC"))?;
        self.expected_loss = pct;
        Ok(())
    }
    fn expected_loss(&self) -> Option<u8> {
        self.fec.then_some(self.expected_loss)
    }
    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<(), CodecError> {
        if !matches!(pcm.len(), 120 | 240 | 480 | 960 | 1920 | 2880) {
            return Err(CodecError::BadFrameSize {
                kind: CodecKind::Opus,
                samples: pcm.len(),
                expected: "2.5, 5, 10, 20, 40 or 60 ms at 48 kHz",
            });
        }
        let start = out.len();
        out.resize(start + MAX_PACKET, 0);
        let pcm: &[u16] = bytemuck::cast_slice(pcm);
        match self.enc.encode_to_slice(pcm, &mut out[start..]) {
            Ok(n) => {
                out.truncate(start + n);
                Ok(())
            }
            Err(e) => {
                out.truncate(start);
                Err(opus_err("opus_encode")(e))
            }
        }
    }
}

/// Opus decoder with libopus PLC and FEC.
pub struct OpusDecoder {
    dec: opusic_c::Decoder,
    /// Lost frames rebuilt from the LBRR copy in the following packet.
    fec_frames: u64,
}

impl std::fmt::Debug for OpusDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OpusDecoder")
    }
}

impl OpusDecoder {
    pub fn new(_opts: &CodecOptions) -> Result<Self, CodecError> {
        let mut dec = opusic_c::Decoder::new(Channels::Mono, SampleRate::Hz48000)
            .map_err(opus_err("opus_decoder_create"))?;
        dec.set_complexity(DECODER_COMPLEXITY)
            .map_err(opus_err("OPUS_SET_COMPLEXITY"))?;
        Ok(OpusDecoder { dec, fec_frames: 0 })
    }

    fn run(
        &mut self,
        input: &[u8],
        samples: usize,
        fec: bool,
        out: &mut Vec<i16>,
    ) -> Result<(), CodecError> {
        let start = out.len();
        out.resize(start + samples, 0);
        let buf: &mut [u16] = bytemuck::cast_slice_mut(&mut out[start..]);
        match self.dec.decode_to_slice(input, buf, fec) {
            Ok(n) => {
                out.truncate(start + n.min(samples));
                Ok(())
            }
            Err(e) => {
                out.truncate(start);
                Err(opus_err("opus_decode")(e))
            }
        }
    }
}

impl Decoder for OpusDecoder {
    fn kind(&self) -> CodecKind {
        CodecKind::Opus
    }
    fn sample_rate(&self) -> u32 {
        RATE
    }
    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<(), CodecError> {
        if payload.is_empty() {
            // RFC 6716 §3.4 [R1]: a packet has at least one byte. (libopus
            // would take an empty input as "run PLC".)
            return Err(CodecError::InvalidPayload {
                kind: CodecKind::Opus,
                reason: "empty packet",
            });
        }
        self.run(payload, MAX_SAMPLES, false, out)
    }

    fn conceal(
        &mut self,
        samples: usize,
        next: Option<&[u8]>,
        out: &mut Vec<i16>,
    ) -> Result<(), CodecError> {
        if samples == 0 {
            return Ok(());
        }
        super::check_conceal(CodecKind::Opus, samples)?;
        if !samples.is_multiple_of(QUANTUM) {
            return Err(CodecError::BadFrameSize {
                kind: CodecKind::Opus,
                samples,
                expected: "a multiple of 2.5 ms at 48 kHz",
            });
        }
        match next {
            // libopus decodes the LBRR copy of the lost frame that `next`
            // carries (running its PLC for any part of `samples` before it).
            Some(p) if has_lbrr(p) => {
                self.run(p, samples, true, out)?;
                self.fec_frames += 1;
                Ok(())
            }
            _ => self.run(&[], samples, false, out),
        }
    }

    fn fec_frames(&self) -> u64 {
        self.fec_frames
    }
}

/// The first frame of an Opus packet (RFC 6716 §3.2), `None` when the
/// framing is malformed.
fn first_frame(packet: &[u8]) -> Option<&[u8]> {
    let toc = *packet.first()?;
    let rest = packet.get(1..)?;
    // A frame length of one or two bytes (§3.2.1).
    let frame_len = |b: &[u8]| -> Option<(usize, usize)> {
        let b0 = usize::from(*b.first()?);
        if b0 < 252 {
            Some((b0, 1))
        } else {
            Some((b0 + 4 * usize::from(*b.get(1)?), 2))
        }
    };
    match toc & 3 {
        0 => Some(rest),
        1 => rest.get(..rest.len() / 2),
        2 => {
            let (len, used) = frame_len(rest)?;
            rest.get(used..used + len)
        }
        _ => {
            let fc = *rest.first()?;
            let (vbr, padded, count) = (fc & 0x80 != 0, fc & 0x40 != 0, usize::from(fc & 0x3f));
            if count == 0 {
                return None;
            }
            let mut pos = 1;
            let mut padding = 0usize;
            if padded {
                loop {
                    let b = *rest.get(pos)?;
                    pos += 1;
                    padding += if b == 255 { 254 } else { usize::from(b) };
                    if b != 255 {
                        break;
                    }
                }
            }
            if vbr {
                let (len, _) = frame_len(rest.get(pos..)?)?;
                // Skip the other length fields (frames 2..count-1).
                let mut at = pos;
                for _ in 0..count - 1 {
                    let (_, used) = frame_len(rest.get(at..)?)?;
                    at += used;
                }
                rest.get(at..at + len)
            } else {
                let data = rest.len().checked_sub(pos + padding)?;
                rest.get(pos..pos + data / count)
            }
        }
    }
}

/// The start of RFC 6716's range decoder (§4.1), enough to read the SILK
/// header flags, which are coded with probability 1/2 each.
struct RangeBits<'a> {
    data: &'a [u8],
    pos: usize,
    rng: u32,
    val: u32,
    rem: u32,
}

impl<'a> RangeBits<'a> {
    fn new(data: &'a [u8]) -> Self {
        let b0 = u32::from(data.first().copied().unwrap_or(0));
        let mut d = RangeBits {
            data,
            pos: 1,
            rng: 128,
            val: 127 - (b0 >> 1),
            rem: b0,
        };
        d.normalize();
        d
    }

    fn byte(&mut self) -> u32 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        u32::from(b)
    }

    fn normalize(&mut self) {
        while self.rng <= 1 << 23 {
            self.rng <<= 8;
            let sym = self.rem;
            self.rem = self.byte();
            let sym = ((sym << 8) | self.rem) >> 1;
            self.val = ((self.val << 8) + (255 & !sym)) & 0x7fff_ffff;
        }
    }

    /// One bit whose probability of being 1 is 1/2 (`ec_dec_bit_logp(1)`).
    fn half_bit(&mut self) -> bool {
        let s = self.rng >> 1;
        let one = self.val < s;
        if one {
            self.rng = s;
        } else {
            self.val -= s;
            self.rng -= s;
        }
        self.normalize();
        one
    }
}

/// True when `packet` carries in-band FEC (SILK LBRR data) for the frame
/// before it: SILK or hybrid mode with an LBRR flag set in the first frame's
/// header (RFC 6716 §4.2.3-4.2.4). (libopus has `opus_packet_has_lbrr`
/// since 1.5; the safe API over it does not offer it.)
pub fn has_lbrr(packet: &[u8]) -> bool {
    let Some(&toc) = packet.first() else {
        return false;
    };
    let config = toc >> 3;
    let silk_frames = match config {
        // SILK-only: 10, 20, 40, 60 ms → 1, 1, 2, 3 SILK frames.
        0..=11 => match config % 4 {
            0 | 1 => 1,
            2 => 2,
            _ => 3,
        },
        // Hybrid: one SILK frame.
        12..=15 => 1,
        // CELT-only has no LBRR.
        _ => return false,
    };
    let channels = if toc & 0x04 != 0 { 2 } else { 1 };
    let Some(frame) = first_frame(packet).filter(|f| !f.is_empty()) else {
        return false;
    };
    let mut rd = RangeBits::new(frame);
    let mut lbrr = false;
    for _ in 0..channels {
        for _ in 0..silk_frames {
            rd.half_bit(); // VAD flag
        }
        lbrr |= rd.half_bit();
    }
    lbrr
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::codec::testutil::{aligned_snr, best_lag, sine, snr_db, speechlike};

    const FRAME: usize = 960; // 20 ms

    fn encode_all(x: &[i16], opts: &CodecOptions) -> Vec<Vec<u8>> {
        let mut enc = OpusEncoder::new(opts).unwrap();
        x.chunks(FRAME)
            .map(|f| {
                let mut p = Vec::new();
                enc.encode(f, &mut p).unwrap();
                p
            })
            .collect()
    }

    /// Audio bandwidth of an Opus packet from its TOC byte (RFC 6716
    /// §3.1), in Hz of audio: 4000 narrowband … 20000 fullband.
    fn toc_bandwidth_hz(packet: &[u8]) -> u32 {
        let config = packet[0] >> 3;
        match config {
            0..=3 | 16..=19 => 4000,
            4..=7 => 6000,
            8..=11 | 20..=23 => 8000,
            12..=13 | 24..=27 => 12000,
            _ => 20000,
        }
    }

    #[test]
    fn max_playback_rate_caps_the_audio_bandwidth() {
        // White noise at 48 kHz: the encoder would use all it may.
        let mut seed = 0x2545_f491_u32;
        let noise: Vec<i16> = (0..RATE as usize)
            .map(|_| {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                ((seed >> 16) as i16) / 4
            })
            .collect();
        let widest = |rate: u32| {
            let opts = CodecOptions {
                opus_bitrate: 64_000,
                opus_max_playback_rate: rate,
                ..CodecOptions::default()
            };
            encode_all(&noise, &opts)
                .iter()
                .map(|p| toc_bandwidth_hz(p))
                .max()
                .unwrap()
        };
        assert_eq!(widest(8_000), 4000);
        assert_eq!(widest(16_000), 8000);
        assert!(widest(48_000) > 8000, "{}", widest(48_000));
    }

    #[test]
    fn tone_440hz_round_trip() {
        let x = sine(440.0, RATE, 10000.0, RATE as usize); // 1 s
        let packets = encode_all(&x, &CodecOptions::default());
        assert_eq!(packets.len(), 50);
        let mut dec = OpusDecoder::new(&CodecOptions::default()).unwrap();
        let mut y = Vec::new();
        for p in &packets {
            assert!(p.len() < 200, "{} bytes at 24 kbit/s", p.len());
            dec.decode(p, &mut y).unwrap();
        }
        assert_eq!(y.len(), x.len());
        // libopus' VoIP mode delays by 6.5 ms (312 samples); a tone's
        // correlation repeats every period (109 samples), so search one
        // period around it.
        let lag = best_lag(&x[..24000], &y, 260..=368);
        let snr = aligned_snr(&x, &y, lag, 4800);
        eprintln!("opus 440 Hz: delay {lag} samples, SNR {snr:.1} dB");
        assert!(snr > 15.0, "SNR {snr:.1} dB");
    }

    #[test]
    fn fec_recovers_a_lost_frame_better_than_plc() {
        // A gliding tone is hard to extrapolate, so PLC alone suffers.
        let n = RATE as usize;
        let x: Vec<i16> = (0..n)
            .map(|i| {
                let t = i as f64 / f64::from(RATE);
                // 300 -> 700 Hz sweep: phase 2π(300 t + 200 t²).
                (8000.0 * (2.0 * std::f64::consts::PI * (300.0 * t + 200.0 * t * t)).sin()) as i16
            })
            .collect();
        let opts = CodecOptions {
            opus_expected_loss_pct: 20,
            ..CodecOptions::default()
        };
        let packets = encode_all(&x, &opts);
        let lost = 25; // the frame at 500 ms
        let decode_with = |use_fec: bool| {
            let mut dec = OpusDecoder::new(&opts).unwrap();
            let mut y = Vec::new();
            for (i, p) in packets.iter().enumerate() {
                if i == lost {
                    let next = if use_fec {
                        packets.get(i + 1).map(Vec::as_slice)
                    } else {
                        None
                    };
                    dec.conceal(FRAME, next, &mut y).unwrap();
                } else {
                    dec.decode(p, &mut y).unwrap();
                }
            }
            y
        };
        let clean = {
            let mut dec = OpusDecoder::new(&opts).unwrap();
            let mut y = Vec::new();
            for p in &packets {
                dec.decode(p, &mut y).unwrap();
            }
            y
        };
        let (fec, plc) = (decode_with(true), decode_with(false));
        let span = lost * FRAME..(lost + 1) * FRAME;
        let snr_fec = snr_db(&clean[span.clone()], &fec[span.clone()]);
        let snr_plc = snr_db(&clean[span.clone()], &plc[span.clone()]);
        eprintln!("lost 20 ms vs clean decode: FEC {snr_fec:.1} dB, PLC {snr_plc:.1} dB");
        assert!(
            snr_fec > snr_plc + 3.0,
            "FEC {snr_fec:.1} dB, PLC {snr_plc:.1} dB"
        );
        assert!(snr_fec > 5.0);
    }

    #[test]
    fn bad_frame_sizes_and_garbage_are_errors_not_panics() {
        let mut enc = OpusEncoder::new(&CodecOptions::default()).unwrap();
        let err = enc.encode(&[0; 100], &mut Vec::new()).unwrap_err();
        assert!(matches!(err, CodecError::BadFrameSize { samples: 100, .. }));
        let mut dec = OpusDecoder::new(&CodecOptions::default()).unwrap();
        let mut out = Vec::new();
        assert!(dec.decode(&[], &mut out).is_err());
        assert!(dec.conceal(100, None, &mut out).is_err());
        // Code 3 packet (TOC 0x03) with a truncated frame count byte.
        let err = dec.decode(&[0x03], &mut out).unwrap_err();
        assert!(matches!(err, CodecError::Opus { .. }), "{err}");
        assert!(out.is_empty());
        // Random bytes: each either decodes or errors.
        let mut s = 0x1234_5678u32;
        for len in 1..200 {
            let p: Vec<u8> = (0..len)
                .map(|_| {
                    s ^= s << 13;
                    s ^= s >> 17;
                    s ^= s << 5;
                    s as u8
                })
                .collect();
            let before = out.len();
            if dec.decode(&p, &mut out).is_ok() {
                assert!(out.len() - before <= MAX_SAMPLES);
            } else {
                assert_eq!(out.len(), before);
            }
        }
        let bad = OpusEncoder::new(&CodecOptions {
            opus_bitrate: 1000,
            ..CodecOptions::default()
        })
        .unwrap_err();
        assert_eq!(
            bad.to_string(),
            "opus: option opus_bitrate = 1000 is out of range (6000..=510000)"
        );
    }

    fn voiced_packets(opts: &CodecOptions) -> Vec<Vec<u8>> {
        encode_all(&speechlike(RATE, RATE as usize), opts)
    }

    #[test]
    fn lbrr_is_seen_exactly_when_the_encoder_plans_for_loss() {
        let with = |loss, fec| CodecOptions {
            opus_expected_loss_pct: loss,
            opus_fec: fec,
            ..CodecOptions::default()
        };
        let planned = voiced_packets(&with(10, true));
        let flagged = planned.iter().filter(|p| has_lbrr(p)).count();
        // All but the first and those around the envelope's zeros (SILK
        // codes LBRR for active speech only).
        assert!(flagged >= 35, "{flagged} of 50 packets carry LBRR");
        assert!(!voiced_packets(&with(0, true)).iter().any(|p| has_lbrr(p)));
        assert!(!voiced_packets(&with(10, false)).iter().any(|p| has_lbrr(p)));
        // The same first frame behind each framing code (RFC 6716 §3.2).
        let p = planned.iter().skip(10).find(|p| has_lbrr(p)).unwrap();
        let body = &p[1..];
        let code1 = [&[p[0] | 1][..], body, body].concat();
        let code2 = [&[p[0] | 2, body.len() as u8][..], body, &[0x55; 3]].concat();
        let code3 = [
            &[p[0] | 3, 0xc2, 2, body.len() as u8][..],
            body,
            &[7; 5],
            &[0; 2],
        ]
        .concat();
        for framed in [&code1, &code2, &code3] {
            assert!(has_lbrr(framed));
        }
        // CELT-only TOC and malformed framings: no LBRR, no panic.
        assert!(!has_lbrr(&[0xf8, 0xff, 0xff]));
        for bad in [
            &[][..],
            &[0x4b],
            &[0x4a, 252],
            &[0x4b, 0x80],
            &[0x4b, 0xc3, 255, 255],
        ] {
            assert!(!has_lbrr(bad), "{bad:?}");
        }
        let mut s = 0x2545_f491u32;
        for len in 1..300 {
            let p: Vec<u8> = (0..len)
                .map(|_| {
                    s ^= s << 13;
                    s ^= s >> 17;
                    s ^= s << 5;
                    s as u8
                })
                .collect();
            let _ = has_lbrr(&p);
        }
    }

    #[test]
    fn fec_is_counted_only_when_the_next_packet_carries_lbrr() {
        let fec = CodecOptions::default();
        let packets = voiced_packets(&fec);
        let no_lbrr = voiced_packets(&CodecOptions {
            opus_expected_loss_pct: 0,
            ..fec.clone()
        });
        let mut dec = OpusDecoder::new(&fec).unwrap();
        let mut y = Vec::new();
        for p in &packets[..20] {
            dec.decode(p, &mut y).unwrap();
        }
        dec.conceal(FRAME, None, &mut y).unwrap();
        assert_eq!(dec.fec_frames(), 0);
        dec.conceal(FRAME, Some(&no_lbrr[21]), &mut y).unwrap();
        assert_eq!(dec.fec_frames(), 0);
        dec.conceal(FRAME, Some(&packets[22]), &mut y).unwrap();
        assert_eq!(dec.fec_frames(), 1);
        assert_eq!(y.len(), 23 * FRAME);
    }

    #[test]
    fn the_decoder_runs_libopus_1_6_with_deep_plc_and_nolace() {
        assert!(
            opusic_c::version().starts_with("libopus 1.6"),
            "{}",
            opusic_c::version()
        );
        let mut dec = OpusDecoder::new(&CodecOptions::default()).unwrap();
        assert_eq!(dec.dec.get_complexity(), Ok(DECODER_COMPLEXITY));
        // A lost frame after speech: the deep PLC continues it (libopus'
        // classic PLC would too; what the neural one adds is measured by
        // PESQ in docs/benchmarks.md), and no output is silent or clipped.
        let packets = voiced_packets(&CodecOptions::default());
        let mut y = Vec::new();
        for p in &packets[..20] {
            dec.decode(p, &mut y).unwrap();
        }
        let before = y.len();
        dec.conceal(FRAME, None, &mut y).unwrap();
        let lost = &y[before..];
        assert_eq!(lost.len(), FRAME);
        let energy = lost.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / FRAME as f64;
        assert!(energy.sqrt() > 100.0, "concealed RMS {:.1}", energy.sqrt());
    }

    #[test]
    fn the_encoder_follows_the_reported_loss() {
        let mut enc = OpusEncoder::new(&CodecOptions {
            opus_expected_loss_pct: 0,
            ..CodecOptions::default()
        })
        .unwrap();
        assert_eq!(enc.expected_loss(), Some(0));
        // What libopus itself runs with (read back from the encoder): in-band
        // FEC on, DTX off (speech frames are never skipped), 24 kbit/s.
        assert_eq!(enc.enc.get_inband_fec(), Ok(InbandFec::Mode1));
        assert_eq!(enc.enc.get_dtx(), Ok(false));
        assert_eq!(enc.enc.get_bitrate(), Ok(Bitrate::Value(24_000)));
        assert_eq!(enc.enc.get_packet_loss(), Ok(0));
        let x = speechlike(RATE, RATE as usize);
        let mut frames = x.chunks(FRAME);
        let mut lbrr = |enc: &mut OpusEncoder, n: usize| {
            (0..n)
                .filter(|_| {
                    let mut p = Vec::new();
                    enc.encode(frames.next().unwrap(), &mut p).unwrap();
                    has_lbrr(&p)
                })
                .count()
        };
        assert_eq!(lbrr(&mut enc, 20), 0);
        enc.set_expected_loss(10).unwrap();
        assert_eq!(enc.expected_loss(), Some(10));
        assert_eq!(enc.enc.get_packet_loss(), Ok(10));
        assert!(lbrr(&mut enc, 20) >= 10);
        enc.set_expected_loss(0).unwrap();
        // Once LBRR is off the packets stop carrying it (after the one that
        // still holds the previous frame's copy).
        assert!(lbrr(&mut enc, 10) <= 1);
        let mut no_fec = OpusEncoder::new(&CodecOptions {
            opus_fec: false,
            ..CodecOptions::default()
        })
        .unwrap();
        no_fec.set_expected_loss(10).unwrap();
        assert_eq!(no_fec.expected_loss(), None);
    }
}
