//! The phone's UDP listener against malformed input: RFC 4475 §3.1.2
//! invalid messages and our own truncated/garbage/oversized datagrams get a
//! 400 or nothing, RFC 4475 §3.1.1 valid messages never get a 400, and the
//! phone keeps answering OPTIONS and its control socket throughout.
#![cfg(unix)]
#![allow(clippy::disallowed_methods)]

mod support;

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use serde_json::json;
use support::torture::{self, Case, Expect};
use support::{Phone, free_udp_port, phone_config};

/// How long silence must last to count as "nothing".
const QUIET: Duration = Duration::from_millis(300);

struct Answer {
    code: Option<u16>,
    call_id: Option<String>,
    first_line: String,
}

fn parse_answer(bytes: &[u8]) -> Answer {
    let text = String::from_utf8_lossy(bytes);
    let first_line = text.lines().next().unwrap_or_default().to_owned();
    let code = first_line
        .strip_prefix("SIP/2.0 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|c| c.parse().ok());
    let call_id = text.lines().take_while(|l| !l.is_empty()).find_map(|l| {
        let (name, value) = l.split_once(':')?;
        let name = name.trim();
        (name.eq_ignore_ascii_case("call-id") || name.eq_ignore_ascii_case("i"))
            .then(|| value.trim().to_owned())
    });
    Answer {
        code,
        call_id,
        first_line,
    }
}

struct Tester {
    sock: UdpSocket,
    phone_addr: SocketAddr,
    via: String,
    canaries: u32,
}

impl Tester {
    fn new(phone_port: u16) -> Tester {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        let via = sock.local_addr().unwrap().to_string();
        Tester {
            sock,
            phone_addr: ([127, 0, 0, 1], phone_port).into(),
            via,
            canaries: 0,
        }
    }

    /// Every datagram that arrives until `until` (or until `stop` says so).
    fn collect(&self, until: Instant, mut stop: impl FnMut(&Answer) -> bool) -> Vec<Answer> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 70_000];
        loop {
            let now = Instant::now();
            if now >= until {
                return out;
            }
            self.sock.set_read_timeout(Some(until - now)).unwrap();
            match self.sock.recv_from(&mut buf) {
                Ok((n, _)) => {
                    let answer = parse_answer(buf.get(..n).unwrap_or_default());
                    if answer
                        .call_id
                        .as_deref()
                        .is_some_and(|c| c.starts_with("canary-"))
                    {
                        continue;
                    }
                    let done = stop(&answer);
                    out.push(answer);
                    if done {
                        return out;
                    }
                }
                Err(_) => return out,
            }
        }
    }

    /// A valid OPTIONS must get 200 within 2 s.
    fn canary(&mut self) -> Result<(), String> {
        self.canaries += 1;
        let call_id = format!("canary-{}", self.canaries);
        let msg = torture::options(&self.via, &call_id, self.canaries);
        self.sock.send_to(&msg, self.phone_addr).unwrap();
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut buf = vec![0u8; 70_000];
        while Instant::now() < deadline {
            self.sock
                .set_read_timeout(Some(deadline - Instant::now()))
                .unwrap();
            let Ok((n, _)) = self.sock.recv_from(&mut buf) else {
                break;
            };
            let answer = parse_answer(buf.get(..n).unwrap_or_default());
            if answer.call_id.as_deref() == Some(call_id.as_str()) {
                return if answer.code == Some(200) {
                    Ok(())
                } else {
                    Err(format!("OPTIONS got {:?}", answer.first_line))
                };
            }
        }
        Err("OPTIONS got no answer in 2 s".into())
    }

    /// Send one case and judge what came back; `Err` describes a violation.
    fn check(&self, case: &Case) -> Result<(), String> {
        self.sock
            .send_to(&case.bytes, self.phone_addr)
            .map_err(|e| format!("send: {e}"))?;
        let own = |a: &Answer| case.call_id.is_some() && a.call_id == case.call_id;
        let describe = |answers: &[Answer]| {
            answers
                .iter()
                .map(|a| format!("{:?} (Call-ID {:?})", a.first_line, a.call_id))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match &case.expect {
            Expect::Silence => {
                let got = self.collect(Instant::now() + QUIET, |_| false);
                if got.is_empty() {
                    Ok(())
                } else {
                    Err(format!("expected silence, got {}", describe(&got)))
                }
            }
            Expect::Reject { also } => {
                let got = self.collect(Instant::now() + QUIET, |_| false);
                let bad: Vec<_> = got
                    .into_iter()
                    .filter(|a| !matches!(a.code, Some(c) if c == 400 || also.contains(&c)))
                    .collect();
                if bad.is_empty() {
                    Ok(())
                } else {
                    Err(format!(
                        "expected 400 or nothing (or {also:?}), got {}",
                        describe(&bad)
                    ))
                }
            }
            Expect::Tolerate => {
                self.collect(Instant::now() + QUIET, |_| false);
                Ok(())
            }
            Expect::NotBadRequest => {
                let mut got = self.collect(Instant::now() + Duration::from_secs(2), |a| {
                    own(a) && a.code.is_some_and(|c| c >= 200)
                });
                got.extend(self.collect(Instant::now() + QUIET, |_| false));
                let strangers: Vec<_> = got.iter().filter(|a| !own(a)).collect();
                if !strangers.is_empty() {
                    let lines: Vec<_> = strangers.iter().map(|a| a.first_line.as_str()).collect();
                    return Err(format!(
                        "answers to something else than this message: {lines:?}"
                    ));
                }
                if got.is_empty() {
                    return Err("no answer in 2 s".into());
                }
                if got.iter().any(|a| a.code == Some(400)) {
                    return Err(format!("valid message rejected: {}", describe(&got)));
                }
                if !got.iter().any(|a| a.code.is_some_and(|c| c >= 200)) {
                    return Err(format!("no final answer: {}", describe(&got)));
                }
                Ok(())
            }
        }
    }
}

/// Start a phone with no account, run every case, then prove it is alive.
fn run_cases(cases: impl FnOnce(&str) -> Vec<Case>) {
    let port = free_udp_port();
    let phone = Phone::start(&phone_config(port, &[]));
    let mut t = Tester::new(port);
    t.canary()
        .expect("the phone must answer OPTIONS before the torture starts");
    let mut failures = Vec::new();
    for case in cases(&t.via.clone()) {
        if let Err(e) = t.check(&case) {
            failures.push(format!("{} ({}): {e}", case.name, case.source));
        }
        if let Err(e) = t.canary() {
            failures.push(format!(
                "after {} the phone stopped answering: {e}",
                case.name
            ));
            break;
        }
    }
    let status = phone.ctl(json!({"cmd": "status"}));
    assert_eq!(
        status["ok"],
        json!(true),
        "status after the torture: {status}"
    );
    assert!(
        failures.is_empty(),
        "{} violation(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn rfc4475_invalid_messages_get_400_or_nothing() {
    run_cases(torture::invalid);
}

#[test]
fn truncated_garbage_and_oversized_datagrams_get_400_or_nothing() {
    run_cases(torture::garbage);
}

#[test]
fn rfc4475_valid_messages_are_not_rejected() {
    run_cases(torture::valid);
}

/// The corpus itself: every case is distinct and the Call-IDs used to
/// attribute answers are found (needs no phone).
#[test]
fn corpus_is_well_formed() {
    let via = "127.0.0.1:5999";
    let invalid = torture::invalid(via);
    let valid = torture::valid(via);
    let garbage = torture::garbage(via);
    assert_eq!(invalid.len(), 19, "RFC 4475 §3.1.2 has 19 invalid messages");
    assert_eq!(valid.len(), 13, "RFC 4475 §3.1.1 has 13 valid messages");
    let mut names: Vec<_> = invalid
        .iter()
        .chain(&valid)
        .chain(&garbage)
        .map(|c| c.name)
        .collect();
    let n = names.len();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), n, "case names are unique");
    for case in valid.iter().filter(|c| c.expect == Expect::NotBadRequest) {
        assert!(case.call_id.is_some(), "{} has a Call-ID", case.name);
        let text = String::from_utf8_lossy(&case.bytes);
        assert!(
            text.contains(via),
            "{} answers come back to the tester",
            case.name
        );
        assert!(
            !text.contains("$VIA") && !text.contains("$CL"),
            "{} placeholders replaced",
            case.name
        );
        assert!(
            text.contains("\r\n\r\n"),
            "{} has CRLF line ends",
            case.name
        );
    }
    // Distinct branches: a phone rightly answers a repeated branch as a
    // retransmission of the earlier transaction.
    let mut branches: Vec<String> = invalid
        .iter()
        .chain(&valid)
        .filter_map(|c| {
            let text = String::from_utf8_lossy(&c.bytes).into_owned();
            let at = text.find("branch=")?;
            let rest = text.get(at..)?;
            let end = rest.find([';', '\r', ',', ' ']).unwrap_or(rest.len());
            Some(rest.get(..end)?.to_owned())
        })
        .collect();
    let n = branches.len();
    branches.sort();
    branches.dedup();
    assert_eq!(branches.len(), n, "every case has its own branch");
    // Content-Length of valid messages matches their body.
    let lws = valid.iter().find(|c| c.name == "esc01").unwrap();
    let text = String::from_utf8_lossy(&lws.bytes).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let cl: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(cl, body.len());
    let big = garbage.iter().find(|c| c.name == "all-A-65507").unwrap();
    assert_eq!(big.bytes.len(), 65_507);
}
