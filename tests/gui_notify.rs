//! Desktop notifications reach the desktop's notification service: a
//! private D-Bus session bus (dbus-daemon) with dbus-monitor watching the
//! `org.freedesktop.Notifications` interface, while the real GUI (kittest)
//! gets a call from a headless peer and then misses one. Its own binary, as
//! it points the process's session bus at the private one.
#![cfg(all(unix, not(target_os = "macos")))]
#![allow(clippy::disallowed_methods)]
// For one `set_var` before any other thread of this binary reads the
// environment (see the SAFETY note below).
#![allow(unsafe_code)]

#[path = "support/gui.rs"]
mod gui_support;
mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use egui_kittest::Harness;
use serde_json::json;

use gui_support::{harness, options};
use softline::gui::SoftlineApp;
use support::{Phone, TestDir, free_udp_port};

struct Killed(std::process::Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn config(port: u16, dir: &TestDir) -> String {
    format!(
        "[sip]\nlisten_udp = \"127.0.0.1:{port}\"\n\n[audio]\ninput = \"null\"\noutput = \"null\"\n\n[history]\nfile = \"{}/history.jsonl\"\n",
        dir.path.display()
    )
}

#[test]
fn incoming_and_missed_calls_are_notified_on_the_session_bus() {
    let dir = TestDir::new("gui-notify");
    // A private session bus; its address is the first line it prints.
    let mut bus = Command::new("dbus-daemon")
        .args(["--session", "--nofork", "--print-address=1"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("dbus-daemon (Debian package dbus)");
    let mut addr = String::new();
    BufReader::new(bus.stdout.take().unwrap())
        .read_line(&mut addr)
        .unwrap();
    let _bus = Killed(bus);
    let addr = addr.trim().to_string();
    // SAFETY: this binary holds this one test, and nothing has started a
    // thread that reads the environment yet (the GUI, its core and the D-Bus
    // client all start below).
    unsafe { std::env::set_var("DBUS_SESSION_BUS_ADDRESS", &addr) };
    let mut monitor = Command::new("dbus-monitor")
        .args([
            "--address",
            &addr,
            "interface='org.freedesktop.Notifications'",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("dbus-monitor");
    let seen = Arc::new(Mutex::new(String::new()));
    let out = monitor.stdout.take().unwrap();
    let sink = seen.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            sink.lock().unwrap().push_str(&line);
            sink.lock().unwrap().push('\n');
        }
    });
    let _monitor = Killed(monitor);
    std::thread::sleep(Duration::from_millis(300));

    let pa = free_udp_port();
    let path = dir.file("softline.toml");
    std::fs::write(&path, config(pa, &dir)).unwrap();
    let mut h = harness(options(&dir, path), |b| b);
    let step_until = |h: &mut Harness<'static, SoftlineApp>, what: &str, f: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !f() {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; bus saw:\n{}",
                seen.lock().unwrap()
            );
            h.step();
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let ready = |h: &Harness<'static, SoftlineApp>| h.state().vm.settings.is_some();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ready(&h) {
        assert!(Instant::now() < deadline, "the core did not start");
        h.step();
        std::thread::sleep(Duration::from_millis(20));
    }

    let b = Phone::start(
        &config(free_udp_port(), &TestDir::new("peer-notify")).replace("{dir}", "/tmp"),
    );
    b.cmd(json!({"cmd": "call", "target": format!("sip:agent@127.0.0.1:{pa}")}));
    step_until(&mut h, "the incoming-call notification", &|| {
        seen.lock().unwrap().contains("Incoming call from softline")
    });
    // The caller gives up: a missed call.
    b.cmd(json!({"cmd": "hangup"}));
    step_until(&mut h, "the missed-call notification", &|| {
        seen.lock().unwrap().contains("Missed call from softline")
    });
    let text = seen.lock().unwrap().clone();
    assert!(text.contains("member=Notify"), "{text}");
    assert!(text.contains("\"Softline\""), "app name: {text}");
    h.state_mut().shutdown();
}
