//! Lines, incoming-call policies and call history in the phone core, on a
//! fake clock: two in-memory `Phone`s (A calls B directly by IP). DND
//! 486/603, 486 when all lines are busy, busy-on-busy, 302 forwarding
//! (always, busy, no answer after N s) with the Contact checked, reject
//! codes, ignore, ring timeout, line switching with hold, hang up all, and
//! the history entries' dispositions and durations. Every scenario ends
//! with no call left in a non-ended state.
#![allow(clippy::disallowed_methods)]

#[path = "support/core.rs"]
mod core_support;

use core_support::{phone, udp};

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use softline::config::Config;
use softline::phone::{
    Command, Disposition, Event, ForwardMode, HistoryEntry, Output, Phone, Reply, Resolved,
};
use softline::sip::transport::Peer;

/// One message as delivered: direction ("A>B"/"B>A") and full text.
struct Msg {
    dir: &'static str,
    text: String,
}

impl Msg {
    fn first_line(&self) -> &str {
        self.text.lines().next().unwrap_or("")
    }
    fn header(&self, name: &str) -> Option<String> {
        self.text.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }
}

struct Pair {
    a: Phone,
    b: Phone,
    a_addr: SocketAddr,
    b_addr: SocketAddr,
    now: Instant,
    msgs: Vec<Msg>,
    ev_a: Vec<Event>,
    ev_b: Vec<Event>,
}

/// Drain outputs, "binding" every RTP port asked for at once.
fn drain(p: &mut Phone, now: Instant, events: &mut Vec<Event>) -> Vec<(Peer, Vec<u8>)> {
    let mut sent = Vec::new();
    loop {
        let mut opened = Vec::new();
        while let Some(o) = p.poll_output() {
            match o {
                Output::Transmit { peer, data, .. } => sent.push((peer, data)),
                Output::Event(e) => events.push(e),
                Output::OpenMedia { call } => opened.push(call),
                _ => {}
            }
        }
        if opened.is_empty() {
            return sent;
        }
        for call in opened {
            p.handle_media_opened(now, call, Ok(40000 + 2 * call as u16));
        }
    }
}

impl Pair {
    fn new(b_extra: &str) -> Pair {
        Pair::with(b_extra, "")
    }

    fn with(b_extra: &str, a_extra: &str) -> Pair {
        Pair {
            a: phone("10.0.0.1:5060", a_extra, 1),
            b: phone("10.0.0.2:5060", b_extra, 2),
            a_addr: "10.0.0.1:5060".parse().unwrap(),
            b_addr: "10.0.0.2:5060".parse().unwrap(),
            now: Instant::now(),
            msgs: Vec::new(),
            ev_a: Vec::new(),
            ev_b: Vec::new(),
        }
    }

    /// Deliver until both are quiet.
    fn run(&mut self) {
        for _ in 0..100 {
            let sa = drain(&mut self.a, self.now, &mut self.ev_a);
            let sb = drain(&mut self.b, self.now, &mut self.ev_b);
            if sa.is_empty() && sb.is_empty() {
                return;
            }
            for (peer, data) in sa {
                assert_eq!(peer.addr, self.b_addr);
                self.msgs.push(Msg {
                    dir: "A>B",
                    text: String::from_utf8_lossy(&data).into_owned(),
                });
                self.b
                    .handle_received(self.now, udp("10.0.0.1:5060"), self.b_addr, &data);
            }
            for (peer, data) in sb {
                assert_eq!(peer.addr, self.a_addr);
                self.msgs.push(Msg {
                    dir: "B>A",
                    text: String::from_utf8_lossy(&data).into_owned(),
                });
                self.a
                    .handle_received(self.now, udp("10.0.0.2:5060"), self.a_addr, &data);
            }
        }
        panic!("messages kept flowing");
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
        self.a.handle_timeout(self.now);
        self.b.handle_timeout(self.now);
        self.run();
    }

    /// A calls B directly by IP and the messages flow; returns A's call id.
    fn dial(&mut self) -> u64 {
        let reply = self
            .a
            .handle_command(
                self.now,
                Command::Call {
                    account: None,
                    target: "sip:bob@10.0.0.2:5060".into(),
                },
            )
            .unwrap();
        let Reply::Call { call } = reply else {
            panic!("no call id: {reply:?}")
        };
        let mut resolves = Vec::new();
        while let Some(o) = self.a.poll_output() {
            match o {
                Output::Resolve { token, .. } => resolves.push(token),
                Output::Event(e) => self.ev_a.push(e),
                Output::OpenMedia { call } => {
                    self.a
                        .handle_media_opened(self.now, call, Ok(40000 + 2 * call as u16));
                }
                _ => {}
            }
        }
        let target = Resolved {
            peer: udp("10.0.0.2:5060"),
            local_ip: "10.0.0.1".parse().unwrap(),
        };
        self.a
            .handle_resolved(self.now, resolves[0], Ok(vec![target]));
        self.run();
        call
    }

    fn responses_to_a(&self, code: u16) -> Vec<&Msg> {
        let start = format!("SIP/2.0 {code} ");
        self.msgs
            .iter()
            .filter(|m| m.dir == "B>A" && m.first_line().starts_with(&start))
            .collect()
    }

    /// Hang up whatever is left and check no call is stuck.
    fn finish(&mut self) {
        let _ = self.a.handle_command(self.now, Command::HangupAll);
        let _ = self.b.handle_command(self.now, Command::HangupAll);
        self.run();
        for _ in 0..70 {
            self.advance(Duration::from_secs(1));
        }
        for (name, p) in [("A", &self.a), ("B", &self.b)] {
            let s = p.status();
            assert!(
                s.calls.iter().all(|c| c.state == "ended"),
                "{name} has calls left: {:?}",
                s.calls
            );
        }
    }
}

fn state(p: &Phone, id: u64) -> (String, Option<u16>) {
    let s = p.status();
    let c = s.calls.iter().find(|c| c.id == id).expect("call listed");
    (c.state.to_string(), c.status_code)
}

fn only_live_call(p: &Phone) -> u64 {
    let live: Vec<u64> = p
        .status()
        .calls
        .iter()
        .filter(|c| c.state != "ended")
        .map(|c| c.id)
        .collect();
    assert_eq!(live.len(), 1, "{:?}", p.status().calls);
    live[0]
}

fn history(events: &[Event]) -> Vec<&HistoryEntry> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::History(h) => Some(h),
            _ => None,
        })
        .collect()
}

#[test]
fn dnd_answers_486_by_default_and_603_when_configured() {
    let mut t = Pair::new("[phone]\ndnd = true\n");
    let a_call = t.dial();
    assert_eq!(state(&t.a, a_call), ("ended".into(), Some(486)));
    assert!(t.b.status().calls.is_empty(), "DND creates no call");
    let h = history(&t.ev_b);
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].disposition, Disposition::Rejected);
    assert_eq!(h[0].status_code, Some(486));
    assert_eq!(h[0].cause.as_deref(), Some("do not disturb"));
    assert_eq!(h[0].remote, "sip:softline@10.0.0.1:5060");
    let ha = history(&t.ev_a);
    assert_eq!(ha[0].disposition, Disposition::Busy, "the caller saw busy");
    assert!(t.b.status().settings.dnd);
    t.finish();

    let mut t = Pair::new("[phone]\ndnd = true\ndnd_code = 603\n");
    let a_call = t.dial();
    assert_eq!(state(&t.a, a_call), ("ended".into(), Some(603)));
    assert_eq!(history(&t.ev_a)[0].disposition, Disposition::Rejected);
    // DND switched off by command: the next call rings.
    t.b.handle_command(t.now, Command::Dnd { on: false })
        .unwrap();
    assert!(t.b.poll_output().is_some_and(|o| matches!(
        o,
        Output::Event(Event::Settings(s)) if !s.dnd
    )));
    let a2 = t.dial();
    assert_eq!(state(&t.a, a2).0, "ringing");
    t.finish();
}

#[test]
fn all_lines_busy_gets_486_and_no_outgoing_call_starts() {
    let mut t = Pair::new("[phone]\nlines = 1\n");
    let first = t.dial();
    assert_eq!(state(&t.a, first).0, "ringing");
    let b1 = only_live_call(&t.b);
    assert_eq!(t.b.status().calls[0].line, Some(1));
    let second = t.dial();
    assert_eq!(state(&t.a, second), ("ended".into(), Some(486)));
    let h = history(&t.ev_b);
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].disposition, Disposition::Busy);
    assert!(h[0].cause.as_deref().unwrap().contains("all 1 lines"));
    assert_eq!(state(&t.b, b1).0, "ringing", "the first call still rings");
    t.finish();

    // A with one line: a second outgoing call is refused before any INVITE.
    let mut t = Pair::with("", "[phone]\nlines = 1\n");
    t.dial();
    let invites = t.msgs.len();
    let err =
        t.a.handle_command(
            t.now,
            Command::Call {
                account: None,
                target: "sip:carol@10.0.0.2:5060".into(),
            },
        )
        .unwrap_err();
    t.run();
    assert_eq!(t.msgs.len(), invites, "nothing sent");
    assert!(err.0.contains("all 1 lines are busy"), "{err}");
    t.finish();
}

#[test]
fn busy_on_busy_rejects_a_second_call_while_one_is_connected() {
    let mut t = Pair::new("[phone]\nbusy_on_busy = true\n");
    let first = t.dial();
    t.b.handle_command(t.now, Command::Answer { call: None })
        .unwrap();
    t.run();
    assert_eq!(state(&t.a, first).0, "connected");
    let second = t.dial();
    assert_eq!(state(&t.a, second), ("ended".into(), Some(486)));
    let h = history(&t.ev_b);
    assert_eq!(h[0].disposition, Disposition::Busy);
    assert!(h[0].cause.as_deref().unwrap().contains("busy-on-busy"));
    t.finish();

    // Without busy_on_busy the second call rings as call waiting.
    let mut t = Pair::new("");
    t.dial();
    t.b.handle_command(t.now, Command::Answer { call: None })
        .unwrap();
    t.run();
    let second = t.dial();
    assert_eq!(state(&t.a, second).0, "ringing");
    let lines: Vec<Option<u8>> = t.b.status().calls.iter().map(|c| c.line).collect();
    assert_eq!(lines, [Some(1), Some(2)]);
    t.finish();
}

const B_ACCOUNT: &str =
    "[[account]]\nid = \"b\"\nusername = \"bob\"\ndomain = \"pbx.example.com\"\nregister = false\n";

#[test]
fn forward_always_answers_302_with_the_target_as_contact() {
    let mut t = Pair::new(&format!("[phone]\nforward_always = \"2000\"\n{B_ACCOUNT}"));
    assert_eq!(
        t.b.status().settings.forward_always.as_deref(),
        Some("sip:2000@pbx.example.com"),
        "a number becomes a URI on the account's domain"
    );
    let a_call = t.dial();
    assert_eq!(state(&t.a, a_call), ("ended".into(), Some(302)));
    let r = t.responses_to_a(302);
    assert_eq!(r.len(), 1);
    assert_eq!(
        r[0].header("Contact").as_deref(),
        Some("<sip:2000@pbx.example.com>")
    );
    assert!(
        r[0].header("To").unwrap().contains(";tag="),
        "a final response carries a To tag"
    );
    let h = history(&t.ev_b);
    assert_eq!(h[0].disposition, Disposition::Forwarded);
    assert_eq!(h[0].account.as_deref(), Some("b"));
    // Switched off by command: calls ring again.
    t.b.handle_command(
        t.now,
        Command::Forward {
            mode: ForwardMode::Off,
            target: None,
        },
    )
    .unwrap();
    let a2 = t.dial();
    assert_eq!(state(&t.a, a2).0, "ringing");
    t.finish();
}

#[test]
fn forward_on_busy_only_when_busy() {
    let mut t = Pair::new("[phone]\nlines = 1\n");
    t.b.handle_command(
        t.now,
        Command::Forward {
            mode: ForwardMode::Busy,
            target: Some("sip:voicemail@10.0.0.9".into()),
        },
    )
    .unwrap();
    let first = t.dial();
    assert_eq!(state(&t.a, first).0, "ringing", "not busy: it rings");
    let second = t.dial();
    assert_eq!(state(&t.a, second), ("ended".into(), Some(302)));
    let r = t.responses_to_a(302);
    assert_eq!(
        r[0].header("Contact").as_deref(),
        Some("<sip:voicemail@10.0.0.9>")
    );
    assert_eq!(history(&t.ev_b)[0].disposition, Disposition::Forwarded);
    // An unusable target is refused by the command.
    let err =
        t.b.handle_command(
            t.now,
            Command::Forward {
                mode: ForwardMode::Busy,
                target: Some("2000".into()),
            },
        )
        .unwrap_err();
    assert!(err.0.contains("no account"), "{err}");
    t.finish();
}

#[test]
fn forward_on_no_answer_after_n_seconds_and_ring_timeout() {
    let mut t = Pair::new(
        "[phone]\nforward_no_answer = \"sip:desk@10.0.0.7\"\nforward_no_answer_secs = 5\n",
    );
    let a_call = t.dial();
    t.advance(Duration::from_millis(4900));
    assert_eq!(state(&t.a, a_call).0, "ringing");
    assert!(t.responses_to_a(302).is_empty());
    t.advance(Duration::from_millis(100));
    assert_eq!(state(&t.a, a_call), ("ended".into(), Some(302)));
    let r = t.responses_to_a(302);
    assert_eq!(
        r[0].header("Contact").as_deref(),
        Some("<sip:desk@10.0.0.7>")
    );
    let h = history(&t.ev_b);
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].disposition, Disposition::Forwarded);
    assert_eq!(h[0].ring_secs, 5.0);
    assert_eq!(h[0].line, Some(1));
    t.finish();

    // Ring timeout: 480 after 10 s, recorded as missed.
    let mut t = Pair::new("[phone]\nring_timeout_secs = 10\n");
    let a_call = t.dial();
    t.advance(Duration::from_secs(9));
    assert_eq!(state(&t.a, a_call).0, "ringing");
    t.advance(Duration::from_secs(1));
    assert_eq!(state(&t.a, a_call), ("ended".into(), Some(480)));
    let h = history(&t.ev_b);
    assert_eq!(h[0].disposition, Disposition::Missed);
    assert_eq!(h[0].ring_secs, 10.0);
    t.finish();
}

#[test]
fn reject_with_486_or_603_and_refuse_other_codes() {
    for (code, want) in [(None, 486), (Some(603), 603)] {
        let mut t = Pair::new("");
        let a_call = t.dial();
        let err =
            t.b.handle_command(
                t.now,
                Command::Reject {
                    call: None,
                    code: Some(500),
                },
            )
            .unwrap_err();
        assert!(err.0.contains("486"), "{err}");
        t.b.handle_command(t.now, Command::Reject { call: None, code })
            .unwrap();
        t.run();
        assert_eq!(state(&t.a, a_call), ("ended".into(), Some(want)));
        let h = history(&t.ev_b);
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].disposition, Disposition::Rejected);
        assert_eq!(h[0].status_code, Some(want));
        t.finish();
    }
}

#[test]
fn ignored_call_keeps_ringing_until_the_caller_cancels_and_is_missed() {
    let mut t = Pair::new("");
    let a_call = t.dial();
    let b_call = only_live_call(&t.b);
    t.b.handle_command(t.now, Command::Ignore { call: None })
        .unwrap();
    t.run();
    let s = t.b.status();
    assert!(s.calls[0].ignored);
    assert_eq!(s.calls[0].state, "ringing");
    assert!(t.ev_b.iter().any(|e| matches!(
        e,
        Event::Call(c) if c.id == b_call && c.ignored && c.state == "ringing"
    )));
    assert!(
        t.msgs
            .iter()
            .all(|m| !m.first_line().starts_with("SIP/2.0 4"))
    );
    t.advance(Duration::from_secs(3));
    assert_eq!(state(&t.a, a_call).0, "ringing", "the caller still rings");
    t.a.handle_command(t.now, Command::Hangup { call: None })
        .unwrap();
    t.run();
    assert_eq!(state(&t.b, b_call), ("ended".into(), Some(487)));
    let h = history(&t.ev_b);
    assert_eq!(h[0].disposition, Disposition::Missed);
    assert_eq!(h[0].ring_secs, 3.0);
    assert_eq!(history(&t.ev_a)[0].disposition, Disposition::Cancelled);
    t.finish();
}

#[test]
fn line_switch_holds_the_other_call_and_resumes_the_target() {
    let mut t = Pair::new("");
    let c1 = t.dial();
    let b1 = only_live_call(&t.b);
    t.b.handle_command(t.now, Command::Answer { call: Some(b1) })
        .unwrap();
    t.run();
    let c2 = t.dial();
    let b2 = t.b.status().calls.iter().map(|c| c.id).max().unwrap();
    t.b.handle_command(t.now, Command::Answer { call: Some(b2) })
        .unwrap();
    t.run();
    let lines: Vec<(u64, Option<u8>)> = t.a.status().calls.iter().map(|c| (c.id, c.line)).collect();
    assert_eq!(lines, [(c1, Some(1)), (c2, Some(2))]);
    let before = t.msgs.len();
    t.a.handle_command(t.now, Command::Line { line: 2 })
        .unwrap();
    t.run();
    assert_eq!(state(&t.a, c1).0, "held");
    assert_eq!(state(&t.a, c2).0, "connected");
    let reinvites: Vec<&Msg> = t.msgs[before..]
        .iter()
        .filter(|m| m.dir == "A>B" && m.first_line().starts_with("INVITE "))
        .collect();
    assert_eq!(reinvites.len(), 1);
    assert!(reinvites[0].text.contains("a=sendonly"));
    assert_eq!(t.a.status().settings.active_line, Some(2));
    // Back to line 1: line 2 is held, line 1 resumed.
    let before = t.msgs.len();
    t.a.handle_command(t.now, Command::Line { line: 1 })
        .unwrap();
    t.run();
    assert_eq!(state(&t.a, c1).0, "connected");
    assert_eq!(state(&t.a, c2).0, "held");
    let bodies: Vec<bool> = t.msgs[before..]
        .iter()
        .filter(|m| m.dir == "A>B" && m.first_line().starts_with("INVITE "))
        .map(|m| m.text.contains("a=sendonly"))
        .collect();
    assert_eq!(bodies.len(), 2);
    assert!(bodies.contains(&true) && bodies.contains(&false));
    assert!(
        t.a.handle_command(t.now, Command::Line { line: 9 })
            .is_err()
    );
    // Hang up all: both calls end, each recorded as answered.
    t.a.handle_command(t.now, Command::HangupAll).unwrap();
    t.run();
    assert_eq!(state(&t.a, c1).0, "ended");
    assert_eq!(state(&t.a, c2).0, "ended");
    let h = history(&t.ev_a);
    assert_eq!(h.len(), 2);
    assert!(h.iter().all(|e| e.disposition == Disposition::Answered));
    t.finish();
}

#[test]
fn history_entries_carry_ring_and_talk_time() {
    let mut t = Pair::new("");
    let a_call = t.dial();
    t.advance(Duration::from_secs(3));
    t.b.handle_command(t.now, Command::Answer { call: None })
        .unwrap();
    t.run();
    t.advance(Duration::from_secs(10));
    t.a.handle_command(t.now, Command::Hangup { call: Some(a_call) })
        .unwrap();
    t.run();
    for (events, dir, remote) in [
        (&t.ev_a, "outgoing", "sip:bob@10.0.0.2:5060"),
        (&t.ev_b, "incoming", "sip:softline@10.0.0.1:5060"),
    ] {
        let h = history(events);
        assert_eq!(h.len(), 1, "{dir}");
        let e = h[0];
        assert_eq!(serde_json::to_value(e.direction).unwrap(), dir);
        assert_eq!(e.remote, remote);
        assert_eq!(e.disposition, Disposition::Answered);
        assert_eq!(e.line, Some(1));
        assert_eq!((e.ring_secs, e.talk_secs), (3.0, 10.0), "{dir}");
        assert_eq!(e.status_code, Some(200));
    }
    // A busy outgoing call: busy at A, rejected at B.
    let a2 = t.dial();
    t.b.handle_command(t.now, Command::Hangup { call: None })
        .unwrap();
    t.run();
    assert_eq!(state(&t.a, a2), ("ended".into(), Some(486)));
    assert_eq!(history(&t.ev_a)[1].disposition, Disposition::Busy);
    assert_eq!(history(&t.ev_b)[1].disposition, Disposition::Rejected);
    t.finish();
}

#[test]
fn bad_phone_config_names_key_and_line() {
    for (text, key) in [
        ("[phone]\nlines = 0\n", "phone.lines"),
        ("[phone]\nlines = 33\n", "phone.lines"),
        ("[phone]\ndnd_code = 500\n", "phone.dnd_code"),
        ("[history]\nmax_entries = 0\n", "history.max_entries"),
    ] {
        let err = Config::parse(text, Path::new("x.toml")).unwrap_err();
        assert_eq!(err.key.as_deref(), Some(key), "{text}");
        assert_eq!(err.line, Some(2), "{text}");
        assert_eq!(err.file, Path::new("x.toml"));
    }
}
