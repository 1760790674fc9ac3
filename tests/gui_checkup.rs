//! The check-up page of the real GUI (egui_kittest, AccessKit labels),
//! against a real Kamailio: with a wrong password the registration fails,
//! the status bar offers the check-up, and the page shows the register
//! step failed with the doctor's "Password rejected" advice.
#![allow(clippy::disallowed_methods)]

#[path = "support/gui.rs"]
mod gui_support;
mod support;

use std::time::Duration;

use egui_kittest::kittest::Queryable;

use gui_support::{Gui, harness, has_text, options, wait_for};
use softline::gui::Page;
use support::{Kamailio, KamailioOpts, TestDir, account_toml, free_udp_port};

const TIMEOUT: Duration = Duration::from_secs(30);

fn gui(dir: &TestDir, config: &str) -> Gui {
    let config_path = dir.file("softline.toml");
    std::fs::write(&config_path, config).unwrap();
    harness(options(dir, config_path), |b| b.with_size([820.0, 900.0]))
}

fn wait(h: &mut Gui, what: &str, pred: impl Fn(&Gui) -> bool) {
    wait_for(h, what, TIMEOUT, pred)
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
