//! A private D-Bus session bus for the tests that talk to the desktop's
//! services (notifications, the tray host, the Secret Service). Included with
//! `#[path = "support/dbus.rs"]` by those test binaries only.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// A child process killed and reaped when dropped.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A `dbus-daemon --session` of the test's own; stopped when dropped.
pub struct PrivateBus {
    /// Its address, for `DBUS_SESSION_BUS_ADDRESS` or `--address`.
    pub addr: String,
    _daemon: Killed,
}

impl PrivateBus {
    /// Start the daemon; its address is the first line it prints.
    pub fn start() -> PrivateBus {
        let mut bus = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address=1"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("dbus-daemon (Debian package dbus)");
        let mut addr = String::new();
        BufReader::new(bus.stdout.take().unwrap())
            .read_line(&mut addr)
            .unwrap();
        PrivateBus {
            addr: addr.trim().to_string(),
            _daemon: Killed(bus),
        }
    }
}
