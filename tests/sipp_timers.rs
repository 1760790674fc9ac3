//! Reliable provisional responses and session timers with a real
//! `softline --headless` and SIPp, both ways: Softline calls a SIPp callee
//! that sends a reliable 183 and makes Softline the refresher of a 90 s
//! session (the UPDATE must come at 45 s); a SIPp caller requires 100rel
//! (PRACKs our reliable 180) and refreshes by UPDATE and re-INVITE.
#![cfg(unix)]
#![allow(clippy::disallowed_methods)]

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::{Phone, Sipp, call0, free_udp_port, phone_config, poll};

const TEN_S: Duration = Duration::from_secs(10);

#[test]
fn softline_pracks_and_refreshes_as_uac() {
    let mut uas = Sipp::uas("uas_100rel_timer.xml");
    let config = format!(
        "{}\n[phone]\nsession_expires_secs = 90\n",
        phone_config(free_udp_port(), &[])
    );
    let phone = Phone::start(&config);
    phone.cmd(json!({"cmd": "call", "target": format!("sip:bob@127.0.0.1:{}", uas.port)}));
    phone
        .wait_for(|s| call0(s)["state"] == json!("connected"), TEN_S)
        .unwrap_or_else(|e| panic!("{e}\n{}", uas.logs()));
    let connected = Instant::now();
    // The refresh (UPDATE, the callee allows it) at half of 90 s.
    let seen = poll(Duration::from_secs(55), || {
        phone
            .trace_text()
            .contains("UPDATE sip:")
            .then(Instant::now)
    })
    .unwrap_or_else(|| panic!("no UPDATE in 55 s\n{}", uas.logs()));
    let after = seen.duration_since(connected);
    assert!(
        after >= Duration::from_secs(43) && after <= Duration::from_secs(48),
        "refresh after {after:?}"
    );
    let trace = phone.trace_text();
    assert!(trace.contains("PRACK sip:"), "{trace}");
    assert!(trace.contains("RAck: 1 1 INVITE"), "{trace}");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(call0(&phone.status())["state"], json!("connected"));
    phone.cmd(json!({"cmd": "hangup"}));
    let status = uas.wait(TEN_S).expect("the callee finishes");
    assert!(status.success(), "uas: {status}\n{}", uas.logs());
}

#[test]
fn softline_sends_reliable_180_and_takes_refreshes_as_uas() {
    let port = free_udp_port();
    let phone = Phone::start(&phone_config(port, &[]));
    let mut uac = Sipp::client(
        "uac_100rel_timer.xml",
        "u1",
        ([127, 0, 0, 1], port).into(),
        &["-s", "bob"],
    );
    phone
        .wait_for(|s| call0(s)["state"] == json!("ringing"), TEN_S)
        .unwrap_or_else(|e| panic!("{e}\n{}", uac.logs()));
    // Let the PRACK settle, then answer.
    std::thread::sleep(Duration::from_millis(700));
    phone.cmd(json!({"cmd": "answer"}));
    let status = uac
        .wait(Duration::from_secs(20))
        .expect("the caller finishes");
    assert!(status.success(), "uac: {status}\n{}", uac.logs());
    let status = phone
        .wait_for(|s| call0(s)["state"] == json!("ended"), TEN_S)
        .unwrap();
    assert_eq!(call0(&status)["cause"], json!("remote party hung up"));
    let trace = phone.trace_text();
    assert!(trace.contains("Require: 100rel"), "{trace}");
    assert!(
        trace.contains("Session-Expires: 90;refresher=uac"),
        "{trace}"
    );
}
