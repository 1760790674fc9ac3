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

/// RFC 3261 §18.2.1 and RFC 3581 §4, for a request received from `source`:
/// add `received` to the top Via when its sent-by is not the source address,
/// and fill in an empty `rport` with the source port, so responses go back
/// through the NAT the request came through.
pub fn stamp_received(
    headers: &mut Headers,
    source: std::net::SocketAddr,
) -> Result<(), ParseError> {
    let Some(line) = headers
        .0
        .iter_mut()
        .find(|h| crate::sip::message::same_header(&h.name, "Via"))
    else {
        return Err(ParseError::MissingHeader("Via"));
    };
    let mut parts: Vec<String> = crate::sip::parse::split_list(&line.value, "Via")?
        .into_iter()
        .map(str::to_string)
        .collect();
    let Some(first) = parts.first_mut() else {
        return Err(ParseError::MissingHeader("Via"));
    };
    let mut via = crate::sip::parse::read_vias(&{
        let mut h = Headers::new();
        h.push("Via", first.clone());
        h
    })?
    .into_iter()
    .next()
    .ok_or(ParseError::MissingHeader("Via"))?;
    let ip = source.ip();
    let sent_by_is_source = match &via.host {
        Host::V4(a) => std::net::IpAddr::V4(*a) == ip,
        Host::V6(a) => std::net::IpAddr::V6(*a) == ip,
        Host::Name(_) => false,
    };
    let rport_requested = via.params.get("rport").is_some();
    if sent_by_is_source && !rport_requested {
        return Ok(());
    }
    if !sent_by_is_source || rport_requested {
        via.params.set("received", Some(&ip.to_string()));
    }
    if rport_requested {
        via.params.set("rport", Some(&source.port().to_string()));
    }
    *first = via.to_string();
    line.value = parts.join(", ");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn received_and_rport_are_stamped_on_the_top_via_only() {
        let mut h = Headers::new();
        h.push(
            "v",
            "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;rport, SIP/2.0/UDP proxy;branch=z9hG4bK0",
        );
        h.push("Via", "SIP/2.0/UDP third;branch=z9hG4bK9");
        stamp_received(&mut h, "203.0.113.7:40000".parse().unwrap()).unwrap();
        let vias = h.vias().unwrap();
        assert_eq!(vias[0].received(), Some("203.0.113.7"));
        assert_eq!(vias[0].rport(), Some(Some(40000)));
        assert_eq!(vias[0].branch(), Some("z9hG4bK1"));
        assert_eq!(vias[1].received(), None);
        assert_eq!(vias.len(), 3);
    }

    #[test]
    fn nothing_added_when_the_sender_is_where_it_says() {
        let mut h = Headers::new();
        h.push("Via", "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1");
        stamp_received(&mut h, "10.0.0.1:5060".parse().unwrap()).unwrap();
        assert_eq!(
            h.get("Via"),
            Some("SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1")
        );
        let mut h = Headers::new();
        h.push("Via", "SIP/2.0/UDP pc.example.com;branch=z9hG4bK1");
        stamp_received(&mut h, "10.0.0.1:5060".parse().unwrap()).unwrap();
        assert_eq!(h.top_via().unwrap().received(), Some("10.0.0.1"));
    }
}
