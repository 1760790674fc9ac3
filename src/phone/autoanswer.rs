//! Auto-answer (VICIdial rings the agent's phone and expects it to pick up
//! by itself): which requests ask for it, and whether we honour them.
//!
//! Safe by default: a request's auto-answer headers count only when the
//! INVITE comes from the account's own registrar or outbound proxy, so a
//! stranger who reaches the phone cannot open an agent's microphone.

use std::time::Duration;

use crate::sip::headers::TypedHeaders;
use crate::sip::message::Request;

/// The account's policy (`auto_answer` in the config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    Off,
    /// Only when the INVITE asks for it (and comes from our server).
    WhenRequested,
    /// Every incoming call (after the configured delay).
    Always,
}

impl Policy {
    pub fn parse(s: &str) -> Option<Policy> {
        match s {
            "off" => Some(Policy::Off),
            "when-requested" => Some(Policy::WhenRequested),
            "always" => Some(Policy::Always),
            _ => None,
        }
    }
}

/// An auto-answer request found in an INVITE: the delay it asks for and
/// which header said so (for the log line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requested {
    pub delay: Duration,
    pub reason: String,
}

fn param<'a>(value: &'a str, name: &str) -> Option<&'a str> {
    value.split(';').skip(1).find_map(|p| {
        let (n, v) = p.split_once('=').unwrap_or((p, ""));
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"'))
    })
}

/// The auto-answer request of an INVITE, in any of the forms PBXs and
/// VICIdial use: `Call-Info: <uri>;answer-after=N` (also with an empty
/// URI), `Alert-Info: info=alert-autoanswer`, `Alert-Info:
/// <uri>;info=alert-autoanswer;delay=N`, `Alert-Info: Ring Answer`,
/// intercom variants, and `Answer-Mode: Auto` (RFC 5373).
pub fn requested(invite: &Request) -> Option<Requested> {
    let h = &invite.headers;
    for v in h.get_all("Call-Info") {
        for one in v.split(',') {
            if let Some(n) = param(one, "answer-after") {
                let secs = n.parse::<u64>().unwrap_or(0).min(3600);
                return Some(Requested {
                    delay: Duration::from_secs(secs),
                    reason: format!("Call-Info answer-after={secs}"),
                });
            }
        }
    }
    for v in h.get_all("Alert-Info") {
        let lower = v.to_ascii_lowercase();
        let flagged = lower.contains("alert-autoanswer")
            || lower.contains("auto-answer")
            || lower.contains("autoanswer")
            || lower.contains("ring answer")
            || lower.contains("intercom");
        if flagged {
            let secs = param(v, "delay")
                .and_then(|d| d.parse::<u64>().ok())
                .unwrap_or(0)
                .min(3600);
            return Some(Requested {
                delay: Duration::from_secs(secs),
                reason: format!("Alert-Info {}", v.trim()),
            });
        }
    }
    if h.tokens("Answer-Mode").first().is_some_and(|m| {
        let m = m.split(';').next().unwrap_or("").trim();
        m.eq_ignore_ascii_case("auto")
    }) {
        return Some(Requested {
            delay: Duration::ZERO,
            reason: "Answer-Mode: Auto".into(),
        });
    }
    None
}

/// What to do with a new incoming call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Ring,
    /// Answer after `delay`; `reason` goes to the log and the status.
    Answer {
        delay: Duration,
        reason: String,
    },
}

/// Decide for one INVITE. `from_our_server`: it came from the account's
/// registrar/outbound proxy; `busy`: another call is active.
pub fn decide(
    policy: Policy,
    invite: &Request,
    from_our_server: bool,
    busy: bool,
    answer_over_active: bool,
    default_delay: Duration,
) -> Decision {
    if busy && !answer_over_active {
        return Decision::Ring;
    }
    match policy {
        Policy::Off => Decision::Ring,
        // Even "always" answers only calls our own server delivers: a SIP
        // scanner reaching the port directly must not open the microphone.
        Policy::Always if !from_our_server => Decision::Ring,
        Policy::Always => Decision::Answer {
            delay: default_delay,
            reason: "auto_answer = always".into(),
        },
        Policy::WhenRequested => match requested(invite) {
            Some(r) if from_our_server => Decision::Answer {
                delay: r.delay.max(default_delay),
                reason: r.reason,
            },
            Some(r) => {
                tracing::warn!(
                    "ignoring auto-answer request ({}) from outside our server",
                    r.reason
                );
                Decision::Ring
            }
            None => Decision::Ring,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::Message;

    fn invite(extra: &str) -> Request {
        let text = format!(
            "INVITE sip:1001@10.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.5;branch=z9hG4bK1\r\nFrom: <sip:8600051@10.0.0.5>;tag=1\r\nTo: <sip:1001@10.0.0.1>\r\nCall-ID: a\r\nCSeq: 1 INVITE\r\nContact: <sip:8600051@10.0.0.5>\r\n{extra}Content-Length: 0\r\n\r\n"
        );
        match Message::parse(text.as_bytes()).unwrap() {
            Message::Request(r) => r,
            Message::Response(_) => panic!(),
        }
    }

    #[test]
    fn every_header_form_pbxs_and_vicidial_use() {
        let cases: &[(&str, u64)] = &[
            ("Call-Info: <sip:10.0.0.5>;answer-after=0\r\n", 0),
            ("Call-Info: ;answer-after=0\r\n", 0),
            ("Call-Info: <http://www.notused.com>;answer-after=3\r\n", 3),
            ("Alert-Info: info=alert-autoanswer\r\n", 0),
            (
                "Alert-Info: <http://example.com>;info=alert-autoanswer\r\n",
                0,
            ),
            (
                "Alert-Info: <http://example.com>;info=alert-autoanswer;delay=2\r\n",
                2,
            ),
            ("Alert-Info: Ring Answer\r\n", 0),
            ("Alert-Info: <http://example.com>;info=intercom\r\n", 0),
            ("Answer-Mode: Auto\r\n", 0),
            ("Answer-Mode: Auto;require\r\n", 0),
        ];
        for (header, delay) in cases {
            let r =
                requested(&invite(header)).unwrap_or_else(|| panic!("not recognised: {header}"));
            assert_eq!(r.delay, Duration::from_secs(*delay), "{header}");
        }
        for header in [
            "",
            "Alert-Info: <http://example.com/ring.wav>\r\n",
            "Answer-Mode: Manual\r\n",
            "Call-Info: <http://x>;purpose=icon\r\n",
        ] {
            assert_eq!(requested(&invite(header)), None, "{header}");
        }
    }

    #[test]
    fn safe_by_default_and_never_over_an_active_call() {
        let req = invite("Call-Info: ;answer-after=0\r\n");
        let d = |policy, ours, busy, over| decide(policy, &req, ours, busy, over, Duration::ZERO);
        assert!(matches!(
            d(Policy::WhenRequested, true, false, false),
            Decision::Answer { .. }
        ));
        assert_eq!(
            d(Policy::WhenRequested, false, false, false),
            Decision::Ring,
            "a stranger cannot open the mic"
        );
        assert_eq!(
            d(Policy::WhenRequested, true, true, false),
            Decision::Ring,
            "second call rings"
        );
        assert!(matches!(
            d(Policy::WhenRequested, true, true, true),
            Decision::Answer { .. }
        ));
        assert_eq!(d(Policy::Off, true, false, false), Decision::Ring);
        let plain = invite("");
        assert!(
            matches!(decide(Policy::Always, &plain, true, false, false, Duration::from_secs(1)), Decision::Answer { delay, .. } if delay == Duration::from_secs(1))
        );
        assert_eq!(
            decide(Policy::Always, &plain, false, false, false, Duration::ZERO),
            Decision::Ring,
            "always, but not from our server"
        );
        assert_eq!(
            decide(
                Policy::WhenRequested,
                &plain,
                true,
                false,
                false,
                Duration::ZERO
            ),
            Decision::Ring
        );
    }
}
