//! Serializer: messages, URIs and typed header values back to wire text.
//!
//! The output of every function here parses back to an equal value
//! (property-tested in `tests/sip_roundtrip.rs`).

use std::fmt::{self, Write as _};

use crate::sip::headers::{NameAddr, Params, Via};
use crate::sip::message::Message;
use crate::sip::parse::{is_hnv_char, is_param_char, is_password_char, is_user_char};
use crate::sip::uri::{Scheme, Uri};

/// Write `s`, %-escaping every byte that `keep` does not allow.
fn write_escaped(f: &mut impl fmt::Write, s: &str, keep: fn(char) -> bool) -> fmt::Result {
    for c in s.chars() {
        if c.is_ascii() && keep(c) {
            f.write_char(c)?;
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                write!(f, "%{b:02X}")?;
            }
        }
    }
    Ok(())
}

/// A URI in its wire form.
pub fn write_uri(f: &mut impl fmt::Write, uri: &Uri) -> fmt::Result {
    match uri.scheme {
        Scheme::Sip => f.write_str("sip:")?,
        Scheme::Sips => f.write_str("sips:")?,
        Scheme::Tel => {
            f.write_str("tel:")?;
            f.write_str(uri.user.as_deref().unwrap_or_default())?;
            return write_uri_params(f, &uri.params);
        }
    }
    if let Some(user) = &uri.user {
        write_escaped(f, user, is_user_char)?;
        if let Some(pw) = &uri.password {
            f.write_char(':')?;
            write_escaped(f, pw, is_password_char)?;
        }
        f.write_char('@')?;
    }
    write!(f, "{}", uri.host)?;
    if let Some(port) = uri.port {
        write!(f, ":{port}")?;
    }
    write_uri_params(f, &uri.params)?;
    for (i, (n, v)) in uri.headers.iter().enumerate() {
        f.write_char(if i == 0 { '?' } else { '&' })?;
        write_escaped(f, n, is_hnv_char)?;
        f.write_char('=')?;
        write_escaped(f, v, is_hnv_char)?;
    }
    Ok(())
}

fn write_uri_params(f: &mut impl fmt::Write, params: &[(String, Option<String>)]) -> fmt::Result {
    for (n, v) in params {
        f.write_char(';')?;
        write_escaped(f, n, is_param_char)?;
        if let Some(v) = v {
            f.write_char('=')?;
            write_escaped(f, v, is_param_char)?;
        }
    }
    Ok(())
}

/// Header parameters (`;name=value`), values as stored.
fn write_params(f: &mut impl fmt::Write, params: &Params) -> fmt::Result {
    for (n, v) in &params.0 {
        write!(f, ";{n}")?;
        if let Some(v) = v {
            write!(f, "={v}")?;
        }
    }
    Ok(())
}

/// A display name as a quoted string.
pub fn write_quoted(f: &mut impl fmt::Write, s: &str) -> fmt::Result {
    f.write_char('"')?;
    for c in s.chars() {
        if c == '"' || c == '\\' {
            f.write_char('\\')?;
        }
        f.write_char(c)?;
    }
    f.write_char('"')
}

/// `s` as a quoted string (`"` and `\` escaped), e.g. for digest parameters.
pub fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    let _ = write_quoted(&mut out, s);
    out
}

impl Message {
    /// Wire bytes. Headers are written as they are: `Content-Length` is not
    /// touched (use [`Message::finalize`] to fix it up).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut head = String::with_capacity(512);
        match self {
            Message::Request(r) => {
                let _ = write!(head, "{} ", r.method);
                let _ = write_uri(&mut head, &r.uri);
                head.push_str(" SIP/2.0\r\n");
            }
            Message::Response(r) => {
                let _ = write!(head, "SIP/2.0 {} {}\r\n", r.code, r.reason);
            }
        }
        for h in self.headers().iter() {
            head.push_str(&h.name);
            head.push_str(": ");
            head.push_str(&h.value);
            head.push_str("\r\n");
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        out.extend_from_slice(self.body());
        out
    }

    /// Set `Content-Length` to the body length.
    pub fn finalize(&mut self) {
        let len = self.body().len();
        self.headers_mut().set("Content-Length", len.to_string());
    }
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(d) = &self.display {
            write_quoted(f, d)?;
            f.write_char(' ')?;
        }
        f.write_char('<')?;
        write_uri(f, &self.uri)?;
        f.write_char('>')?;
        write_params(f, &self.params)
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIP/2.0/{} {}", self.transport, self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        write_params(f, &self.params)
    }
}
