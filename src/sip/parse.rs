//! SIP parser (RFC 3261 §7, §25; RFC 4475 torture cases). Never panics on
//! input; every rejection says precisely what was wrong.
//!
//! STUB: to be implemented by the message-layer work. Signatures are the contract.

use crate::sip::headers::{AuthParams, CSeq, NameAddr, Via};
use crate::sip::message::{Headers, Message};
use crate::sip::uri::Uri;

/// Largest message accepted (datagram or stream), in bytes.
pub const MAX_MESSAGE_SIZE: usize = 65_535;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    #[error("invalid {header} header: {why}")]
    InvalidHeader { header: String, why: String },
    #[error("invalid start line: {0}")]
    InvalidStartLine(String),
    #[error("invalid URI: {0}")]
    InvalidUri(String),
    #[error("message too large ({0} bytes)")]
    TooLarge(usize),
    #[error("incomplete message")]
    Incomplete,
    #[error("not implemented")]
    Unimplemented,
}

impl Message {
    /// Parse one complete message (a datagram, or a frame cut by the stream
    /// framer).
    pub fn parse(_bytes: &[u8]) -> Result<Message, ParseError> {
        Err(ParseError::Unimplemented)
    }
}

pub fn parse_uri(_s: &str) -> Result<Uri, ParseError> {
    Err(ParseError::Unimplemented)
}
pub fn parse_name_addr(_s: &str) -> Result<NameAddr, ParseError> {
    Err(ParseError::Unimplemented)
}
pub fn parse_cseq(_s: &str) -> Result<CSeq, ParseError> {
    Err(ParseError::Unimplemented)
}
pub fn parse_auth_params(_s: &str) -> Result<AuthParams, ParseError> {
    Err(ParseError::Unimplemented)
}
pub fn read_vias(_h: &Headers) -> Result<Vec<Via>, ParseError> {
    Err(ParseError::Unimplemented)
}
pub fn read_name_addr_list(_h: &Headers, _name: &str) -> Result<Vec<NameAddr>, ParseError> {
    Err(ParseError::Unimplemented)
}
pub fn read_number<T: std::str::FromStr>(_h: &Headers, _name: &str) -> Result<Option<T>, ParseError> {
    Err(ParseError::Unimplemented)
}
