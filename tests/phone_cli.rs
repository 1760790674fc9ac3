//! The `softline` binary from the outside, without a server: dual-stack
//! listening, `softline ctl` (status, events), `check-config` errors.
#![cfg(unix)]
#![allow(clippy::disallowed_methods)]

mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use support::{Phone, TestDir, free_udp_port, udp_options};

const SOFTLINE: &str = env!("CARGO_BIN_EXE_softline");

#[test]
fn dual_stack_listener_answers_options_over_ipv6_and_ipv4() {
    let port = free_udp_port();
    let phone = Phone::start(&format!("[sip]\nlisten_udp = \"[::]:{port}\"\n"));
    for to in [format!("[::1]:{port}"), format!("127.0.0.1:{port}")] {
        let to: SocketAddr = to.parse().unwrap();
        let line = udp_options(to, Duration::from_secs(2));
        assert_eq!(line.as_deref(), Some("SIP/2.0 200 OK"), "OPTIONS to {to}");
    }
    assert_eq!(
        phone.status()["listen"]["udp"],
        json!(format!("[::]:{port}"))
    );
}

#[test]
fn ctl_status_prints_text_and_json() {
    let port = free_udp_port();
    let phone = Phone::start(&format!("[sip]\nlisten_udp = \"127.0.0.1:{port}\"\n"));
    let socket = phone.socket.to_str().unwrap();
    let out = Command::new(SOFTLINE)
        .args(["ctl", "--socket", socket, "status"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    let out = Command::new(SOFTLINE)
        .args(["ctl", "--socket", socket, "status", "--json"])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).expect("status --json prints JSON");
    assert_eq!(v["calls"], json!([]));
    // A command the phone refuses: exit 1 with the error on stderr.
    let out = Command::new(SOFTLINE)
        .args(["ctl", "--socket", socket, "answer"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(!out.stderr.is_empty());
    // `transfer --attended-line N` looks the call up by its line first.
    let out = Command::new(SOFTLINE)
        .args([
            "ctl",
            "--socket",
            socket,
            "transfer",
            "--attended-line",
            "2",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no call on line 2"), "{err}");
}

#[test]
fn ctl_events_streams_call_changes_as_json_lines() {
    // Phone A calls phone B directly by IP; A's event stream shows the call
    // going through its states.
    let (pa, pb) = (free_udp_port(), free_udp_port());
    let a = Phone::start(&format!("[sip]\nlisten_udp = \"127.0.0.1:{pa}\"\n"));
    let b = Phone::start(&format!("[sip]\nlisten_udp = \"127.0.0.1:{pb}\"\n"));
    let mut events = Command::new(SOFTLINE)
        .args(["ctl", "--socket", a.socket.to_str().unwrap(), "events"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = events.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Let the subscription start before the call.
    std::thread::sleep(Duration::from_millis(300));
    let call = a.cmd(json!({"cmd": "call", "target": format!("sip:b@127.0.0.1:{pb}")}));
    assert!(call["call"].is_u64(), "{call}");
    b.wait_for(
        |s| s["calls"][0]["state"] == "ringing",
        Duration::from_secs(5),
    )
    .unwrap();
    b.cmd(json!({"cmd": "answer"}));
    a.wait_for(
        |s| s["calls"][0]["state"] == "connected",
        Duration::from_secs(5),
    )
    .unwrap();
    a.cmd(json!({"cmd": "hangup"}));
    b.wait_for(
        |s| s["calls"][0]["state"] == "ended",
        Duration::from_secs(5),
    )
    .unwrap();

    let mut states = Vec::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(2)) {
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line}: {e}"));
        if v["event"] == "call" {
            let s = v["state"].as_str().unwrap().to_string();
            if states.last() != Some(&s) {
                states.push(s);
            }
            if v["state"] == "ended" {
                break;
            }
        }
    }
    let _ = events.kill();
    let _ = events.wait();
    assert_eq!(
        states.first().map(String::as_str),
        Some("calling"),
        "{states:?}"
    );
    assert!(states.iter().any(|s| s == "connected"), "{states:?}");
    assert_eq!(
        states.last().map(String::as_str),
        Some("ended"),
        "{states:?}"
    );
}

#[test]
fn check_config_names_file_line_and_key() {
    let dir = TestDir::new("check-config");
    let file = dir.file("bad.toml");
    std::fs::write(&file, "[sip]\nlisten_udp = \"0.0.0.0:5060\"\n\n[[account]]\nid = \"a\"\nusername = \"1001\"\ndomain = \"pbx\"\ntransport = \"carrier-pigeon\"\n").unwrap();
    let out = Command::new(SOFTLINE)
        .arg("check-config")
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml"), "{err}");
    assert!(err.contains(":8") || err.contains("line 8"), "{err}");
    assert!(err.contains("transport"), "{err}");
    let good = dir.file("good.toml");
    std::fs::write(&good, "[sip]\nlisten_udp = \"0.0.0.0:5060\"\n").unwrap();
    let out = Command::new(SOFTLINE)
        .arg("check-config")
        .arg(&good)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The admin ranked a headset that is not there (this machine has no sound
/// card at all): the phone says it is muted instead of silently using
/// another device, and `ctl devices` answers.
#[test]
fn ranked_headset_missing_means_muted_and_said_so() {
    let port = free_udp_port();
    let phone = Phone::start(&format!(
        "[sip]\nlisten_udp = \"127.0.0.1:{port}\"\n\n[audio]\ninput = \"default\"\noutput = \"default\"\ninput_priority = [\"Jabra\"]\noutput_priority = [\"Jabra\"]\non_device_lost = \"mute\"\n"
    ));
    let status = phone
        .wait_for(
            |s| s["audio_devices"]["input"]["state"] == "muted",
            Duration::from_secs(5),
        )
        .unwrap();
    assert_eq!(
        status["audio_devices"]["output"]["state"],
        json!("muted"),
        "{status:#}"
    );
    let devices = phone.cmd(json!({"cmd": "devices"}));
    assert!(devices["devices"].is_array(), "{devices}");
    assert_eq!(devices["chosen"]["input"]["state"], json!("muted"));
}

/// A second launch (e.g. a click on a `sip:` or `tel:` link) hands its URL
/// to the phone already running on the socket, which makes the call; with
/// no URL it only asks the running phone to come forward. Neither starts a
/// second phone (without a display a second window could not even open).
#[test]
fn a_second_launch_forwards_its_link_to_the_running_phone() {
    let (pa, pb) = (free_udp_port(), free_udp_port());
    let cfg = |p: u16| {
        format!(
            "[sip]\nlisten_udp = \"127.0.0.1:{p}\"\n\n[audio]\ninput = \"null\"\noutput = \"null\"\n"
        )
    };
    let a = Phone::start(&cfg(pa));
    let b = Phone::start(&cfg(pb));
    let run = |args: &[&str]| {
        Command::new(SOFTLINE)
            .args(["--ctl-socket", a.socket.to_str().unwrap()])
            .args(args)
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .output()
            .unwrap()
    };
    let out = run(&[&format!("sip:b@127.0.0.1:{pb}")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("already running"));
    b.wait_for(
        |s| s["calls"][0]["state"] == "ringing",
        Duration::from_secs(5),
    )
    .unwrap();
    assert_eq!(a.status()["calls"][0]["direction"], "outgoing");

    let out = run(&[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("brought it to the front"));

    // A link that cannot be dialled is refused by the second launch itself.
    let out = run(&["callto:12;3"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot be dialled"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
