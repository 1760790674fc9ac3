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

/// Own `name` on the session bus (`DBUS_SESSION_BUS_ADDRESS`) and serve
/// `iface` at `path`, on a runtime thread of its own for the rest of the
/// test; returns once it is served. `what` names the service in failures.
pub fn serve<I: zbus::object_server::Interface>(
    name: &'static str,
    path: &'static str,
    iface: I,
    what: &'static str,
) {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let _conn = zbus::connection::Builder::session()
                .unwrap()
                .name(name)
                .unwrap()
                .serve_at(path, iface)
                .unwrap()
                .build()
                .await
                .unwrap_or_else(|e| panic!("{what} on the private bus: {e}"));
            ready_tx.send(()).unwrap();
            std::future::pending::<()>().await;
        });
    });
    ready_rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .unwrap_or_else(|_| panic!("{what} started"));
}
