//! Serializer: messages, URIs and typed header values back to wire text.
//!
//! STUB: to be implemented by the message-layer work. Signatures are the contract.

use std::fmt;

use crate::sip::headers::{NameAddr, Via};
use crate::sip::message::Message;
use crate::sip::uri::Uri;

pub fn write_uri(f: &mut fmt::Formatter<'_>, uri: &Uri) -> fmt::Result {
    let _ = uri;
    f.write_str("sip:unimplemented")
}

impl Message {
    /// Wire bytes. Sets nothing by itself: `Content-Length` is written as
    /// present in the headers (use [`Message::finalize`] to fix it up).
    pub fn to_bytes(&self) -> Vec<u8> {
        Vec::new()
    }

    /// Set `Content-Length` to the body length.
    pub fn finalize(&mut self) {
        let len = self.body().len();
        self.headers_mut().set("Content-Length", len.to_string());
    }
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{}>", self.uri)
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIP/2.0/{} {}", self.transport, self.host)
    }
}
