//! Audio codecs behind one pair of traits: G.711 µ-law/A-law (ITU-T G.711),
//! G.722 at 64 kbit/s (ITU-T G.722) and Opus (RFC 6716, libopus).
//!
//! All codecs are mono. Buffers are passed in by the caller and *appended
//! to* (never cleared), so a warmed-up caller that reuses its `Vec`s does
//! not allocate per frame.
//!
//! Loss concealment: [`Decoder::conceal`] produces audio for a lost frame.
//! G.711 and G.722 use the pitch-repetition concealment of [`crate::media::plc`]
//! (ITU-T G.711 Appendix I in spirit); Opus uses libopus' own PLC, or its
//! in-band FEC when the packet after the lost one is already at hand.

use std::fmt;

pub mod g711;
pub mod g722;
pub mod opus;

/// The codecs the phone speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CodecKind {
    /// G.711 µ-law.
    Pcmu,
    /// G.711 A-law.
    Pcma,
    /// G.722 at 64 kbit/s.
    G722,
    /// Opus, mono.
    Opus,
}

impl CodecKind {
    /// Every codec, in the phone's default preference order.
    pub const ALL: [CodecKind; 4] = [
        CodecKind::Opus,
        CodecKind::G722,
        CodecKind::Pcmu,
        CodecKind::Pcma,
    ];

    /// The codec an SDP encoding name or a `[media] codecs` entry names
    /// (case-insensitive).
    pub fn from_name(name: &str) -> Option<CodecKind> {
        CodecKind::ALL
            .into_iter()
            .find(|k| k.encoding_name().eq_ignore_ascii_case(name))
    }

    /// Encoding name as used in SDP `a=rtpmap` (RFC 3551, RFC 7587).
    pub fn encoding_name(self) -> &'static str {
        match self {
            CodecKind::Pcmu => "PCMU",
            CodecKind::Pcma => "PCMA",
            CodecKind::G722 => "G722",
            CodecKind::Opus => "opus",
        }
    }

    /// Static RTP payload type (RFC 3551), `None` for dynamic ones.
    pub fn static_payload_type(self) -> Option<u8> {
        match self {
            CodecKind::Pcmu => Some(0),
            CodecKind::Pcma => Some(8),
            CodecKind::G722 => Some(9),
            CodecKind::Opus => None,
        }
    }

    /// PCM sample rate of the encoder input and decoder output, in Hz.
    pub fn sample_rate(self) -> u32 {
        match self {
            CodecKind::Pcmu | CodecKind::Pcma => 8000,
            CodecKind::G722 => 16000,
            CodecKind::Opus => 48000,
        }
    }

    /// RTP timestamp clock rate. G.722 is 8000 although it samples at
    /// 16 kHz (RFC 3551 §4.5.2, an erratum kept for compatibility).
    pub fn rtp_clock_rate(self) -> u32 {
        match self {
            CodecKind::Pcmu | CodecKind::Pcma | CodecKind::G722 => 8000,
            CodecKind::Opus => 48000,
        }
    }
}

impl fmt::Display for CodecKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.encoding_name())
    }
}

/// What went wrong in a codec call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// Only mono is supported.
    #[error("{kind}: {channels} channels requested, only mono is supported")]
    UnsupportedChannels { kind: CodecKind, channels: u8 },
    /// The number of PCM samples does not fit the codec's framing.
    #[error("{kind}: {samples} samples is not a valid frame ({expected})")]
    BadFrameSize {
        kind: CodecKind,
        samples: usize,
        expected: &'static str,
    },
    /// A codec option is out of range.
    #[error("{kind}: option {option} = {value} is out of range ({expected})")]
    BadOption {
        kind: CodecKind,
        option: &'static str,
        value: u32,
        expected: &'static str,
    },
    /// The payload cannot be a valid packet of this codec.
    #[error("{kind}: invalid payload ({reason})")]
    InvalidPayload {
        kind: CodecKind,
        reason: &'static str,
    },
    /// libopus refused a call.
    #[error("opus: {function} failed: {}", code.message())]
    Opus {
        function: &'static str,
        code: opusic_c::ErrorCode,
    },
}

/// Codec settings. Only the Opus fields matter to Opus; `channels` must be 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodecOptions {
    /// Opus target bitrate in bit/s (6000..=510000).
    pub opus_bitrate: u32,
    /// Opus in-band forward error correction (LBRR, RFC 6716 §2.1.7).
    pub opus_fec: bool,
    /// Opus discontinuous transmission during silence.
    pub opus_dtx: bool,
    /// Highest audio sample rate worth encoding (the far end's
    /// `maxplaybackrate`, RFC 7587 §6.1): caps the Opus encoder's audio
    /// bandwidth (8000 → narrowband … 48000 → fullband).
    pub opus_max_playback_rate: u32,
    /// Loss rate the Opus encoder plans its FEC for, 0..=100: from the
    /// start, and whenever the far end's RTCP reports loss (after a report
    /// of none, FEC is planned for 0 %).
    pub opus_expected_loss_pct: u8,
    /// Channel count; only 1 is supported.
    pub channels: u8,
}

impl Default for CodecOptions {
    fn default() -> Self {
        CodecOptions {
            opus_bitrate: 24_000,
            opus_fec: true,
            opus_dtx: false,
            opus_max_playback_rate: 48_000,
            opus_expected_loss_pct: 10,
            channels: 1,
        }
    }
}

/// Turns PCM into payloads.
pub trait Encoder: Send {
    fn kind(&self) -> CodecKind;
    /// PCM rate of `encode`'s input: 8000, 16000 or 48000.
    fn sample_rate(&self) -> u32;
    /// The loss rate (percent) the far end reports; codecs with in-band FEC
    /// plan for it (Opus: `set_packet_loss_perc`). Others ignore it.
    fn set_expected_loss(&mut self, _pct: u8) -> Result<(), CodecError> {
        Ok(())
    }
    /// The loss rate the encoder plans its FEC for, `None` without FEC.
    fn expected_loss(&self) -> Option<u8> {
        None
    }
    /// Encodes one frame of PCM and appends its payload to `out`.
    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<(), CodecError>;
}

/// Turns payloads into PCM; conceals lost frames.
pub trait Decoder: Send {
    fn kind(&self) -> CodecKind;
    /// PCM rate of the output: 8000, 16000 or 48000.
    fn sample_rate(&self) -> u32;
    /// Decodes one payload and appends its PCM to `out`.
    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<(), CodecError>;
    /// Appends `samples` of concealment for a lost frame (PLC; Opus: its PLC,
    /// or FEC when `next` holds the following packet). `next` is only
    /// peeked at: the caller still decodes it with [`Decoder::decode`] next.
    fn conceal(
        &mut self,
        samples: usize,
        next: Option<&[u8]>,
        out: &mut Vec<i16>,
    ) -> Result<(), CodecError>;
    /// Lost frames rebuilt from in-band FEC so far (Opus LBRR), as opposed
    /// to extrapolated by PLC.
    fn fec_frames(&self) -> u64 {
        0
    }
}

/// Longest concealment one `conceal` call produces (the longest Opus
/// packet). The sample count comes from RTP timestamps, which are untrusted.
pub const MAX_CONCEAL_MS: usize = 120;

pub(crate) fn check_conceal(kind: CodecKind, samples: usize) -> Result<(), CodecError> {
    if samples <= kind.sample_rate() as usize / 1000 * MAX_CONCEAL_MS {
        Ok(())
    } else {
        Err(CodecError::BadFrameSize {
            kind,
            samples,
            expected: "at most 120 ms of concealment per call",
        })
    }
}

fn check_mono(kind: CodecKind, opts: &CodecOptions) -> Result<(), CodecError> {
    if opts.channels == 1 {
        Ok(())
    } else {
        Err(CodecError::UnsupportedChannels {
            kind,
            channels: opts.channels,
        })
    }
}

/// Creates an encoder for `kind`.
pub fn encoder(kind: CodecKind, opts: &CodecOptions) -> Result<Box<dyn Encoder>, CodecError> {
    check_mono(kind, opts)?;
    Ok(match kind {
        CodecKind::Pcmu => Box::new(g711::G711Encoder::new(g711::Law::Mu)),
        CodecKind::Pcma => Box::new(g711::G711Encoder::new(g711::Law::A)),
        CodecKind::G722 => Box::new(g722::G722Encoder::new()),
        CodecKind::Opus => Box::new(opus::OpusEncoder::new(opts)?),
    })
}

/// Creates a decoder for `kind`.
pub fn decoder(kind: CodecKind, opts: &CodecOptions) -> Result<Box<dyn Decoder>, CodecError> {
    check_mono(kind, opts)?;
    Ok(match kind {
        CodecKind::Pcmu => Box::new(g711::G711Decoder::new(g711::Law::Mu)),
        CodecKind::Pcma => Box::new(g711::G711Decoder::new(g711::Law::A)),
        CodecKind::G722 => Box::new(g722::G722Decoder::new()),
        CodecKind::Opus => Box::new(opus::OpusDecoder::new(opts)?),
    })
}

#[cfg(test)]
pub(crate) mod testutil {
    //! Signal helpers shared by the codec and PLC tests.

    use std::ops::RangeInclusive;

    /// `n` samples of a sine of `freq` Hz at `rate`, peak `amp`.
    pub fn sine(freq: f64, rate: u32, amp: f64, n: usize) -> Vec<i16> {
        (0..n)
            .map(|i| {
                let t = i as f64 / rate as f64;
                (amp * (2.0 * std::f64::consts::PI * freq * t).sin()).round() as i16
            })
            .collect()
    }

    /// Voiced-like test signal: harmonics of `f0` with amplitudes 4000/k.
    pub fn voiced(f0: f64, rate: u32, n: usize) -> Vec<i16> {
        (0..n)
            .map(|i| {
                let t = i as f64 / f64::from(rate);
                let v: f64 = (1..=8)
                    .map(|k| {
                        let k = f64::from(k);
                        4000.0 / k * (2.0 * std::f64::consts::PI * f0 * k * t + 0.7 * k).sin()
                    })
                    .sum();
                v.round() as i16
            })
            .collect()
    }

    /// Speech-like test signal: a voiced source whose pitch glides between
    /// 110 and 190 Hz, shaped by two moving resonances, with a syllable
    /// envelope (≈ 4 per second) and a little noise, peak about 12000.
    pub fn speechlike(rate: u32, n: usize) -> Vec<i16> {
        let mut phase = 0.0f64;
        let mut noise = 0x1234_5678u32;
        (0..n)
            .map(|i| {
                let t = i as f64 / f64::from(rate);
                let f0 = 150.0 + 40.0 * (2.0 * std::f64::consts::PI * 0.7 * t).sin();
                phase += 2.0 * std::f64::consts::PI * f0 / f64::from(rate);
                let f1 = 500.0 + 200.0 * (2.0 * std::f64::consts::PI * 1.3 * t).sin();
                let f2 = 1500.0 + 500.0 * (2.0 * std::f64::consts::PI * 0.9 * t).cos();
                let mut v = 0.0;
                for k in 1..=30 {
                    let fk = f0 * f64::from(k);
                    if fk > f64::from(rate) / 2.0 {
                        break;
                    }
                    let g = 1.0 / (1.0 + ((fk - f1) / 150.0).powi(2))
                        + 0.5 / (1.0 + ((fk - f2) / 250.0).powi(2));
                    v += g * (phase * f64::from(k)).sin();
                }
                noise ^= noise << 13;
                noise ^= noise >> 17;
                noise ^= noise << 5;
                let n = f64::from(noise as i32) / f64::from(i32::MAX);
                let env = (2.0 * std::f64::consts::PI * 2.0 * t).sin().abs().powf(0.7);
                (env * (5000.0 * v + 300.0 * n)).clamp(-32000.0, 32000.0) as i16
            })
            .collect()
    }

    /// SNR in dB of `test` against `reference` (same length).
    pub fn snr_db(reference: &[i16], test: &[i16]) -> f64 {
        assert_eq!(reference.len(), test.len());
        let (mut sig, mut err) = (0.0f64, 0.0f64);
        for (&r, &t) in reference.iter().zip(test) {
            sig += f64::from(r) * f64::from(r);
            let d = f64::from(r) - f64::from(t);
            err += d * d;
        }
        10.0 * (sig / err.max(1e-9)).log10()
    }

    /// The delay (in samples, within `lags`) at which `output` best matches
    /// `input` by cross-correlation.
    pub fn best_lag(input: &[i16], output: &[i16], lags: RangeInclusive<usize>) -> usize {
        let mut best = (f64::MIN, 0);
        for lag in lags {
            let n = input.len().min(output.len().saturating_sub(lag));
            let c: f64 = (0..n)
                .map(|i| f64::from(input[i]) * f64::from(output[i + lag]))
                .sum();
            if c > best.0 {
                best = (c, lag);
            }
        }
        best.1
    }

    /// SNR of `output` delayed by `lag` against `input`, skipping `skip`
    /// samples of start-up.
    pub fn aligned_snr(input: &[i16], output: &[i16], lag: usize, skip: usize) -> f64 {
        let n = input.len().min(output.len() - lag);
        snr_db(&input[skip..n], &output[skip + lag..n + lag])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factories_build_every_codec_and_report_rates() {
        let opts = CodecOptions::default();
        for kind in CodecKind::ALL {
            let enc = encoder(kind, &opts).unwrap();
            let dec = decoder(kind, &opts).unwrap();
            assert_eq!(enc.kind(), kind);
            assert_eq!(dec.kind(), kind);
            assert_eq!(enc.sample_rate(), kind.sample_rate());
            assert_eq!(dec.sample_rate(), kind.sample_rate());
        }
        assert_eq!(CodecKind::G722.rtp_clock_rate(), 8000);
        assert_eq!(CodecKind::G722.static_payload_type(), Some(9));
    }

    #[test]
    fn concealment_length_is_bounded_for_every_codec() {
        let opts = CodecOptions::default();
        for kind in CodecKind::ALL {
            let mut dec = decoder(kind, &opts).unwrap();
            let max = kind.sample_rate() as usize * 120 / 1000;
            let mut out = Vec::new();
            dec.conceal(max, None, &mut out).unwrap();
            assert_eq!(out.len(), max, "{kind}");
            // A timestamp jump must not make us allocate gigabytes.
            let err = dec.conceal(usize::MAX, None, &mut out).unwrap_err();
            assert!(matches!(err, CodecError::BadFrameSize { .. }), "{kind}");
            assert_eq!(out.len(), max);
        }
    }

    #[test]
    fn stereo_is_refused_with_a_precise_error() {
        let opts = CodecOptions {
            channels: 2,
            ..CodecOptions::default()
        };
        let err = encoder(CodecKind::Pcmu, &opts).err().unwrap();
        assert_eq!(
            err,
            CodecError::UnsupportedChannels {
                kind: CodecKind::Pcmu,
                channels: 2
            }
        );
        assert_eq!(
            err.to_string(),
            "PCMU: 2 channels requested, only mono is supported"
        );
    }
}

/// True when this build can run `kind` (all codecs here are built in or
/// linked; kept as the one place a feature-gated codec would answer no).
pub fn available(kind: CodecKind) -> bool {
    encoder(kind, &CodecOptions::default()).is_ok()
}
