//! SDP data model (RFC 8866 §5) and typed views of the attributes a phone
//! reads: `rtpmap`/`fmtp` (§6.6, §6.15), `ptime`/`maxptime` (§6.4, §6.5),
//! direction (§6.7), `rtcp` (RFC 3605), `rtcp-mux` (RFC 5761), Opus fmtp
//! (RFC 7587 §6.1) and telephone-event lists (RFC 4733 §7.1).
//!
//! The model keeps every field of the description, unknown attributes
//! included, so a parsed description displays back to equivalent wire text.
//! `Display` writes the lines in RFC 8866 order with CRLF endings.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// Media direction (RFC 8866 §6.7), always from the point of view of the
/// description's author.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Direction {
    #[default]
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    /// The direction the other side sees: sendonly ↔ recvonly. An answerer
    /// that accepts an offer's `sendonly` answers `recvonly` (RFC 3264 §6.1).
    pub fn reverse(self) -> Direction {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            d => d,
        }
    }

    /// From an attribute name (`sendrecv`, `sendonly`, `recvonly`, `inactive`).
    pub fn from_attribute(name: &str) -> Option<Direction> {
        match name {
            "sendrecv" => Some(Direction::SendRecv),
            "sendonly" => Some(Direction::SendOnly),
            "recvonly" => Some(Direction::RecvOnly),
            "inactive" => Some(Direction::Inactive),
            _ => None,
        }
    }

    /// The attribute name of this direction.
    pub fn as_attribute(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    pub fn from_flags(sends: bool, receives: bool) -> Direction {
        match (sends, receives) {
            (true, true) => Direction::SendRecv,
            (true, false) => Direction::SendOnly,
            (false, true) => Direction::RecvOnly,
            (false, false) => Direction::Inactive,
        }
    }

    /// Both directions allow it: the flow that is left when two wishes meet.
    pub fn intersect(self, other: Direction) -> Direction {
        Direction::from_flags(
            self.sends() && other.sends(),
            self.receives() && other.receives(),
        )
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_attribute())
    }
}

/// `o=<username> <sess-id> <sess-version> <nettype> <addrtype> <unicast-address>`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub username: String,
    pub session_id: u64,
    pub session_version: u64,
    pub net_type: String,
    pub addr_type: String,
    pub unicast_address: String,
}

/// `c=<nettype> <addrtype> <connection-address>`; the address keeps any
/// multicast `/ttl/count` suffix as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub net_type: String,
    pub addr_type: String,
    pub address: String,
}

impl Connection {
    /// `IN IP4 a.b.c.d` / `IN IP6 x::y` for an address.
    pub fn for_ip(ip: IpAddr) -> Connection {
        Connection {
            net_type: "IN".into(),
            addr_type: addr_type(ip).into(),
            address: ip.to_string(),
        }
    }

    /// The IP address, when the address is an IP literal of the declared
    /// type (`IN IP4` + IPv4, `IN IP6` + IPv6). FQDNs give `None`.
    pub fn ip(&self) -> Option<IpAddr> {
        ip_of(&self.net_type, &self.addr_type, &self.address)
    }
}

pub(crate) fn addr_type(ip: IpAddr) -> &'static str {
    match ip {
        IpAddr::V4(_) => "IP4",
        IpAddr::V6(_) => "IP6",
    }
}

fn ip_of(net_type: &str, addr_type: &str, address: &str) -> Option<IpAddr> {
    if net_type != "IN" {
        return None;
    }
    let base = address.split('/').next().unwrap_or(address);
    let ip: IpAddr = base.parse().ok()?;
    match (addr_type, ip) {
        ("IP4", IpAddr::V4(_)) | ("IP6", IpAddr::V6(_)) => Some(ip),
        _ => None,
    }
}

/// `b=<bwtype>:<bandwidth>`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bandwidth {
    pub bw_type: String,
    pub bandwidth: u64,
}

/// `t=<start-time> <stop-time>` and the `r=` lines that follow it (kept raw).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timing {
    pub start: u64,
    pub stop: u64,
    pub repeats: Vec<String>,
}

/// `a=<name>` or `a=<name>:<value>`. Unknown attributes are kept as they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    pub name: String,
    pub value: Option<String>,
}

impl Attribute {
    pub fn flag(name: &str) -> Attribute {
        Attribute {
            name: name.into(),
            value: None,
        }
    }

    pub fn value(name: &str, value: impl Into<String>) -> Attribute {
        Attribute {
            name: name.into(),
            value: Some(value.into()),
        }
    }
}

/// One `m=` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDescription {
    /// `audio`, `video`, `application`, …
    pub media: String,
    /// 0 = stream rejected / disabled (RFC 3264 §5.1, §6).
    pub port: u16,
    /// The `/<number of ports>` suffix, when present.
    pub port_count: Option<u16>,
    /// `RTP/AVP`, `RTP/SAVP`, …
    pub proto: String,
    /// Payload type numbers for RTP profiles; kept as text for the others.
    pub formats: Vec<String>,
    pub information: Option<String>,
    pub connections: Vec<Connection>,
    pub bandwidths: Vec<Bandwidth>,
    pub key: Option<String>,
    pub attributes: Vec<Attribute>,
}

/// A whole session description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    /// Always 0 (`v=0`).
    pub version: u32,
    pub origin: Origin,
    pub session_name: String,
    pub information: Option<String>,
    pub uri: Option<String>,
    pub emails: Vec<String>,
    pub phones: Vec<String>,
    pub connection: Option<Connection>,
    pub bandwidths: Vec<Bandwidth>,
    pub times: Vec<Timing>,
    /// `z=` raw text.
    pub time_zones: Option<String>,
    pub key: Option<String>,
    pub attributes: Vec<Attribute>,
    pub media: Vec<MediaDescription>,
}

/// Attribute lookups shared by the session and media levels.
pub trait Attributes {
    fn attribute_list(&self) -> &[Attribute];

    /// The value of the first attribute with this name (`Some("")` for a
    /// flag such as `a=rtcp-mux`).
    fn attribute(&self, name: &str) -> Option<&str> {
        self.attribute_list()
            .iter()
            .find(|a| a.name == name)
            .map(|a| a.value.as_deref().unwrap_or(""))
    }

    fn has_attribute(&self, name: &str) -> bool {
        self.attribute_list().iter().any(|a| a.name == name)
    }

    /// The last direction attribute, when any.
    fn direction(&self) -> Option<Direction> {
        self.attribute_list()
            .iter()
            .rev()
            .find_map(|a| Direction::from_attribute(&a.name))
    }
}

impl Attributes for SessionDescription {
    fn attribute_list(&self) -> &[Attribute] {
        &self.attributes
    }
}

impl Attributes for MediaDescription {
    fn attribute_list(&self) -> &[Attribute] {
        &self.attributes
    }
}

/// `a=rtpmap:<payload type> <encoding name>/<clock rate>[/<channels>]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpMap {
    pub payload_type: u8,
    pub encoding: String,
    pub clock_rate: u32,
    /// 1 when not written (RFC 8866 §6.6 for audio).
    pub channels: u8,
}

impl RtpMap {
    /// Parse an rtpmap value; `None` when it is not well formed.
    pub fn parse(value: &str) -> Option<RtpMap> {
        let (pt, rest) = value.trim().split_once(' ')?;
        let payload_type = parse_pt(pt)?;
        let mut parts = rest.trim().split('/');
        let encoding = parts.next().filter(|e| is_token(e))?.to_string();
        let clock_rate: u32 = parts.next()?.parse().ok().filter(|r| *r > 0)?;
        let channels = match parts.next() {
            Some(c) => c.parse().ok().filter(|c| *c > 0)?,
            None => 1,
        };
        if parts.next().is_some() {
            return None;
        }
        Some(RtpMap {
            payload_type,
            encoding,
            clock_rate,
            channels,
        })
    }

    /// The RFC 3551 static mapping of a payload type (table 4), for offers
    /// that list a static type without an rtpmap.
    pub fn static_payload(payload_type: u8) -> Option<RtpMap> {
        let (name, rate, channels) = match payload_type {
            0 => ("PCMU", 8000, 1),
            3 => ("GSM", 8000, 1),
            4 => ("G723", 8000, 1),
            5 => ("DVI4", 8000, 1),
            6 => ("DVI4", 16000, 1),
            7 => ("LPC", 8000, 1),
            8 => ("PCMA", 8000, 1),
            9 => ("G722", 8000, 1),
            10 => ("L16", 44100, 2),
            11 => ("L16", 44100, 1),
            12 => ("QCELP", 8000, 1),
            13 => ("CN", 8000, 1),
            15 => ("G728", 8000, 1),
            16 => ("DVI4", 11025, 1),
            17 => ("DVI4", 22050, 1),
            18 => ("G729", 8000, 1),
            _ => return None,
        };
        Some(RtpMap {
            payload_type,
            encoding: name.into(),
            clock_rate: rate,
            channels,
        })
    }
}

impl fmt::Display for RtpMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}/{}",
            self.payload_type, self.encoding, self.clock_rate
        )?;
        if self.channels != 1 {
            write!(f, "/{}", self.channels)?;
        }
        Ok(())
    }
}

/// An RTP payload type number (0–127).
pub fn parse_pt(s: &str) -> Option<u8> {
    if s.is_empty() || s.len() > 3 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok().filter(|pt| *pt <= 127)
}

/// `a=rtcp:<port> [<nettype> <addrtype> <connection-address>]` (RFC 3605).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtcpAttr {
    pub port: u16,
    pub connection: Option<Connection>,
}

impl RtcpAttr {
    pub fn parse(value: &str) -> Option<RtcpAttr> {
        let mut f = value.split_ascii_whitespace();
        let port = f.next()?.parse().ok()?;
        let connection = match (f.next(), f.next(), f.next()) {
            (None, _, _) => None,
            (Some(n), Some(a), Some(addr)) => Some(Connection {
                net_type: n.into(),
                addr_type: a.into(),
                address: addr.into(),
            }),
            _ => return None,
        };
        if f.next().is_some() {
            return None;
        }
        Some(RtcpAttr { port, connection })
    }
}

/// The `name=value` parameters of an fmtp value, separated by `;` with
/// optional spaces (RFC 7587 §6.1 style). A parameter without `=` gives an
/// empty value.
pub fn fmtp_params(fmtp: &str) -> impl Iterator<Item = (&str, &str)> {
    fmtp.split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.trim(), v.trim()),
            None => (p, ""),
        })
}

/// Opus fmtp parameters (RFC 7587 §6.1) that a sender honours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpusParams {
    /// Highest sample rate the receiver renders (8000–48000).
    pub maxplaybackrate: u32,
    /// The receiver prefers stereo.
    pub stereo: bool,
    /// The receiver can use in-band FEC.
    pub useinbandfec: bool,
    /// The receiver prefers DTX.
    pub usedtx: bool,
    /// Maximum average bit rate, bit/s (6000–510000).
    pub maxaveragebitrate: Option<u32>,
}

impl Default for OpusParams {
    fn default() -> Self {
        // RFC 7587 §6.1 defaults.
        OpusParams {
            maxplaybackrate: 48000,
            stereo: false,
            useinbandfec: false,
            usedtx: false,
            maxaveragebitrate: None,
        }
    }
}

impl OpusParams {
    /// Read the parameters of an fmtp value; unknown or out-of-range values
    /// keep their defaults (the RFC asks receivers to ignore them).
    pub fn from_fmtp(fmtp: &str) -> OpusParams {
        let mut p = OpusParams::default();
        for (k, v) in fmtp_params(fmtp) {
            match k {
                "maxplaybackrate" => {
                    if let Ok(r) = v.parse::<u32>() {
                        p.maxplaybackrate = r.clamp(8000, 48000);
                    }
                }
                "stereo" => p.stereo = v == "1",
                "useinbandfec" => p.useinbandfec = v == "1",
                "usedtx" => p.usedtx = v == "1",
                "maxaveragebitrate" => {
                    p.maxaveragebitrate = v
                        .parse::<u32>()
                        .ok()
                        .filter(|b| (6000..=510_000).contains(b))
                }
                _ => {}
            }
        }
        p
    }
}

impl fmt::Display for OpusParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "maxplaybackrate={}; stereo={}; useinbandfec={}; usedtx={}",
            self.maxplaybackrate,
            u8::from(self.stereo),
            u8::from(self.useinbandfec),
            u8::from(self.usedtx)
        )?;
        if let Some(b) = self.maxaveragebitrate {
            write!(f, "; maxaveragebitrate={b}")?;
        }
        Ok(())
    }
}

/// The events of a telephone-event fmtp (`0-15,66,70`; RFC 4733 §7.1.1) as a
/// 256-bit set. `None` when the list is malformed.
pub fn telephone_events(fmtp: &str) -> Option<[bool; 256]> {
    let mut set = [false; 256];
    for item in fmtp.split(',').map(str::trim) {
        let (lo, hi) = match item.split_once('-') {
            Some((a, b)) => (a.trim().parse::<u8>().ok()?, b.trim().parse::<u8>().ok()?),
            None => {
                let e = item.parse::<u8>().ok()?;
                (e, e)
            }
        };
        if lo > hi {
            return None;
        }
        for e in lo..=hi {
            if let Some(slot) = set.get_mut(usize::from(e)) {
                *slot = true;
            }
        }
    }
    Some(set)
}

impl MediaDescription {
    /// The rtpmap of a payload type: the `a=rtpmap` line, else the static
    /// RFC 3551 mapping.
    pub fn rtpmap(&self, payload_type: u8) -> Option<RtpMap> {
        self.attributes
            .iter()
            .filter(|a| a.name == "rtpmap")
            .filter_map(|a| RtpMap::parse(a.value.as_deref()?))
            .find(|m| m.payload_type == payload_type)
            .or_else(|| RtpMap::static_payload(payload_type))
    }

    /// The fmtp value of a payload type.
    pub fn fmtp(&self, payload_type: u8) -> Option<&str> {
        self.attributes
            .iter()
            .filter(|a| a.name == "fmtp")
            .filter_map(|a| a.value.as_deref())
            .find_map(|v| {
                let (pt, rest) = v.split_once(' ')?;
                (parse_pt(pt)? == payload_type).then_some(rest.trim())
            })
    }

    /// The formats that are RTP payload types, with their mappings, in
    /// m-line order. Formats with no known mapping are skipped.
    pub fn payloads(&self) -> Vec<RtpMap> {
        self.formats
            .iter()
            .filter_map(|f| parse_pt(f))
            .filter_map(|pt| self.rtpmap(pt))
            .collect()
    }

    /// `a=ptime` in milliseconds (fractional values are truncated).
    pub fn ptime(&self) -> Option<u32> {
        parse_ms(self.attribute("ptime")?)
    }

    /// `a=maxptime` in milliseconds.
    pub fn maxptime(&self) -> Option<u32> {
        parse_ms(self.attribute("maxptime")?)
    }

    /// `a=rtcp` (RFC 3605).
    pub fn rtcp(&self) -> Option<RtcpAttr> {
        RtcpAttr::parse(self.attribute("rtcp")?)
    }

    /// `a=rtcp-mux` present (RFC 5761).
    pub fn rtcp_mux(&self) -> bool {
        self.has_attribute("rtcp-mux")
    }

    /// A rejected stream: port 0 copying the media, proto and formats.
    pub fn rejected(&self) -> MediaDescription {
        MediaDescription {
            media: self.media.clone(),
            port: 0,
            port_count: None,
            proto: self.proto.clone(),
            formats: self.formats.clone(),
            information: None,
            connections: Vec::new(),
            bandwidths: Vec::new(),
            key: None,
            attributes: Vec::new(),
        }
    }
}

fn parse_ms(v: &str) -> Option<u32> {
    let int = v.trim().split('.').next()?;
    int.parse().ok()
}

impl SessionDescription {
    /// The connection that applies to a media section: its own first `c=`,
    /// else the session's.
    pub fn connection_for<'a>(&'a self, m: &'a MediaDescription) -> Option<&'a Connection> {
        m.connections.first().or(self.connection.as_ref())
    }

    /// The direction that applies to a media section: media level, else
    /// session level, else sendrecv (RFC 8866 §6.7).
    pub fn direction_for(&self, m: &MediaDescription) -> Direction {
        m.direction().or(self.direction()).unwrap_or_default()
    }

    /// The RTP address of a media section, when its connection is an IP.
    pub fn rtp_addr(&self, m: &MediaDescription) -> Option<SocketAddr> {
        Some(SocketAddr::new(self.connection_for(m)?.ip()?, m.port))
    }
}

pub(crate) fn is_token(s: &str) -> bool {
    // RFC 8866 §9 token-char: %x21 / %x23-27 / %x2A-2B / %x2D-2E / %x30-39 /
    // %x41-5A / %x5E-7E
    !s.is_empty()
        && s.bytes().all(|b| {
            matches!(b, 0x21 | 0x23..=0x27 | 0x2A..=0x2B | 0x2D..=0x2E | 0x30..=0x39 | 0x41..=0x5A | 0x5E..=0x7E)
        })
}

fn write_opt(f: &mut fmt::Formatter<'_>, letter: char, v: &Option<String>) -> fmt::Result {
    match v {
        Some(v) => write!(f, "{letter}={v}\r\n"),
        None => Ok(()),
    }
}

impl fmt::Display for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.net_type, self.addr_type, self.address)
    }
}

impl fmt::Display for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(v) => write!(f, "{}:{v}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

impl fmt::Display for MediaDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "m={} {}", self.media, self.port)?;
        if let Some(n) = self.port_count {
            write!(f, "/{n}")?;
        }
        write!(f, " {}", self.proto)?;
        for fmt in &self.formats {
            write!(f, " {fmt}")?;
        }
        f.write_str("\r\n")?;
        write_opt(f, 'i', &self.information)?;
        for c in &self.connections {
            write!(f, "c={c}\r\n")?;
        }
        for b in &self.bandwidths {
            write!(f, "b={}:{}\r\n", b.bw_type, b.bandwidth)?;
        }
        write_opt(f, 'k', &self.key)?;
        for a in &self.attributes {
            write!(f, "a={a}\r\n")?;
        }
        Ok(())
    }
}

impl fmt::Display for SessionDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.origin;
        write!(
            f,
            "v={}\r\no={} {} {} {} {} {}\r\ns={}\r\n",
            self.version,
            o.username,
            o.session_id,
            o.session_version,
            o.net_type,
            o.addr_type,
            o.unicast_address,
            self.session_name
        )?;
        write_opt(f, 'i', &self.information)?;
        write_opt(f, 'u', &self.uri)?;
        for e in &self.emails {
            write!(f, "e={e}\r\n")?;
        }
        for p in &self.phones {
            write!(f, "p={p}\r\n")?;
        }
        if let Some(c) = &self.connection {
            write!(f, "c={c}\r\n")?;
        }
        for b in &self.bandwidths {
            write!(f, "b={}:{}\r\n", b.bw_type, b.bandwidth)?;
        }
        for t in &self.times {
            write!(f, "t={} {}\r\n", t.start, t.stop)?;
            for r in &t.repeats {
                write!(f, "r={r}\r\n")?;
            }
        }
        write_opt(f, 'z', &self.time_zones)?;
        write_opt(f, 'k', &self.key)?;
        for a in &self.attributes {
            write!(f, "a={a}\r\n")?;
        }
        for m in &self.media {
            write!(f, "{m}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direction_reverse_and_intersect() {
        assert_eq!(Direction::SendOnly.reverse(), Direction::RecvOnly);
        assert_eq!(Direction::RecvOnly.reverse(), Direction::SendOnly);
        assert_eq!(Direction::Inactive.reverse(), Direction::Inactive);
        assert_eq!(Direction::SendRecv.reverse(), Direction::SendRecv);
        assert_eq!(
            Direction::SendRecv.intersect(Direction::RecvOnly),
            Direction::RecvOnly
        );
        assert_eq!(
            Direction::SendOnly.intersect(Direction::RecvOnly),
            Direction::Inactive
        );
        for d in [
            Direction::SendRecv,
            Direction::SendOnly,
            Direction::RecvOnly,
            Direction::Inactive,
        ] {
            assert_eq!(Direction::from_attribute(d.as_attribute()), Some(d));
        }
        assert_eq!(Direction::from_attribute("sendRecv"), None);
    }

    #[test]
    fn rtpmap_forms() {
        assert_eq!(
            RtpMap::parse("111 opus/48000/2"),
            Some(RtpMap {
                payload_type: 111,
                encoding: "opus".into(),
                clock_rate: 48000,
                channels: 2
            })
        );
        let g722 = RtpMap::parse("9 G722/8000").unwrap();
        assert_eq!((g722.clock_rate, g722.channels), (8000, 1));
        assert_eq!(g722.to_string(), "9 G722/8000");
        assert_eq!(RtpMap::parse("128 foo/8000"), None);
        assert_eq!(RtpMap::parse("96 foo"), None);
        assert_eq!(RtpMap::parse("96 foo/0"), None);
        assert_eq!(RtpMap::parse("96 foo/8000/0"), None);
        assert_eq!(RtpMap::parse("96 foo/8000/1/2"), None);
        assert_eq!(RtpMap::static_payload(9).unwrap().encoding, "G722");
        assert_eq!(RtpMap::static_payload(96), None);
    }

    #[test]
    fn rtcp_attribute_forms() {
        assert_eq!(
            RtcpAttr::parse("53020"),
            Some(RtcpAttr {
                port: 53020,
                connection: None
            })
        );
        let a = RtcpAttr::parse("53020 IN IP6 2001:2345:6789:ABCD:EF01:2345:6789:ABCD").unwrap();
        assert_eq!(
            a.connection.unwrap().ip(),
            Some("2001:2345:6789:abcd:ef01:2345:6789:abcd".parse().unwrap())
        );
        assert_eq!(RtcpAttr::parse("70000"), None);
        assert_eq!(RtcpAttr::parse("5000 IN IP4"), None);
    }

    #[test]
    fn connection_ip_checks_the_address_type() {
        let c = |t: &str, a: &str| Connection {
            net_type: "IN".into(),
            addr_type: t.into(),
            address: a.into(),
        };
        assert_eq!(c("IP4", "192.0.2.1").ip(), Some([192, 0, 2, 1].into()));
        assert_eq!(c("IP4", "224.2.1.1/127").ip(), Some([224, 2, 1, 1].into()));
        assert_eq!(c("IP6", "192.0.2.1").ip(), None);
        assert_eq!(c("IP4", "::1").ip(), None);
        assert_eq!(c("IP4", "host.example.com").ip(), None);
    }

    #[test]
    fn opus_params_rfc7587() {
        let p = OpusParams::from_fmtp(
            "maxplaybackrate=16000; sprop-maxcapturerate=16000; maxaveragebitrate=20000; stereo=1; useinbandfec=1; usedtx=0",
        );
        assert_eq!(
            p,
            OpusParams {
                maxplaybackrate: 16000,
                stereo: true,
                useinbandfec: true,
                usedtx: false,
                maxaveragebitrate: Some(20000)
            }
        );
        // Out-of-range values: clamped / ignored.
        let p = OpusParams::from_fmtp("maxplaybackrate=96000;maxaveragebitrate=1000");
        assert_eq!((p.maxplaybackrate, p.maxaveragebitrate), (48000, None));
        assert_eq!(OpusParams::from_fmtp(""), OpusParams::default());
        assert_eq!(OpusParams::from_fmtp(&p.to_string()), p);
    }

    #[test]
    fn telephone_event_lists() {
        let s = telephone_events("0-15,66, 70").unwrap();
        assert_eq!(s.iter().filter(|b| **b).count(), 18);
        assert!(s[15] && s[66] && s[70] && !s[16]);
        assert_eq!(
            telephone_events("0-255")
                .unwrap()
                .iter()
                .filter(|b| **b)
                .count(),
            256
        );
        assert!(telephone_events("16-0").is_none());
        assert!(telephone_events("0-256").is_none());
        assert!(telephone_events("a").is_none());
    }
}
