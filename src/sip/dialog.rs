//! Dialogs (RFC 3261 §12) and the helpers that build requests and
//! responses from them. Pure data: no I/O, no clock.

use crate::sip::headers::{NameAddr, TypedHeaders};
use crate::sip::message::{Headers, Method, Request, Response, reason_phrase};
use crate::sip::parse::ParseError;
use crate::sip::uri::Uri;

/// The magic cookie that marks RFC 3261 branch ids.
pub const BRANCH_COOKIE: &str = "z9hG4bK";

/// Methods we accept, for `Allow`.
pub const ALLOW: &str =
    "INVITE, ACK, CANCEL, BYE, OPTIONS, REFER, NOTIFY, INFO, MESSAGE, PRACK, UPDATE";

/// A fresh branch id from a random value.
pub fn branch(random: u64) -> String {
    format!("{BRANCH_COOKIE}{random:016x}")
}

/// Build a response to `request`: Via lines, From, To (tagged when `to_tag`
/// is given and To has none), Call-ID and CSeq copied (RFC 3261 §8.2.6).
pub fn response_to(request: &Request, code: u16, to_tag: Option<&str>) -> Response {
    let mut headers = Headers::new();
    for h in request.headers.iter() {
        let name = crate::sip::message::canonical_name(&h.name);
        if name.eq_ignore_ascii_case("Via")
            || name.eq_ignore_ascii_case("From")
            || name.eq_ignore_ascii_case("Call-ID")
            || name.eq_ignore_ascii_case("CSeq")
        {
            headers.push(name.to_string(), h.value.clone());
        } else if name.eq_ignore_ascii_case("To") {
            let mut value = h.value.clone();
            if let Some(tag) = to_tag {
                let has_tag = request
                    .headers
                    .to_addr()
                    .map(|a| a.tag().is_some())
                    .unwrap_or(false);
                if !has_tag {
                    value.push_str(";tag=");
                    value.push_str(tag);
                }
            }
            headers.push("To", value);
        }
    }
    headers.push("Content-Length", "0");
    Response {
        code,
        reason: reason_phrase(code).to_string(),
        headers,
        body: Vec::new(),
    }
}

/// Attach a body with its Content-Type and fix Content-Length.
pub fn set_body(headers: &mut Headers, body: &mut Vec<u8>, content_type: &str, data: Vec<u8>) {
    headers.set("Content-Type", content_type);
    headers.set("Content-Length", data.len().to_string());
    *body = data;
}

/// Which side of the dialog we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Uac,
    Uas,
}

/// Dialog state shared by both sides.
#[derive(Debug, Clone)]
pub struct Dialog {
    pub role: Role,
    pub call_id: String,
    pub local_tag: String,
    pub remote_tag: Option<String>,
    /// Our From/To header value (with our tag).
    pub local_header: String,
    /// The peer's header value (with its tag once known).
    pub remote_header: String,
    pub local_seq: u32,
    pub remote_seq: Option<u32>,
    pub remote_target: Uri,
    /// Route set in the order requests use it.
    pub route_set: Vec<NameAddr>,
}

fn contact_uri(headers: &Headers) -> Result<Option<Uri>, ParseError> {
    Ok(headers.contacts()?.into_iter().next().map(|c| c.uri))
}

impl Dialog {
    /// Dialog of a UAC from its INVITE and a 1xx-with-tag or 2xx response
    /// (§12.1.2: route set = Record-Route reversed).
    pub fn uac(invite: &Request, response: &Response) -> Result<Dialog, ParseError> {
        let from = invite.headers.from_addr()?;
        let to = response.headers.to_addr()?;
        let mut route_set = response.headers.record_routes()?;
        route_set.reverse();
        Ok(Dialog {
            role: Role::Uac,
            call_id: invite.headers.call_id()?.to_string(),
            local_tag: from.tag().unwrap_or_default().to_string(),
            remote_tag: to.tag().map(str::to_string),
            local_header: invite.headers.get("From").unwrap_or_default().to_string(),
            remote_header: response.headers.get("To").unwrap_or_default().to_string(),
            local_seq: invite.headers.cseq()?.seq,
            remote_seq: None,
            remote_target: contact_uri(&response.headers)?.unwrap_or_else(|| invite.uri.clone()),
            route_set,
        })
    }

    /// Dialog of a UAS from the INVITE it answers with `local_tag` (§12.1.1).
    pub fn uas(invite: &Request, local_tag: &str) -> Result<Dialog, ParseError> {
        let from = invite.headers.from_addr()?;
        let to_value = invite.headers.get("To").unwrap_or_default();
        Ok(Dialog {
            role: Role::Uas,
            call_id: invite.headers.call_id()?.to_string(),
            local_tag: local_tag.to_string(),
            remote_tag: from.tag().map(str::to_string),
            local_header: format!("{to_value};tag={local_tag}"),
            remote_header: invite.headers.get("From").unwrap_or_default().to_string(),
            local_seq: 0,
            remote_seq: Some(invite.headers.cseq()?.seq),
            remote_target: contact_uri(&invite.headers)?
                .ok_or(ParseError::MissingHeader("Contact"))?,
            route_set: invite.headers.record_routes()?,
        })
    }

    /// True when `request` belongs to this dialog (Call-ID and both tags).
    pub fn matches(&self, request: &Request) -> bool {
        let h = &request.headers;
        let Ok(call_id) = h.call_id() else {
            return false;
        };
        let (Ok(from), Ok(to)) = (h.from_addr(), h.to_addr()) else {
            return false;
        };
        call_id == self.call_id
            && to.tag() == Some(self.local_tag.as_str())
            && from.tag() == self.remote_tag.as_deref()
    }

    /// The URI the next request physically goes to: the first route when it
    /// is a loose router, else the remote target.
    pub fn next_hop(&self) -> &Uri {
        match self.route_set.first() {
            Some(r) if r.uri.param("lr").is_some() => &r.uri,
            _ => &self.remote_target,
        }
    }

    /// A new in-dialog request (§12.2.1.1) without Via: the caller adds it.
    /// ACK reuses the INVITE's sequence number; others take the next one.
    pub fn request(&mut self, method: Method, contact: &str, ack_seq: Option<u32>) -> Request {
        let seq = match (&method, ack_seq) {
            (Method::Ack, Some(s)) => s,
            _ => {
                self.local_seq = self.local_seq.wrapping_add(1).max(1);
                self.local_seq
            }
        };
        let mut uri = self.remote_target.clone();
        let mut routes: Vec<String> = self.route_set.iter().map(|r| r.to_string()).collect();
        if let Some(first) = self.route_set.first()
            && first.uri.param("lr").is_none()
        {
            // Strict router (§12.2.1.1): R-URI = first route, remote target last.
            uri = first.uri.clone();
            routes.remove(0);
            routes.push(format!("<{}>", self.remote_target));
        }
        let mut headers = Headers::new();
        for r in routes {
            headers.push("Route", r);
        }
        headers.push("Max-Forwards", "70");
        headers.push("From", self.local_header.clone());
        headers.push("To", self.remote_header.clone());
        headers.push("Call-ID", self.call_id.clone());
        headers.push("CSeq", format!("{seq} {method}"));
        if method != Method::Ack && method != Method::Bye {
            headers.push("Contact", contact.to_string());
        }
        headers.push("Content-Length", "0");
        Request {
            method,
            uri,
            headers,
            body: Vec::new(),
        }
    }
}
