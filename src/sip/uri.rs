//! SIP/SIPS/TEL URIs (RFC 3261 §19.1, RFC 3966 minimal), with escaped
//! characters and IPv6 references.

use std::fmt;

use crate::sip::parse::ParseError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    Sip,
    Sips,
    Tel,
}

/// Host part: a name, an IPv4 address, or an IPv6 reference (stored without
/// the brackets).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    Name(String),
    V4(std::net::Ipv4Addr),
    V6(std::net::Ipv6Addr),
}

/// A parsed URI. `user` and `password` are kept *unescaped*; the serializer
/// escapes what must be escaped. Parameters keep their order; names are kept
/// as written, compared case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uri {
    pub scheme: Scheme,
    pub user: Option<String>,
    pub password: Option<String>,
    pub host: Host,
    pub port: Option<u16>,
    /// `;name=value` or `;name` (value `None`).
    pub params: Vec<(String, Option<String>)>,
    /// `?name=value&...` headers, unescaped.
    pub headers: Vec<(String, String)>,
}

impl Uri {
    /// Parse a URI (addr-spec). Errors say what was wrong.
    pub fn parse(s: &str) -> Result<Uri, ParseError> {
        crate::sip::parse::parse_uri(s)
    }

    /// `sip:user@host` with no port or params.
    pub fn sip(user: Option<&str>, host: Host) -> Uri {
        Uri {
            scheme: Scheme::Sip,
            user: user.map(str::to_string),
            password: None,
            host,
            port: None,
            params: Vec::new(),
            headers: Vec::new(),
        }
    }

    /// Value of a URI parameter (`Some(None)` for a flag parameter).
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref())
    }

    pub fn set_param(&mut self, name: &str, value: Option<&str>) {
        let value = value.map(str::to_string);
        match self
            .params
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some(p) => p.1 = value,
            None => self.params.push((name.to_string(), value)),
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(n) => f.write_str(n),
            Host::V4(a) => write!(f, "{a}"),
            Host::V6(a) => write!(f, "[{a}]"),
        }
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        crate::sip::serialize::write_uri(f, self)
    }
}
