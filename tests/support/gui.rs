//! The real window under egui_kittest for the GUI tests: options kept apart
//! from the machine (no admin layer, no keyring), the harness, and waiting
//! and finding by label. Included by the GUI test files only
//! (`#[path = "support/gui.rs"] mod gui_support;`), so the other test
//! binaries do not build it.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use softline::gui::{GuiOptions, SoftlineApp};

use crate::support::TestDir;

pub type Gui = Harness<'static, SoftlineApp>;

/// Options for a window whose files live in `dir`: no admin layer (a
/// missing system file) and no keyring, so the machine's own stay out.
pub fn options(dir: &TestDir, config_path: PathBuf) -> GuiOptions {
    GuiOptions {
        config_path,
        ctl_socket: dir.file("gui-ctl.sock"),
        prefs_path: None,
        dial_on_start: None,
        system_config: Some(dir.file("no-system.toml")),
        keyring: false,
    }
}

/// The window in a harness of this size (builder tweaks through `build`).
pub fn harness(
    opts: GuiOptions,
    build: impl FnOnce(
        egui_kittest::HarnessBuilder<SoftlineApp>,
    ) -> egui_kittest::HarnessBuilder<SoftlineApp>,
) -> Gui {
    let app = SoftlineApp::new(opts, Arc::new(|| {}));
    build(Harness::builder()).build_ui_state(|ui, app: &mut SoftlineApp| app.show(ui), app)
}

/// Step frames until `pred` holds (the core answers on its own thread).
pub fn wait_for(h: &mut Gui, what: &str, timeout: Duration, pred: impl Fn(&Gui) -> bool) {
    let deadline = Instant::now() + timeout;
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

pub fn has_text(h: &Gui, text: &str) -> bool {
    h.query_all_by_label_contains(text).next().is_some()
}

pub fn type_into(h: &mut Gui, label: &str, text: &str) {
    h.get_by_label(label).focus();
    h.step();
    h.get_by_label(label).type_text(text);
    // One frame takes the input, the next shows what it caused.
    h.run_steps(2);
}

pub fn click(h: &mut Gui, label: &str) {
    h.get_by_label(label).click();
    h.run_steps(2);
}
