//! RTP and RTCP (RFC 3550), one-port demultiplexing (RFC 5761), reception and
//! sending statistics (RFC 3550 Appendix A.1, A.3, A.8) and the
//! telephone-event payload (RFC 4733), redundant audio (RFC 2198), SRTP/SRTCP with SDES keys (RFC 3711,
//! RFC 4568, RFC 7714).
//!
//! Everything here is sans-IO: packets are bytes in and bytes out, time is an
//! [`std::time::Instant`] (or an NTP timestamp) passed in by the caller.
//! Parsers never panic on untrusted input; they return [`RtpError`].
//! Writers append to a caller-owned `Vec<u8>` so a warmed-up buffer is reused.

pub mod packet;
pub mod red;
pub mod rtcp;
pub mod srtp;
pub mod stats;
pub mod telephone_event;

pub use packet::{RtpError, RtpPacket, is_rtcp};
pub use red::{RedBlock, RedError, RedPayload, write_red};
pub use rtcp::{
    ReceiverReport, ReportBlock, RtcpPacket, SenderReport, parse_compound, write_compound,
};
pub use srtp::{Mki, SrtpError, SrtpKey, SrtpSession, SrtpSuite};
pub use stats::{ReceiveStats, SendStats, SeqStatus, ntp_from_unix, ntp_middle32, rtt_from_block};
pub use telephone_event::{
    DtmfReport, TelephoneEvent, TelephoneEventReceiver, char_to_event, event_to_char,
};
