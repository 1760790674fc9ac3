//! SDP (RFC 8866): the full model ([`SessionDescription`]), a strict parser
//! whose errors name the line and field ([`SdpError`]), `Display` as wire
//! text, and RFC 3264 offer/answer for one audio stream ([`create_offer`],
//! [`answer_offer`], [`apply_answer`]). See `negotiate.rs` for the choices
//! offer/answer makes.
//!
//! [`offer`] and [`answer`] are the string-level entry points the phone
//! used before the media engine (G.711 µ-law/A-law + telephone-event).

pub mod model;
pub mod negotiate;
pub mod parse;

use std::net::IpAddr;

pub use model::{
    Attribute, Attributes, Bandwidth, Connection, Direction, MediaDescription, OpusParams, Origin,
    RtcpAttr, RtpMap, SessionDescription, Timing,
};
pub use negotiate::{
    AnswerError, CodecSpec, LocalMedia, NegotiatedMedia, SAVP, SrtpPolicy, answer_offer,
    apply_answer, create_offer,
};
pub use parse::{SdpError, SdpErrorKind};

/// An audio offer for a call: PCMU, PCMA, telephone-event/8000 on 101.
pub fn offer(ip: IpAddr, port: u16, session_id: u64) -> String {
    create_offer(&LocalMedia::g711(ip, port), session_id, session_id).to_string()
}

/// Answer an offer with PCMU/PCMA + telephone-event: the first of them in
/// the offer's order, plus telephone-event when offered.
pub fn answer(
    offer_sdp: &[u8],
    ip: IpAddr,
    port: u16,
    session_id: u64,
) -> Result<String, AnswerError> {
    let offer = SessionDescription::parse(offer_sdp)?;
    let (answer, _) = answer_offer(&offer, &LocalMedia::g711(ip, port), session_id, session_id)?;
    Ok(answer.to_string())
}

/// The properties the fuzz target (`fuzz/fuzz_targets/sdp.rs`) and the
/// corpus test (`tests/sdp_fuzz_corpus.rs`) check on any input: nothing
/// panics (a panic is the failure), a description that parses displays as
/// text that parses to the same value, and when it is an acceptable offer
/// (for a G.711 phone on IPv4, or an Opus/G.722/PCMA phone on IPv6) our
/// answer parses, keeps the m-line count, and the offerer applying it
/// settles on the payload type we chose.
#[doc(hidden)]
pub fn check_invariants(data: &[u8]) -> Result<(), String> {
    let Ok(sd) = SessionDescription::parse(data) else {
        return Ok(());
    };
    let text = sd.to_string();
    match SessionDescription::parse(text.as_bytes()) {
        Ok(again) if again == sd => {}
        Ok(_) => return Err(format!("re-parsed description differs:\n{text}")),
        Err(e) => return Err(format!("displayed description does not parse: {e}\n{text}")),
    }
    let g711 = LocalMedia::g711(IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1)), 30000);
    let wide = LocalMedia {
        addr: IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
        codecs: vec![
            CodecSpec::opus(111),
            CodecSpec::g722(),
            CodecSpec::pcma(),
            CodecSpec::telephone_event(101, 8000),
            CodecSpec::telephone_event(110, 48000),
        ],
        rtcp_mux: true,
        ..g711.clone()
    };
    for local in [g711, wide] {
        let Ok((answer, ours)) = answer_offer(&sd, &local, 1, 1) else {
            continue;
        };
        let again = SessionDescription::parse(answer.to_string().as_bytes())
            .map_err(|e| format!("our answer does not parse: {e}"))?;
        if again.media.len() != sd.media.len() {
            return Err("answer changed the m-line count".into());
        }
        let theirs =
            apply_answer(&sd, &again).map_err(|e| format!("answer not applicable: {e}"))?;
        if theirs.codec.payload_type != ours.codec.payload_type {
            return Err(format!(
                "payload types disagree: {} vs {}",
                theirs.codec.payload_type, ours.codec.payload_type
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offer_text_is_unchanged() {
        let o = offer("192.0.2.7".parse().unwrap(), 4002, 9);
        assert_eq!(
            o,
            "v=0\r\no=softline 9 9 IN IP4 192.0.2.7\r\ns=Softline\r\nc=IN IP4 192.0.2.7\r\nt=0 0\r\n\
m=audio 4002 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
        );
        let o = offer("::1".parse().unwrap(), 4002, 9);
        assert!(o.contains("c=IN IP6 ::1\r\n"));
        assert!(o.contains("o=softline 9 9 IN IP6 ::1\r\n"));
    }

    #[test]
    fn answer_picks_first_supported_codec_of_offer() {
        let o = b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 9 8 0 96\r\na=rtpmap:96 telephone-event/8000\r\n";
        let a = answer(o, "127.0.0.1".parse().unwrap(), 5000, 7).unwrap();
        assert_eq!(
            a,
            "v=0\r\no=softline 7 7 IN IP4 127.0.0.1\r\ns=Softline\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio 5000 RTP/AVP 8 96\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:96 telephone-event/8000\r\n\
a=fmtp:96 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
        );
    }

    #[test]
    fn no_common_codec_no_audio_and_malformed() {
        let head = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n";
        let ip = "::1".parse().unwrap();
        let o = format!("{head}m=audio 4000 RTP/AVP 9 18\r\n");
        assert_eq!(
            answer(o.as_bytes(), ip, 1, 1),
            Err(AnswerError::NoCommonCodec)
        );
        let o = format!("{head}m=video 4000 RTP/AVP 96\r\n");
        assert_eq!(answer(o.as_bytes(), ip, 1, 1), Err(AnswerError::NoAudio));
        let o = format!("{head}m=audio 4000 RTP/SAVP 0\r\n");
        assert_eq!(
            answer(o.as_bytes(), ip, 1, 1),
            Err(AnswerError::UnsupportedProfile("RTP/SAVP".into()))
        );
        let e = answer(b"v=0\r\nm=audio 4000 RTP/AVP 0\r\n", ip, 1, 1).unwrap_err();
        assert_eq!(
            e.to_string(),
            "malformed SDP: SDP line 2: `m=` found where `o=` must be the second line"
        );
    }
}
