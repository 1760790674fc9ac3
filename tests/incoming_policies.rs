//! A real `softline --headless` in DND answers a SIPp caller 486, and
//! `softline ctl history` lists that call (newest first) from the history
//! file set by `[history] file`.
#![cfg(unix)]
#![allow(clippy::disallowed_methods)]

mod support;

use std::process::Command;
use std::time::Duration;

use serde_json::json;
use support::{Phone, Sipp, free_udp_port};

#[test]
fn dnd_answers_a_sipp_caller_486_and_history_lists_the_call() {
    let port = free_udp_port();
    let phone = Phone::start(&format!(
        "[sip]\nlisten_udp = \"127.0.0.1:{port}\"\n\n\
         [audio]\ninput = \"null\"\noutput = \"null\"\n\n\
         [phone]\ndnd = true\n\n\
         [history]\nfile = \"{{dir}}/calls/history.jsonl\"\n"
    ));
    assert_eq!(phone.status()["settings"]["dnd"], json!(true));
    let (status, logs) = Sipp::run_client(
        "uac_busy.xml",
        "u1",
        ([127, 0, 0, 1], port).into(),
        &["-s", "1001"],
        Duration::from_secs(15),
    );
    assert!(status.success(), "SIPp did not get 486: {status}\n{logs}");

    let history = support::poll(Duration::from_secs(5), || {
        let h = phone.cmd(json!({"cmd": "history"}));
        (h.as_array().is_some_and(|a| !a.is_empty())).then_some(h)
    })
    .expect("the call reaches the history");
    let entry = &history[0];
    assert_eq!(entry["direction"], "incoming");
    assert_eq!(entry["disposition"], "rejected");
    assert_eq!(entry["status_code"], 486);
    assert_eq!(entry["cause"], "do not disturb");
    assert!(
        entry["remote"]
            .as_str()
            .unwrap()
            .contains("sip:sipp@127.0.0.1"),
        "{entry}"
    );
    assert!(entry["start"].as_str().unwrap().ends_with('Z'), "{entry}");
    assert!(phone.dir.file("calls/history.jsonl").exists());

    // DND off by ctl: the settings change shows in the status.
    let socket = phone.socket.to_str().unwrap();
    let softline = env!("CARGO_BIN_EXE_softline");
    let out = Command::new(softline)
        .args(["ctl", "--socket", socket, "dnd", "off"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(phone.status()["settings"]["dnd"], json!(false));

    // The CLI prints the same history, as JSON lines with --json.
    let out = Command::new(softline)
        .args([
            "ctl", "--socket", socket, "history", "--json", "--limit", "5",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert_eq!(lines[0]["disposition"], "rejected");
    let out = Command::new(softline)
        .args(["ctl", "--socket", socket, "history"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("<- \"SIPp caller\" <sip:sipp@127.0.0.1"),
        "{text}"
    );
    assert!(text.contains("rejected"), "{text}");
}
