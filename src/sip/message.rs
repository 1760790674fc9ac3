//! SIP message model (RFC 3261 §7): requests, responses, the raw header list.
//!
//! Headers are kept as an ordered list of raw `(name, value)` pairs exactly as
//! received (after unfolding), so a parsed message re-serialises faithfully.
//! Typed views (Via, CSeq, name-addr, ...) are read on demand from
//! [`crate::sip::headers`]; nothing here allocates per header beyond the
//! strings themselves.

use std::fmt;

use crate::sip::uri::Uri;

/// A SIP method. Unknown extension methods keep their token.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    Invite,
    Ack,
    Bye,
    Cancel,
    Register,
    Options,
    Info,
    Update,
    Prack,
    Subscribe,
    Notify,
    Refer,
    Message,
    Publish,
    Other(String),
}

impl Method {
    /// Method from its token (case-sensitive, RFC 3261 §7.1).
    pub fn from_token(token: &str) -> Method {
        match token {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "REGISTER" => Method::Register,
            "OPTIONS" => Method::Options,
            "INFO" => Method::Info,
            "UPDATE" => Method::Update,
            "PRACK" => Method::Prack,
            "SUBSCRIBE" => Method::Subscribe,
            "NOTIFY" => Method::Notify,
            "REFER" => Method::Refer,
            "MESSAGE" => Method::Message,
            "PUBLISH" => Method::Publish,
            other => Method::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Register => "REGISTER",
            Method::Options => "OPTIONS",
            Method::Info => "INFO",
            Method::Update => "UPDATE",
            Method::Prack => "PRACK",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Refer => "REFER",
            Method::Message => "MESSAGE",
            Method::Publish => "PUBLISH",
            Method::Other(s) => s,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One header line: name as written (case and compact form preserved) and
/// its value with surrounding whitespace trimmed and folding replaced by a
/// single space. `Debug` redacts credentials (digest responses), so a
/// stray `?request` in a log line cannot leak them.
#[derive(Clone, PartialEq, Eq)]
pub struct Header {
    pub name: String,
    pub value: String,
}

impl fmt::Debug for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let line = format!("{}: {}", self.name, self.value);
        f.write_str(&crate::sip::redact::redact_sip(line.as_bytes()))
    }
}

/// Ordered list of headers. Lookups are case-insensitive and understand the
/// compact forms of RFC 3261 §7.3.3 (`v` = Via, `f` = From, ...).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(pub Vec<Header>);

/// Canonical long name for a compact form, lower-case long names unchanged.
pub fn canonical_name(name: &str) -> &str {
    if name.len() == 1 {
        match name.as_bytes()[0].to_ascii_lowercase() {
            b'i' => return "Call-ID",
            b'm' => return "Contact",
            b'e' => return "Content-Encoding",
            b'l' => return "Content-Length",
            b'c' => return "Content-Type",
            b'f' => return "From",
            b's' => return "Subject",
            b'k' => return "Supported",
            b't' => return "To",
            b'v' => return "Via",
            b'o' => return "Event",
            b'r' => return "Refer-To",
            b'b' => return "Referred-By",
            b'u' => return "Allow-Events",
            b'x' => return "Session-Expires",
            b'a' => return "Accept-Contact",
            b'j' => return "Reject-Contact",
            b'd' => return "Request-Disposition",
            b'y' => return "Identity",
            _ => {}
        }
    }
    name
}

/// True when two header names denote the same header (case-insensitive,
/// compact forms expanded).
pub fn same_header(a: &str, b: &str) -> bool {
    canonical_name(a).eq_ignore_ascii_case(canonical_name(b))
}

impl Headers {
    pub fn new() -> Self {
        Headers(Vec::new())
    }

    /// Value of the first header with this name.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|h| same_header(&h.name, name))
            .map(|h| h.value.as_str())
    }

    /// Values of every header line with this name, in order (one entry per
    /// line; comma-separated lists are split by the typed readers).
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |h| same_header(&h.name, name))
            .map(|h| h.value.as_str())
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Append a header line.
    pub fn push(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.0.push(Header {
            name: name.into(),
            value: value.into(),
        });
    }

    /// Insert a header line before all others (used for Via).
    pub fn push_front(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.0.insert(
            0,
            Header {
                name: name.into(),
                value: value.into(),
            },
        );
    }

    /// Replace every header of this name by one line with `value`, keeping the
    /// position of the first one (appended when absent).
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into();
        match self.0.iter().position(|h| same_header(&h.name, name)) {
            Some(pos) => {
                self.0[pos].value = value;
                let mut i = pos + 1;
                while i < self.0.len() {
                    if same_header(&self.0[i].name, name) {
                        self.0.remove(i);
                    } else {
                        i += 1;
                    }
                }
            }
            None => self.push(name.to_string(), value),
        }
    }

    /// Remove every header of this name; returns how many were removed.
    pub fn remove(&mut self, name: &str) -> usize {
        let before = self.0.len();
        self.0.retain(|h| !same_header(&h.name, name));
        before - self.0.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Header> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A SIP request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    pub uri: Uri,
    pub headers: Headers,
    pub body: Vec<u8>,
}

/// A SIP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub code: u16,
    pub reason: String,
    pub headers: Headers,
    pub body: Vec<u8>,
}

/// Either kind of SIP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Request(Request),
    Response(Response),
}

impl Message {
    pub fn headers(&self) -> &Headers {
        match self {
            Message::Request(r) => &r.headers,
            Message::Response(r) => &r.headers,
        }
    }

    pub fn headers_mut(&mut self) -> &mut Headers {
        match self {
            Message::Request(r) => &mut r.headers,
            Message::Response(r) => &mut r.headers,
        }
    }

    pub fn body(&self) -> &[u8] {
        match self {
            Message::Request(r) => &r.body,
            Message::Response(r) => &r.body,
        }
    }
}

/// Default reason phrase for a status code.
pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        301 => "Moved Permanently",
        302 => "Moved Temporarily",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        413 => "Request Entity Too Large",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        423 => "Interval Too Brief",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        489 => "Bad Event",
        491 => "Request Pending",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        606 => "Not Acceptable",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_digest_responses() {
        let mut h = Headers::new();
        h.push(
            "Authorization",
            "Digest username=\"1001\", realm=\"pbx\", nonce=\"n\", uri=\"sip:pbx\", response=\"6629fae49393a05397450978507c4ef1\"",
        );
        let text = format!("{h:?}");
        assert!(!text.contains("6629fae49393a05397450978507c4ef1"), "{text}");
        assert!(text.contains("username=\"1001\""), "{text}");
    }
}
