//! The check-up page: `softline doctor`'s checks, run on a background
//! thread, shown as a step list (pending / running / passed / failed /
//! skipped) with the evidence and the one action to take.

use std::path::Path;
use std::sync::{Arc, Mutex};

use egui::{Color32, RichText};

use crate::doctor::{CHECKS, CheckResult, Options, Status};

/// One run of the checks.
#[derive(Default)]
pub struct Checkup {
    /// Results so far, in order.
    pub results: Vec<CheckResult>,
    pub running: bool,
    /// The run finished (the results then hold every check).
    pub done: bool,
}

type Shared = Arc<Mutex<Checkup>>;

fn shared(ui: &egui::Ui) -> Shared {
    let id = egui::Id::unique("softline-checkup");
    ui.data_mut(|d| d.get_temp_mut_or_insert_with(id, Shared::default).clone())
}

/// Start a run on a background thread (the doctor never hangs: each step
/// has its time limit).
fn start(state: &Shared, ctx: &egui::Context, config_path: &Path) {
    if let Ok(mut s) = state.lock() {
        *s = Checkup {
            running: true,
            ..Checkup::default()
        };
    }
    let (worker, ctx) = (state.clone(), ctx.clone());
    let opts = Options {
        config_path: config_path.to_path_buf(),
        account: None,
    };
    let spawned = std::thread::Builder::new()
        .name("softline-checkup".into())
        .spawn(move || {
            let report = crate::doctor::run_with(&opts, &mut |c| {
                if let Ok(mut s) = worker.lock() {
                    s.results.push(c.clone());
                }
                ctx.request_repaint();
            });
            if let Ok(mut s) = worker.lock() {
                s.results = report.checks;
                s.running = false;
                s.done = true;
            }
            ctx.request_repaint();
        });
    if spawned.is_err()
        && let Ok(mut s) = state.lock()
    {
        s.running = false;
    }
}

/// The page. The first visit starts a run, unless the phone is registered:
/// the check registers the account once more and then removes that
/// registration, which on a PBX that keeps one contact per extension
/// (Asterisk `max_contacts=1`, `remove_existing=yes`) drops the phone's own
/// until its next refresh — so then it waits for the agent's click.
pub fn checkup_page(ui: &mut egui::Ui, config_path: &Path, registered: bool) {
    let state = shared(ui);
    let (running, done) = state
        .lock()
        .map(|s| (s.running, s.done))
        .unwrap_or((false, false));
    if !running && !done && !registered {
        start(&state, ui.ctx(), config_path);
    }
    if registered && !running && !done {
        ui.label(
            "The phone is registered. The check-up registers once more and then removes that \
             registration; on a PBX that keeps one contact per extension this can drop the \
             phone's registration until its next refresh.",
        );
        if ui.button("Run check-up").clicked() {
            start(&state, ui.ctx(), config_path);
        }
    }
    ui.heading("Check-up");
    ui.label("Checks the connection and audio step by step and says what to do at the first step that fails.");
    ui.horizontal(|ui| {
        if ui
            .add_enabled(!running, egui::Button::new("Run check-up again"))
            .clicked()
        {
            start(&state, ui.ctx(), config_path);
        }
        if running {
            ui.spinner();
            ui.label("Checking…");
        }
    });
    ui.separator();
    let results: Vec<CheckResult> = state.lock().map(|s| s.results.clone()).unwrap_or_default();
    egui::ScrollArea::vertical().show(ui, |ui| {
        for (i, name) in CHECKS.iter().enumerate() {
            let result = results.iter().find(|r| r.check == *name);
            let (word, color) = match result.map(|r| r.status) {
                Some(Status::Passed) => ("passed", Color32::from_rgb(0x2e, 0x9d, 0x4e)),
                Some(Status::Failed) => ("failed", Color32::from_rgb(0xd0, 0x30, 0x30)),
                Some(Status::Skipped) => ("skipped", Color32::GRAY),
                None if running && i == results.len() => {
                    ("running", Color32::from_rgb(0xe0, 0xa0, 0x20))
                }
                None => ("pending", Color32::GRAY),
            };
            ui.horizontal(|ui| {
                ui.label(
                    RichText::new(format!("{name}: {word}"))
                        .strong()
                        .color(color),
                );
            });
            if let Some(r) = result {
                if !r.evidence.is_empty() && r.status != Status::Skipped {
                    ui.label(RichText::new(&r.evidence).small().monospace());
                }
                if !r.advice.is_empty() {
                    ui.label(RichText::new(format!("What to do: {}", r.advice)).color(color));
                }
            }
            ui.add_space(4.0);
        }
    });
}
