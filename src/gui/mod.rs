//! The desktop window (egui/eframe): a face of the same core as headless
//! mode. It renders a view model built from the core's events and sends the
//! same requests as `softline ctl`; the control socket stays open, so
//! scripts and CRMs can drive the phone the agent sees.
//!
//! Like the runtime, the window reads the clock (call timers, repaint
//! schedule); the protocol core it drives does not.
#![allow(clippy::disallowed_methods)]

pub mod account_form;
pub mod app;
pub mod checkup;
pub mod dial;
pub mod link;
pub mod notify;
pub mod prefs;
pub mod settings_form;
pub mod tray;
pub mod view;

use std::sync::{Arc, Mutex};

pub use app::{GuiOptions, Page, SoftlineApp};

/// Open the window and run until it is closed.
pub fn run(opts: GuiOptions) -> Result<(), String> {
    // The core may report before eframe hands over its context: until then
    // its wake-ups have nothing to wake (the first frame reads everything).
    let ctx_slot: Arc<Mutex<Option<egui::Context>>> = Arc::new(Mutex::new(None));
    let slot = ctx_slot.clone();
    let repaint: link::Repaint = Arc::new(move || {
        if let Ok(guard) = slot.lock()
            && let Some(ctx) = guard.as_ref()
        {
            ctx.request_repaint();
        }
    });
    let mut viewport = egui::ViewportBuilder::default();
    match eframe::icon_data::from_png_bytes(include_bytes!("../../assets/icons/softline-64.png")) {
        Ok(icon) => viewport = viewport.with_icon(icon),
        Err(e) => tracing::warn!("window icon: {e}"),
    }
    let native = eframe::NativeOptions {
        viewport: viewport
            .with_title("Softline")
            .with_app_id("softline")
            .with_inner_size([720.0, 560.0])
            .with_min_inner_size([320.0, 120.0]),
        ..Default::default()
    };
    eframe::run_native(
        "Softline",
        native,
        Box::new(move |cc| {
            if let Ok(mut guard) = ctx_slot.lock() {
                *guard = Some(cc.egui_ctx.clone());
            }
            let mut app = SoftlineApp::new(opts, repaint);
            app.start_tray();
            Ok(Box::new(app::EframeApp(app)))
        }),
    )
    .map_err(|e| format!("cannot open the window: {e}"))
}
