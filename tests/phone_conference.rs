//! The conference and local-tone decisions of the phone core, on a fake
//! clock (no sockets): which tone is asked for, in which call, when it
//! repeats and when it stops; conference commands refused when they
//! cannot work.
#![allow(clippy::disallowed_methods)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use softline::config::Config;
use softline::phone::{Command, LocalAddrs, Output, Phone, Tone};
use softline::sip::transport::{Peer, TransportKind};

fn udp(addr: &str) -> Peer {
    Peer {
        transport: TransportKind::Udp,
        addr: addr.parse().unwrap(),
    }
}

fn phone() -> Phone {
    let text = "[sip]\nlisten_udp = \"10.0.0.1:5060\"\n";
    let config = Config::parse(text, Path::new("test.toml")).unwrap();
    let local = LocalAddrs {
        udp: Some("10.0.0.1:5060".parse().unwrap()),
        tcp: None,
    };
    Phone::new(&config, local, 5)
}

/// Drain outputs (binding RTP ports at once); returns the tones asked for.
fn drain(p: &mut Phone, now: Instant) -> Vec<(u64, Tone)> {
    let mut tones = Vec::new();
    loop {
        let mut opened = Vec::new();
        while let Some(o) = p.poll_output() {
            match o {
                Output::OpenMedia { call } => opened.push(call),
                Output::PlayTone { call, tone } => tones.push((call, tone)),
                _ => {}
            }
        }
        if opened.is_empty() {
            return tones;
        }
        for call in opened {
            p.handle_media_opened(now, call, Ok(40000 + 2 * call as u16));
        }
    }
}

fn invite(n: u32) -> String {
    format!(
        "INVITE sip:a@10.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.{n}:5060;branch=z9hG4bKcw{n}\r\nFrom: <sip:p{n}@10.0.0.{n}>;tag=t{n}\r\nTo: <sip:a@10.0.0.1>\r\nCall-ID: cw-{n}\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContact: <sip:p{n}@10.0.0.{n}:5060>\r\nContent-Length: 0\r\n\r\n"
    )
}

#[test]
fn call_waiting_tone_repeats_while_the_second_call_rings() {
    let mut p = phone();
    let now = Instant::now();
    let local: SocketAddr = "10.0.0.1:5060".parse().unwrap();
    p.handle_received(now, udp("10.0.0.2:5060"), local, invite(2).as_bytes());
    assert!(
        drain(&mut p, now).is_empty(),
        "no tone without a connected call"
    );
    p.handle_command(now, Command::Answer { call: Some(1) })
        .unwrap();
    assert!(drain(&mut p, now).is_empty());
    assert_eq!(p.status().calls[0].state, "connected");
    // A second call rings: the tone plays at once in call 1, and again
    // every 10 s, not before.
    p.handle_received(now, udp("10.0.0.3:5060"), local, invite(3).as_bytes());
    assert_eq!(drain(&mut p, now), vec![(1, Tone::CallWaiting)]);
    let t9 = now + Duration::from_secs(9);
    p.handle_timeout(t9);
    assert!(drain(&mut p, t9).is_empty());
    assert!(
        p.poll_timeout()
            .is_some_and(|t| t <= now + Duration::from_secs(10))
    );
    let t10 = now + Duration::from_secs(10);
    p.handle_timeout(t10);
    assert_eq!(drain(&mut p, t10), vec![(1, Tone::CallWaiting)]);
    // Rejected: no more tone, and no timer left for it.
    p.handle_command(
        t10,
        Command::Reject {
            call: Some(2),
            code: None,
        },
    )
    .unwrap();
    drain(&mut p, t10);
    let t30 = now + Duration::from_secs(30);
    p.handle_timeout(t30);
    assert!(drain(&mut p, t30).is_empty());
}

#[test]
fn conference_commands_refused_when_they_cannot_work() {
    let mut p = phone();
    let now = Instant::now();
    let local: SocketAddr = "10.0.0.1:5060".parse().unwrap();
    let err = |r: Result<softline::phone::Reply, softline::phone::CommandError>| {
        r.expect_err("must be refused").0
    };
    assert!(err(p.handle_command(now, Command::Split { call: None })).contains("no conference"));
    assert!(err(p.handle_command(now, Command::Conference { a: 1, b: 2 })).contains("no call 1"));
    p.handle_received(now, udp("10.0.0.2:5060"), local, invite(2).as_bytes());
    p.handle_received(now, udp("10.0.0.3:5060"), local, invite(3).as_bytes());
    drain(&mut p, now);
    p.handle_command(now, Command::Answer { call: Some(1) })
        .unwrap();
    drain(&mut p, now);
    assert!(
        err(p.handle_command(now, Command::Conference { a: 1, b: 1 })).contains("two different")
    );
    // Call 2 only rings.
    assert!(err(p.handle_command(now, Command::Conference { a: 1, b: 2 })).contains("ringing"));
    p.handle_command(now, Command::Answer { call: Some(2) })
        .unwrap();
    drain(&mut p, now);
    p.handle_command(now, Command::Conference { a: 1, b: 2 })
        .unwrap();
    let s = p.status();
    assert_eq!(
        s.calls.iter().map(|c| c.conference).collect::<Vec<_>>(),
        vec![Some(1), Some(1)]
    );
    assert!(err(p.handle_command(now, Command::Conference { a: 1, b: 2 })).contains("already"));
    assert!(
        err(p.handle_command(now, Command::Split { call: Some(7) }))
            .contains("not in the conference")
    );
    // A call ending ends the conference.
    p.handle_command(now, Command::Hangup { call: Some(2) })
        .unwrap();
    drain(&mut p, now);
    assert!(p.status().calls.iter().all(|c| c.conference.is_none()));
}
