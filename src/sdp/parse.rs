//! SDP parser (RFC 8866 §5, §9).
//!
//! Strict on line syntax: every line is `<letter>=<value>` with one
//! lower-case letter and no space before or after `=`; lines end in CRLF or
//! LF; NUL and stray CR are refused; `v=0`, `o=`, `s=` must open the
//! description in that order and at least one `t=` must follow; an unknown
//! type letter rejects the description (§5: "a parser MUST … ignore any
//! session description that contains a type letter that it does not
//! understand"); session-only letters inside a media section are refused.
//! Tolerant where real equipment differs: the optional lines of a section
//! may come in any order, fields may be separated by more than one space,
//! and blank lines at the end are ignored.
//!
//! Every error names the line number (1-based) and the field.

use std::fmt;

use super::model::{
    Attribute, Bandwidth, Connection, MediaDescription, Origin, SessionDescription, Timing,
    is_token,
};

/// Why a description was rejected, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdpError {
    /// 1-based line number; 0 for the description as a whole.
    pub line: usize,
    pub kind: SdpErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SdpErrorKind {
    /// The body is empty.
    Empty,
    /// Longer than [`MAX_SDP_SIZE`] bytes.
    TooLarge(usize),
    /// The line is not valid UTF-8.
    NotUtf8,
    /// Not `<letter>=<value>`.
    BadLine(String),
    /// NUL or a CR that does not end the line.
    ForbiddenByte(u8),
    /// A type letter RFC 8866 does not define.
    UnknownType(char),
    /// A known line in a place it may not be.
    Misplaced { letter: char, why: &'static str },
    /// A mandatory line is missing (`o=`, `s=`, `t=`).
    MissingLine(char),
    /// A mandatory field of a line is missing.
    MissingField(&'static str),
    /// A field has an invalid value.
    InvalidField { field: &'static str, value: String },
    /// More fields than the line allows.
    ExtraField { field: &'static str, value: String },
}

impl fmt::Display for SdpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "SDP line {}: ", self.line)?;
        } else {
            f.write_str("SDP: ")?;
        }
        match &self.kind {
            SdpErrorKind::Empty => f.write_str("empty description"),
            SdpErrorKind::TooLarge(n) => write!(f, "{n} bytes, more than {MAX_SDP_SIZE}"),
            SdpErrorKind::NotUtf8 => f.write_str("not UTF-8"),
            SdpErrorKind::BadLine(l) => write!(f, "not a `<letter>=<value>` line: {l:?}"),
            SdpErrorKind::ForbiddenByte(b) => write!(f, "forbidden byte 0x{b:02X}"),
            SdpErrorKind::UnknownType(c) => write!(f, "unknown line type `{c}=`"),
            SdpErrorKind::Misplaced { letter, why } => write!(f, "`{letter}=` {why}"),
            SdpErrorKind::MissingLine(c) => write!(f, "missing mandatory `{c}=` line"),
            SdpErrorKind::MissingField(field) => write!(f, "missing field {field}"),
            SdpErrorKind::InvalidField { field, value } => {
                write!(f, "invalid {field} {value:?}")
            }
            SdpErrorKind::ExtraField { field, value } => {
                write!(f, "unexpected {value:?} after {field}")
            }
        }
    }
}

impl std::error::Error for SdpError {}

/// Longest description accepted, in bytes (an SDP body rides in one SIP
/// message, which is capped at 64 KiB).
pub const MAX_SDP_SIZE: usize = 65_535;

struct Line<'a> {
    no: usize,
    letter: char,
    value: &'a str,
}

impl Line<'_> {
    fn err(&self, kind: SdpErrorKind) -> SdpError {
        SdpError {
            line: self.no,
            kind,
        }
    }

    fn invalid(&self, field: &'static str, value: &str) -> SdpError {
        self.err(SdpErrorKind::InvalidField {
            field,
            value: value.to_string(),
        })
    }

    /// The whitespace-separated fields, exactly `N` of them.
    fn fields<const N: usize>(&self, names: [&'static str; N]) -> Result<[&str; N], SdpError> {
        let mut it = self.value.split_ascii_whitespace();
        let mut out = [""; N];
        for (slot, name) in out.iter_mut().zip(names) {
            *slot = it
                .next()
                .ok_or_else(|| self.err(SdpErrorKind::MissingField(name)))?;
        }
        if let Some(extra) = it.next() {
            return Err(self.err(SdpErrorKind::ExtraField {
                field: names.last().copied().unwrap_or(""),
                value: extra.to_string(),
            }));
        }
        Ok(out)
    }
}

fn split_lines(bytes: &[u8]) -> Result<Vec<Line<'_>>, SdpError> {
    if bytes.len() > MAX_SDP_SIZE {
        return Err(SdpError {
            line: 0,
            kind: SdpErrorKind::TooLarge(bytes.len()),
        });
    }
    let mut raw: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
    // Trailing blank lines (and the empty piece after the last LF) are fine.
    while raw
        .last()
        .is_some_and(|l| l.is_empty() || *l == b"\r".as_slice())
    {
        raw.pop();
    }
    if raw.is_empty() {
        return Err(SdpError {
            line: 0,
            kind: SdpErrorKind::Empty,
        });
    }
    let mut lines = Vec::with_capacity(raw.len());
    for (i, l) in raw.into_iter().enumerate() {
        let no = i + 1;
        let err = |kind| SdpError { line: no, kind };
        let l = l.strip_suffix(b"\r").unwrap_or(l);
        if let Some(b) = l.iter().find(|b| **b == 0 || **b == b'\r') {
            return Err(err(SdpErrorKind::ForbiddenByte(*b)));
        }
        let text = std::str::from_utf8(l).map_err(|_| err(SdpErrorKind::NotUtf8))?;
        let b = text.as_bytes();
        let (Some(letter), Some(b'=')) = (b.first(), b.get(1)) else {
            return Err(err(SdpErrorKind::BadLine(text.to_string())));
        };
        if !letter.is_ascii_lowercase() {
            return Err(err(SdpErrorKind::BadLine(text.to_string())));
        }
        let value = text.get(2..).unwrap_or("");
        lines.push(Line {
            no,
            letter: char::from(*letter),
            value,
        });
    }
    Ok(lines)
}

fn parse_u64(line: &Line<'_>, field: &'static str, v: &str) -> Result<u64, SdpError> {
    if v.is_empty() || v.len() > 20 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(line.invalid(field, v));
    }
    v.parse().map_err(|_| line.invalid(field, v))
}

fn token<'a>(line: &Line<'_>, field: &'static str, v: &'a str) -> Result<&'a str, SdpError> {
    if is_token(v) {
        Ok(v)
    } else {
        Err(line.invalid(field, v))
    }
}

fn parse_origin(line: &Line<'_>) -> Result<Origin, SdpError> {
    let [user, id, ver, nt, at, addr] = line.fields([
        "o=<username>",
        "o=<sess-id>",
        "o=<sess-version>",
        "o=<nettype>",
        "o=<addrtype>",
        "o=<unicast-address>",
    ])?;
    Ok(Origin {
        username: user.to_string(),
        session_id: parse_u64(line, "o=<sess-id>", id)?,
        session_version: parse_u64(line, "o=<sess-version>", ver)?,
        net_type: token(line, "o=<nettype>", nt)?.to_string(),
        addr_type: token(line, "o=<addrtype>", at)?.to_string(),
        unicast_address: addr.to_string(),
    })
}

fn parse_connection(line: &Line<'_>) -> Result<Connection, SdpError> {
    let [nt, at, addr] = line.fields(["c=<nettype>", "c=<addrtype>", "c=<connection-address>"])?;
    Ok(Connection {
        net_type: token(line, "c=<nettype>", nt)?.to_string(),
        addr_type: token(line, "c=<addrtype>", at)?.to_string(),
        address: addr.to_string(),
    })
}

fn parse_bandwidth(line: &Line<'_>) -> Result<Bandwidth, SdpError> {
    let (t, v) = line
        .value
        .split_once(':')
        .ok_or_else(|| line.err(SdpErrorKind::MissingField("b=<bandwidth>")))?;
    Ok(Bandwidth {
        bw_type: token(line, "b=<bwtype>", t)?.to_string(),
        bandwidth: parse_u64(line, "b=<bandwidth>", v)?,
    })
}

fn parse_timing(line: &Line<'_>) -> Result<Timing, SdpError> {
    let [start, stop] = line.fields(["t=<start-time>", "t=<stop-time>"])?;
    Ok(Timing {
        start: parse_u64(line, "t=<start-time>", start)?,
        stop: parse_u64(line, "t=<stop-time>", stop)?,
        repeats: Vec::new(),
    })
}

fn parse_attribute(line: &Line<'_>) -> Result<Attribute, SdpError> {
    let (name, value) = match line.value.split_once(':') {
        Some((n, v)) => (n, Some(v.to_string())),
        None => (line.value, None),
    };
    Ok(Attribute {
        name: token(line, "a=<attribute-name>", name)?.to_string(),
        value,
    })
}

fn parse_media(line: &Line<'_>) -> Result<MediaDescription, SdpError> {
    let mut f = line.value.split_ascii_whitespace();
    let media = f
        .next()
        .ok_or_else(|| line.err(SdpErrorKind::MissingField("m=<media>")))?;
    let port = f
        .next()
        .ok_or_else(|| line.err(SdpErrorKind::MissingField("m=<port>")))?;
    let proto = f
        .next()
        .ok_or_else(|| line.err(SdpErrorKind::MissingField("m=<proto>")))?;
    let formats: Vec<String> = f.map(str::to_string).collect();
    if formats.is_empty() {
        return Err(line.err(SdpErrorKind::MissingField("m=<fmt>")));
    }
    let (port, count) = match port.split_once('/') {
        Some((p, n)) => (p, Some(n)),
        None => (port, None),
    };
    let num = |field: &'static str, v: &str| -> Result<u16, SdpError> {
        if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
            return Err(line.invalid(field, v));
        }
        v.parse().map_err(|_| line.invalid(field, v))
    };
    let port = num("m=<port>", port)?;
    let port_count = count.map(|n| num("m=<number of ports>", n)).transpose()?;
    for p in proto.split('/') {
        token(line, "m=<proto>", p)?;
    }
    for fmt in &formats {
        token(line, "m=<fmt>", fmt)?;
    }
    Ok(MediaDescription {
        media: token(line, "m=<media>", media)?.to_string(),
        port,
        port_count,
        proto: proto.to_string(),
        formats,
        information: None,
        connections: Vec::new(),
        bandwidths: Vec::new(),
        key: None,
        attributes: Vec::new(),
    })
}

fn once(slot: &mut Option<String>, line: &Line<'_>) -> Result<(), SdpError> {
    if slot.is_some() {
        return Err(line.err(SdpErrorKind::Misplaced {
            letter: line.letter,
            why: "may appear only once per section",
        }));
    }
    *slot = Some(line.value.to_string());
    Ok(())
}

impl SessionDescription {
    /// Parse a description (the body of a SIP message).
    pub fn parse(bytes: &[u8]) -> Result<SessionDescription, SdpError> {
        let lines = split_lines(bytes)?;
        let mut it = lines.iter();
        let mut expect = |letter: char| -> Result<&Line<'_>, SdpError> {
            match it.next() {
                Some(l) if l.letter == letter => Ok(l),
                Some(l) => Err(l.err(SdpErrorKind::Misplaced {
                    letter: l.letter,
                    why: match letter {
                        'v' => "found where `v=` must be the first line",
                        'o' => "found where `o=` must be the second line",
                        _ => "found where `s=` must be the third line",
                    },
                })),
                None => Err(SdpError {
                    line: 0,
                    kind: SdpErrorKind::MissingLine(letter),
                }),
            }
        };
        let v = expect('v')?;
        if v.value != "0" {
            return Err(v.invalid("v=<version>", v.value));
        }
        let origin = parse_origin(expect('o')?)?;
        let session_name = expect('s')?.value.to_string();
        let mut sd = SessionDescription {
            version: 0,
            origin,
            session_name,
            information: None,
            uri: None,
            emails: Vec::new(),
            phones: Vec::new(),
            connection: None,
            bandwidths: Vec::new(),
            times: Vec::new(),
            time_zones: None,
            key: None,
            attributes: Vec::new(),
            media: Vec::new(),
        };
        for line in lines.iter().skip(3) {
            if line.letter == 'm' {
                if sd.times.is_empty() {
                    return Err(line.err(SdpErrorKind::MissingLine('t')));
                }
                sd.media.push(parse_media(line)?);
                continue;
            }
            if let Some(m) = sd.media.last_mut() {
                match line.letter {
                    'i' => once(&mut m.information, line)?,
                    'c' => m.connections.push(parse_connection(line)?),
                    'b' => m.bandwidths.push(parse_bandwidth(line)?),
                    'k' => once(&mut m.key, line)?,
                    'a' => m.attributes.push(parse_attribute(line)?),
                    'v' | 'o' | 's' | 'u' | 'e' | 'p' | 't' | 'r' | 'z' | 'm' => {
                        return Err(line.err(SdpErrorKind::Misplaced {
                            letter: line.letter,
                            why: "is a session-level line inside a media section",
                        }));
                    }
                    c => return Err(line.err(SdpErrorKind::UnknownType(c))),
                }
                continue;
            }
            match line.letter {
                'i' => once(&mut sd.information, line)?,
                'u' => once(&mut sd.uri, line)?,
                'e' => sd.emails.push(line.value.to_string()),
                'p' => sd.phones.push(line.value.to_string()),
                'c' => {
                    if sd.connection.is_some() {
                        return Err(line.err(SdpErrorKind::Misplaced {
                            letter: 'c',
                            why: "may appear only once at session level",
                        }));
                    }
                    sd.connection = Some(parse_connection(line)?);
                }
                'b' => sd.bandwidths.push(parse_bandwidth(line)?),
                't' => sd.times.push(parse_timing(line)?),
                'r' => match sd.times.last_mut() {
                    Some(t) => t.repeats.push(line.value.to_string()),
                    None => {
                        return Err(line.err(SdpErrorKind::Misplaced {
                            letter: 'r',
                            why: "comes before any `t=` line",
                        }));
                    }
                },
                'z' => once(&mut sd.time_zones, line)?,
                'k' => once(&mut sd.key, line)?,
                'a' => sd.attributes.push(parse_attribute(line)?),
                'v' | 'o' | 's' => {
                    return Err(line.err(SdpErrorKind::Misplaced {
                        letter: line.letter,
                        why: "appears twice",
                    }));
                }
                c => return Err(line.err(SdpErrorKind::UnknownType(c))),
            }
        }
        if sd.times.is_empty() {
            return Err(SdpError {
                line: 0,
                kind: SdpErrorKind::MissingLine('t'),
            });
        }
        Ok(sd)
    }
}

impl std::str::FromStr for SessionDescription {
    type Err = SdpError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SessionDescription::parse(s.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdp::model::{Attributes, Direction};

    // RFC 8866 §5 example.
    const RFC8866: &str = "v=0\r\n\
o=jdoe 3724394400 3724394405 IN IP4 198.51.100.1\r\n\
s=Call to John Smith\r\n\
i=SDP Offer #1\r\n\
u=http://www.jdoe.example.com/home.html\r\n\
e=Jane Doe <jane@jdoe.example.com>\r\n\
p=+1 617 555-6011\r\n\
c=IN IP4 198.51.100.1\r\n\
t=0 0\r\n\
m=audio 49170 RTP/AVP 0\r\n\
m=audio 49180 RTP/AVP 0\r\n\
m=video 51372 RTP/AVP 99\r\n\
c=IN IP6 2001:db8::2\r\n\
a=rtpmap:99 h263-1998/90000\r\n";

    fn err(s: &str) -> SdpError {
        SessionDescription::parse(s.as_bytes()).unwrap_err()
    }

    #[test]
    fn parses_the_rfc8866_example() {
        let sd = SessionDescription::parse(RFC8866.as_bytes()).unwrap();
        assert_eq!(sd.origin.session_id, 3_724_394_400);
        assert_eq!(sd.origin.session_version, 3_724_394_405);
        assert_eq!(sd.session_name, "Call to John Smith");
        assert_eq!(sd.phones, ["+1 617 555-6011"]);
        assert_eq!(sd.media.len(), 3);
        assert_eq!(sd.media[1].port, 49180);
        assert_eq!(sd.media[2].formats, ["99"]);
        let v = &sd.media[2];
        assert_eq!(
            sd.connection_for(v).unwrap().ip(),
            Some("2001:db8::2".parse().unwrap())
        );
        assert_eq!(
            sd.rtp_addr(&sd.media[0]),
            Some("198.51.100.1:49170".parse().unwrap())
        );
        assert_eq!(v.rtpmap(99).unwrap().clock_rate, 90000);
        // Display gives the same text back (already in canonical order).
        assert_eq!(sd.to_string(), RFC8866);
    }

    #[test]
    fn lf_only_and_trailing_blank_lines() {
        let lf = RFC8866.replace("\r\n", "\n") + "\n\n";
        let a = SessionDescription::parse(lf.as_bytes()).unwrap();
        let b = SessionDescription::parse(RFC8866.as_bytes()).unwrap();
        assert_eq!(a, b);
        // No final newline at all is accepted too.
        let cut = RFC8866.trim_end();
        assert_eq!(SessionDescription::parse(cut.as_bytes()).unwrap(), b);
    }

    #[test]
    fn errors_name_line_and_field() {
        let e = err("v=0\r\no=- x 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\n");
        assert_eq!(e.line, 2);
        assert_eq!(e.to_string(), "SDP line 2: invalid o=<sess-id> \"x\"");
        let e = err("v=0\r\no=- 1 1 IN IP4\r\ns=-\r\nt=0 0\r\n");
        assert_eq!(
            (e.line, e.kind),
            (2, SdpErrorKind::MissingField("o=<unicast-address>"))
        );
        let e = err("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nm=audio 70000 RTP/AVP 0\r\n");
        assert_eq!(e.to_string(), "SDP line 5: invalid m=<port> \"70000\"");
        let e = err("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP\r\n");
        assert_eq!((e.line, e.kind), (5, SdpErrorKind::MissingField("m=<fmt>")));
        let e = err("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nc=IN IP4 1.2.3.4 extra\r\n");
        assert_eq!(e.line, 5);
        assert!(matches!(e.kind, SdpErrorKind::ExtraField { .. }), "{e}");
        let e = err("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nb=AS\r\n");
        assert_eq!(
            (e.line, e.kind),
            (5, SdpErrorKind::MissingField("b=<bandwidth>"))
        );
    }

    #[test]
    fn line_syntax_is_strict() {
        let base = "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\n";
        for (bad, line) in [
            ("a =sendrecv", 5),
            ("A=sendrecv", 5),
            ("ab=x", 5),
            ("=x", 5),
            ("", 5),
            ("a", 5),
        ] {
            let text = format!("{base}{bad}\r\na=x\r\n");
            let e = err(&text);
            assert_eq!(e.line, line, "{bad:?}: {e}");
            assert!(matches!(e.kind, SdpErrorKind::BadLine(_)), "{bad:?}: {e}");
        }
        assert_eq!(
            err(&format!("{base}x=1\r\n")).kind,
            SdpErrorKind::UnknownType('x')
        );
        assert_eq!(
            err(&format!("{base}a=a\0b\r\n")).kind,
            SdpErrorKind::ForbiddenByte(0)
        );
        assert_eq!(
            err(&format!("{base}a=a\rb\r\n")).kind,
            SdpErrorKind::ForbiddenByte(b'\r')
        );
        let mut bytes = format!("{base}a=").into_bytes();
        bytes.extend([0xff, 0xfe, b'\n']);
        assert_eq!(
            SessionDescription::parse(&bytes).unwrap_err(),
            SdpError {
                line: 5,
                kind: SdpErrorKind::NotUtf8
            }
        );
    }

    #[test]
    fn mandatory_lines_and_order() {
        assert_eq!(err("").kind, SdpErrorKind::Empty);
        assert_eq!(err("\r\n\r\n").kind, SdpErrorKind::Empty);
        let big = format!("v=0\r\n{}", "a=x\r\n".repeat(20_000));
        assert_eq!(err(&big).to_string(), "SDP: 100005 bytes, more than 65535");
        assert_eq!(
            err("v=1\r\n").to_string(),
            "SDP line 1: invalid v=<version> \"1\""
        );
        assert_eq!(err("v=0\r\n").kind, SdpErrorKind::MissingLine('o'));
        let e = err("v=0\r\ns=-\r\no=- 1 1 IN IP4 1.2.3.4\r\nt=0 0\r\n");
        assert_eq!(e.line, 2);
        assert!(matches!(
            e.kind,
            SdpErrorKind::Misplaced { letter: 's', .. }
        ));
        // No t= at all, or m= before t=.
        assert_eq!(
            err("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\n").kind,
            SdpErrorKind::MissingLine('t')
        );
        let e = err("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nm=audio 1 RTP/AVP 0\r\nt=0 0\r\n");
        assert_eq!((e.line, e.kind), (4, SdpErrorKind::MissingLine('t')));
        // Session-only lines inside a media section.
        let e = err(
            "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nm=audio 1 RTP/AVP 0\r\nt=0 0\r\n",
        );
        assert_eq!(e.line, 6);
        assert!(matches!(
            e.kind,
            SdpErrorKind::Misplaced { letter: 't', .. }
        ));
        // r= before t=.
        let e = err("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nr=7d 1h 0 25h\r\nt=0 0\r\n");
        assert!(matches!(
            e.kind,
            SdpErrorKind::Misplaced { letter: 'r', .. }
        ));
        // Two session-level c= lines.
        let e = err(
            "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\n",
        );
        assert_eq!(e.line, 5);
    }

    #[test]
    fn tolerant_order_and_spacing_of_optional_lines() {
        // a= before c= and b= at session level, double spaces in o=/m=.
        let s = "v=0\r\no=-  1 2 IN IP4 10.0.0.1\r\ns=\r\na=sendonly\r\nt=0 0\r\nb=AS:64\r\nc=IN IP4 10.0.0.1\r\nm=audio  4000 RTP/AVP 0  8\r\na=rtcp-mux\r\nc=IN IP4 10.0.0.2\r\n";
        let sd = SessionDescription::parse(s.as_bytes()).unwrap();
        assert_eq!(sd.session_name, "");
        assert_eq!(sd.bandwidths[0].bandwidth, 64);
        assert_eq!(sd.direction(), Some(Direction::SendOnly));
        let m = &sd.media[0];
        assert_eq!(m.formats, ["0", "8"]);
        assert!(m.rtcp_mux());
        assert_eq!(sd.connection_for(m).unwrap().address, "10.0.0.2");
        let again = SessionDescription::parse(sd.to_string().as_bytes()).unwrap();
        assert_eq!(again, sd);
    }

    #[test]
    fn times_repeats_and_port_counts() {
        let s = "v=0\r\no=- 1 2 IN IP4 10.0.0.1\r\ns=x\r\nt=3724394400 3724398000\r\nr=604800 3600 0 90000\r\nt=0 0\r\nz=2882844526 -1h\r\nk=prompt\r\nm=audio 49170/2 RTP/AVP 0\r\ni=voice\r\nk=clear:abc\r\nb=TIAS:64000\r\n";
        let sd = SessionDescription::parse(s.as_bytes()).unwrap();
        assert_eq!(sd.times.len(), 2);
        assert_eq!(sd.times[0].repeats, ["604800 3600 0 90000"]);
        assert_eq!(sd.time_zones.as_deref(), Some("2882844526 -1h"));
        let m = &sd.media[0];
        assert_eq!((m.port, m.port_count), (49170, Some(2)));
        assert_eq!(m.key.as_deref(), Some("clear:abc"));
        assert_eq!(
            SessionDescription::parse(sd.to_string().as_bytes()).unwrap(),
            sd
        );
    }

    #[test]
    fn attributes_keep_unknowns_and_values() {
        let s = "v=0\r\no=- 1 2 IN IP4 10.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 96 101\r\na=rtpmap:96 opus/48000/2\r\na=fmtp:96 useinbandfec=1; stereo=0\r\na=rtpmap:101 telephone-event/48000\r\na=fmtp:101 0-16\r\na=x-custom:a:b c\r\na=ptime:20\r\na=maxptime:40.0\r\na=rtcp:4001 IN IP4 10.0.0.9\r\n";
        let sd = SessionDescription::parse(s.as_bytes()).unwrap();
        let m = &sd.media[0];
        assert_eq!(m.fmtp(96), Some("useinbandfec=1; stereo=0"));
        assert_eq!(m.fmtp(101), Some("0-16"));
        assert_eq!(m.fmtp(0), None);
        assert_eq!(m.attribute("x-custom"), Some("a:b c"));
        assert_eq!((m.ptime(), m.maxptime()), (Some(20), Some(40)));
        let rtcp = m.rtcp().unwrap();
        assert_eq!(rtcp.port, 4001);
        assert_eq!(rtcp.connection.unwrap().ip(), Some([10, 0, 0, 9].into()));
        let names: Vec<_> = m.payloads().iter().map(|p| p.encoding.clone()).collect();
        assert_eq!(names, ["opus", "telephone-event"]);
        assert!(sd.to_string().contains("a=x-custom:a:b c\r\n"));
    }
}
