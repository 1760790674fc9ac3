//! MESSAGE and MWI with a real `softline --headless` and SIPp: the server
//! sends an unsolicited message-summary NOTIFY and a MESSAGE (status and
//! events show them), and Softline sends a MESSAGE that a SIPp UAS checks.
#![cfg(unix)]
#![allow(clippy::disallowed_methods)]

mod support;

use std::process::Command;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Phone, Sipp, account0, free_udp_port, phone_config};

const SOFTLINE: &str = env!("CARGO_BIN_EXE_softline");

/// The first event for which `pred` holds, within `timeout`.
fn wait_event(
    rx: &Receiver<Value>,
    timeout: Duration,
    pred: impl Fn(&Value) -> bool,
) -> Option<Value> {
    let end = Instant::now() + timeout;
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(v) if pred(&v) => return Some(v),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
    None
}

#[test]
fn server_notify_and_message_reach_status_and_events() {
    let mut sipp = Sipp::uas("server_notify_message.xml");
    let account = format!(
        "[[account]]\nid = \"a\"\nusername = \"1001\"\npassword = \"pw\"\ndomain = \"127.0.0.1:{}\"\nexpires = 60\nmwi = false\n",
        sipp.port
    );
    let phone = Phone::start(&phone_config(free_udp_port(), &[account]));
    let (mut child, rx) = phone.events();
    let status = phone
        .wait_for(
            |s| account0(s)["voicemail"]["new"] == 2,
            Duration::from_secs(10),
        )
        .unwrap();
    assert_eq!(
        account0(&status)["voicemail"],
        json!({"waiting": true, "new": 2, "old": 8, "urgent_new": 0, "urgent_old": 2})
    );
    let msg = wait_event(&rx, Duration::from_secs(10), |v| {
        v["event"] == "message_received"
    })
    .expect("no message_received event");
    // SIPp ends the body with CRLF; the text is passed on as sent.
    assert_eq!(msg["text"], "Please call 2001 back\r\n");
    assert_eq!(msg["content_type"], "text/plain");
    assert_eq!(msg["account"], "a");
    assert!(
        msg["from"]
            .as_str()
            .unwrap()
            .starts_with("\"Supervisor\" <sip:2001@127.0.0.1"),
        "{msg}"
    );
    let st = sipp.wait(Duration::from_secs(10));
    assert!(st.is_some_and(|s| s.success()), "{}", sipp.logs());
    // The human status shows the counts.
    let out = Command::new(SOFTLINE)
        .args(["ctl", "--socket", phone.socket.to_str().unwrap(), "status"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("voicemail: 2 new, 8 old"), "{text}");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn softline_message_is_delivered_to_a_sipp_uas() {
    let mut sipp = Sipp::uas("uas_message.xml");
    let phone = Phone::start(&phone_config(free_udp_port(), &[]));
    let (mut child, rx) = phone.events();
    std::thread::sleep(Duration::from_millis(300));
    let out = Command::new(SOFTLINE)
        .args([
            "ctl",
            "--socket",
            phone.socket.to_str().unwrap(),
            "message",
            &format!("sip:bob@127.0.0.1:{}", sipp.port),
            "Hello from Softline",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reply: Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = reply["message"].clone();
    assert!(id.is_u64(), "{reply}");
    let done = wait_event(&rx, Duration::from_secs(10), |v| {
        v["event"] == "message_status" && v["id"] == id && v["state"] != "sent"
    })
    .expect("no final message_status");
    assert_eq!(
        (done["state"].clone(), done["code"].clone()),
        (json!("delivered"), json!(200))
    );
    let st = sipp.wait(Duration::from_secs(10));
    assert!(st.is_some_and(|s| s.success()), "{}", sipp.logs());
    let _ = child.kill();
    let _ = child.wait();
}
