//! Minimal SDP (RFC 8866) offer/answer for audio, enough for the
//! foundation's calls: G.711 µ-law/A-law and telephone-event. The full model
//! and negotiation arrive with the media engine.

use std::net::IpAddr;

/// Payload types we can offer, in our preference order.
const OFFER: &[(u8, &str)] = &[(0, "PCMU/8000"), (8, "PCMA/8000")];
const TELEPHONE_EVENT_PT: u8 = 101;

fn ip_line(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(a) => format!("IN IP4 {a}"),
        IpAddr::V6(a) => format!("IN IP6 {a}"),
    }
}

/// An audio offer for a call.
pub fn offer(ip: IpAddr, port: u16, session_id: u64) -> String {
    let pts: Vec<String> = OFFER.iter().map(|(pt, _)| pt.to_string()).collect();
    let mut s = format!(
        "v=0\r\no=softline {session_id} {session_id} {ip}\r\ns=Softline\r\nc={ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP {} {TELEPHONE_EVENT_PT}\r\n",
        pts.join(" "),
        ip = ip_line(ip)
    );
    for (pt, name) in OFFER {
        s.push_str(&format!("a=rtpmap:{pt} {name}\r\n"));
    }
    s.push_str(&format!(
        "a=rtpmap:{TELEPHONE_EVENT_PT} telephone-event/8000\r\na=fmtp:{TELEPHONE_EVENT_PT} 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
    ));
    s
}

/// Why an offer cannot be answered (→ 488 Not Acceptable Here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnswerError {
    NoAudio,
    NoCommonCodec,
    Malformed(String),
}

impl std::fmt::Display for AnswerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AnswerError::NoAudio => f.write_str("no audio stream offered"),
            AnswerError::NoCommonCodec => f.write_str("no common codec (we support PCMU, PCMA)"),
            AnswerError::Malformed(w) => write!(f, "malformed SDP: {w}"),
        }
    }
}

/// Answer an offer: the first codec of the offer that we support, plus
/// telephone-event when offered.
pub fn answer(
    offer_sdp: &[u8],
    ip: IpAddr,
    port: u16,
    session_id: u64,
) -> Result<String, AnswerError> {
    let text =
        std::str::from_utf8(offer_sdp).map_err(|_| AnswerError::Malformed("not UTF-8".into()))?;
    let m = text
        .lines()
        .find(|l| l.starts_with("m=audio "))
        .ok_or(AnswerError::NoAudio)?;
    let fields: Vec<&str> = m.split_whitespace().collect();
    if fields.len() < 4 {
        return Err(AnswerError::Malformed(format!("short m= line `{m}`")));
    }
    let offered: Vec<u8> = fields
        .iter()
        .skip(3)
        .filter_map(|p| p.parse().ok())
        .collect();
    let chosen = offered
        .iter()
        .find_map(|pt| OFFER.iter().find(|(p, _)| p == pt))
        .ok_or(AnswerError::NoCommonCodec)?;
    let te = text.lines().find_map(|l| {
        let rest = l.strip_prefix("a=rtpmap:")?;
        let (pt, name) = rest.split_once(' ')?;
        name.trim()
            .to_ascii_lowercase()
            .starts_with("telephone-event/8000")
            .then(|| pt.parse::<u8>().ok())
            .flatten()
    });
    let mut s = format!(
        "v=0\r\no=softline {session_id} {session_id} {ip}\r\ns=Softline\r\nc={ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP {}{}\r\na=rtpmap:{} {}\r\n",
        chosen.0,
        te.map(|t| format!(" {t}")).unwrap_or_default(),
        chosen.0,
        chosen.1,
        ip = ip_line(ip)
    );
    if let Some(t) = te {
        s.push_str(&format!(
            "a=rtpmap:{t} telephone-event/8000\r\na=fmtp:{t} 0-16\r\n"
        ));
    }
    s.push_str("a=ptime:20\r\na=sendrecv\r\n");
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answer_picks_first_supported_codec_of_offer() {
        let o = b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 9 8 0 96\r\na=rtpmap:96 telephone-event/8000\r\n";
        let a = answer(o, "127.0.0.1".parse().unwrap(), 5000, 7).unwrap();
        assert!(a.contains("m=audio 5000 RTP/AVP 8 96\r\n"), "{a}");
        assert!(a.contains("a=rtpmap:8 PCMA/8000"));
        assert!(a.contains("c=IN IP4 127.0.0.1"));
    }

    #[test]
    fn no_common_codec_and_no_audio() {
        let o = b"v=0\r\nm=audio 4000 RTP/AVP 9 18\r\n";
        assert_eq!(
            answer(o, "::1".parse().unwrap(), 1, 1),
            Err(AnswerError::NoCommonCodec)
        );
        let o = b"v=0\r\nm=video 4000 RTP/AVP 96\r\n";
        assert_eq!(
            answer(o, "::1".parse().unwrap(), 1, 1),
            Err(AnswerError::NoAudio)
        );
    }

    #[test]
    fn offer_lists_g711_and_dtmf() {
        let o = offer("::1".parse().unwrap(), 4002, 9);
        assert!(o.contains("c=IN IP6 ::1"));
        assert!(o.contains("m=audio 4002 RTP/AVP 0 8 101\r\n"));
    }
}
