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
//! - **Direction.** The remote's direction is the media attribute, else the
//!   session attribute, else sendrecv; `c=0.0.0.0` (RFC 2543 hold, RFC 3264
//!   §8.4) means the remote does not receive. Ours is the intersection of
//!   what we want with the reverse of theirs.
//! - **ptime.** We send with the remote's `a=ptime` (10–120 ms), else our
//!   own, capped by the remote's `a=maxptime`.
//! - **Streams.** The answer keeps the offer's m-line count and order;
//!   non-audio streams, audio streams of another profile and audio streams
//!   after the first accepted one get port 0 (§6).

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use super::model::{
    Attribute, Connection, Direction, MediaDescription, Origin, RtpMap, SessionDescription, Timing,
    addr_type, parse_pt,
};

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
    /// `RTP/AVP` (SAVP later).
    pub profile: String,
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
) -> MediaDescription {
    let mut attributes = Vec::with_capacity(codecs.len() * 2 + 3);
    for (spec, pt) in codecs {
        attributes.push(Attribute::value("rtpmap", spec.rtpmap(*pt).to_string()));
        if let Some(f) = &spec.fmtp {
            attributes.push(Attribute::value("fmtp", format!("{pt} {f}")));
        }
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
    sd.media.push(audio_section(
        local,
        &local.profile,
        &codecs,
        local.direction,
        local.rtcp_mux,
    ));
    sd
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
            .filter(|c| !c.is_telephone_event())
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
    if let Some(max) = remote.maxptime().filter(|m| *m >= 10) {
        if p > max {
            p = max / 10 * 10;
        }
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
    for (index, m) in offer.media.iter().enumerate() {
        if negotiated.is_some() || m.port == 0 || m.media != "audio" {
            answer.media.push(m.rejected());
            continue;
        }
        audio_seen = true;
        if !m.proto.eq_ignore_ascii_case(&local.profile) {
            other_profile.get_or_insert_with(|| m.proto.clone());
            answer.media.push(m.rejected());
            continue;
        }
        let Some(((spec, pt), te)) = pick(m, &local.codecs) else {
            answer.media.push(m.rejected());
            continue;
        };
        let rtcp_mux = m.rtcp_mux() && local.rtcp_mux;
        let (remote_rtp, remote_rtcp) = remote_addresses(offer, m, index, rtcp_mux)?;
        let direction = local
            .direction
            .intersect(remote_direction(offer, m).reverse());
        let mut listed = vec![(spec, pt)];
        listed.extend(te);
        answer
            .media
            .push(audio_section(local, &m.proto, &listed, direction, rtcp_mux));
        negotiated = Some(NegotiatedMedia {
            remote_rtp,
            remote_rtcp,
            codec: chosen(spec, m, pt),
            telephone_event: te.map(|(c, pt)| chosen(c, m, pt)),
            ptime_ms: send_ptime(m, local.ptime_ms),
            direction,
            rtcp_mux,
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
                        && m.proto.eq_ignore_ascii_case(&local.profile)
                }) =>
            {
                Err(AnswerError::UnsupportedProfile(p))
            }
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
        });
    }
    Err(AnswerError::NoAudio)
}
