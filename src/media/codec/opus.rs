//! Opus (RFC 6716) through libopus: 48 kHz mono, VoIP application.
//!
//! Encoder frames must be 2.5, 5, 10, 20, 40 or 60 ms (the phone uses 20 ms).
//! `conceal` runs libopus' PLC, or decodes the in-band FEC (LBRR) carried in
//! the next packet when the caller has it.

use super::{CodecError, CodecKind, CodecOptions, Decoder, Encoder};

const RATE: u32 = 48_000;
/// Largest payload libopus produces for one packet (RFC 6716 §3.2.1: 1275
/// bytes per frame; 3 frames of 20 ms fit a 60 ms packet) plus headroom.
const MAX_PACKET: usize = 4000;
/// Largest packet duration: 120 ms at 48 kHz.
const MAX_SAMPLES: usize = 5760;
/// 2.5 ms at 48 kHz: every Opus duration is a multiple.
const QUANTUM: usize = 120;

fn opus_err(e: ::opus::Error) -> CodecError {
    CodecError::Opus {
        function: e.function(),
        code: e.code(),
    }
}

/// Opus encoder.
pub struct OpusEncoder {
    enc: ::opus::Encoder,
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
        let mut enc = ::opus::Encoder::new(RATE, ::opus::Channels::Mono, ::opus::Application::Voip)
            .map_err(opus_err)?;
        enc.set_bitrate(::opus::Bitrate::Bits(opts.opus_bitrate as i32))
            .map_err(opus_err)?;
        enc.set_inband_fec(opts.opus_fec).map_err(opus_err)?;
        enc.set_packet_loss_perc(i32::from(opts.opus_expected_loss_pct))
            .map_err(opus_err)?;
        enc.set_dtx(opts.opus_dtx).map_err(opus_err)?;
        Ok(OpusEncoder { enc })
    }
}

impl Encoder for OpusEncoder {
    fn kind(&self) -> CodecKind {
        CodecKind::Opus
    }
    fn sample_rate(&self) -> u32 {
        RATE
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
        match self.enc.encode(pcm, &mut out[start..]) {
            Ok(n) => {
                out.truncate(start + n);
                Ok(())
            }
            Err(e) => {
                out.truncate(start);
                Err(opus_err(e))
            }
        }
    }
}

/// Opus decoder with libopus PLC and FEC.
pub struct OpusDecoder {
    dec: ::opus::Decoder,
}

impl std::fmt::Debug for OpusDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OpusDecoder")
    }
}

impl OpusDecoder {
    pub fn new(_opts: &CodecOptions) -> Result<Self, CodecError> {
        let dec = ::opus::Decoder::new(RATE, ::opus::Channels::Mono).map_err(opus_err)?;
        Ok(OpusDecoder { dec })
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
        match self.dec.decode(input, &mut out[start..], fec) {
            Ok(n) => {
                out.truncate(start + n.min(samples));
                Ok(())
            }
            Err(e) => {
                out.truncate(start);
                Err(opus_err(e))
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
            // With `fec`, libopus decodes the LBRR copy of the previous frame
            // that `next` carries, or runs its PLC if `next` has none.
            Some(p) if !p.is_empty() => self.run(p, samples, true, out),
            _ => self.run(&[], samples, false, out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::codec::testutil::{aligned_snr, best_lag, sine, snr_db};

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
}
