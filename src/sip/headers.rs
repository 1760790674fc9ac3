//! Typed readers for the headers a phone needs. Each reads from the raw
//! header list of [`crate::sip::message::Headers`] on demand.

use crate::sip::message::Headers;
use crate::sip::message::Method;
use crate::sip::parse::ParseError;
use crate::sip::uri::{Host, Uri};

/// Generic `;name=value` parameter list, order kept, names case-insensitive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(pub Vec<(String, Option<String>)>);

impl Params {
    pub fn get(&self, name: &str) -> Option<Option<&str>> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref())
    }
    pub fn value(&self, name: &str) -> Option<&str> {
        self.get(name).flatten()
    }
    pub fn set(&mut self, name: &str, value: Option<&str>) {
        let value = value.map(str::to_string);
        match self
            .0
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some(p) => p.1 = value,
            None => self.0.push((name.to_string(), value)),
        }
    }
}

/// One Via value (RFC 3261 §20.42).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// `UDP`, `TCP`, `TLS`, ... upper-cased.
    pub transport: String,
    pub host: Host,
    pub port: Option<u16>,
    pub params: Params,
}

impl Via {
    pub fn branch(&self) -> Option<&str> {
        self.params.value("branch")
    }
    pub fn received(&self) -> Option<&str> {
        self.params.value("received")
    }
    /// `Some(None)` for a bare `;rport`, `Some(Some(port))` when filled in.
    pub fn rport(&self) -> Option<Option<u16>> {
        self.params
            .get("rport")
            .map(|v| v.and_then(|p| p.parse().ok()))
    }
}

/// A name-addr or addr-spec with header parameters: From, To, Contact,
/// Route, Record-Route, Refer-To (RFC 3261 §20.10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// Display name, unquoted and unescaped.
    pub display: Option<String>,
    pub uri: Uri,
    /// Header parameters (after the `>`, or after the addr-spec).
    pub params: Params,
}

impl NameAddr {
    pub fn tag(&self) -> Option<&str> {
        self.params.value("tag")
    }
}

/// CSeq (RFC 3261 §20.16).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    pub seq: u32,
    pub method: Method,
}

/// A `Digest` challenge or credentials: scheme plus auth-params, values
/// unquoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthParams {
    pub scheme: String,
    pub params: Vec<(String, String)>,
}

impl AuthParams {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Typed accessors on a header list.
#[allow(clippy::wrong_self_convention)] // from_addr reads the From header, it converts nothing
pub trait TypedHeaders {
    /// Every Via value, top first (comma lists and repeated lines).
    fn vias(&self) -> Result<Vec<Via>, ParseError>;
    fn top_via(&self) -> Result<Via, ParseError>;
    fn from_addr(&self) -> Result<NameAddr, ParseError>;
    fn to_addr(&self) -> Result<NameAddr, ParseError>;
    fn call_id(&self) -> Result<&str, ParseError>;
    fn cseq(&self) -> Result<CSeq, ParseError>;
    /// All Contact values (`*` is returned as an error-free empty list plus
    /// `contact_is_star`).
    fn contacts(&self) -> Result<Vec<NameAddr>, ParseError>;
    fn record_routes(&self) -> Result<Vec<NameAddr>, ParseError>;
    fn routes(&self) -> Result<Vec<NameAddr>, ParseError>;
    fn content_length(&self) -> Result<Option<usize>, ParseError>;
    fn expires(&self) -> Result<Option<u32>, ParseError>;
    fn max_forwards(&self) -> Result<Option<u32>, ParseError>;
    /// WWW-Authenticate / Proxy-Authenticate / Authorization values.
    fn auth_params(&self, name: &str) -> Result<Vec<AuthParams>, ParseError>;
    /// Comma-separated token lists (Allow, Supported, Require, ...).
    fn tokens(&self, name: &str) -> Vec<String>;
}

impl TypedHeaders for Headers {
    fn vias(&self) -> Result<Vec<Via>, ParseError> {
        crate::sip::parse::read_vias(self)
    }
    fn top_via(&self) -> Result<Via, ParseError> {
        self.vias()?
            .into_iter()
            .next()
            .ok_or(ParseError::MissingHeader("Via"))
    }
    fn from_addr(&self) -> Result<NameAddr, ParseError> {
        let v = self.get("From").ok_or(ParseError::MissingHeader("From"))?;
        crate::sip::parse::parse_name_addr(v)
    }
    fn to_addr(&self) -> Result<NameAddr, ParseError> {
        let v = self.get("To").ok_or(ParseError::MissingHeader("To"))?;
        crate::sip::parse::parse_name_addr(v)
    }
    fn call_id(&self) -> Result<&str, ParseError> {
        self.get("Call-ID")
            .ok_or(ParseError::MissingHeader("Call-ID"))
    }
    fn cseq(&self) -> Result<CSeq, ParseError> {
        let v = self.get("CSeq").ok_or(ParseError::MissingHeader("CSeq"))?;
        crate::sip::parse::parse_cseq(v)
    }
    fn contacts(&self) -> Result<Vec<NameAddr>, ParseError> {
        crate::sip::parse::read_name_addr_list(self, "Contact")
    }
    fn record_routes(&self) -> Result<Vec<NameAddr>, ParseError> {
        crate::sip::parse::read_name_addr_list(self, "Record-Route")
    }
    fn routes(&self) -> Result<Vec<NameAddr>, ParseError> {
        crate::sip::parse::read_name_addr_list(self, "Route")
    }
    fn content_length(&self) -> Result<Option<usize>, ParseError> {
        crate::sip::parse::read_number(self, "Content-Length")
    }
    fn expires(&self) -> Result<Option<u32>, ParseError> {
        crate::sip::parse::read_number(self, "Expires")
    }
    fn max_forwards(&self) -> Result<Option<u32>, ParseError> {
        crate::sip::parse::read_number(self, "Max-Forwards")
    }
    fn auth_params(&self, name: &str) -> Result<Vec<AuthParams>, ParseError> {
        self.get_all(name)
            .map(crate::sip::parse::parse_auth_params)
            .collect()
    }
    fn tokens(&self, name: &str) -> Vec<String> {
        self.get_all(name)
            .flat_map(|v| v.split(','))
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .collect()
    }
}
