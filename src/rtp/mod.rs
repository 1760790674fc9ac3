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

/// The properties the fuzz target (`fuzz/fuzz_targets/rtp.rs`) and the
/// corpus tests (`tests/rtp_fuzz_corpus.rs`, `tests/red_fuzz_corpus.rs`)
/// check on any input: no parser panics (a panic is the failure), and what
/// parses writes back to bytes that parse to the same value — an RTP packet
/// (written twice, byte-identical), an RTCP compound, the RTP payload read
/// as RFC 2198 RED, and as an RFC 4733 event.
#[doc(hidden)]
pub fn check_invariants(data: &[u8]) -> Result<(), String> {
    if let Ok(p) = RtpPacket::parse(data) {
        let mut out = Vec::new();
        p.write(&mut out);
        match RtpPacket::parse(&out) {
            Ok(again) if again == p => {}
            Ok(again) => return Err(format!("RTP round trip differs: {p:?} vs {again:?}")),
            Err(e) => return Err(format!("written RTP packet does not parse: {e}")),
        }
        let mut out2 = Vec::new();
        p.write(&mut out2);
        if out2 != out {
            return Err("RTP written twice differs".into());
        }
        if let Ok(red) = RedPayload::parse(&p.payload) {
            let mut out = Vec::new();
            write_red(
                red.redundant(),
                red.primary.payload_type,
                red.primary.data,
                &mut out,
            )
            .map_err(|e| format!("parsed RED does not write: {e}"))?;
            match RedPayload::parse(&out) {
                Ok(again) if again == red => {}
                Ok(again) => return Err(format!("RED round trip differs: {red:?} vs {again:?}")),
                Err(e) => return Err(format!("written RED does not parse: {e}")),
            }
        }
        let _ = TelephoneEvent::parse(&p.payload);
    }
    if let Ok(v) = parse_compound(data) {
        let mut out = Vec::new();
        write_compound(&v, &mut out);
        match parse_compound(&out) {
            Ok(again) if again == v => {}
            Ok(again) => return Err(format!("RTCP round trip differs: {v:?} vs {again:?}")),
            Err(e) => return Err(format!("written RTCP compound does not parse: {e}")),
        }
    }
    Ok(())
}
