//! SRTP/SRTCP (RFC 3711, AES-GCM per RFC 7714) with SDES keys (RFC 4568).
//!
//! The packet transforms come from the `webrtc-srtp` crate; what is ours is
//! the SDES side (suite names, `inline:` key parameters with lifetime and
//! MKI, key generation from caller-supplied randomness) and a session
//! wrapper that makes the crate safe to feed with untrusted packets:
//!
//! - **Length checks first.** Every packet is checked against the minimum
//!   length of its suite before the crate sees it (the crate indexes SRTCP
//!   trailers without checking).
//! - **SRTCP must be encrypted.** Packets with the E flag clear are
//!   rejected: the crate returns them *without checking the auth tag*, and
//!   we never negotiate `UNENCRYPTED_SRTCP`.
//! - **Replay protection** is on (64-packet window, RFC 3711 §3.3.2); the
//!   crate's default is off.
//! - **Bounded state per remote SSRC.** The crate creates per-SSRC state
//!   before authenticating, so a flood of forged SSRCs would grow it without
//!   bound. Each remote SSRC therefore gets its own crate context, kept only
//!   once a packet of that SSRC authenticated (at most
//!   [`MAX_REMOTE_SSRCS`], least recently used evicted); unauthenticated
//!   attempts share one probe context that is rebuilt after
//!   [`PROBE_RESET`] failures.
//! - **MKI** (RFC 3711 §3.1, RFC 4568 §6.1) is supported by splicing: the
//!   MKI sits between the authenticated portion and the tag and is not
//!   authenticated, so it is inserted after protection and checked and
//!   removed before unprotection.
//!
//! Allocation: the crate returns a fresh `Bytes` per packet; we copy it into
//! the caller's reused `Vec`, so each packet costs one allocation inside the
//! crate (unavoidable with its API).

use std::fmt;

use webrtc_srtp::context::Context;
use webrtc_srtp::option::{srtcp_replay_protection, srtp_replay_protection};
use webrtc_srtp::protection_profile::ProtectionProfile;

/// Replay window (packets), RFC 3711 §3.3.2 minimum is 64.
pub const REPLAY_WINDOW: usize = 64;
/// Remote SSRCs whose cryptographic state is kept at once.
pub const MAX_REMOTE_SSRCS: usize = 8;
/// Failed authentications after which the probe context is rebuilt.
pub const PROBE_RESET: u32 = 32;

/// An SRTP crypto suite (RFC 4568 §6.2, RFC 7714 §12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SrtpSuite {
    AesCm128HmacSha1_80,
    AesCm128HmacSha1_32,
    AeadAes128Gcm,
    AeadAes256Gcm,
}

impl SrtpSuite {
    /// Our preference order for offers.
    pub const ALL: [SrtpSuite; 4] = [
        SrtpSuite::AesCm128HmacSha1_80,
        SrtpSuite::AesCm128HmacSha1_32,
        SrtpSuite::AeadAes128Gcm,
        SrtpSuite::AeadAes256Gcm,
    ];

    /// The SDES name (`a=crypto` suite field).
    pub fn sdes_name(self) -> &'static str {
        match self {
            SrtpSuite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            SrtpSuite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
            SrtpSuite::AeadAes128Gcm => "AEAD_AES_128_GCM",
            SrtpSuite::AeadAes256Gcm => "AEAD_AES_256_GCM",
        }
    }

    /// The suite of an SDES name (exact, as RFC 4568 names are
    /// case-sensitive tokens).
    pub fn from_sdes_name(name: &str) -> Option<SrtpSuite> {
        SrtpSuite::ALL.into_iter().find(|s| s.sdes_name() == name)
    }

    /// Master key length in bytes.
    pub fn key_len(self) -> usize {
        match self {
            SrtpSuite::AeadAes256Gcm => 32,
            _ => 16,
        }
    }

    /// Master salt length in bytes (112 bits for AES-CM, 96 for GCM).
    pub fn salt_len(self) -> usize {
        match self {
            SrtpSuite::AesCm128HmacSha1_80 | SrtpSuite::AesCm128HmacSha1_32 => 14,
            SrtpSuite::AeadAes128Gcm | SrtpSuite::AeadAes256Gcm => 12,
        }
    }

    /// Bytes an SRTP packet grows by (auth tag, or the GCM tag), MKI aside.
    pub fn rtp_overhead(self) -> usize {
        match self {
            SrtpSuite::AesCm128HmacSha1_80 => 10,
            SrtpSuite::AesCm128HmacSha1_32 => 4,
            SrtpSuite::AeadAes128Gcm | SrtpSuite::AeadAes256Gcm => 16,
        }
    }

    /// Bytes an SRTCP packet grows by (E flag + index, tag), MKI aside.
    pub fn rtcp_overhead(self) -> usize {
        match self {
            SrtpSuite::AesCm128HmacSha1_80 | SrtpSuite::AesCm128HmacSha1_32 => 4 + 10,
            SrtpSuite::AeadAes128Gcm | SrtpSuite::AeadAes256Gcm => 4 + 16,
        }
    }

    /// The authentication tag that follows the MKI (0 for AEAD suites,
    /// whose tag is part of the cipher text).
    fn trailing_tag(self, rtcp: bool) -> usize {
        match self {
            SrtpSuite::AesCm128HmacSha1_80 => 10,
            SrtpSuite::AesCm128HmacSha1_32 if rtcp => 10,
            SrtpSuite::AesCm128HmacSha1_32 => 4,
            SrtpSuite::AeadAes128Gcm | SrtpSuite::AeadAes256Gcm => 0,
        }
    }

    fn profile(self) -> ProtectionProfile {
        match self {
            SrtpSuite::AesCm128HmacSha1_80 => ProtectionProfile::Aes128CmHmacSha1_80,
            SrtpSuite::AesCm128HmacSha1_32 => ProtectionProfile::Aes128CmHmacSha1_32,
            SrtpSuite::AeadAes128Gcm => ProtectionProfile::AeadAes128Gcm,
            SrtpSuite::AeadAes256Gcm => ProtectionProfile::AeadAes256Gcm,
        }
    }
}

impl fmt::Display for SrtpSuite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.sdes_name())
    }
}

/// A master key index (RFC 3711 §3.1): `value` carried in `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mki {
    pub value: u64,
    /// 1..=128 bytes (RFC 4568 §6.1).
    pub len: u8,
}

impl Mki {
    /// The MKI field as it appears in packets (big-endian, `len` bytes).
    pub fn bytes(&self) -> Vec<u8> {
        let len = usize::from(self.len);
        let mut v = vec![0u8; len];
        let be = self.value.to_be_bytes();
        let n = len.min(8);
        v[len - n..].copy_from_slice(&be[8 - n..]);
        v
    }
}

/// An SDES master key and salt for one suite. `Debug` never prints the key.
#[derive(Clone, PartialEq, Eq)]
pub struct SrtpKey {
    pub suite: SrtpSuite,
    /// Master key followed by master salt (`key_len + salt_len` bytes).
    pub key_salt: Vec<u8>,
    /// The MKI the key's owner puts in its packets, when it uses one.
    pub mki: Option<Mki>,
}

impl fmt::Debug for SrtpKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SrtpKey")
            .field("suite", &self.suite)
            .field(
                "key_salt",
                &format_args!("<{} bytes redacted>", self.key_salt.len()),
            )
            .field("mki", &self.mki)
            .finish()
    }
}

impl SrtpKey {
    /// A fresh key from the caller's randomness (a CSPRNG in production).
    pub fn generate(suite: SrtpSuite, random: &mut impl FnMut() -> u64) -> SrtpKey {
        let len = suite.key_len() + suite.salt_len();
        let mut key_salt = Vec::with_capacity(len + 8);
        while key_salt.len() < len {
            key_salt.extend_from_slice(&random().to_le_bytes());
        }
        key_salt.truncate(len);
        SrtpKey {
            suite,
            key_salt,
            mki: None,
        }
    }

    /// The SDES key parameter without the `inline:` prefix: base64 of key
    /// and salt, then `|value:len` when there is an MKI (no lifetime: the
    /// default, the suite's maximum, applies).
    pub fn inline(&self) -> String {
        let mut s = base64_encode(&self.key_salt);
        if let Some(m) = self.mki {
            s.push_str(&format!("|{}:{}", m.value, m.len));
        }
        s
    }

    /// Parse an SDES key parameter (`inline:` prefix optional):
    /// `KEY[|LIFETIME][|MKI:LEN]`, LIFETIME decimal or `2^n`.
    pub fn from_inline(suite: SrtpSuite, text: &str) -> Result<SrtpKey, SrtpError> {
        let text = text.strip_prefix("inline:").unwrap_or(text);
        let mut parts = text.split('|');
        let key_text = parts.next().unwrap_or("");
        let key_salt = base64_decode(key_text)?;
        let expected = suite.key_len() + suite.salt_len();
        if key_salt.len() != expected {
            return Err(SrtpError::KeyLength {
                suite,
                expected,
                got: key_salt.len(),
            });
        }
        let rest: Vec<&str> = parts.collect();
        let (lifetime, mki) = match rest.as_slice() {
            [] => (None, None),
            [one] if one.contains(':') => (None, Some(*one)),
            [one] => (Some(*one), None),
            [l, m] => (Some(*l), Some(*m)),
            _ => return Err(SrtpError::Inline("more than KEY|LIFETIME|MKI:LEN".into())),
        };
        if let Some(l) = lifetime {
            parse_lifetime(l)?;
        }
        let mki = mki.map(parse_mki).transpose()?;
        Ok(SrtpKey {
            suite,
            key_salt,
            mki,
        })
    }

    fn split(&self) -> (&[u8], &[u8]) {
        self.key_salt.split_at(self.suite.key_len().min(self.key_salt.len()))
    }
}

/// Lifetime in packets: decimal or `2^n`; at most 2^48 (RFC 3711 §9.2).
fn parse_lifetime(text: &str) -> Result<u64, SrtpError> {
    let bad = || SrtpError::Inline(format!("bad key lifetime `{text}`"));
    let value = if let Some(exp) = text.strip_prefix("2^") {
        let n: u32 = digits(exp).ok_or_else(bad)?;
        if n > 48 {
            return Err(bad());
        }
        1u64 << n
    } else {
        digits::<u64>(text).ok_or_else(bad)?
    };
    if value == 0 || value > 1 << 48 {
        return Err(bad());
    }
    Ok(value)
}

fn parse_mki(text: &str) -> Result<Mki, SrtpError> {
    let bad = |why: &str| SrtpError::Inline(format!("bad MKI `{text}`: {why}"));
    let (v, l) = text.split_once(':').ok_or_else(|| bad("expected VALUE:LENGTH"))?;
    let value: u64 = digits(v).ok_or_else(|| bad("value is not a decimal number"))?;
    let len: u8 = digits(l).ok_or_else(|| bad("length is not a decimal number"))?;
    if !(1..=128).contains(&len) {
        return Err(bad("length must be 1 to 128 bytes"));
    }
    if len < 8 && value >> (8 * u32::from(len)) != 0 {
        return Err(bad("value does not fit its length"));
    }
    Ok(Mki { value, len })
}

fn digits<T: std::str::FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64_encode(data: &[u8]) -> String {
    let mut s = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                s.push(char::from(B64[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// Strict base64 (RFC 4648 §4): standard alphabet, padding optional but
/// correct when present, no stray bits.
fn base64_decode(text: &str) -> Result<Vec<u8>, SrtpError> {
    let bytes = text.as_bytes();
    let body_len = bytes.iter().rposition(|&b| b != b'=').map_or(0, |p| p + 1);
    let pad = bytes.len() - body_len;
    if body_len == 0 {
        return Err(SrtpError::Base64 { position: 0 });
    }
    if pad > 2 || (pad > 0 && bytes.len() % 4 != 0) || body_len % 4 == 1 {
        return Err(SrtpError::Base64 {
            position: body_len,
        });
    }
    let mut out = Vec::with_capacity(body_len * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for (position, &c) in bytes.iter().take(body_len).enumerate() {
        let v = B64
            .iter()
            .position(|&x| x == c)
            .ok_or(SrtpError::Base64 { position })?;
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    if acc != 0 {
        return Err(SrtpError::Base64 {
            position: body_len - 1,
        });
    }
    Ok(out)
}

/// Why a key could not be parsed or a packet not (un)protected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SrtpError {
    /// Not one of [`SrtpSuite::ALL`].
    UnknownSuite(String),
    /// Invalid base64 at this byte of the key text.
    Base64 { position: usize },
    /// Key and salt of the wrong length for the suite.
    KeyLength {
        suite: SrtpSuite,
        expected: usize,
        got: usize,
    },
    /// Bad lifetime, MKI or key-parameter layout.
    Inline(String),
    /// Local and remote keys are for different suites.
    SuiteMismatch,
    /// Shorter than the suite allows (`rtcp` tells which kind).
    TooShort { rtcp: bool, len: usize, min: usize },
    /// Not RTP version 2 (first two bits).
    NotRtp,
    /// SRTCP with the E flag clear (we never negotiate unencrypted SRTCP).
    UnencryptedSrtcp,
    /// The MKI in the packet is not the remote key's.
    MkiMismatch,
    /// The authentication tag did not verify.
    Authentication,
    /// Already received (or older than the replay window).
    Replay,
    /// Any other failure reported by the SRTP implementation.
    Crypto(String),
}

impl fmt::Display for SrtpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SrtpError::UnknownSuite(s) => write!(f, "unknown SRTP crypto suite `{s}`"),
            SrtpError::Base64 { position } => {
                write!(f, "SRTP key is not valid base64 (at character {position})")
            }
            SrtpError::KeyLength {
                suite,
                expected,
                got,
            } => write!(
                f,
                "SRTP key+salt for {suite} must be {expected} bytes, got {got}"
            ),
            SrtpError::Inline(w) => write!(f, "SDES key parameter: {w}"),
            SrtpError::SuiteMismatch => f.write_str("local and remote SRTP keys differ in suite"),
            SrtpError::TooShort { rtcp, len, min } => write!(
                f,
                "{} packet of {len} bytes is shorter than the minimum {min}",
                if *rtcp { "SRTCP" } else { "SRTP" }
            ),
            SrtpError::NotRtp => f.write_str("not an RTP version 2 packet"),
            SrtpError::UnencryptedSrtcp => {
                f.write_str("SRTCP packet with the E flag clear (not negotiated)")
            }
            SrtpError::MkiMismatch => f.write_str("SRTP MKI does not match the remote key"),
            SrtpError::Authentication => f.write_str("SRTP authentication failed"),
            SrtpError::Replay => f.write_str("SRTP replayed packet"),
            SrtpError::Crypto(e) => write!(f, "SRTP: {e}"),
        }
    }
}

impl std::error::Error for SrtpError {}

fn map_err(e: webrtc_srtp::Error) -> SrtpError {
    use webrtc_srtp::Error as E;
    match e {
        E::RtpFailedToVerifyAuthTag
        | E::RtcpFailedToVerifyAuthTag
        | E::ErrFailedToVerifyAuthTag
        | E::AesGcm(_) => SrtpError::Authentication,
        E::SrtpSsrcDuplicated(..) | E::SrtcpSsrcDuplicated(..) | E::ErrDuplicated => {
            SrtpError::Replay
        }
        other => SrtpError::Crypto(other.to_string()),
    }
}

fn context(key: &SrtpKey) -> Result<Context, SrtpError> {
    let (k, s) = key.split();
    Context::new(
        k,
        s,
        key.suite.profile(),
        Some(srtp_replay_protection(REPLAY_WINDOW)),
        Some(srtcp_replay_protection(REPLAY_WINDOW)),
    )
    .map_err(map_err)
}

/// Receive contexts for one packet kind, one per authenticated SSRC.
struct Receivers {
    streams: Vec<(u32, Context, u64)>,
    probe: Option<Context>,
    probe_failures: u32,
    clock: u64,
}

impl Receivers {
    fn new() -> Receivers {
        Receivers {
            streams: Vec::new(),
            probe: None,
            probe_failures: 0,
            clock: 0,
        }
    }

    fn run<B>(
        &mut self,
        key: &SrtpKey,
        ssrc: u32,
        op: impl FnOnce(&mut Context) -> Result<B, webrtc_srtp::Error>,
    ) -> Result<B, SrtpError> {
        self.clock += 1;
        if let Some(s) = self.streams.iter_mut().find(|s| s.0 == ssrc) {
            s.2 = self.clock;
            return op(&mut s.1).map_err(map_err);
        }
        let mut ctx = match self.probe.take() {
            Some(c) => c,
            None => {
                self.probe_failures = 0;
                context(key)?
            }
        };
        match op(&mut ctx) {
            Ok(b) => {
                if self.streams.len() >= MAX_REMOTE_SSRCS {
                    if let Some(lru) = (0..self.streams.len()).min_by_key(|&i| self.streams[i].2) {
                        self.streams.swap_remove(lru);
                    }
                }
                self.streams.push((ssrc, ctx, self.clock));
                Ok(b)
            }
            Err(e) => {
                self.probe_failures += 1;
                if self.probe_failures < PROBE_RESET {
                    self.probe = Some(ctx);
                }
                Err(map_err(e))
            }
        }
    }
}

/// One call's SRTP: protect with our key, unprotect with theirs.
pub struct SrtpSession {
    suite: SrtpSuite,
    tx: Context,
    tx_mki: Vec<u8>,
    remote: SrtpKey,
    rx_mki: Vec<u8>,
    rx_rtp: Receivers,
    rx_rtcp: Receivers,
    scratch: Vec<u8>,
}

impl fmt::Debug for SrtpSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SrtpSession")
            .field("suite", &self.suite)
            .field("remote_rtp_ssrcs", &self.rx_rtp.streams.len())
            .field("remote_rtcp_ssrcs", &self.rx_rtcp.streams.len())
            .finish_non_exhaustive()
    }
}

impl SrtpSession {
    pub fn new(local: &SrtpKey, remote: &SrtpKey) -> Result<SrtpSession, SrtpError> {
        if local.suite != remote.suite {
            return Err(SrtpError::SuiteMismatch);
        }
        for k in [local, remote] {
            let expected = k.suite.key_len() + k.suite.salt_len();
            if k.key_salt.len() != expected {
                return Err(SrtpError::KeyLength {
                    suite: k.suite,
                    expected,
                    got: k.key_salt.len(),
                });
            }
        }
        Ok(SrtpSession {
            suite: local.suite,
            tx: context(local)?,
            tx_mki: local.mki.map(|m| m.bytes()).unwrap_or_default(),
            remote: remote.clone(),
            rx_mki: remote.mki.map(|m| m.bytes()).unwrap_or_default(),
            rx_rtp: Receivers::new(),
            rx_rtcp: Receivers::new(),
            scratch: Vec::new(),
        })
    }

    pub fn suite(&self) -> SrtpSuite {
        self.suite
    }

    /// RTP → SRTP into `out` (cleared first).
    pub fn protect_rtp(&mut self, plain: &[u8], out: &mut Vec<u8>) -> Result<(), SrtpError> {
        check_rtp(plain, 12, false)?;
        let b = self.tx.encrypt_rtp(plain).map_err(map_err)?;
        self.emit(&b, false, out);
        Ok(())
    }

    /// SRTP → RTP into `out` (cleared first).
    pub fn unprotect_rtp(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), SrtpError> {
        let min = 12 + self.suite.rtp_overhead() + self.rx_mki.len();
        check_rtp(data, min, false)?;
        let ssrc = be32(data, 8);
        let Self {
            remote,
            rx_rtp,
            scratch,
            rx_mki,
            suite,
            ..
        } = self;
        let packet = strip_mki(data, suite.trailing_tag(false), rx_mki, scratch)?;
        let b = rx_rtp.run(remote, ssrc, |c| c.decrypt_rtp(packet))?;
        out.clear();
        out.extend_from_slice(&b);
        Ok(())
    }

    /// RTCP (compound) → SRTCP into `out`, always encrypted (E = 1).
    pub fn protect_rtcp(&mut self, plain: &[u8], out: &mut Vec<u8>) -> Result<(), SrtpError> {
        check_rtp(plain, 8, true)?;
        let b = self.tx.encrypt_rtcp(plain).map_err(map_err)?;
        self.emit(&b, true, out);
        Ok(())
    }

    /// SRTCP → RTCP into `out`.
    pub fn unprotect_rtcp(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), SrtpError> {
        let min = 8 + self.suite.rtcp_overhead() + self.rx_mki.len();
        check_rtp(data, min, true)?;
        let ssrc = be32(data, 4);
        let Self {
            remote,
            rx_rtcp,
            scratch,
            rx_mki,
            suite,
            ..
        } = self;
        let tag = suite.trailing_tag(true);
        let packet = strip_mki(data, tag, rx_mki, scratch)?;
        // E flag: first bit of the index word before the tag.
        let e_at = packet.len().saturating_sub(tag + 4);
        if packet.get(e_at).is_none_or(|b| b & 0x80 == 0) {
            return Err(SrtpError::UnencryptedSrtcp);
        }
        let b = rx_rtcp.run(remote, ssrc, |c| c.decrypt_rtcp(packet))?;
        out.clear();
        out.extend_from_slice(&b);
        Ok(())
    }

    /// Copy a protected packet out, inserting our MKI before the tag.
    fn emit(&self, b: &[u8], rtcp: bool, out: &mut Vec<u8>) {
        out.clear();
        let tag = self.suite.trailing_tag(rtcp).min(b.len());
        let (body, tail) = b.split_at(b.len() - tag);
        out.extend_from_slice(body);
        out.extend_from_slice(&self.tx_mki);
        out.extend_from_slice(tail);
    }
}

fn be32(d: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    if let Some(s) = d.get(at..at + 4) {
        b.copy_from_slice(s);
    }
    u32::from_be_bytes(b)
}

fn check_rtp(data: &[u8], min: usize, rtcp: bool) -> Result<(), SrtpError> {
    if data.len() < min {
        return Err(SrtpError::TooShort {
            rtcp,
            len: data.len(),
            min,
        });
    }
    if data.first().is_none_or(|b| b >> 6 != 2) {
        return Err(SrtpError::NotRtp);
    }
    Ok(())
}

/// The packet without its MKI (checked against `mki`), in `scratch` when
/// there is one.
fn strip_mki<'a>(
    data: &'a [u8],
    tag: usize,
    mki: &[u8],
    scratch: &'a mut Vec<u8>,
) -> Result<&'a [u8], SrtpError> {
    if mki.is_empty() {
        return Ok(data);
    }
    let end = data.len().checked_sub(tag).ok_or(SrtpError::MkiMismatch)?;
    let start = end.checked_sub(mki.len()).ok_or(SrtpError::MkiMismatch)?;
    if data.get(start..end) != Some(mki) {
        return Err(SrtpError::MkiMismatch);
    }
    scratch.clear();
    scratch.extend_from_slice(data.get(..start).unwrap_or_default());
    scratch.extend_from_slice(data.get(end..).unwrap_or_default());
    Ok(scratch)
}
