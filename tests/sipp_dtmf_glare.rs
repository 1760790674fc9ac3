//! Call control against SIPp with a real `softline --headless`:
//! - DTMF by SIP INFO (`[[account]] dtmf = "info"`) decoded at the far end:
//!   SIPp checks each INFO body and logs its digit, and the logged digits
//!   must be exactly the typed ones, in order;
//! - re-INVITE glare (RFC 3261 §14): SIPp's re-INVITE crosses Softline's
//!   hold re-INVITE; Softline refuses SIPp's with 491, gets 491 for its
//!   own, retries after the §14.1 delay (2.1–4 s as the Call-ID's owner,
//!   0–2 s as the callee) and the hold completes.
#![cfg(unix)]
#![allow(clippy::disallowed_methods)]

mod support;

use std::time::Duration;

use serde_json::json;
use support::{Phone, Sipp, call0, free_udp_port, phone_config};

const TEN_S: Duration = Duration::from_secs(10);

/// An account whose server is the SIPp UAS at `port` (no registration).
fn account(port: u16, dtmf: &str) -> String {
    format!(
        "[[account]]\nid = \"a\"\nusername = \"1001\"\npassword = \"pw\"\ndomain = \"127.0.0.1:{port}\"\nregister = false\nmwi = false\ndtmf = \"{dtmf}\"\n"
    )
}

#[test]
fn info_dtmf_digits_arrive_at_sipp_in_order() {
    let mut uas = Sipp::uas_with("uas_info_dtmf.xml", &["-trace_logs"]);
    let phone = Phone::start(&phone_config(free_udp_port(), &[account(uas.port, "info")]));
    phone.cmd(json!({"cmd": "call", "target": "ivr"}));
    phone
        .wait_for(|s| call0(s)["state"] == json!("connected"), TEN_S)
        .unwrap_or_else(|e| panic!("{e}\n{}", uas.logs()));
    // The callee offered telephone-event: INFO is the account's choice.
    let r = phone.cmd(json!({"cmd": "dtmf", "digits": "1234*#"}));
    assert_eq!(r["method"], json!("info"), "{r}");
    assert_eq!(r["digits"], json!("1234*#"), "{r}");
    let digits = support::poll(TEN_S, || {
        let d: String = uas
            .log_text()
            .lines()
            .filter_map(|l| l.trim_end().strip_prefix("digit "))
            .collect();
        (d.len() >= 6).then_some(d)
    })
    .unwrap_or_else(|| panic!("SIPp logged {:?}\n{}", uas.log_text(), uas.logs()));
    assert_eq!(digits, "1234*#");
    // One digit per INFO, each answered before the next.
    let trace = phone.trace_text();
    assert_eq!(trace.matches("INFO sip:").count(), 6, "{trace}");
    assert!(trace.contains("Signal=*") && trace.contains("Signal=#"));
    phone.cmd(json!({"cmd": "hangup"}));
    let status = uas.wait(TEN_S).expect("the callee finishes");
    assert!(status.success(), "uas: {status}\n{}", uas.logs());
    phone
        .wait_for(|s| call0(s)["state"] == json!("ended"), TEN_S)
        .unwrap();
}

/// Milliseconds since midnight UTC of a trace record's timestamp
/// (`2026-11-24T14:22:07.123Z`).
fn trace_ms(stamp: &str) -> Option<u64> {
    let time = stamp.split('T').nth(1)?.trim_end_matches('Z');
    let (hms, ms) = time.split_once('.')?;
    let mut parts = hms.split(':').map(|p| p.parse::<u64>().ok());
    let (h, m, s) = (parts.next()??, parts.next()??, parts.next()??);
    Some(((h * 60 + m) * 60 + s) * 1000 + ms.parse::<u64>().ok()?)
}

/// The trace's records as (ms of day, header line, message text).
fn records(trace: &str) -> Vec<(u64, String, String)> {
    trace
        .split("==== ")
        .filter_map(|r| {
            let (head, msg) = r.split_once('\n')?;
            Some((
                trace_ms(head.split(' ').next()?)?,
                head.to_owned(),
                msg.to_owned(),
            ))
        })
        .collect()
}

/// Hold the connected call of `phone` while the SIPp peer makes a
/// re-INVITE glare of it; checks both 491s and the completed hold and
/// returns how long after the 491 Softline sent its retry (ms).
fn hold_through_glare(phone: &Phone, sipp: &Sipp) -> u64 {
    phone.cmd(json!({"cmd": "hold"}));
    let held = phone
        .wait_for(|s| call0(s)["state"] == json!("held"), TEN_S)
        .unwrap_or_else(|e| panic!("{e}\n{}", sipp.logs()));
    assert_eq!(call0(&held)["remote_hold"], json!(false));

    let trace = phone.trace_text();
    let recs = records(&trace);
    let sent_invites: Vec<u64> = recs
        .iter()
        .filter(|(_, h, m)| h.contains("SENT to") && m.starts_with("INVITE sip:"))
        .map(|(t, _, _)| *t)
        .collect();
    // The hold and its retry (and, as the caller, the call's INVITE).
    assert!(sent_invites.len() >= 2, "{trace}");
    // SIPp's crossing re-INVITE was refused with 491 by Softline...
    assert!(
        recs.iter().any(|(_, h, m)| h.contains("SENT to")
            && m.starts_with("SIP/2.0 491")
            && m.contains("CSeq: 7001 INVITE")),
        "{trace}"
    );
    // ...and Softline's own got 491, after which it retried once.
    let got_491 = recs
        .iter()
        .find(|(_, h, m)| h.contains("RECEIVED from") && m.starts_with("SIP/2.0 491"))
        .map(|(t, _, _)| *t)
        .unwrap_or_else(|| panic!("no 491 received\n{trace}"));
    let retries: Vec<u64> = sent_invites.into_iter().filter(|t| *t >= got_491).collect();
    assert_eq!(retries.len(), 1, "{trace}");
    retries[0] - got_491
}

#[test]
fn reinvite_glare_as_caller_is_retried_after_2_1_to_4_s_and_hold_completes() {
    let mut uas = Sipp::uas("uas_reinvite_glare.xml");
    let phone = Phone::start(&phone_config(free_udp_port(), &[]));
    phone.cmd(json!({"cmd": "call", "target": format!("sip:bob@127.0.0.1:{}", uas.port)}));
    phone
        .wait_for(|s| call0(s)["state"] == json!("connected"), TEN_S)
        .unwrap_or_else(|e| panic!("{e}\n{}", uas.logs()));
    let delay = hold_through_glare(&phone, &uas);
    eprintln!("glare retry (Call-ID owner) after {delay} ms");
    // Timer jitter of the runtime: 50 ms over the 4 s bound.
    assert!(
        (2100..=4050).contains(&delay),
        "retry {delay} ms after the 491 (RFC 3261 §14.1: 2.1–4 s for the Call-ID's owner)"
    );
    phone.cmd(json!({"cmd": "hangup"}));
    let status = uas.wait(TEN_S).expect("the callee finishes");
    assert!(status.success(), "uas: {status}\n{}", uas.logs());
}

#[test]
fn reinvite_glare_as_callee_is_retried_within_2_s_and_hold_completes() {
    let port = free_udp_port();
    let phone = Phone::start(&phone_config(port, &[]));
    let mut uac = Sipp::client(
        "uac_reinvite_glare.xml",
        "u1",
        ([127, 0, 0, 1], port).into(),
        &["-s", "bob"],
    );
    phone
        .wait_for(|s| call0(s)["state"] == json!("ringing"), TEN_S)
        .unwrap_or_else(|e| panic!("{e}\n{}", uac.logs()));
    phone.cmd(json!({"cmd": "answer"}));
    phone
        .wait_for(|s| call0(s)["state"] == json!("connected"), TEN_S)
        .unwrap_or_else(|e| panic!("{e}\n{}", uac.logs()));
    let delay = hold_through_glare(&phone, &uac);
    eprintln!("glare retry (not the Call-ID owner) after {delay} ms");
    assert!(
        delay <= 2050,
        "retry {delay} ms after the 491 (RFC 3261 §14.1: 0–2 s when not the Call-ID's owner)"
    );
    phone.cmd(json!({"cmd": "hangup"}));
    let status = uac.wait(TEN_S).expect("the caller finishes");
    assert!(status.success(), "uac: {status}\n{}", uac.logs());
}
