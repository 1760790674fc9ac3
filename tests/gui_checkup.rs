//! The check-up page of the real GUI (egui_kittest, AccessKit labels),
//! against a real Kamailio: with a wrong password the registration fails,
//! the status bar offers the check-up, and the page shows the register
//! step failed with the doctor's "Password rejected" advice.
#![allow(clippy::disallowed_methods)]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;

use softline::gui::{GuiOptions, Page, SoftlineApp};
use support::{Kamailio, KamailioOpts, TestDir, account_toml, free_udp_port};

const TIMEOUT: Duration = Duration::from_secs(30);

fn gui(dir: &TestDir, config: &str) -> Harness<'static, SoftlineApp> {
    let config_path = dir.file("softline.toml");
    std::fs::write(&config_path, config).unwrap();
    let opts = GuiOptions {
        config_path,
        ctl_socket: dir.file("gui-ctl.sock"),
        prefs_path: None,
        dial_on_start: None,
        system_config: Some(dir.file("no-system.toml")),
        keyring: false,
    };
    let app = SoftlineApp::new(opts, Arc::new(|| {}));
    Harness::builder()
        .with_size([820.0, 900.0])
        .build_ui_state(|ui, app: &mut SoftlineApp| app.show(ui), app)
}

fn wait(
    h: &mut Harness<'static, SoftlineApp>,
    what: &str,
    pred: impl Fn(&Harness<'static, SoftlineApp>) -> bool,
) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        h.step();
        if pred(h) {
            return;
        }
        if Instant::now() > deadline {
            panic!(
                "timed out waiting for {what}; view: {:#?}; core error: {:?}",
                h.state().vm,
                h.state().core_error()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn has_text(h: &Harness<'static, SoftlineApp>, text: &str) -> bool {
    h.query_all_by_label_contains(text).next().is_some()
}

#[test]
fn wrong_password_check_up_shows_register_failed_with_password_advice() {
    let k = Kamailio::start(KamailioOpts::default());
    let dir = TestDir::new("gui-checkup");
    let port = free_udp_port();
    let config = format!(
        "[sip]\nlisten_udp = \"127.0.0.1:{port}\"\n\n[audio]\ninput = \"null\"\noutput = \"null\"\n\n[history]\nfile = \"{}/history.jsonl\"\n\n{}",
        dir.path.display(),
        account_toml("alice", "not-the-password", &k.domain(), "udp", None)
    );
    let mut h = gui(&dir, &config);
    wait(&mut h, "the registration to fail", |h| {
        h.state().vm.accounts.iter().any(|a| a.state == "failed")
    });
    // The failed registration offers the check-up.
    wait(&mut h, "the check-up button", |h| {
        has_text(h, "Run check-up")
    });
    h.get_by_label("Run check-up").click();
    h.run_steps(2);
    assert_eq!(h.state().page, Page::Checkup);
    assert!(has_text(&h, "Checks the connection and audio step by step"));
    wait(&mut h, "the register step to fail", |h| {
        has_text(h, "register: failed")
    });
    assert!(has_text(&h, "config: passed"));
    assert!(has_text(&h, "options: passed"));
    assert!(has_text(&h, "What to do: Password rejected"));
    wait(&mut h, "the run to finish", |h| {
        has_text(h, "media: skipped") && has_text(h, "Run check-up again")
    });
    assert!(has_text(&h, "nat: skipped"));
    assert!(has_text(&h, "<- 401 Unauthorized"));
    // The secret is never shown.
    assert!(!has_text(&h, "not-the-password"));
}
