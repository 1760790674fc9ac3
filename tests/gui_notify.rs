//! Desktop notifications reach the desktop's notification service: a
//! private D-Bus session bus (dbus-daemon) with dbus-monitor watching the
//! `org.freedesktop.Notifications` interface and a minimal notification
//! server owned by the test (the desktop's part: it records Notify and
//! CloseNotification), while the real GUI (kittest) gets a call from a
//! headless peer and answers it, then misses one: each incoming-call note is
//! closed when its call is answered or ends. Its own binary, as it points
//! the process's session bus at the private one.
#![cfg(all(unix, not(target_os = "macos")))]
#![allow(clippy::disallowed_methods)]
// For one `set_var` before any other thread of this binary reads the
// environment (see the SAFETY note below).
#![allow(unsafe_code)]

#[path = "support/dbus.rs"]
mod dbus_support;
#[path = "support/gui.rs"]
mod gui_support;
mod support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use egui_kittest::Harness;
use serde_json::json;

use dbus_support::{Killed, PrivateBus};
use gui_support::{harness, options};
use softline::api::Request;
use softline::gui::SoftlineApp;
use support::{Phone, TestDir, free_udp_port};

/// The desktop's notification service, reduced to a log: `notify ID
/// SUMMARY` and `close ID` lines.
struct Notifications {
    log: Arc<Mutex<Vec<String>>>,
    next: AtomicU32,
}

#[zbus::interface(name = "org.freedesktop.Notifications")]
impl Notifications {
    #[allow(clippy::too_many_arguments)]
    fn notify(
        &self,
        _app_name: String,
        _replaces_id: u32,
        _app_icon: String,
        summary: String,
        _body: String,
        _actions: Vec<String>,
        _hints: HashMap<String, zbus::zvariant::OwnedValue>,
        _expire_timeout: i32,
    ) -> u32 {
        let id = self.next.fetch_add(1, Ordering::SeqCst) + 1;
        self.log
            .lock()
            .unwrap()
            .push(format!("notify {id} {summary}"));
        id
    }
    fn close_notification(&self, id: u32) {
        self.log.lock().unwrap().push(format!("close {id}"));
    }
    fn get_capabilities(&self) -> Vec<String> {
        vec!["body".into()]
    }
    fn get_server_information(&self) -> (String, String, String, String) {
        ("test".into(), "softline".into(), "1".into(), "1.2".into())
    }
}

/// Own `org.freedesktop.Notifications` on the session bus, on a runtime
/// thread of its own for the whole test.
fn start_notification_server(log: Arc<Mutex<Vec<String>>>) {
    dbus_support::serve(
        "org.freedesktop.Notifications",
        "/org/freedesktop/Notifications",
        Notifications {
            log,
            next: AtomicU32::new(0),
        },
        "the notification server",
    );
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
    let bus = PrivateBus::start();
    let addr = bus.addr.clone();
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
    let notes = Arc::new(Mutex::new(Vec::<String>::new()));
    start_notification_server(notes.clone());
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
    let logged = |line: &str| notes.lock().unwrap().iter().any(|l| l == line);
    // A call the agent answers: its note goes when it is answered.
    b.cmd(json!({"cmd": "call", "target": format!("sip:agent@127.0.0.1:{pa}")}));
    step_until(&mut h, "the first incoming-call notification", &|| {
        logged("notify 1 Incoming call from softline")
    });
    let socket = h.state().options().ctl_socket.clone();
    let answered = softline::api::client::request(&socket, &Request::Answer { call: None })
        .expect("ctl answer");
    assert!(answered.ok, "{answered:?}");
    step_until(&mut h, "the first note closed on answer", &|| {
        logged("close 1")
    });
    b.cmd(json!({"cmd": "hangup"}));
    step_until(&mut h, "the call to end", &|| calls_ended(&socket));
    // A call the caller gives up on: its note goes, a missed call comes.
    b.cmd(json!({"cmd": "call", "target": format!("sip:agent@127.0.0.1:{pa}")}));
    step_until(&mut h, "the second incoming-call notification", &|| {
        logged("notify 2 Incoming call from softline")
    });
    b.cmd(json!({"cmd": "hangup"}));
    step_until(&mut h, "the missed-call notification", &|| {
        logged("notify 3 Missed call from softline")
    });
    step_until(&mut h, "the second note closed", &|| logged("close 2"));
    let text = seen.lock().unwrap().clone();
    assert!(text.contains("member=Notify"), "{text}");
    assert!(text.contains("member=CloseNotification"), "{text}");
    assert!(text.contains("\"Softline\""), "app name: {text}");
    // The missed-call note stays for the agent to read.
    assert!(!logged("close 3"), "{:?}", notes.lock().unwrap());
    h.state_mut().shutdown();
}

/// The window's phone has no live call left (ctl status).
fn calls_ended(socket: &std::path::Path) -> bool {
    softline::api::client::request(socket, &Request::Status)
        .ok()
        .and_then(|r| r.result)
        .and_then(|v| {
            let calls = v.get("calls")?.as_array()?.clone();
            Some(
                calls
                    .iter()
                    .all(|c| c.get("state").and_then(|s| s.as_str()) == Some("ended")),
            )
        })
        .unwrap_or(false)
}
