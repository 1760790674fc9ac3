//! RFC 3264 offer/answer for one audio stream.
//!
//! Choices (RFC 3264 leaves them to the implementation):
//! - **Codec order.** The answerer takes the first codec *in the offerer's
//!   order* that it supports (§6.1: the answerer SHOULD keep the offer's
//!   order of preference); our own preference order only shapes our offers.
//!   The answer lists that one codec (plus telephone-event), so both sides
//!   know which codec flows and the offerer never has to switch.
//! - **Payload types.** Dynamic types are matched by encoding name (case
//!   insensitive), clock rate and channels, never by number; the answer
//!   reuses the offer's numbers (§6.1), and when we apply an answer we use
//!   the numbers the answer carries. `NegotiatedMedia::codec.payload_type`
//!   is therefore always the type the remote expects to receive.
//! - **fmtp.** Our SDP carries *our* receive parameters (`LocalMedia`);
//!   `NegotiatedMedia` carries the *remote's* fmtp for the chosen types,
//!   which is what our sender must honour (e.g. Opus `maxplaybackrate`).
//! - **telephone-event** at the chosen codec's clock rate is preferred
//!   (RFC 4733 §2.1); another offered rate we support is taken otherwise.
//! - **RED** (RFC 2198). When `LocalMedia::codecs` holds a `red` spec
//!   ([`CodecSpec::red`]) it is offered as listed; it is never chosen as
//!   the codec. It is answered (and taken from an answer) only when the
//!   chosen codec is Opus and the remote's `red` fmtp names only that
//!   codec's type (`111/111`); red around another codec is ignored.
//! - **Direction.** The remote's direction is the media attribute, else the
//!   session attribute, else sendrecv; `c=0.0.0.0` (RFC 2543 hold, RFC 3264
//!   §8.4) means the remote does not receive. Ours is the intersection of
//!   what we want with the reverse of theirs.
//! - **ptime.** We send with the remote's `a=ptime` (10–120 ms), else our
//!   own, capped by the remote's `a=maxptime`.
//! - **Streams.** The answer keeps the offer's m-line count and order;
//!   non-audio streams, audio streams of another profile and audio streams
//!   after the first accepted one get port 0 (§6).
//! - **SRTP with SDES** (RFC 4568, [`SrtpPolicy`]). `Mandatory` offers
//!   `RTP/SAVP` with one `a=crypto` line per key in `LocalMedia::srtp_keys`
//!   (tags 1..n, AES_CM_128_HMAC_SHA1_80 first, then _32, then GCM).
//!   `Optional` offers the same `a=crypto` lines on `RTP/AVP`: best-effort
//!   SDES, not standardised (RFC 4568 ties SDES to SAVP) but what Asterisk
//!   and most desk phones accept; an answer without `a=crypto` then means
//!   plain RTP. `Off` offers no crypto. As answerer we take the first
//!   offered crypto line whose suite we have a key for and whose
//!   parameters we can honour (no session parameters other than `WSH=`,
//!   `FEC_ORDER=`, `KDR=0`), answer it with the same tag and our own key,
//!   and keep the offer's profile. `RTP/SAVP` needs a usable crypto line
//!   (and is refused outright with `Off`); `Mandatory` refuses any stream
//!   without one. Answers must carry exactly one crypto line, with a tag
//!   and suite we offered.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use super::model::{
    Attribute, Connection, Direction, MediaDescription, Origin, RtpMap, SessionDescription, Timing,
    addr_type, parse_pt,
};
use crate::rtp::srtp::{SrtpKey, SrtpSuite};

/// The secure RTP profile (RFC 3711 §12).
pub const SAVP: &str = "RTP/SAVP";

/// Whether SRTP (SDES keys) is used for the audio stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SrtpPolicy {
    /// Plain RTP; an `RTP/SAVP` offer is refused.
    #[default]
    Off,
    /// Offer `RTP/AVP` with `a=crypto` (best effort); accept SRTP or RTP.
    Optional,
    /// Offer `RTP/SAVP`; never fall back to plain RTP.
    Mandatory,
}

/// A codec we can send and receive, with its payload type (static, or our
/// preferred dynamic number).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodecSpec {
    /// `PCMU`, `PCMA`, `G722`, `opus`, `telephone-event`.
    pub name: String,
    pub clock_rate: u32,
    pub channels: u8,
    pub payload_type: u8,
    pub fmtp: Option<String>,
}

impl CodecSpec {
    pub fn new(name: &str, clock_rate: u32, channels: u8, payload_type: u8) -> CodecSpec {
        CodecSpec {
            name: name.into(),
            clock_rate,
            channels,
            payload_type,
            fmtp: None,
        }
    }

    /// G.711 µ-law, static type 0.
    pub fn pcmu() -> CodecSpec {
        CodecSpec::new("PCMU", 8000, 1, 0)
    }

    /// G.711 A-law, static type 8.
    pub fn pcma() -> CodecSpec {
        CodecSpec::new("PCMA", 8000, 1, 8)
    }

    /// G.722, static type 9; its RTP clock is 8000 although it samples at
    /// 16 kHz (RFC 3551 §4.5.2).
    pub fn g722() -> CodecSpec {
        CodecSpec::new("G722", 8000, 1, 9)
    }

    /// Opus (RFC 7587 §7: always `opus/48000/2`) on a dynamic type, with
    /// in-band FEC requested.
    pub fn opus(payload_type: u8) -> CodecSpec {
        CodecSpec {
            fmtp: Some("useinbandfec=1".into()),
            ..CodecSpec::new("opus", 48000, 2, payload_type)
        }
    }

    /// RFC 4733 events 0–16 (DTMF digits, `*`, `#`, A–D, flash).
    pub fn telephone_event(payload_type: u8, clock_rate: u32) -> CodecSpec {
        CodecSpec {
            fmtp: Some("0-16".into()),
            ..CodecSpec::new("telephone-event", clock_rate, 1, payload_type)
        }
    }

    pub fn is_telephone_event(&self) -> bool {
        self.name.eq_ignore_ascii_case("telephone-event")
    }

    /// RFC 2198 redundancy (`red/48000/2`, as browsers offer it) carrying
    /// Opus on `opus_pt`: `a=fmtp:PT OPUSPT/OPUSPT` (primary and one
    /// redundant block of the same type).
    pub fn red(payload_type: u8, opus_pt: u8) -> CodecSpec {
        CodecSpec {
            fmtp: Some(format!("{opus_pt}/{opus_pt}")),
            ..CodecSpec::new("red", 48000, 2, payload_type)
        }
    }

    pub fn is_red(&self) -> bool {
        self.name.eq_ignore_ascii_case("red")
    }

    /// Neither a codec of its own nor telephone-event: RED wraps one.
    fn is_audio_codec(&self) -> bool {
        !self.is_telephone_event() && !self.is_red()
    }

    /// Same codec as an rtpmap: name (case-insensitive), rate and channels.
    pub fn matches(&self, map: &RtpMap) -> bool {
        self.name.eq_ignore_ascii_case(&map.encoding)
            && self.clock_rate == map.clock_rate
            && self.channels == map.channels
    }

    fn rtpmap(&self, payload_type: u8) -> RtpMap {
        RtpMap {
            payload_type,
            encoding: self.name.clone(),
            clock_rate: self.clock_rate,
            channels: self.channels,
        }
    }
}

/// What we offer or accept for the audio stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalMedia {
    pub addr: IpAddr,
    pub rtp_port: u16,
    /// Our preference order, telephone-event included.
    pub codecs: Vec<CodecSpec>,
    /// The packetization we want to receive.
    pub ptime_ms: u32,
    pub direction: Direction,
    pub rtcp_mux: bool,
    /// The plain profile, `RTP/AVP` (`RTP/SAVP` follows from `srtp`).
    pub profile: String,
    pub srtp: SrtpPolicy,
    /// Our keys, one per suite we accept (generated by the caller for each
    /// offer/answer); ignored with [`SrtpPolicy::Off`].
    pub srtp_keys: Vec<SrtpKey>,
}

impl LocalMedia {
    /// PCMU, PCMA and telephone-event on 101; 20 ms; sendrecv; no mux.
    pub fn g711(addr: IpAddr, rtp_port: u16) -> LocalMedia {
        LocalMedia {
            addr,
            rtp_port,
            codecs: vec![
                CodecSpec::pcmu(),
                CodecSpec::pcma(),
                CodecSpec::telephone_event(101, 8000),
            ],
            ptime_ms: 20,
            direction: Direction::SendRecv,
            rtcp_mux: false,
            profile: "RTP/AVP".into(),
            srtp: SrtpPolicy::Off,
            srtp_keys: Vec::new(),
        }
    }
}

/// The outcome of offer/answer for the audio stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiatedMedia {
    pub remote_rtp: SocketAddr,
    /// `a=rtcp`, else RTP port + 1, or the RTP address with rtcp-mux.
    pub remote_rtcp: SocketAddr,
    /// With the payload type the remote expects to receive (the answer's)
    /// and the remote's fmtp for it.
    pub codec: CodecSpec,
    pub telephone_event: Option<CodecSpec>,
    /// The packetization to send with.
    pub ptime_ms: u32,
    /// Our direction.
    pub direction: Direction,
    pub rtcp_mux: bool,
    /// SRTP keys (ours, theirs) when the stream is secured. Boxed so the
    /// struct stays small enough to move around in channel messages.
    pub srtp: Option<Box<(SrtpKey, SrtpKey)>>,
    /// RFC 2198 redundancy settled for the chosen codec (Opus only): the
    /// `red` payload type, whose blocks all carry `codec.payload_type`.
    pub red: Option<u8>,
}

impl NegotiatedMedia {
    /// A plain two-way stream to `remote` (RTP and RTCP multiplexed on one
    /// port, 20 ms, no DTMF, SRTP or RED), for tools and benchmarks that
    /// run sessions without offer/answer.
    pub fn sendrecv(remote: SocketAddr, codec: CodecSpec) -> NegotiatedMedia {
        NegotiatedMedia {
            remote_rtp: remote,
            remote_rtcp: remote,
            codec,
            telephone_event: None,
            ptime_ms: 20,
            direction: Direction::SendRecv,
            rtcp_mux: true,
            srtp: None,
            red: None,
        }
    }
}

/// Why an offer cannot be answered or an answer applied (→ 488, or 400 for
/// `Malformed`, at the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnswerError {
    /// No audio stream with a non-zero port.
    NoAudio,
    /// Audio offered, but no codec of ours among it.
    NoCommonCodec,
    /// Audio offered only with a transport profile we do not use.
    UnsupportedProfile(String),
    /// SRTP is required (our policy, or an `RTP/SAVP` offer) but no
    /// `a=crypto` line can be used.
    NoAcceptableCrypto,
    /// The answer's `a=crypto` does not fit our offer.
    BadCryptoAnswer(String),
    Malformed(String),
}

impl fmt::Display for AnswerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AnswerError::NoAudio => f.write_str("no active audio stream"),
            AnswerError::NoCommonCodec => f.write_str("no common codec"),
            AnswerError::UnsupportedProfile(p) => {
                write!(f, "audio offered only with unsupported profile {p}")
            }
            AnswerError::NoAcceptableCrypto => {
                f.write_str("SRTP required but no acceptable a=crypto (SDES) line")
            }
            AnswerError::BadCryptoAnswer(w) => write!(f, "unusable a=crypto in the answer: {w}"),
            AnswerError::Malformed(w) => write!(f, "malformed SDP: {w}"),
        }
    }
}

impl std::error::Error for AnswerError {}

impl From<super::parse::SdpError> for AnswerError {
    fn from(e: super::parse::SdpError) -> Self {
        AnswerError::Malformed(e.to_string())
    }
}

fn skeleton(addr: IpAddr, session_id: u64, version: u64) -> SessionDescription {
    SessionDescription {
        version: 0,
        origin: Origin {
            username: "softline".into(),
            session_id,
            session_version: version,
            net_type: "IN".into(),
            addr_type: addr_type(addr).into(),
            unicast_address: addr.to_string(),
        },
        session_name: "Softline".into(),
        information: None,
        uri: None,
        emails: Vec::new(),
        phones: Vec::new(),
        connection: Some(Connection::for_ip(addr)),
        bandwidths: Vec::new(),
        times: vec![Timing {
            start: 0,
            stop: 0,
            repeats: Vec::new(),
        }],
        time_zones: None,
        key: None,
        attributes: Vec::new(),
        media: Vec::new(),
    }
}

/// One audio section: `codecs` as (spec for name/rate/fmtp, payload type).
fn audio_section(
    local: &LocalMedia,
    proto: &str,
    codecs: &[(&CodecSpec, u8)],
    direction: Direction,
    rtcp_mux: bool,
    crypto: &[(u32, &SrtpKey)],
) -> MediaDescription {
    let mut attributes = Vec::with_capacity(codecs.len() * 2 + 3 + crypto.len());
    for (spec, pt) in codecs {
        attributes.push(Attribute::value("rtpmap", spec.rtpmap(*pt).to_string()));
        if let Some(f) = &spec.fmtp {
            attributes.push(Attribute::value("fmtp", format!("{pt} {f}")));
        }
    }
    for (tag, key) in crypto {
        attributes.push(Attribute::value(
            "crypto",
            format!("{tag} {} inline:{}", key.suite.sdes_name(), key.inline()),
        ));
    }
    attributes.push(Attribute::value("ptime", local.ptime_ms.to_string()));
    if rtcp_mux {
        attributes.push(Attribute::flag("rtcp-mux"));
    }
    attributes.push(Attribute::flag(direction.as_attribute()));
    MediaDescription {
        media: "audio".into(),
        port: local.rtp_port,
        port_count: None,
        proto: proto.into(),
        formats: codecs.iter().map(|(_, pt)| pt.to_string()).collect(),
        information: None,
        connections: Vec::new(),
        bandwidths: Vec::new(),
        key: None,
        attributes,
    }
}

/// Our offer: one audio stream with every codec of `local` in its order.
pub fn create_offer(local: &LocalMedia, session_id: u64, version: u64) -> SessionDescription {
    let mut sd = skeleton(local.addr, session_id, version);
    let codecs: Vec<(&CodecSpec, u8)> = local.codecs.iter().map(|c| (c, c.payload_type)).collect();
    let mut keys: Vec<&SrtpKey> = match local.srtp {
        SrtpPolicy::Off => Vec::new(),
        _ => local.srtp_keys.iter().collect(),
    };
    keys.sort_by_key(|k| SrtpSuite::ALL.iter().position(|s| *s == k.suite));
    let crypto: Vec<(u32, &SrtpKey)> = (1..).zip(keys).collect();
    let proto = match local.srtp {
        SrtpPolicy::Mandatory => SAVP,
        _ => &local.profile,
    };
    sd.media.push(audio_section(
        local,
        proto,
        &codecs,
        local.direction,
        local.rtcp_mux,
        &crypto,
    ));
    sd
}

/// One parsed `a=crypto:<tag> <suite> <key-params> [<session-params>]`.
#[derive(Debug)]
struct CryptoLine {
    tag: u32,
    key: SrtpKey,
    /// Session parameters we can honour (or none).
    usable: bool,
}

/// Parse an `a=crypto` value; `None` for a suite we do not know or a key
/// we cannot parse (RFC 4568 §7.1.1: such lines are ignored).
fn crypto_line(value: &str) -> Option<CryptoLine> {
    let mut fields = value.split_ascii_whitespace();
    let tag_text = fields.next()?;
    if tag_text.len() > 9 || !tag_text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let tag: u32 = tag_text.parse().ok()?;
    let suite = SrtpSuite::from_sdes_name(fields.next()?)?;
    let key_params = fields.next()?;
    // Several keys (`;`-separated) only make sense with MKIs we would have
    // to switch between: not supported.
    if key_params.contains(';') {
        return None;
    }
    let key = SrtpKey::from_inline(suite, key_params.strip_prefix("inline:")?).ok()?;
    let usable =
        fields.all(|p| p.starts_with("WSH=") || p.starts_with("FEC_ORDER=") || p == "KDR=0");
    Some(CryptoLine { tag, key, usable })
}

fn crypto_lines(m: &MediaDescription) -> impl Iterator<Item = CryptoLine> + '_ {
    m.attributes
        .iter()
        .filter(|a| a.name == "crypto")
        .filter_map(|a| crypto_line(a.value.as_deref()?))
}

/// A codec chosen from a remote section: our spec for it (name, rate,
/// channels), the remote's type number and the remote's fmtp.
fn chosen(spec: &CodecSpec, remote: &MediaDescription, payload_type: u8) -> CodecSpec {
    CodecSpec {
        payload_type,
        fmtp: remote.fmtp(payload_type).map(str::to_string),
        ..spec.clone()
    }
}

/// One of our codecs and the payload type it has in a remote section.
type Pick<'a> = (&'a CodecSpec, u8);

/// The first payload of `remote` (in its order) that one of `ours`
/// matches, and the best telephone-event to go with it.
fn pick<'a>(
    remote: &MediaDescription,
    ours: &'a [CodecSpec],
) -> Option<(Pick<'a>, Option<Pick<'a>>)> {
    let payloads = remote.payloads();
    let codec = payloads.iter().find_map(|map| {
        ours.iter()
            .filter(|c| c.is_audio_codec())
            .find(|c| c.matches(map))
            .map(|c| (c, map.payload_type))
    })?;
    let events: Vec<Pick<'a>> = payloads
        .iter()
        .filter_map(|map| {
            ours.iter()
                .filter(|c| c.is_telephone_event())
                .find(|c| c.matches(map))
                .map(|c| (c, map.payload_type))
        })
        .collect();
    let te = events
        .iter()
        .find(|(c, _)| c.clock_rate == codec.0.clock_rate)
        .or(events.first())
        .copied();
    Some((codec, te))
}

/// The `red` payload of `remote` that wraps exactly the chosen codec on
/// `codec_pt` (`a=fmtp:RED PT/PT`, RFC 2198 §5), when we have a red spec
/// and the codec is Opus. Red around another codec (or a mix) is ignored.
fn pick_red<'a>(
    remote: &MediaDescription,
    ours: &'a [CodecSpec],
    codec: &CodecSpec,
    codec_pt: u8,
) -> Option<Pick<'a>> {
    if !codec.name.eq_ignore_ascii_case("opus") {
        return None;
    }
    let spec = ours.iter().find(|c| c.is_red())?;
    remote.payloads().iter().find_map(|map| {
        let is_red = map.encoding.eq_ignore_ascii_case("red") && map.clock_rate == 48000;
        let fmtp = remote.fmtp(map.payload_type)?;
        let mut blocks = fmtp.trim().split('/');
        let wraps_codec = blocks.clone().count() >= 2
            && blocks.all(|b| b.trim().parse::<u8>().ok() == Some(codec_pt));
        (is_red && wraps_codec).then_some((spec, map.payload_type))
    })
}

fn remote_addresses(
    sd: &SessionDescription,
    m: &MediaDescription,
    index: usize,
    rtcp_mux: bool,
) -> Result<(SocketAddr, SocketAddr), AnswerError> {
    let conn = sd
        .connection_for(m)
        .ok_or_else(|| AnswerError::Malformed(format!("m-line {} has no c= line", index + 1)))?;
    let ip = conn.ip().ok_or_else(|| {
        AnswerError::Malformed(format!(
            "m-line {}: connection address `{conn}` is not an IP address of its type",
            index + 1
        ))
    })?;
    let rtp = SocketAddr::new(ip, m.port);
    let rtcp = if rtcp_mux {
        rtp
    } else if let Some(r) = m.rtcp() {
        let ip = match &r.connection {
            Some(c) => c.ip().ok_or_else(|| {
                AnswerError::Malformed(format!(
                    "m-line {}: a=rtcp address `{c}` is not an IP address of its type",
                    index + 1
                ))
            })?,
            None => ip,
        };
        SocketAddr::new(ip, r.port)
    } else {
        let port = m.port.checked_add(1).ok_or_else(|| {
            AnswerError::Malformed(format!(
                "m-line {}: RTP port 65535 leaves no port for RTCP",
                index + 1
            ))
        })?;
        SocketAddr::new(ip, port)
    };
    Ok((rtp, rtcp))
}

/// The remote's effective direction: attributes, then `c=0.0.0.0` hold.
fn remote_direction(sd: &SessionDescription, m: &MediaDescription) -> Direction {
    let d = sd.direction_for(m);
    let held = sd
        .connection_for(m)
        .and_then(Connection::ip)
        .is_some_and(|ip| ip.is_unspecified());
    if held {
        Direction::from_flags(d.sends(), false)
    } else {
        d
    }
}

fn send_ptime(remote: &MediaDescription, ours: u32) -> u32 {
    let valid = |p: &u32| (10..=120).contains(p);
    let mut p = remote
        .ptime()
        .filter(valid)
        .or(Some(ours).filter(valid))
        .unwrap_or(20);
    if let Some(max) = remote.maxptime().filter(|m| *m >= 10)
        && p > max
    {
        p = max / 10 * 10;
    }
    p
}

/// Answer an offer (RFC 3264 §6). See the module notes for the choices.
pub fn answer_offer(
    offer: &SessionDescription,
    local: &LocalMedia,
    session_id: u64,
    version: u64,
) -> Result<(SessionDescription, NegotiatedMedia), AnswerError> {
    let mut answer = skeleton(local.addr, session_id, version);
    let mut negotiated = None;
    let mut audio_seen = false;
    let mut other_profile = None;
    let mut crypto_refused = false;
    for (index, m) in offer.media.iter().enumerate() {
        if negotiated.is_some() || m.port == 0 || m.media != "audio" {
            answer.media.push(m.rejected());
            continue;
        }
        audio_seen = true;
        let secure = m.proto.eq_ignore_ascii_case(SAVP);
        if !(m.proto.eq_ignore_ascii_case(&local.profile)
            || secure && local.srtp != SrtpPolicy::Off)
        {
            other_profile.get_or_insert_with(|| m.proto.clone());
            answer.media.push(m.rejected());
            continue;
        }
        let Some(((spec, pt), te)) = pick(m, &local.codecs) else {
            answer.media.push(m.rejected());
            continue;
        };
        // SDES: the first offered line we have a key for and can honour.
        let srtp = match local.srtp {
            SrtpPolicy::Off => None,
            _ => crypto_lines(m).filter(|c| c.usable).find_map(|c| {
                let ours = local.srtp_keys.iter().find(|k| k.suite == c.key.suite)?;
                Some((c.tag, ours, c.key))
            }),
        };
        if srtp.is_none() && (secure || local.srtp == SrtpPolicy::Mandatory) {
            crypto_refused = true;
            answer.media.push(m.rejected());
            continue;
        }
        let crypto: Vec<(u32, &SrtpKey)> = srtp.iter().map(|(t, ours, _)| (*t, *ours)).collect();
        let rtcp_mux = m.rtcp_mux() && local.rtcp_mux;
        let (remote_rtp, remote_rtcp) = remote_addresses(offer, m, index, rtcp_mux)?;
        let direction = local
            .direction
            .intersect(remote_direction(offer, m).reverse());
        let red = pick_red(m, &local.codecs, spec, pt);
        // Our answer's red wraps the offer's number for the codec.
        let red_spec = red.map(|(_, red_pt)| CodecSpec::red(red_pt, pt));
        let mut listed = vec![(spec, pt)];
        listed.extend(red_spec.as_ref().map(|r| (r, r.payload_type)));
        listed.extend(te);
        answer.media.push(audio_section(
            local, &m.proto, &listed, direction, rtcp_mux, &crypto,
        ));
        negotiated = Some(NegotiatedMedia {
            remote_rtp,
            remote_rtcp,
            codec: chosen(spec, m, pt),
            telephone_event: te.map(|(c, pt)| chosen(c, m, pt)),
            ptime_ms: send_ptime(m, local.ptime_ms),
            direction,
            rtcp_mux,
            srtp: srtp.map(|(_, ours, theirs)| Box::new((ours.clone(), theirs))),
            red: red.map(|(_, red_pt)| red_pt),
        });
    }
    match negotiated {
        Some(n) => Ok((answer, n)),
        None if !audio_seen => Err(AnswerError::NoAudio),
        None => match other_profile {
            Some(p)
                if !offer.media.iter().any(|m| {
                    m.media == "audio"
                        && m.port != 0
                        && (m.proto.eq_ignore_ascii_case(&local.profile)
                            || m.proto.eq_ignore_ascii_case(SAVP) && local.srtp != SrtpPolicy::Off)
                }) =>
            {
                Err(AnswerError::UnsupportedProfile(p))
            }
            _ if crypto_refused => Err(AnswerError::NoAcceptableCrypto),
            _ => Err(AnswerError::NoCommonCodec),
        },
    }
}

/// Apply the answer to our offer (RFC 3264 §7): the first audio stream the
/// answer accepted, with the codec the answer lists first among ours.
pub fn apply_answer(
    our_offer: &SessionDescription,
    answer: &SessionDescription,
) -> Result<NegotiatedMedia, AnswerError> {
    if our_offer.media.len() != answer.media.len() {
        return Err(AnswerError::Malformed(format!(
            "answer has {} m-lines, the offer had {} (RFC 3264 §6)",
            answer.media.len(),
            our_offer.media.len()
        )));
    }
    for (index, (o, a)) in our_offer.media.iter().zip(&answer.media).enumerate() {
        if o.media != a.media {
            return Err(AnswerError::Malformed(format!(
                "m-line {} is {} in the answer but {} in the offer",
                index + 1,
                a.media,
                o.media
            )));
        }
        if o.media != "audio" || o.port == 0 || a.port == 0 {
            continue;
        }
        // Our codecs as offered, with the names and types we wrote.
        let ours: Vec<CodecSpec> = o
            .payloads()
            .into_iter()
            .map(|m| CodecSpec::new(&m.encoding, m.clock_rate, m.channels, m.payload_type))
            .collect();
        // Types in the answer must be ones it declares (rtpmap or static).
        if a.formats.iter().any(|f| parse_pt(f).is_none()) {
            return Err(AnswerError::Malformed(format!(
                "m-line {}: non-RTP format in the answer",
                index + 1
            )));
        }
        let Some(((spec, pt), te)) = pick(a, &ours) else {
            return Err(AnswerError::NoCommonCodec);
        };
        let srtp = answer_crypto(o, a)?;
        let red = pick_red(a, &ours, spec, pt).map(|(_, red_pt)| red_pt);
        let rtcp_mux = o.rtcp_mux() && a.rtcp_mux();
        let (remote_rtp, remote_rtcp) = remote_addresses(answer, a, index, rtcp_mux)?;
        let direction = our_offer
            .direction_for(o)
            .intersect(remote_direction(answer, a).reverse());
        return Ok(NegotiatedMedia {
            remote_rtp,
            remote_rtcp,
            codec: chosen(spec, a, pt),
            telephone_event: te.map(|(c, pt)| chosen(c, a, pt)),
            ptime_ms: send_ptime(a, o.ptime().unwrap_or(20)),
            direction,
            rtcp_mux,
            srtp,
            red,
        });
    }
    Err(AnswerError::NoAudio)
}

/// The SRTP keys of an accepted stream from our offered section `o` and
/// the answer's section `a` (see the module notes).
fn answer_crypto(
    o: &MediaDescription,
    a: &MediaDescription,
) -> Result<Option<Box<(SrtpKey, SrtpKey)>>, AnswerError> {
    let bad = |w: String| Err(AnswerError::BadCryptoAnswer(w));
    let offered: Vec<CryptoLine> = crypto_lines(o).collect();
    let lines: Vec<&str> = a
        .attributes
        .iter()
        .filter(|x| x.name == "crypto")
        .map(|x| x.value.as_deref().unwrap_or(""))
        .collect();
    let required = o.proto.eq_ignore_ascii_case(SAVP);
    let value = match lines.as_slice() {
        [] if required => return Err(AnswerError::NoAcceptableCrypto),
        [] => return Ok(None),
        [_] if offered.is_empty() => return bad("we offered no a=crypto".into()),
        [one] => *one,
        _ => return bad(format!("{} a=crypto lines, one expected", lines.len())),
    };
    if !a.proto.eq_ignore_ascii_case(&o.proto) {
        return bad(format!(
            "profile {} answers an offer of {}",
            a.proto, o.proto
        ));
    }
    let Some(theirs) = crypto_line(value) else {
        return bad(format!(
            "`{}` cannot be parsed",
            value.split(" inline:").next().unwrap_or("")
        ));
    };
    let Some(ours) = offered.into_iter().find(|c| c.tag == theirs.tag) else {
        return bad(format!("tag {} was not offered", theirs.tag));
    };
    if ours.key.suite != theirs.key.suite {
        return bad(format!(
            "tag {} is {} in the answer but {} in the offer",
            theirs.tag, theirs.key.suite, ours.key.suite
        ));
    }
    if !theirs.usable {
        return bad("unsupported session parameters".into());
    }
    Ok(Some(Box::new((ours.key, theirs.key))))
}
