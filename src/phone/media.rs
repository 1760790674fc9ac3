//! The media side of one call as the core sees it: the RTP port the
//! runtime bound, the SDP offers and answers (RFC 3264), and what has been
//! handed to the runtime to play. No sockets and no audio here.

use std::net::IpAddr;

use crate::config::MediaSection;
use crate::sdp::{
    AnswerError, CodecSpec, Direction, LocalMedia, NegotiatedMedia, SessionDescription,
    answer_offer, apply_answer, create_offer,
};

/// Dynamic payload types we offer.
const OPUS_PT: u8 = 111;
const TELEPHONE_EVENT_PT: u8 = 101;

/// Our media capabilities in preference order, from `[media]`; codecs this
/// build cannot run are left out.
pub fn local_codecs(config: &MediaSection) -> Vec<CodecSpec> {
    let mut out: Vec<CodecSpec> = config
        .codecs
        .iter()
        .filter_map(|c| match c.to_ascii_lowercase().as_str() {
            "opus" => crate::media::codec::available(crate::media::codec::CodecKind::Opus)
                .then(|| CodecSpec::opus(OPUS_PT)),
            "g722" => Some(CodecSpec::g722()),
            "pcmu" => Some(CodecSpec::pcmu()),
            "pcma" => Some(CodecSpec::pcma()),
            _ => None,
        })
        .collect();
    out.push(CodecSpec::telephone_event(TELEPHONE_EVENT_PT, 8000));
    out
}

/// Negotiation state of one call's audio stream.
#[derive(Debug, Clone)]
pub struct CallMedia {
    /// RTP port bound by the runtime (`None` until it answers).
    pub port: Option<u16>,
    /// The runtime was asked to bind a port.
    pub requested: bool,
    session_id: u64,
    version: u64,
    /// Our offer awaiting its answer (INVITE, 200 without offer, re-INVITE).
    our_offer: Option<SessionDescription>,
    /// What the last completed offer/answer settled.
    pub negotiated: Option<NegotiatedMedia>,
    /// What the runtime was last told to play.
    started: Option<NegotiatedMedia>,
}

impl CallMedia {
    pub fn new(session_id: u64) -> CallMedia {
        CallMedia {
            port: None,
            requested: false,
            session_id,
            version: 0,
            our_offer: None,
            negotiated: None,
            started: None,
        }
    }

    fn local(&self, config: &MediaSection, ip: IpAddr, direction: Direction) -> LocalMedia {
        LocalMedia {
            addr: ip,
            // RFC 3264 §5: port 9 (discard) when no port is bound yet; only
            // used for the dry-run check of an incoming offer.
            rtp_port: self.port.unwrap_or(9),
            codecs: local_codecs(config),
            ptime_ms: config.ptime_ms,
            direction,
            rtcp_mux: config.rtcp_mux,
            profile: "RTP/AVP".into(),
            srtp: crate::sdp::SrtpPolicy::Off,
            srtp_keys: vec![],
        }
    }

    /// A new offer (INVITE, or a 200 to an INVITE without one).
    pub fn offer(&mut self, config: &MediaSection, ip: IpAddr, direction: Direction) -> String {
        self.version += 1;
        let sd = create_offer(
            &self.local(config, ip, direction),
            self.session_id,
            self.version,
        );
        let text = sd.to_string();
        self.our_offer = Some(sd);
        text
    }

    /// Answer the peer's offer; the negotiated stream is kept.
    pub fn answer(
        &mut self,
        config: &MediaSection,
        ip: IpAddr,
        offer: &[u8],
    ) -> Result<String, AnswerError> {
        let offer =
            SessionDescription::parse(offer).map_err(|e| AnswerError::Malformed(e.to_string()))?;
        self.version += 1;
        let (answer, negotiated) = answer_offer(
            &offer,
            &self.local(config, ip, Direction::SendRecv),
            self.session_id,
            self.version,
        )?;
        self.negotiated = Some(negotiated);
        Ok(answer.to_string())
    }

    /// Would this offer be answerable? (Checked before ringing: 488 at once.)
    pub fn check_offer(config: &MediaSection, ip: IpAddr, offer: &[u8]) -> Result<(), AnswerError> {
        CallMedia::new(0).answer(config, ip, offer).map(|_| ())
    }

    /// The peer's answer to our outstanding offer (183/200 body, or ACK body).
    pub fn on_answer(&mut self, answer: &[u8]) -> Result<(), AnswerError> {
        let Some(offer) = &self.our_offer else {
            return Err(AnswerError::Malformed("an answer without an offer".into()));
        };
        let answer =
            SessionDescription::parse(answer).map_err(|e| AnswerError::Malformed(e.to_string()))?;
        self.negotiated = Some(apply_answer(offer, &answer)?);
        Ok(())
    }

    /// The stream to hand to the runtime when it changed since last time.
    pub fn take_start(&mut self) -> Option<NegotiatedMedia> {
        match (&self.negotiated, &self.started) {
            (Some(n), Some(s)) if n == s => None,
            (Some(n), _) => {
                self.started = Some(n.clone());
                Some(n.clone())
            }
            (None, _) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(codecs: &[&str]) -> MediaSection {
        MediaSection {
            codecs: codecs.iter().map(|c| c.to_string()).collect(),
            ..MediaSection::default()
        }
    }

    #[test]
    fn offer_answer_between_two_calls_settles_the_first_common_codec() {
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let mut a = CallMedia::new(1);
        a.port = Some(40000);
        let offer = a.offer(&cfg(&["G722", "PCMU"]), ip, Direction::SendRecv);
        assert!(offer.contains("m=audio 40000 RTP/AVP 9 0 101"), "{offer}");
        let mut b = CallMedia::new(2);
        b.port = Some(50000);
        let answer = b
            .answer(
                &cfg(&["PCMU", "PCMA"]),
                "10.0.0.2".parse().unwrap(),
                offer.as_bytes(),
            )
            .unwrap();
        a.on_answer(answer.as_bytes()).unwrap();
        let (na, nb) = (a.negotiated.clone().unwrap(), b.negotiated.clone().unwrap());
        assert_eq!(na.codec.name, "PCMU");
        assert_eq!(nb.codec.name, "PCMU");
        assert_eq!(na.remote_rtp, "10.0.0.2:50000".parse().unwrap());
        assert_eq!(nb.remote_rtp, "10.0.0.1:40000".parse().unwrap());
        // Started once; the same result again starts nothing new.
        assert!(a.take_start().is_some());
        assert!(a.take_start().is_none());
    }

    #[test]
    fn no_common_codec_is_refused_before_ringing() {
        let mut a = CallMedia::new(1);
        a.port = Some(40000);
        let offer = a.offer(
            &cfg(&["PCMA"]),
            "10.0.0.1".parse().unwrap(),
            Direction::SendRecv,
        );
        let e = CallMedia::check_offer(
            &cfg(&["PCMU"]),
            "10.0.0.2".parse().unwrap(),
            offer.as_bytes(),
        );
        assert_eq!(e, Err(AnswerError::NoCommonCodec));
    }
}
