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
        self.key_salt
            .split_at(self.suite.key_len().min(self.key_salt.len()))
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
    let (v, l) = text
        .split_once(':')
        .ok_or_else(|| bad("expected VALUE:LENGTH"))?;
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
    if pad > 2 || (pad > 0 && !bytes.len().is_multiple_of(4)) || body_len % 4 == 1 {
        return Err(SrtpError::Base64 { position: body_len });
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
                if self.streams.len() >= MAX_REMOTE_SSRCS
                    && let Some(lru) = (0..self.streams.len()).min_by_key(|&i| self.streams[i].2)
                {
                    self.streams.swap_remove(lru);
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

#[cfg(test)]
mod tests {
    //! An independent RFC 3711 reference (AES-CM keystream §4.1.1, key
    //! derivation §4.3, HMAC-SHA1 §4.2), checked against the Appendix B
    //! vectors, then used to check the crate's packets byte for byte.
    use super::*;
    use aes::cipher::{BlockEncrypt, KeyInit, generic_array::GenericArray};
    use hmac::{Hmac, Mac};

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// AES-128 counter-mode keystream from a 128-bit IV (block j = IV + j).
    fn keystream(key: &[u8], iv: [u8; 16], len: usize) -> Vec<u8> {
        let aes = aes::Aes128::new(GenericArray::from_slice(key));
        let start = u128::from_be_bytes(iv);
        let mut out = Vec::new();
        let mut j = 0u128;
        while out.len() < len {
            let mut block = GenericArray::from((start.wrapping_add(j)).to_be_bytes());
            aes.encrypt_block(&mut block);
            out.extend_from_slice(&block);
            j += 1;
        }
        out.truncate(len);
        out
    }

    /// RFC 3711 §4.3.1 with kdr = 0: x = label at byte 7 XOR master salt.
    fn derive(master_key: &[u8], master_salt: &[u8], label: u8, len: usize) -> Vec<u8> {
        let mut iv = [0u8; 16];
        iv[..14].copy_from_slice(master_salt);
        iv[7] ^= label;
        keystream(master_key, iv, len)
    }

    /// IV of §4.1.1: salt·2^16 XOR SSRC·2^64 XOR index·2^16.
    fn packet_iv(salt: &[u8], ssrc: u32, index: u64) -> [u8; 16] {
        let mut iv = [0u8; 16];
        iv[..14].copy_from_slice(salt);
        for (i, b) in ssrc.to_be_bytes().iter().enumerate() {
            iv[4 + i] ^= b;
        }
        for (i, b) in index.to_be_bytes()[2..].iter().enumerate() {
            iv[8 + i] ^= b;
        }
        iv
    }

    fn hmac_sha1(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        let mut m = <Hmac<sha1::Sha1> as Mac>::new_from_slice(key).unwrap();
        for p in parts {
            m.update(p);
        }
        m.finalize().into_bytes().to_vec()
    }

    fn xor(data: &mut [u8], ks: &[u8]) {
        data.iter_mut().zip(ks).for_each(|(d, k)| *d ^= k);
    }

    const MASTER_KEY: &str = "E1F97A0D3E018BE0D64FA32C06DE4139";
    const MASTER_SALT: &str = "0EC675AD498AFEEBB6960B3AABE6";

    #[test]
    fn rfc3711_b2_aes_cm_keystream() {
        let key = hex("2B7E151628AED2A6ABF7158809CF4F3C");
        let mut iv = [0u8; 16];
        iv[..14].copy_from_slice(&hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD"));
        let ks = keystream(&key, iv, 0xff02 * 16);
        let block = |n: usize| ks[n * 16..n * 16 + 16].to_vec();
        assert_eq!(block(0), hex("E03EAD0935C95E80E166B16DD92B4EB4"));
        assert_eq!(block(1), hex("D23513162B02D0F72A43A2FE4A5F97AB"));
        assert_eq!(block(2), hex("41E95B3BB0A2E8DD477901E4FCA894C0"));
        assert_eq!(block(0xfeff), hex("EC8CDF7398607CB0F2D21675EA9EA1E4"));
        assert_eq!(block(0xff00), hex("362B7C3C6773516318A077D7FC5073AE"));
        assert_eq!(block(0xff01), hex("6A2CC3787889374FBEB4C81B17BA6C44"));
    }

    #[test]
    fn rfc3711_b3_key_derivation() {
        let (k, s) = (hex(MASTER_KEY), hex(MASTER_SALT));
        assert_eq!(
            derive(&k, &s, 0, 16),
            hex("C61E7A93744F39EE10734AFE3FF7A087")
        );
        assert_eq!(
            derive(&k, &s, 1, 20),
            hex("CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4")
        );
        assert_eq!(derive(&k, &s, 2, 14), hex("30CBBC08863D8C85D49DB34A9AE1"));
    }

    fn b3_key(suite: SrtpSuite) -> SrtpKey {
        SrtpKey {
            suite,
            key_salt: [hex(MASTER_KEY), hex(MASTER_SALT)].concat(),
            mki: None,
        }
    }

    fn rtp(seq: u16, ssrc: u32, payload_len: usize) -> Vec<u8> {
        let mut p = vec![0x80, 0x00];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
        p.extend_from_slice(&ssrc.to_be_bytes());
        p.extend((0..payload_len).map(|i| (i * 7 + usize::from(seq)) as u8));
        p
    }

    /// A receiver report with one report block (32 bytes).
    fn rtcp_rr(ssrc: u32) -> Vec<u8> {
        let mut p = vec![0x81, 201, 0, 7];
        p.extend_from_slice(&ssrc.to_be_bytes());
        p.extend((0..24).map(|i| i as u8));
        p
    }

    /// SRTP with the B.3 master key, by the reference, for ROC 0.
    fn reference_srtp(plain: &[u8], tag_len: usize) -> Vec<u8> {
        let (k, s) = (hex(MASTER_KEY), hex(MASTER_SALT));
        let seq = u16::from_be_bytes([plain[2], plain[3]]);
        let ssrc = u32::from_be_bytes([plain[8], plain[9], plain[10], plain[11]]);
        let mut out = plain.to_vec();
        let ks = keystream(
            &derive(&k, &s, 0, 16),
            packet_iv(&derive(&k, &s, 2, 14), ssrc, u64::from(seq)),
            plain.len() - 12,
        );
        xor(&mut out[12..], &ks);
        let tag = hmac_sha1(&derive(&k, &s, 1, 20), &[&out, &0u32.to_be_bytes()]);
        out.extend_from_slice(&tag[..tag_len]);
        out
    }

    /// SRTCP (labels 3, 4, 5), E = 1, with the given SRTCP index.
    fn reference_srtcp(plain: &[u8], index: u32) -> Vec<u8> {
        let (k, s) = (hex(MASTER_KEY), hex(MASTER_SALT));
        let ssrc = u32::from_be_bytes([plain[4], plain[5], plain[6], plain[7]]);
        let mut out = plain.to_vec();
        let ks = keystream(
            &derive(&k, &s, 3, 16),
            packet_iv(&derive(&k, &s, 5, 14), ssrc, u64::from(index)),
            plain.len() - 8,
        );
        xor(&mut out[8..], &ks);
        out.extend_from_slice(&(index | 1 << 31).to_be_bytes());
        let tag = hmac_sha1(&derive(&k, &s, 4, 20), &[&out]);
        out.extend_from_slice(&tag[..10]);
        out
    }

    #[test]
    fn crate_packets_match_the_rfc3711_reference() {
        for (suite, tag_len) in [
            (SrtpSuite::AesCm128HmacSha1_80, 10),
            (SrtpSuite::AesCm128HmacSha1_32, 4),
        ] {
            let key = b3_key(suite);
            let mut s = SrtpSession::new(&key, &key).unwrap();
            let mut out = Vec::new();
            for seq in [0u16, 1, 2, 1000] {
                let plain = rtp(seq, 0xdeca_fbad, 160);
                s.protect_rtp(&plain, &mut out).unwrap();
                assert_eq!(out.len(), 12 + 160 + tag_len);
                assert_eq!(out, reference_srtp(&plain, tag_len), "{suite} seq {seq}");
            }
            // The crate numbers SRTCP from index 1.
            for index in 1..=3 {
                let plain = rtcp_rr(0xdeca_fbad);
                s.protect_rtcp(&plain, &mut out).unwrap();
                assert_eq!(out.len(), 32 + 4 + 10);
                assert_eq!(out, reference_srtcp(&plain, index), "{suite} SRTCP {index}");
            }
        }
    }

    fn key(suite: SrtpSuite, seed: u64) -> SrtpKey {
        let mut n = seed;
        SrtpKey::generate(suite, &mut || {
            n = n
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            n
        })
    }

    fn pair(suite: SrtpSuite) -> (SrtpSession, SrtpSession) {
        let (a, b) = (key(suite, 1), key(suite, 2));
        (
            SrtpSession::new(&a, &b).unwrap(),
            SrtpSession::new(&b, &a).unwrap(),
        )
    }

    #[test]
    fn round_trip_every_suite_rtp_and_rtcp() {
        for suite in SrtpSuite::ALL {
            let (mut a, mut b) = pair(suite);
            let (mut wire, mut back) = (Vec::new(), Vec::new());
            for seq in 65530..=65535u16 {
                let plain = rtp(seq, 0x1234_5678, 160);
                a.protect_rtp(&plain, &mut wire).unwrap();
                assert_eq!(wire.len(), plain.len() + suite.rtp_overhead(), "{suite}");
                assert_ne!(wire[12..172], plain[12..], "{suite}: payload encrypted");
                b.unprotect_rtp(&wire, &mut back).unwrap();
                assert_eq!(back, plain, "{suite}");
            }
            // Across the sequence-number wrap (ROC 0 → 1).
            let plain = rtp(3, 0x1234_5678, 20);
            a.protect_rtp(&plain, &mut wire).unwrap();
            b.unprotect_rtp(&wire, &mut back).unwrap();
            assert_eq!(back, plain, "{suite} after wrap");
            let plain = rtcp_rr(0x1234_5678);
            b.protect_rtcp(&plain, &mut wire).unwrap();
            assert_eq!(wire.len(), 32 + suite.rtcp_overhead(), "{suite}");
            a.unprotect_rtcp(&wire, &mut back).unwrap();
            assert_eq!(back, plain, "{suite}");
        }
    }

    #[test]
    fn keys_of_the_wrong_party_fail_authentication() {
        let (a, b) = (
            key(SrtpSuite::AesCm128HmacSha1_80, 1),
            key(SrtpSuite::AesCm128HmacSha1_80, 2),
        );
        let mut tx = SrtpSession::new(&a, &b).unwrap();
        let mut rx = SrtpSession::new(&a, &b).unwrap(); // expects b's packets
        let (mut wire, mut back) = (Vec::new(), Vec::new());
        tx.protect_rtp(&rtp(1, 7, 160), &mut wire).unwrap();
        assert_eq!(
            rx.unprotect_rtp(&wire, &mut back),
            Err(SrtpError::Authentication)
        );
        let c = key(SrtpSuite::AeadAes128Gcm, 3);
        assert_eq!(
            SrtpSession::new(&a, &c).unwrap_err(),
            SrtpError::SuiteMismatch
        );
    }

    #[test]
    fn every_tampered_byte_is_rejected() {
        for suite in SrtpSuite::ALL {
            let (mut a, mut b) = pair(suite);
            let (mut wire, mut back) = (Vec::new(), Vec::new());
            a.protect_rtp(&rtp(100, 42, 40), &mut wire).unwrap();
            for i in 0..wire.len() {
                let mut bad = wire.clone();
                bad[i] ^= 0x01;
                let e = b.unprotect_rtp(&bad, &mut back).unwrap_err();
                assert!(e == SrtpError::Authentication, "{suite} byte {i}: {e}");
            }
            // The untouched packet still passes afterwards.
            b.unprotect_rtp(&wire, &mut back).unwrap();
            a.protect_rtcp(&rtcp_rr(42), &mut wire).unwrap();
            let mut bad = wire.clone();
            bad[20] ^= 0x80;
            assert_eq!(
                b.unprotect_rtcp(&bad, &mut back),
                Err(SrtpError::Authentication),
                "{suite}"
            );
        }
    }

    #[test]
    fn replays_and_too_old_packets_are_rejected() {
        let (mut a, mut b) = pair(SrtpSuite::AesCm128HmacSha1_80);
        let mut wires = Vec::new();
        for seq in 0..200u16 {
            let mut w = Vec::new();
            a.protect_rtp(&rtp(seq, 9, 20), &mut w).unwrap();
            wires.push(w);
        }
        let mut back = Vec::new();
        // 0..150 in order, except 120 held back (reordered).
        for (seq, w) in wires.iter().enumerate().take(150) {
            if seq != 120 {
                b.unprotect_rtp(w, &mut back).unwrap();
            }
        }
        assert_eq!(
            b.unprotect_rtp(&wires[149], &mut back),
            Err(SrtpError::Replay)
        );
        // 120 is 29 behind the newest: inside the 64-packet window, once.
        b.unprotect_rtp(&wires[120], &mut back).unwrap();
        assert_eq!(
            b.unprotect_rtp(&wires[120], &mut back),
            Err(SrtpError::Replay)
        );
        // 50 is 99 behind: outside the window.
        assert_eq!(
            b.unprotect_rtp(&wires[50], &mut back),
            Err(SrtpError::Replay)
        );
        // SRTCP too.
        let mut w = Vec::new();
        a.protect_rtcp(&rtcp_rr(9), &mut w).unwrap();
        b.unprotect_rtcp(&w, &mut back).unwrap();
        assert_eq!(b.unprotect_rtcp(&w, &mut back), Err(SrtpError::Replay));
    }

    #[test]
    fn unencrypted_srtcp_flag_is_refused() {
        // The crate would return an E = 0 packet without checking its tag.
        let (mut a, mut b) = pair(SrtpSuite::AesCm128HmacSha1_80);
        let mut w = Vec::new();
        a.protect_rtcp(&rtcp_rr(5), &mut w).unwrap();
        let e_at = w.len() - 14;
        w[e_at] &= 0x7f;
        let mut back = Vec::new();
        assert_eq!(
            b.unprotect_rtcp(&w, &mut back),
            Err(SrtpError::UnencryptedSrtcp)
        );
        // Forged: plain RTCP + E = 0 + junk tag.
        let mut forged = rtcp_rr(5);
        forged.extend_from_slice(&[0, 0, 0, 9]);
        forged.extend_from_slice(&[0; 10]);
        assert_eq!(
            b.unprotect_rtcp(&forged, &mut back),
            Err(SrtpError::UnencryptedSrtcp)
        );
    }

    #[test]
    fn short_and_non_rtp_input_is_an_error() {
        let (_, mut b) = pair(SrtpSuite::AesCm128HmacSha1_80);
        let mut back = Vec::new();
        assert_eq!(
            b.unprotect_rtp(&[0x80; 21], &mut back),
            Err(SrtpError::TooShort {
                rtcp: false,
                len: 21,
                min: 22
            })
        );
        assert_eq!(
            b.unprotect_rtcp(&[0x80; 21], &mut back),
            Err(SrtpError::TooShort {
                rtcp: true,
                len: 21,
                min: 22
            })
        );
        assert_eq!(
            b.unprotect_rtp(&[0x40; 40], &mut back),
            Err(SrtpError::NotRtp)
        );
        assert_eq!(
            b.protect_rtp(&[0x80; 11], &mut back)
                .unwrap_err()
                .to_string(),
            "SRTP packet of 11 bytes is shorter than the minimum 12"
        );
    }

    #[test]
    fn forged_ssrc_flood_keeps_state_bounded_and_the_call_working() {
        let (mut a, mut b) = pair(SrtpSuite::AesCm128HmacSha1_80);
        let (mut w, mut back) = (Vec::new(), Vec::new());
        a.protect_rtp(&rtp(1, 77, 160), &mut w).unwrap();
        b.unprotect_rtp(&w, &mut back).unwrap();
        for ssrc in 1000..6000u32 {
            let mut f = rtp(1, ssrc, 160);
            f.extend_from_slice(&[0; 10]);
            assert_eq!(
                b.unprotect_rtp(&f, &mut back),
                Err(SrtpError::Authentication)
            );
        }
        assert_eq!(b.rx_rtp.streams.len(), 1);
        assert!(b.rx_rtp.probe_failures < PROBE_RESET);
        a.protect_rtp(&rtp(2, 77, 160), &mut w).unwrap();
        b.unprotect_rtp(&w, &mut back).unwrap();
        // Many genuine SSRCs: at most MAX_REMOTE_SSRCS kept.
        for ssrc in 0..20u32 {
            a.protect_rtp(&rtp(1, ssrc, 10), &mut w).unwrap();
            b.unprotect_rtp(&w, &mut back).unwrap();
        }
        assert_eq!(b.rx_rtp.streams.len(), MAX_REMOTE_SSRCS);
    }

    #[test]
    fn mki_is_carried_and_checked() {
        let mut a = key(SrtpSuite::AesCm128HmacSha1_32, 1);
        a.mki = Some(Mki { value: 1, len: 1 });
        let b = key(SrtpSuite::AesCm128HmacSha1_32, 2);
        let mut tx = SrtpSession::new(&a, &b).unwrap();
        let mut rx = SrtpSession::new(&b, &a).unwrap();
        let (mut w, mut back) = (Vec::new(), Vec::new());
        let plain = rtp(10, 3, 160);
        tx.protect_rtp(&plain, &mut w).unwrap();
        assert_eq!(w.len(), 172 + 1 + 4);
        assert_eq!(w[172], 1, "MKI between payload and the 4-byte tag");
        rx.unprotect_rtp(&w, &mut back).unwrap();
        assert_eq!(back, plain);
        tx.protect_rtcp(&rtcp_rr(3), &mut w).unwrap();
        assert_eq!(w.len(), 32 + 4 + 1 + 10);
        assert_eq!(w[36], 1);
        rx.unprotect_rtcp(&w, &mut back).unwrap();
        assert_eq!(back, rtcp_rr(3));
        tx.protect_rtp(&rtp(11, 3, 160), &mut w).unwrap();
        w[172] = 2;
        assert_eq!(rx.unprotect_rtp(&w, &mut back), Err(SrtpError::MkiMismatch));
        assert_eq!(Mki { value: 258, len: 4 }.bytes(), vec![0, 0, 1, 2]);
    }

    #[test]
    fn inline_keys_format_and_parse() {
        let mut n = 0u64;
        let k = SrtpKey::generate(SrtpSuite::AesCm128HmacSha1_80, &mut || {
            n += 1;
            0x0706_0504_0302_0100 + n.wrapping_mul(0x0808_0808_0808_0808) - 0x0808_0808_0808_0808
        });
        assert_eq!(k.key_salt, (0u8..30).collect::<Vec<_>>());
        // base64 of bytes 0..30, computed by hand (10 groups of 3 bytes).
        assert_eq!(k.inline(), "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd");
        let s = SrtpSuite::AesCm128HmacSha1_80;
        for text in [
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd",
            "inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd|2^31",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd|1048576",
        ] {
            let p = SrtpKey::from_inline(s, text).unwrap();
            assert_eq!(p, k, "{text}");
        }
        let p =
            SrtpKey::from_inline(s, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd|2^31|1:1").unwrap();
        assert_eq!(p.mki, Some(Mki { value: 1, len: 1 }));
        assert_eq!(p.inline(), "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd|1:1");
        let p = SrtpKey::from_inline(s, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd|7:2").unwrap();
        assert_eq!(p.mki, Some(Mki { value: 7, len: 2 }));
        // GCM-128: 28 bytes → 40 characters with `==`; padding optional.
        let g = SrtpSuite::AeadAes128Gcm;
        let gk = SrtpKey::from_inline(g, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGw==").unwrap();
        assert_eq!(gk.key_salt, (0u8..28).collect::<Vec<_>>());
        assert_eq!(gk.inline(), "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGw==");
        assert_eq!(
            SrtpKey::from_inline(g, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGw").unwrap(),
            gk
        );
        assert_eq!(key(SrtpSuite::AeadAes256Gcm, 9).inline().len(), 60);

        let err = |t: &str| SrtpKey::from_inline(s, t).unwrap_err();
        assert_eq!(
            err("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBk*GxwD"),
            SrtpError::Base64 { position: 35 }
        );
        assert_eq!(
            err("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGw=="),
            SrtpError::KeyLength {
                suite: s,
                expected: 30,
                got: 28
            }
        );
        assert_eq!(err(""), SrtpError::Base64 { position: 0 });
        assert_eq!(err("AAECA==="), SrtpError::Base64 { position: 5 });
        assert_eq!(err("AAF="), SrtpError::Base64 { position: 2 }, "stray bits");
        let key30 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd";
        for (suffix, what) in [
            ("|2^49", "bad key lifetime `2^49`"),
            ("|0", "bad key lifetime `0`"),
            ("|2^", "bad key lifetime `2^`"),
            ("|1:0", "bad MKI `1:0`: length must be 1 to 128 bytes"),
            ("|1:129", "bad MKI `1:129`: length must be 1 to 128 bytes"),
            ("|256:1", "bad MKI `256:1`: value does not fit its length"),
            ("|x:1", "bad MKI `x:1`: value is not a decimal number"),
            ("|2^31|1:1|3", "more than KEY|LIFETIME|MKI:LEN"),
        ] {
            assert_eq!(
                err(&format!("{key30}{suffix}")).to_string(),
                format!("SDES key parameter: {what}")
            );
        }
        assert_eq!(
            SrtpSuite::from_sdes_name("AEAD_AES_256_GCM"),
            Some(SrtpSuite::AeadAes256Gcm)
        );
        assert_eq!(SrtpSuite::from_sdes_name("aes_cm_128_hmac_sha1_80"), None);
        assert_eq!(SrtpSuite::from_sdes_name("F8_128_HMAC_SHA1_80"), None);
    }

    #[test]
    fn debug_never_shows_key_material() {
        let k = SrtpKey::from_inline(
            SrtpSuite::AesCm128HmacSha1_80,
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd",
        )
        .unwrap();
        let d = format!("{k:?}");
        assert_eq!(
            d,
            "SrtpKey { suite: AesCm128HmacSha1_80, key_salt: <30 bytes redacted>, mki: None }"
        );
        let s = format!("{:?}", SrtpSession::new(&k, &k).unwrap());
        assert!(!s.contains("AAEC") && !s.contains("[0, 1, 2"), "{s}");
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_input_never_panics(data in proptest::collection::vec(proptest::num::u8::ANY, 0..120), v2 in proptest::bool::ANY) {
            let mut data = data;
            if v2 && !data.is_empty() { data[0] = 0x80 | (data[0] & 0x3f); }
            let mut out = Vec::new();
            for suite in SrtpSuite::ALL {
                let (_, mut b) = pair(suite);
                let _ = b.unprotect_rtp(&data, &mut out);
                let _ = b.unprotect_rtcp(&data, &mut out);
                let _ = b.protect_rtp(&data, &mut out);
                let _ = b.protect_rtcp(&data, &mut out);
            }
        }
    }
}
