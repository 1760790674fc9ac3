//! A keyring that never answers does not freeze the window: a private D-Bus
//! session bus with a Secret Service (owned by the test, the desktop's part)
//! whose OpenSession never returns, and the real window (kittest) with an
//! account whose password is in the keyring. The window is built and draws
//! frames at once ("Starting the phone…") while the keyring is asked on a
//! helper thread; after its 3 s the phone starts without the password. Its
//! own binary, as it points the process's session bus at the private one.
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

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use zbus::zvariant::{OwnedObjectPath, OwnedValue};

use dbus_support::PrivateBus;
use gui_support::{harness, has_text, options};
use support::{TestDir, free_udp_port};

/// A Secret Service that takes every session request and never answers.
struct Stuck {
    asked: Arc<AtomicUsize>,
}

#[zbus::interface(name = "org.freedesktop.Secret.Service")]
impl Stuck {
    async fn open_session(
        &self,
        _algorithm: String,
        _input: OwnedValue,
    ) -> (OwnedValue, OwnedObjectPath) {
        self.asked.fetch_add(1, Ordering::SeqCst);
        std::future::pending().await
    }
}

#[test]
fn a_keyring_that_never_answers_does_not_freeze_the_window() {
    let dir = TestDir::new("gui-keyring");
    let bus = PrivateBus::start();
    let addr = bus.addr.clone();
    // SAFETY: this binary holds this one test, and nothing has started a
    // thread that reads the environment yet (the service, the GUI and its
    // core all start below).
    unsafe { std::env::set_var("DBUS_SESSION_BUS_ADDRESS", &addr) };

    let asked = Arc::new(AtomicUsize::new(0));
    dbus_support::serve(
        "org.freedesktop.secrets",
        "/org/freedesktop/secrets",
        Stuck {
            asked: asked.clone(),
        },
        "the secret service",
    );

    let port = free_udp_port();
    let path = dir.file("softline.toml");
    std::fs::write(
        &path,
        format!(
            "[sip]\nlisten_udp = \"127.0.0.1:{port}\"\n\n[audio]\ninput = \"null\"\noutput = \"null\"\n\n\
             [[account]]\nid = \"desk\"\nusername = \"1001\"\ndomain = \"127.0.0.1\"\n\
             register = false\npassword_keyring = true\n"
        ),
    )
    .unwrap();
    let started = Instant::now();
    let mut h = harness(options(&dir, path), |b| b);
    // The window exists and draws while the keyring is being asked.
    let built = started.elapsed();
    assert!(
        built < Duration::from_secs(1),
        "the window waited {built:?}"
    );
    // One frame, which must not wait on the keyring, then a short pause.
    let quick_frame = |h: &mut gui_support::Gui| {
        let frame = Instant::now();
        h.step();
        assert!(
            frame.elapsed() < Duration::from_millis(500),
            "a frame waited"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while asked.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "the keyring was never asked");
        quick_frame(&mut h);
    }
    for _ in 0..10 {
        quick_frame(&mut h);
    }
    assert!(
        !h.state().core_ready(),
        "the phone started before the keyring answered"
    );
    assert!(has_text(&h, "Starting the phone"));
    // The keyring's 3 s are up: the phone starts, without the password.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !h.state().core_ready() {
        assert!(
            Instant::now() < deadline,
            "the phone did not start; core error: {:?}",
            h.state().core_error()
        );
        quick_frame(&mut h);
    }
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(3),
        "started after {waited:?}, before the keyring's time was up"
    );
    assert!(h.state().core_error().is_none());
    h.state_mut().shutdown();
}
