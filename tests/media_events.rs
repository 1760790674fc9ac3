//! What the media tasks report reaches the core with a real `softline
//! --headless`: RFC 4733 digits received become `dtmf` events (method
//! `rfc4733`, in order), and a call whose far end sends no RTP is hung up
//! after `[media] inactivity_hangup_secs` with the cause in words.
#![cfg(unix)]
#![allow(clippy::disallowed_methods)]

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::{Phone, Sipp, call0, free_udp_port, phone_config};

const FIVE_S: Duration = Duration::from_secs(5);

#[test]
fn rfc4733_digits_received_are_events() {
    let (pa, pb) = (free_udp_port(), free_udp_port());
    let a = Phone::start(&phone_config(pa, &[]));
    let b = Phone::start(&phone_config(pb, &[]));
    let (mut child, rx) = b.events();
    a.cmd(json!({"cmd": "call", "target": format!("sip:b@127.0.0.1:{pb}")}));
    b.wait_for(|s| call0(s)["state"] == "ringing", FIVE_S)
        .unwrap();
    b.cmd(json!({"cmd": "answer"}));
    a.wait_for(|s| call0(s)["media"].is_object(), FIVE_S)
        .unwrap();
    let r = a.cmd(json!({"cmd": "dtmf", "digits": "15*#"}));
    assert_eq!(r["method"], json!("rfc4733"));
    let mut got = Vec::new();
    let end = Instant::now() + Duration::from_secs(8);
    while got.len() < 4 {
        let left = end
            .checked_duration_since(Instant::now())
            .expect("4 dtmf events in 8 s");
        let v = rx.recv_timeout(left).expect("events keep coming");
        if v["event"] == "dtmf" {
            assert_eq!(v["method"], json!("rfc4733"), "{v}");
            got.push(v["digit"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(got.concat(), "15*#");
    a.cmd(json!({"cmd": "hangup"}));
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn no_rtp_from_the_far_end_hangs_up() {
    // SIPp answers with SDP but sends no RTP.
    let mut uas = Sipp::uas("uas_answer.xml");
    let config = format!(
        "{}\n[media]\ninactivity_hangup_secs = 2\n",
        phone_config(free_udp_port(), &[])
    );
    let phone = Phone::start(&config);
    phone.cmd(json!({"cmd": "call", "target": format!("sip:echo@127.0.0.1:{}", uas.port)}));
    phone
        .wait_for(|s| call0(s)["state"] == "connected", FIVE_S)
        .unwrap_or_else(|e| panic!("{e}\n{}", uas.logs()));
    let status = phone
        .wait_for(|s| call0(s)["state"] == "ended", FIVE_S)
        .unwrap();
    assert_eq!(call0(&status)["cause"], json!("no media for 2 s"));
    // SIPp got our BYE and answered it.
    let st = uas.wait(FIVE_S).expect("the callee finishes");
    assert!(st.success(), "{}", uas.logs());
}
