//! The media side of one call as the core sees it: the RTP port the
//! runtime bound, the SDP offers and answers (RFC 3264), and what has been
//! handed to the runtime to play. No sockets and no audio here.

use std::net::IpAddr;

use crate::config::MediaSection;
use crate::media::codec::CodecKind;
use crate::rtp::srtp::{SrtpKey, SrtpSuite};
use crate::sdp::{
    AnswerError, CodecSpec, Direction, LocalMedia, NegotiatedMedia, SessionDescription, SrtpPolicy,
    answer_offer, apply_answer, create_offer,
};

/// The SRTP side of one offer or answer: the policy and fresh keys, one
/// per suite we accept (from the core's cryptographic generator).
#[derive(Debug, Clone, Default)]
pub struct SrtpSetup {
    pub policy: SrtpPolicy,
    pub keys: Vec<SrtpKey>,
}

impl SrtpSetup {
    pub fn new(policy: SrtpPolicy, random: &mut impl FnMut() -> u64) -> SrtpSetup {
        let keys = match policy {
            SrtpPolicy::Off => Vec::new(),
            _ => SrtpSuite::ALL
                .iter()
                .map(|s| SrtpKey::generate(*s, random))
                .collect(),
        };
        SrtpSetup { policy, keys }
    }
}

/// Dynamic payload types we offer.
const OPUS_PT: u8 = 111;
const TELEPHONE_EVENT_PT: u8 = 101;
const TELEPHONE_EVENT_48K_PT: u8 = 110;
/// RFC 2198 redundancy around Opus (outside 64–95, RFC 5761 §4).
const RED_PT: u8 = 100;

/// The SDP description we use for a codec named in `[media] codecs` (or
/// a ctl command), if this build can run it.
pub fn codec_spec(name: &str) -> Option<CodecSpec> {
    let kind = CodecKind::from_name(name).filter(|k| crate::media::codec::available(*k))?;
    Some(match kind {
        CodecKind::Opus => CodecSpec::opus(OPUS_PT),
        CodecKind::G722 => CodecSpec::g722(),
        CodecKind::Pcmu => CodecSpec::pcmu(),
        CodecKind::Pcma => CodecSpec::pcma(),
    })
}

/// Our media capabilities in preference order, from `[media]`; codecs this
/// build cannot run are left out.
pub fn local_codecs(config: &MediaSection) -> Vec<CodecSpec> {
    let mut out: Vec<CodecSpec> = config.codecs.iter().filter_map(|c| codec_spec(c)).collect();
    // RFC 4733 events at each audio clock we offer (8 kHz, and 48 kHz with Opus).
    let opus = out.iter().position(|c| c.name.eq_ignore_ascii_case("opus"));
    // RED right after Opus, wrapping it (RFC 2198; as browsers offer it).
    if let (Some(i), true) = (opus, config.opus_red) {
        out.insert(i + 1, CodecSpec::red(RED_PT, OPUS_PT));
    }
    let opus = opus.is_some();
    out.push(CodecSpec::telephone_event(TELEPHONE_EVENT_PT, 8000));
    if opus {
        out.push(CodecSpec::telephone_event(TELEPHONE_EVENT_48K_PT, 48000));
    }
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
    /// This call's SRTP policy and keys (made once, reused by re-INVITEs).
    pub srtp: Option<SrtpSetup>,
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
            srtp: None,
        }
    }

    fn local(
        &self,
        config: &MediaSection,
        ip: IpAddr,
        direction: Direction,
        srtp: &SrtpSetup,
    ) -> LocalMedia {
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
            srtp: srtp.policy,
            srtp_keys: srtp.keys.clone(),
        }
    }

    /// A new offer (INVITE, or a 200 to an INVITE without one).
    pub fn offer(
        &mut self,
        config: &MediaSection,
        ip: IpAddr,
        direction: Direction,
        srtp: &SrtpSetup,
    ) -> String {
        self.version += 1;
        let sd = create_offer(
            &self.local(config, ip, direction, srtp),
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
        srtp: &SrtpSetup,
    ) -> Result<String, AnswerError> {
        self.answer_with(config, ip, offer, srtp, Direction::SendRecv)
    }

    /// Answer the peer's offer with our own `direction` (sendonly while we
    /// hold the call, so a refresh from the far end does not resume it).
    pub fn answer_with(
        &mut self,
        config: &MediaSection,
        ip: IpAddr,
        offer: &[u8],
        srtp: &SrtpSetup,
        direction: Direction,
    ) -> Result<String, AnswerError> {
        let offer =
            SessionDescription::parse(offer).map_err(|e| AnswerError::Malformed(e.to_string()))?;
        self.version += 1;
        let (answer, negotiated) = answer_offer(
            &offer,
            &self.local(config, ip, direction, srtp),
            self.session_id,
            self.version,
        )?;
        self.negotiated = Some(negotiated);
        Ok(answer.to_string())
    }

    /// Would this offer be answerable? (Checked before ringing: 488 at once.)
    pub fn check_offer(
        config: &MediaSection,
        ip: IpAddr,
        offer: &[u8],
        policy: SrtpPolicy,
    ) -> Result<(), AnswerError> {
        // Throw-away keys: only whether an answer exists matters here.
        let mut n = 0u64;
        let setup = SrtpSetup::new(policy, &mut || {
            n += 1;
            n
        });
        CallMedia::new(0)
            .answer(config, ip, offer, &setup)
            .map(|_| ())
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

    /// True while an offer of ours waits for its answer.
    pub fn awaiting_answer(&self) -> bool {
        self.our_offer.is_some()
    }

    /// The offer/answer exchange is complete (final 2xx, or the ACK).
    pub fn settle(&mut self) {
        self.our_offer = None;
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
    fn red_is_offered_right_after_opus_unless_switched_off() {
        let names = |c: &MediaSection| -> Vec<(String, u8, Option<String>)> {
            local_codecs(c)
                .into_iter()
                .map(|s| (s.name, s.payload_type, s.fmtp))
                .collect()
        };
        let with = names(&cfg(&["opus", "PCMU"]));
        assert_eq!(with[0].0, "opus");
        assert_eq!(with[1], ("red".into(), 100, Some("111/111".into())));
        assert_eq!(with[2].0, "PCMU");
        let off = MediaSection {
            opus_red: false,
            ..cfg(&["opus", "PCMU"])
        };
        assert!(names(&off).iter().all(|c| c.0 != "red"));
        // No Opus, no red.
        assert!(names(&cfg(&["G722", "PCMU"])).iter().all(|c| c.0 != "red"));
    }

    #[test]
    fn offer_answer_between_two_calls_settles_the_first_common_codec() {
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let mut a = CallMedia::new(1);
        a.port = Some(40000);
        let off = SrtpSetup::default();
        let offer = a.offer(&cfg(&["G722", "PCMU"]), ip, Direction::SendRecv, &off);
        assert!(offer.contains("m=audio 40000 RTP/AVP 9 0 101"), "{offer}");
        let mut b = CallMedia::new(2);
        b.port = Some(50000);
        let answer = b
            .answer(
                &cfg(&["PCMU", "PCMA"]),
                "10.0.0.2".parse().unwrap(),
                offer.as_bytes(),
                &off,
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
            &SrtpSetup::default(),
        );
        let e = CallMedia::check_offer(
            &cfg(&["PCMU"]),
            "10.0.0.2".parse().unwrap(),
            offer.as_bytes(),
            SrtpPolicy::Off,
        );
        assert_eq!(e, Err(AnswerError::NoCommonCodec));
    }

    #[test]
    fn mandatory_srtp_offers_savp_and_settles_keys_both_ways() {
        let mut n = 7u64;
        let mut rnd = || {
            n = n.wrapping_mul(6364136223846793005).wrapping_add(1);
            n
        };
        let (mut a, mut b) = (CallMedia::new(1), CallMedia::new(2));
        a.port = Some(40000);
        b.port = Some(50000);
        let sa = SrtpSetup::new(SrtpPolicy::Mandatory, &mut rnd);
        let offer = a.offer(
            &cfg(&["PCMU"]),
            "10.0.0.1".parse().unwrap(),
            Direction::SendRecv,
            &sa,
        );
        assert!(
            offer.contains("RTP/SAVP")
                && offer.contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"),
            "{offer}"
        );
        // A phone with SRTP off refuses it; one with optional accepts.
        assert!(
            CallMedia::check_offer(
                &cfg(&["PCMU"]),
                "10.0.0.2".parse().unwrap(),
                offer.as_bytes(),
                SrtpPolicy::Off
            )
            .is_err()
        );
        let sb = SrtpSetup::new(SrtpPolicy::Optional, &mut rnd);
        let answer = b
            .answer(
                &cfg(&["PCMU"]),
                "10.0.0.2".parse().unwrap(),
                offer.as_bytes(),
                &sb,
            )
            .unwrap();
        a.on_answer(answer.as_bytes()).unwrap();
        let ka = a.negotiated.unwrap().srtp.expect("SRTP on the offerer");
        let kb = b.negotiated.unwrap().srtp.expect("SRTP on the answerer");
        // Each side's sending key is the other's receiving key.
        assert_eq!(ka.0, kb.1);
        assert_eq!(ka.1, kb.0);
    }
}
