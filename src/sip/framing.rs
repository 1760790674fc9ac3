//! Message framing on stream transports (RFC 3261 §18.3) and the CRLF
//! keep-alives of RFC 5626 §3.5.1.
//!
//! TCP and TLS deliver a byte stream; a message ends `Content-Length` octets
//! after its empty line, and `Content-Length` is mandatory there. Between
//! messages a peer may send `CRLF CRLF` (a keep-alive "ping", answered with
//! one `CRLF`, the "pong").

use crate::sip::parse::{MAX_MESSAGE_SIZE, ParseError};

/// One unit cut from the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// The bytes of one complete message, for [`crate::sip::message::Message::parse`].
    Message(Vec<u8>),
    /// A `CRLF CRLF` ping: answer with `CRLF`.
    KeepAlive,
    /// A lone `CRLF`: the pong to our ping.
    Pong,
}

/// Cuts a byte stream into frames. Errors are fatal for the connection: the
/// caller closes it (the stream cannot be resynchronised).
#[derive(Debug)]
pub struct StreamFramer {
    buf: Vec<u8>,
    limit: usize,
}

impl Default for StreamFramer {
    fn default() -> Self {
        Self::new()
    }
}

impl StreamFramer {
    pub fn new() -> Self {
        Self::with_limit(MAX_MESSAGE_SIZE)
    }

    /// A framer that rejects messages larger than `limit` bytes.
    pub fn with_limit(limit: usize) -> Self {
        StreamFramer {
            buf: Vec::new(),
            limit,
        }
    }

    /// Append received bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes waiting for the rest of their message.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next complete frame, `None` when more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, ParseError> {
        if self.buf.starts_with(b"\r\n\r\n") {
            self.buf.drain(..4);
            return Ok(Some(Frame::KeepAlive));
        }
        if self.buf.starts_with(b"\r\n") && (self.buf.len() == 2 || self.buf.get(2) != Some(&b'\r'))
        {
            self.buf.drain(..2);
            return Ok(Some(Frame::Pong));
        }
        if self.buf.len() < 4 {
            return Ok(None);
        }
        let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            if self.buf.len() > self.limit {
                return Err(ParseError::TooLarge(self.buf.len()));
            }
            return Ok(None);
        };
        let head_len = end + 4;
        let length = content_length(&self.buf[..end])?.ok_or(ParseError::InvalidHeader {
            header: "Content-Length".into(),
            why: "required on stream transports (RFC 3261 §18.3)".into(),
        })?;
        let total = head_len.saturating_add(length);
        if total > self.limit {
            return Err(ParseError::TooLarge(total));
        }
        if self.buf.len() < total {
            return Ok(None);
        }
        let rest = self.buf.split_off(total);
        let frame = std::mem::replace(&mut self.buf, rest);
        Ok(Some(Frame::Message(frame)))
    }
}

/// The Content-Length of a message head, read without parsing the rest
/// (folded values are not expected for this header).
fn content_length(head: &[u8]) -> Result<Option<usize>, ParseError> {
    let bad = |why: &str| ParseError::InvalidHeader {
        header: "Content-Length".into(),
        why: why.into(),
    };
    for line in head.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = line[..colon].trim_ascii();
        if name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l") {
            let value = line[colon + 1..].trim_ascii();
            if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
                return Err(bad("not an unsigned number"));
            }
            return std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.parse::<usize>().ok())
                .map(Some)
                .ok_or_else(|| bad("too large"));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 5\r\n\r\nhello";

    #[test]
    fn cuts_back_to_back_messages_split_anywhere() {
        let mut stream = Vec::new();
        stream.extend_from_slice(MSG);
        stream.extend_from_slice(b"\r\n\r\n");
        stream.extend_from_slice(MSG);
        for split in 0..stream.len() {
            let mut f = StreamFramer::new();
            let mut frames = Vec::new();
            for part in [&stream[..split], &stream[split..]] {
                f.push(part);
                while let Some(fr) = f.next_frame().unwrap() {
                    frames.push(fr);
                }
            }
            // A split inside the CRLFCRLF ping may read as two pongs; the
            // messages are always intact.
            let msgs: Vec<_> = frames
                .iter()
                .filter(|f| matches!(f, Frame::Message(_)))
                .collect();
            assert_eq!(msgs.len(), 2, "split at {split}");
            assert!(msgs.iter().all(|m| **m == Frame::Message(MSG.to_vec())));
            assert_eq!(f.buffered(), 0);
        }
    }

    #[test]
    fn ping_and_pong() {
        let mut f = StreamFramer::new();
        f.push(b"\r\n\r\n");
        assert_eq!(f.next_frame().unwrap(), Some(Frame::KeepAlive));
        f.push(b"\r\n");
        assert_eq!(f.next_frame().unwrap(), Some(Frame::Pong));
        assert_eq!(f.next_frame().unwrap(), None);
    }

    #[test]
    fn missing_content_length_is_an_error() {
        let mut f = StreamFramer::new();
        f.push(b"OPTIONS sip:a@b SIP/2.0\r\nVia: x\r\n\r\n");
        assert!(matches!(
            f.next_frame(),
            Err(ParseError::InvalidHeader { .. })
        ));
    }

    #[test]
    fn compact_content_length() {
        let mut f = StreamFramer::new();
        f.push(b"OPTIONS sip:a@b SIP/2.0\r\nl: 2\r\n\r\nab");
        assert!(matches!(f.next_frame().unwrap(), Some(Frame::Message(m)) if m.ends_with(b"ab")));
    }

    #[test]
    fn oversized_is_refused_before_buffering_everything() {
        let mut f = StreamFramer::with_limit(1000);
        f.push(b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 5000\r\n\r\n");
        assert!(matches!(f.next_frame(), Err(ParseError::TooLarge(n)) if n > 5000));
        let mut g = StreamFramer::with_limit(100);
        g.push(&[b'a'; 200]);
        assert!(matches!(g.next_frame(), Err(ParseError::TooLarge(200))));
    }

    #[test]
    fn negative_or_garbage_length_is_an_error() {
        let mut f = StreamFramer::new();
        f.push(b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: -1\r\n\r\n");
        assert!(f.next_frame().is_err());
    }
}
