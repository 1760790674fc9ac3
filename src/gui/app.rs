//! The window: renders the [`ViewModel`] and turns clicks and keys into
//! requests to the core. It holds no protocol logic: what a call can do is
//! read off the state the core reports.

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use egui::{Color32, Key, KeyboardShortcut, Modifiers, RichText};
use serde_json::Value;

use super::account_form::{AccountForm, write_user_config};
use super::dial;
use super::link::{CoreLink, FromCore, Purpose, Repaint};
use super::prefs::{GuiPrefs, ThemeChoice};
use super::settings_form::{ALL_CODECS, SettingsForm};
use super::view::{CallView, Light, ViewModel, account_words};
use crate::api::Request;
use crate::config::{Config, LayerPaths};
use crate::runtime::driver::{CoreHandle, HeadlessOptions, spawn_core};

/// How often the window refreshes call figures (timer, codec, loss) while a
/// call is up. With no call, nothing is polled.
const LIVE_REFRESH: Duration = Duration::from_secs(1);

/// Keyboard shortcuts (also listed in docs/gui.md and the Help page).
pub const SHORTCUTS: &[(&str, KeyboardShortcut)] = &[
    (
        "Answer the ringing call",
        KeyboardShortcut::new(Modifiers::CTRL, Key::Enter),
    ),
    (
        "Hang up / reject the call in front",
        KeyboardShortcut::new(Modifiers::CTRL, Key::E),
    ),
    (
        "Hold / resume the call in front",
        KeyboardShortcut::new(Modifiers::CTRL, Key::H),
    ),
    (
        "Mute / unmute the microphone",
        KeyboardShortcut::new(Modifiers::CTRL, Key::M),
    ),
    (
        "Focus the dial field",
        KeyboardShortcut::new(Modifiers::CTRL, Key::L),
    ),
];

/// Which page the window shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    Phone,
    History,
    Messages,
    Account,
    Settings,
    Help,
    Checkup,
}

/// Where the window finds its config and its core.
#[derive(Debug, Clone)]
pub struct GuiOptions {
    /// The user's config file (the one the account form writes).
    pub config_path: PathBuf,
    pub ctl_socket: PathBuf,
    /// Where the GUI's own preferences (theme, scale) live; `None`: not saved.
    pub prefs_path: Option<PathBuf>,
    /// A number or link to call once the phone is up (`softline sip:600@pbx`).
    pub dial_on_start: Option<String>,
    /// The admin's system file instead of the platform's (tests; `None`:
    /// the platform's file or `$SOFTLINE_SYSTEM_CONFIG`).
    pub system_config: Option<PathBuf>,
    /// Keep typed passwords in the OS keyring (the file only says
    /// `password_keyring = true`); tests turn it off to leave the
    /// developer's keyring alone.
    pub keyring: bool,
}

impl GuiOptions {
    /// The config layers the window reads (and writes the user's part of).
    pub fn layers(&self) -> LayerPaths {
        let mut layers = LayerPaths::discover(self.config_path.clone());
        if let Some(system) = &self.system_config {
            layers.system = Some(system.clone());
        }
        layers
    }
}

/// The Softline window.
pub struct SoftlineApp {
    opts: GuiOptions,
    repaint: Repaint,
    link: Option<CoreLink>,
    /// A core being (re)started in the background.
    starting: Option<Receiver<Result<CoreHandle, String>>>,
    pub vm: ViewModel,
    pub page: Page,
    config: Option<Config>,
    /// Why the phone is not running (bad config, port in use).
    core_error: Option<String>,
    pub dial: String,
    dial_error: Option<String>,
    last_dialled: Option<String>,
    focus_dial: bool,
    pub form: AccountForm,
    form_message: Option<String>,
    prefs: GuiPrefs,
    prefs_applied: bool,
    devices: Option<Value>,
    keypad_open: bool,
    /// The blind-transfer target being typed.
    transfer_to: String,
    /// The agent pressed Connect: show every field's problem, even empty ones.
    form_tried: bool,
    /// Status refresh schedule while calls are live.
    next_refresh: Option<Instant>,
    /// The ringing call the window already asked attention for.
    alerted: Option<u64>,
    /// Set when the agent chose Compact from the menu.
    compact: bool,
    /// Call history as the core's store returned it (newest first).
    history: Vec<Value>,
    /// The History page has asked for the list since it was last shown.
    history_requested: bool,
    pub message_to: String,
    pub message_text: String,
    /// The devices/codecs settings being edited (from the config).
    pub settings: Option<SettingsForm>,
    settings_message: Option<String>,
    devices_requested: bool,
    /// The built-in audio test runs until then (its meters are refreshed).
    audio_test_until: Option<Instant>,
    /// The first frame has been drawn (logged once, for the start-up benchmark).
    drawn: bool,
    /// The tray icon, once started (`start_tray`).
    tray: Option<super::tray::Tray>,
    /// The window is shown (not hidden in the tray).
    window_visible: bool,
    /// Quit was chosen in the tray: let the close through.
    quitting: bool,
    /// Calls missed since the agent last looked (tray count).
    missed_unseen: usize,
    /// Incoming-call notifications on screen, to close with their calls.
    notes: super::notify::Shown,
    /// The keyring's passwords being read on a helper thread (start-up).
    keyring_read: Option<Receiver<Config>>,
}

impl SoftlineApp {
    /// Load the config and start the core. A config that does not load is
    /// shown in the window (with file, line and key), not a crash; a missing
    /// user file means a first run: the account form.
    pub fn new(opts: GuiOptions, repaint: Repaint) -> SoftlineApp {
        let prefs = opts
            .prefs_path
            .as_deref()
            .map(GuiPrefs::load)
            .unwrap_or_default();
        let mut app = SoftlineApp {
            opts,
            repaint,
            link: None,
            starting: None,
            vm: ViewModel::default(),
            page: Page::Phone,
            config: None,
            core_error: None,
            dial: String::new(),
            dial_error: None,
            last_dialled: None,
            focus_dial: true,
            form: AccountForm::new(),
            form_message: None,
            prefs,
            prefs_applied: false,
            devices: None,
            keypad_open: false,
            form_tried: false,
            transfer_to: String::new(),
            next_refresh: None,
            alerted: None,
            compact: false,
            drawn: false,
            tray: None,
            window_visible: true,
            quitting: false,
            missed_unseen: 0,
            notes: super::notify::Shown::default(),
            keyring_read: None,
            audio_test_until: None,
            settings: None,
            settings_message: None,
            devices_requested: false,
            history: Vec::new(),
            history_requested: false,
            message_to: String::new(),
            message_text: String::new(),
        };
        // The admin's layers (system file, provisioned profile) under the
        // user's file; a missing user file is a first run: no account yet,
        // but the phone still works for direct IP calls and the audio test.
        // The files only: the keyring (a D-Bus round trip that can take
        // seconds) is read on a helper thread, see `read_keyring`.
        let config = match app.opts.layers().load_files(false) {
            Ok(c) => {
                for w in &c.provenance.warnings {
                    tracing::warn!("config: {w}");
                }
                Some(c)
            }
            Err(e) => {
                app.core_error = Some(format!("The configuration has an error: {e}"));
                None
            }
        };
        if let Some(c) = config {
            if c.accounts.is_empty() {
                app.page = Page::Account;
            }
            app.form = AccountForm::from_config(&c);
            app.settings = Some(SettingsForm::from_config(&c));
            app.launch(c);
        }
        app
    }

    /// Start the phone with `config`, reading the keyring first (on a
    /// helper thread) when an account still lacks its password.
    fn launch(&mut self, config: Config) {
        self.config = Some(config.clone());
        if config
            .accounts
            .iter()
            .any(|a| a.password_keyring && a.password.is_empty())
        {
            self.read_keyring(config);
        } else {
            self.start_core(config);
        }
    }

    /// Fill the keyring's passwords in on a helper thread (giving up after
    /// 3 s, like storing) and start the phone when done, so the window never
    /// waits on the keyring.
    fn read_keyring(&mut self, config: Config) {
        let (tx, rx) = channel();
        let wake = self.repaint.clone();
        let spawned = std::thread::Builder::new()
            .name("softline-keyring".into())
            .spawn(move || {
                let (inner_tx, inner_rx) = channel();
                let mut filled = config.clone();
                let reader = std::thread::Builder::new()
                    .name("softline-keyring-read".into())
                    .spawn(move || {
                        let warnings = crate::config::secrets::fill_from_keyring(&mut filled);
                        filled.provenance.warnings.extend(warnings);
                        let _ = inner_tx.send(filled);
                    });
                let config = match reader
                    .ok()
                    .and_then(|_| inner_rx.recv_timeout(Duration::from_secs(3)).ok())
                {
                    Some(c) => c,
                    None => {
                        let mut c = config;
                        c.provenance
                            .warnings
                            .push("the keyring did not answer: accounts without a password".into());
                        c
                    }
                };
                let _ = tx.send(config);
                wake();
            });
        match spawned {
            Ok(_) => self.keyring_read = Some(rx),
            Err(e) => {
                tracing::warn!("cannot read the keyring: {e}");
                if let Some(c) = self.config.clone() {
                    self.start_core(c);
                }
            }
        }
    }

    /// The keyring read is done: start the phone with its passwords.
    fn poll_keyring(&mut self) {
        let Some(rx) = &self.keyring_read else { return };
        let config = match rx.try_recv() {
            Ok(c) => c,
            Err(std::sync::mpsc::TryRecvError::Empty) => return,
            Err(std::sync::mpsc::TryRecvError::Disconnected) => match self.config.clone() {
                Some(c) => c,
                None => return,
            },
        };
        self.keyring_read = None;
        for w in &config.provenance.warnings {
            tracing::warn!("config: {w}");
        }
        self.config = Some(config.clone());
        self.start_core(config);
    }

    /// Put the tray icon up (the real window does; tests that look at the
    /// tray call it themselves). Linux only for now; elsewhere inert.
    pub fn start_tray(&mut self) {
        if self.tray.is_none() {
            self.tray = Some(super::tray::Tray::start(self.repaint.clone()));
        }
    }

    /// A tray host shows our icon.
    pub fn tray_host_present(&self) -> bool {
        self.tray
            .as_ref()
            .is_some_and(super::tray::Tray::host_present)
    }

    /// Closing the window hides it in the tray (the agent's choice, else
    /// whether a tray host shows our icon).
    pub fn close_to_tray(&self) -> bool {
        self.prefs
            .close_to_tray
            .unwrap_or_else(|| self.tray_host_present())
            && self.tray_host_present()
    }

    fn set_window_visible(&mut self, ctx: &egui::Context, visible: bool) {
        self.window_visible = visible;
        ctx.send_viewport_cmd(egui::ViewportCommand::Visible(visible));
        if visible {
            self.missed_unseen = 0;
            ctx.send_viewport_cmd(egui::ViewportCommand::Minimized(false));
            ctx.send_viewport_cmd(egui::ViewportCommand::Focus);
        }
    }

    /// The tray's picks in, the state it shows out; the window's close
    /// hides it when closing to the tray.
    fn tray_frame(&mut self, ctx: &egui::Context) {
        if ctx.input(|i| i.viewport().close_requested()) && !self.quitting && self.close_to_tray() {
            ctx.send_viewport_cmd(egui::ViewportCommand::CancelClose);
            self.set_window_visible(ctx, false);
        }
        if self.page == Page::History && self.window_visible {
            self.missed_unseen = 0;
        }
        let Some(tray) = &self.tray else { return };
        for action in tray.actions() {
            match action {
                super::tray::TrayAction::ToggleWindow => {
                    let show = !self.window_visible;
                    self.set_window_visible(ctx, show);
                }
                super::tray::TrayAction::Dnd(on) => {
                    self.act("Do not disturb", Request::Dnd { on });
                }
                super::tray::TrayAction::Quit => {
                    self.quitting = true;
                    ctx.send_viewport_cmd(egui::ViewportCommand::Close);
                }
            }
        }
        let state = super::tray::tray_state(&self.vm, self.missed_unseen, self.window_visible);
        if let Some(tray) = &mut self.tray {
            tray.update(state);
        }
    }

    /// Close the incoming-call notes of calls that no longer ring here.
    fn close_stale_notes(&mut self) {
        for id in self.notes.calls() {
            let ringing = self
                .vm
                .calls
                .iter()
                .any(|c| c.id == id && c.is_ringing_in() && !c.ignored);
            if !ringing {
                self.notes.close(id);
            }
        }
    }

    /// Start a core with this config on a helper thread; the window picks it
    /// up when it is ready (see `poll_core_start`).
    fn start_core(&mut self, config: Config) {
        // A newer config (the agent's Connect) supersedes a keyring read
        // still under way at start-up.
        self.keyring_read = None;
        if self.starting.is_some() {
            // One restart at a time (the buttons are disabled meanwhile).
            return;
        }
        // Ids restart with a new core: what the window knew of the old
        // one's calls and messages must not match the new one's.
        self.vm.calls.clear();
        self.vm.selected = None;
        for m in &mut self.vm.messages {
            if m.id.take().is_some() && m.status == "sent" {
                m.status = "sent (the phone restarted before delivery was known)".into();
            }
        }
        let (tx, rx) = channel();
        let opts = HeadlessOptions {
            config,
            ctl_socket: self.opts.ctl_socket.clone(),
        };
        let wake = self.repaint.clone();
        let old = self.link.take();
        let spawned = std::thread::Builder::new()
            .name("softline-start".into())
            .spawn(move || {
                if let Some(old) = old
                    && let Err(e) = old.shutdown_blocking()
                {
                    tracing::warn!("the previous phone stopped with: {e}");
                }
                // A core whose window has gone (or started another one)
                // must not run on unseen, holding the account and the socket.
                if let Err(std::sync::mpsc::SendError(Ok(orphan))) = tx.send(spawn_core(opts)) {
                    let _ = orphan.shutdown();
                }
                wake();
            });
        match spawned {
            Ok(_) => self.starting = Some(rx),
            Err(e) => self.core_error = Some(format!("cannot start the phone: {e}")),
        }
    }

    fn poll_core_start(&mut self) {
        let Some(rx) = &self.starting else { return };
        match rx.try_recv() {
            Ok(Ok(handle)) => {
                self.starting = None;
                self.core_error = None;
                let link = CoreLink::new(handle, self.repaint.clone());
                link.send(Purpose::Status, Request::Status);
                self.link = Some(link);
            }
            Ok(Err(e)) => {
                self.starting = None;
                self.core_error = Some(format!("The phone could not start: {e}"));
            }
            Err(std::sync::mpsc::TryRecvError::Empty) => {}
            Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                self.starting = None;
                self.core_error = Some("The phone could not start.".into());
            }
        }
    }

    /// Send a user action; a refusal lands in the banner.
    fn act(&self, label: &str, request: Request) {
        if let Some(link) = &self.link {
            link.send(Purpose::Action(label.to_string()), request);
        }
    }

    /// Apply what the core sent since the last frame.
    fn drain_core(&mut self, now: Instant) {
        let Some(link) = &self.link else { return };
        let mut want_status = false;
        for msg in link.drain() {
            match msg {
                FromCore::Event(line) => {
                    self.vm.apply_event(&line, now);
                    // Media figures and mute state come with the status.
                    want_status |= line.contains("\"event\":\"call\"");
                }
                FromCore::Lagged => want_status = true,
                FromCore::Reply { what, reply } => match what {
                    Purpose::Status => {
                        if let Some(v) = reply.result.filter(|_| reply.ok) {
                            self.vm.apply_status(&v, now);
                        }
                    }
                    Purpose::Devices => self.devices = reply.result,
                    Purpose::History => match reply.result.filter(|_| reply.ok) {
                        Some(Value::Array(list)) => self.history = list,
                        _ => {
                            let why = reply.error.unwrap_or_else(|| "no answer".into());
                            self.vm.banner = Some(format!("History: {why}"));
                        }
                    },
                    Purpose::Message(i) => {
                        let status = if reply.ok {
                            let id = reply
                                .result
                                .as_ref()
                                .and_then(|r| r.get("message"))
                                .and_then(Value::as_u64);
                            if let Some(m) = self.vm.messages.get_mut(i) {
                                m.id = id;
                            }
                            None
                        } else {
                            Some(format!(
                                "failed: {}",
                                reply.error.unwrap_or_else(|| "refused".into())
                            ))
                        };
                        if let (Some(st), Some(m)) = (status, self.vm.messages.get_mut(i)) {
                            m.status = st;
                        }
                    }
                    Purpose::Action(label) => {
                        if !reply.ok {
                            let why = reply.error.unwrap_or_else(|| "failed".into());
                            self.vm.banner = Some(format!("{label}: {why}"));
                        }
                    }
                },
            }
        }
        if want_status {
            link.send(Purpose::Status, Request::Status);
        }
        if link.core_stopped() && self.starting.is_none() && self.core_error.is_none() {
            self.core_error = Some("The phone has stopped.".into());
            // Its calls are gone with it: no alert or timer may stay.
            for c in &mut self.vm.calls {
                if c.ended_at.is_none() {
                    c.ended_at = Some(now);
                    c.state = "ended".into();
                    c.cause = Some("the phone stopped".into());
                }
            }
        }
    }

    /// The work of a frame that draws nothing: the core's news, the tray,
    /// notifications, alerts. eframe also runs it while the window is hidden
    /// in the tray (`App::logic`), so the tray's picks and an incoming call
    /// are handled there too.
    pub fn logic(&mut self, ctx: &egui::Context, now: Instant) {
        self.poll_keyring();
        self.poll_core_start();
        self.drain_core(now);
        self.tray_frame(ctx);
        self.close_stale_notes();
        if self.vm.focus_requested {
            self.vm.focus_requested = false;
            self.set_window_visible(ctx, true);
        }
        if self.vm.settings.is_some()
            && let Some(url) = self.opts.dial_on_start.take()
        {
            self.page = Page::Phone;
            self.dial = url;
            self.place_call();
        }
        self.schedule(ctx, now);
        self.alert_incoming(ctx);
        self.notify_missed();
    }

    /// Everything the window does in one frame: take in the core's news,
    /// then draw. Used by eframe and by the tests alike.
    pub fn show(&mut self, ui: &mut egui::Ui) {
        let now = Instant::now();
        let ctx = ui.ctx().clone();
        if !self.prefs_applied {
            self.apply_prefs(&ctx);
        }
        self.logic(&ctx, now);
        self.shortcuts(&ctx);

        if !self.drawn {
            self.drawn = true;
            tracing::info!("first frame");
        }
        if self.compact {
            self.compact_ui(ui, now);
            return;
        }
        egui::Panel::top("status").show(ui, |ui| self.status_bar(ui));
        egui::CentralPanel::default().show(ui, |ui| {
            egui::ScrollArea::vertical().show(ui, |ui| match self.page {
                Page::Phone => self.phone_page(ui, now),
                Page::History => self.history_page(ui),
                Page::Messages => self.messages_page(ui),
                Page::Account => self.account_page(ui),
                Page::Settings => self.settings_page(ui),
                Page::Help => help_page(ui),
                Page::Checkup => {
                    let registered = self.vm.accounts.iter().any(|a| a.state == "registered");
                    super::checkup::checkup_page(ui, &self.opts.config_path, registered)
                }
            });
        });
    }

    /// Repaints only when something is due: the call timer while a call is
    /// up, an ended tab's removal. Idle: none.
    fn schedule(&mut self, ctx: &egui::Context, now: Instant) {
        let prune_due = self.vm.prune(now);
        if let Some(t) = prune_due {
            ctx.request_repaint_after(t.saturating_duration_since(now));
        }
        let testing = self.audio_test_until.is_some_and(|t| now < t);
        if testing {
            // The audio test's meters move: refresh four times a second.
            if let Some(link) = &self.link {
                link.send(Purpose::Status, Request::Status);
            }
            ctx.request_repaint_after(Duration::from_millis(250));
        } else if self.audio_test_until.take().is_some() {
            self.vm.audio_test_levels = None;
        }
        if self.vm.has_live_calls() {
            if self.next_refresh.is_none_or(|t| now >= t) {
                if let Some(link) = &self.link {
                    link.send(Purpose::Status, Request::Status);
                }
                self.next_refresh = Some(now + LIVE_REFRESH);
            }
            ctx.request_repaint_after(LIVE_REFRESH);
        } else {
            self.next_refresh = None;
        }
    }

    fn alert_incoming(&mut self, ctx: &egui::Context) {
        let ringing = self.vm.ringing_in().map(|c| c.id);
        if ringing.is_some() && ringing != self.alerted {
            // The alert lives on the phone page: bring it to the front
            // (out of the tray too).
            self.page = Page::Phone;
            if !self.window_visible {
                self.set_window_visible(ctx, true);
            }
            let in_front = ctx.input(|i| i.viewport().focused) == Some(true);
            if self.prefs.notifications
                && !in_front
                && let Some(c) = self.vm.ringing_in()
            {
                self.notes.incoming(
                    c.id,
                    super::notify::incoming(&c.remote_short(), c.auto_answered.as_deref()),
                );
            }
            ctx.send_viewport_cmd(egui::ViewportCommand::RequestUserAttention(
                egui::UserAttentionType::Critical,
            ));
            ctx.send_viewport_cmd(egui::ViewportCommand::Focus);
        }
        self.alerted = ringing;
    }

    fn notify_missed(&mut self) {
        for party in std::mem::take(&mut self.vm.missed) {
            self.missed_unseen += 1;
            if self.prefs.notifications {
                super::notify::show(super::notify::missed(&party));
            }
        }
    }

    fn shortcuts(&mut self, ctx: &egui::Context) {
        let pressed = |i: usize| ctx.input_mut(|inp| inp.consume_shortcut(&SHORTCUTS[i].1));
        if pressed(0)
            && let Some(c) = self.vm.ringing_in()
        {
            self.act("Answer", Request::Answer { call: Some(c.id) });
        }
        if pressed(1)
            && let Some(c) = self.vm.selected_call().filter(|c| c.is_live())
        {
            self.act("Hang up", Request::Hangup { call: Some(c.id) });
        }
        if pressed(2)
            && let Some(c) = self.vm.selected_call().filter(|c| c.is_live())
        {
            match c.state.as_str() {
                "connected" => self.act("Hold", Request::Hold { call: Some(c.id) }),
                "held" => {
                    let c = c.clone();
                    self.resume(&c);
                }
                _ => {}
            }
        }
        if pressed(3)
            && let Some(c) = self.vm.selected_call().filter(|c| c.is_live())
        {
            self.act(
                "Mute",
                Request::Mute {
                    call: Some(c.id),
                    on: !c.muted,
                },
            );
        }
        if pressed(4) {
            self.page = Page::Phone;
            self.focus_dial = true;
        }
        // Alt+1…9 brings that tab to the front.
        let keys = [
            Key::Num1,
            Key::Num2,
            Key::Num3,
            Key::Num4,
            Key::Num5,
            Key::Num6,
            Key::Num7,
            Key::Num8,
            Key::Num9,
        ];
        for (n, key) in keys.iter().enumerate() {
            if ctx.input_mut(|i| i.consume_key(Modifiers::ALT, *key))
                && let Some(c) = self.vm.calls.get(n)
            {
                self.vm.selected = Some(c.id);
            }
        }
    }

    fn apply_prefs(&mut self, ctx: &egui::Context) {
        ctx.set_theme(match self.prefs.theme {
            ThemeChoice::System => egui::ThemePreference::System,
            ThemeChoice::Dark => egui::ThemePreference::Dark,
            ThemeChoice::Light => egui::ThemePreference::Light,
        });
        ctx.set_zoom_factor(self.prefs.ui_scale);
        self.prefs_applied = true;
    }

    fn save_prefs(&mut self) {
        self.prefs_applied = false;
        if let Some(path) = &self.opts.prefs_path
            && let Err(e) = self.prefs.save(path)
        {
            self.vm.banner = Some(format!("Settings not saved: {e}"));
        }
    }

    // ----- status bar -----

    fn status_bar(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            let messages = if self.vm.unread > 0 {
                format!("Messages ({})", self.vm.unread)
            } else {
                "Messages".to_string()
            };
            for (page, label) in [
                (Page::Phone, "Phone".to_string()),
                (Page::History, "History".to_string()),
                (Page::Messages, messages),
                (Page::Account, "Account".to_string()),
                (Page::Settings, "Settings".to_string()),
                (Page::Help, "Help".to_string()),
                (Page::Checkup, "Check-up".to_string()),
            ] {
                ui.selectable_value(&mut self.page, page, label);
            }
            ui.separator();
            if ui
                .button("Compact")
                .on_hover_text("A small always-on-top window")
                .clicked()
            {
                self.set_compact(ui.ctx(), true);
            }
        });
        if let Some(e) = &self.core_error {
            ui.colored_label(Color32::from_rgb(0xd0, 0x30, 0x30), e);
        } else if self.starting.is_some() || self.keyring_read.is_some() {
            ui.label("Starting the phone…");
        }
        for a in &self.vm.accounts {
            let (light, words) = account_words(a);
            ui.horizontal_wrapped(|ui| {
                status_dot(ui, light);
                ui.label(RichText::new(super::view::short_party(&a.aor)).strong());
                ui.label(words);
                if a.state == "failed"
                    && ui
                        .button("Run check-up")
                        .on_hover_text("Find out what fails, step by step")
                        .clicked()
                {
                    self.page = Page::Checkup;
                }
                if let Some(vm) = a.voicemail.as_ref().filter(|v| v.waiting || v.new > 0) {
                    ui.label(
                        RichText::new(format!("Voicemail: {} new, {} old", vm.new, vm.old))
                            .strong(),
                    );
                }
            });
        }
        if let Some(st) = self.vm.settings.clone() {
            ui.horizontal_wrapped(|ui| {
                let mut dnd = st.dnd;
                let dnd_locked = self.locked("phone.dnd");
                let hover = if dnd_locked {
                    "Locked by your administrator"
                } else {
                    "Incoming calls are turned away while this is on"
                };
                if ui
                    .add_enabled(!dnd_locked, egui::Checkbox::new(&mut dnd, "Do not disturb"))
                    .on_hover_text(hover)
                    .on_disabled_hover_text(hover)
                    .changed()
                {
                    self.act("Do not disturb", Request::Dnd { on: dnd });
                }
                let fwd = [
                    ("always", &st.forward_always),
                    ("when busy", &st.forward_busy),
                    ("on no answer", &st.forward_no_answer),
                ];
                for (when, to) in fwd {
                    if let Some(to) = to {
                        ui.label(format!(
                            "Forwarding {when} to {}",
                            super::view::short_party(to)
                        ));
                    }
                }
            });
        }
        for alert in self.vm.device_alerts.values() {
            ui.colored_label(Color32::from_rgb(0xd0, 0x30, 0x30), alert);
        }
        if self.vm.accounts.is_empty() && self.link.is_some() {
            ui.label("No account: direct IP calls only (sip:user@host)");
        }
        let mut dismiss = false;
        if let Some(b) = &self.vm.banner {
            ui.horizontal_wrapped(|ui| {
                ui.colored_label(Color32::from_rgb(0xd0, 0x80, 0x20), b);
                dismiss = ui.small_button("Dismiss").clicked();
            });
        }
        if dismiss {
            self.vm.banner = None;
        }
    }

    // ----- phone page -----

    fn phone_page(&mut self, ui: &mut egui::Ui, now: Instant) {
        if let Some(c) = self.vm.ringing_in().cloned() {
            self.incoming_alert(ui, &c);
        }
        self.dial_row(ui);
        ui.separator();
        self.call_tabs(ui);
        if let Some(call) = self.vm.selected_call().cloned() {
            self.call_panel(ui, &call, now);
        } else if self.vm.calls.is_empty() {
            ui.label("No calls.");
        }
    }

    fn incoming_alert(&mut self, ui: &mut egui::Ui, c: &CallView) {
        egui::Frame::group(ui.style())
            .fill(ui.visuals().extreme_bg_color)
            .show(ui, |ui| {
                ui.heading(format!("Incoming call from {}", c.remote_short()));
                if let Some(why) = &c.auto_answered {
                    ui.label(format!("Answering automatically ({why})"));
                }
                ui.horizontal(|ui| {
                    if ui
                        .button(RichText::new("Answer").strong())
                        .on_hover_text("Ctrl+Enter")
                        .clicked()
                    {
                        self.act("Answer", Request::Answer { call: Some(c.id) });
                    }
                    if ui
                        .button("Reject")
                        .on_hover_text("Ctrl+E: busy (486)")
                        .clicked()
                    {
                        self.act(
                            "Reject",
                            Request::Reject {
                                call: Some(c.id),
                                code: None,
                            },
                        );
                    }
                    if ui
                        .button("Ignore")
                        .on_hover_text("Stop ringing here; the caller keeps ringing")
                        .clicked()
                    {
                        self.act("Ignore", Request::Ignore { call: Some(c.id) });
                    }
                });
            });
    }

    fn dial_row(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            let label = ui.label("Number");
            let edit = ui
                .add(
                    egui::TextEdit::singleline(&mut self.dial)
                        .hint_text("number or sip:user@host")
                        .desired_width(220.0),
                )
                .labelled_by(label.id);
            if self.focus_dial {
                edit.request_focus();
                self.focus_dial = false;
            }
            if edit.changed() {
                self.dial_error = None;
            }
            let enter = edit.lost_focus() && ui.input(|i| i.key_pressed(Key::Enter));
            if ui.button("Call").clicked() || enter {
                self.place_call();
            }
            if let Some(last) = self.last_dialled.clone()
                && ui
                    .button("Redial")
                    .on_hover_text(format!("Call {last} again"))
                    .clicked()
            {
                self.dial = last;
                self.place_call();
            }
            let pad = if self.keypad_open {
                "Hide keypad"
            } else {
                "Keypad"
            };
            if ui.button(pad).clicked() {
                self.keypad_open = !self.keypad_open;
            }
        });
        if let Some(e) = &self.dial_error {
            ui.colored_label(Color32::from_rgb(0xd0, 0x30, 0x30), e);
        }
        if self.keypad_open {
            let in_call = self
                .vm
                .selected_call()
                .filter(|c| c.is_live() && c.state == "connected")
                .map(|c| c.id);
            if let Some(d) = keypad(ui) {
                match in_call {
                    // In a call the keypad sends DTMF.
                    Some(id) => self.act(
                        "DTMF",
                        Request::Dtmf {
                            call: Some(id),
                            digits: d.to_string(),
                        },
                    ),
                    None => self.dial.push(d),
                }
            }
        }
    }

    fn place_call(&mut self) {
        match dial::normalize(&self.dial) {
            Ok(target) => {
                self.dial_error = None;
                self.last_dialled = Some(target.clone());
                self.act(
                    "Call",
                    Request::Call {
                        target,
                        account: None,
                        line: None,
                    },
                );
            }
            // What the agent typed stays in the field.
            Err(e) => self.dial_error = Some(e),
        }
    }

    fn call_tabs(&mut self, ui: &mut egui::Ui) {
        if self.vm.calls.is_empty() {
            return;
        }
        ui.horizontal_wrapped(|ui| {
            for (n, c) in self.vm.calls.iter().enumerate() {
                let line = c.line.map(|l| l as usize).unwrap_or(n + 1);
                let text = format!("{line} · {} · {}", c.remote_short(), state_words(c));
                let mut rt = RichText::new(text);
                if c.is_ringing_in() {
                    rt = rt.strong().color(Color32::from_rgb(0x30, 0x90, 0xe0));
                }
                if ui
                    .selectable_label(self.vm.selected == Some(c.id), rt)
                    .on_hover_text(format!("Line {} (Alt+{})", n + 1, n + 1))
                    .clicked()
                {
                    self.vm.selected = Some(c.id);
                }
            }
        });
        ui.separator();
    }

    /// Take a held call back. With another call connected, switch lines
    /// (the core holds the other one first), so two calls never talk at once.
    fn resume(&self, c: &CallView) {
        let other_connected = self
            .vm
            .calls
            .iter()
            .any(|o| o.id != c.id && o.is_live() && o.state == "connected");
        match c.line {
            Some(line) if other_connected => self.act("Resume", Request::Line { line }),
            _ => self.act("Resume", Request::Resume { call: Some(c.id) }),
        }
    }

    fn call_panel(&mut self, ui: &mut egui::Ui, c: &CallView, now: Instant) {
        match c.line {
            Some(l) => ui.heading(format!("Line {l}: {}", c.remote_short())),
            None => ui.heading(c.remote_short()),
        };
        if let Some(t) = &c.transfer {
            ui.label(format!("Transfer: {t}"));
        }
        ui.horizontal_wrapped(|ui| {
            ui.label(state_words(c));
            if let Some(t) = c.talk_time(now) {
                ui.label(format_duration(t));
            }
            if let Some(q) = &c.quality {
                let light = match q.light.as_str() {
                    "green" => Light::Green,
                    "amber" => Light::Amber,
                    _ => Light::Red,
                };
                status_dot(ui, light).on_hover_text("Estimated listening quality (E-model)");
                ui.label(format!("MOS {:.1}", q.mos))
                    .on_hover_text(format!(
                        "Estimated from loss and delay ({:.0} ms one way): 4.0 and above is good, below 3.6 is poor",
                        q.delay_ms
                    ));
            }
            if let Some(m) = &c.media {
                ui.label(format!("codec {}", m.codec));
                if m.srtp {
                    ui.label(RichText::new("SRTP").strong())
                        .on_hover_text("Media is encrypted (SRTP)");
                }
                ui.label(format!(
                    "loss {:.1} % · jitter {:.0} ms",
                    m.loss_pct(),
                    m.jitter_ms
                ))
                .on_hover_text(format!(
                    "packets received {}, lost {}, jitter buffer {} ms, round trip {}",
                    m.packets_received,
                    m.packets_lost,
                    m.jitter_buffer_ms,
                    m.rtt_ms
                        .map(|r| format!("{r:.0} ms"))
                        .unwrap_or_else(|| "unknown".into())
                ));
            }
            if c.muted {
                ui.label(RichText::new("Muted").strong());
            }
            if let Some(why) = &c.auto_answered {
                ui.label(format!("Auto-answered ({why})"));
            }
        });
        if let Some(levels) = c.media.as_ref().and_then(|m| m.levels) {
            ui.horizontal(|ui| {
                meter(ui, "Microphone level", levels.mic.rms_dbfs, c.muted);
                meter(ui, "Speaker level", levels.speaker.rms_dbfs, false);
            });
        }
        // Problems with this call, where the agent looks.
        let warning = c
            .media
            .as_ref()
            .and_then(|m| m.warning.clone())
            .or_else(|| c.audio_warning.clone());
        if let Some(w) = warning {
            ui.colored_label(Color32::from_rgb(0xd0, 0x80, 0x20), w);
        }
        if let Some(cause) = c.cause.as_ref().filter(|_| !c.is_live()) {
            let code = c.status_code.map(|s| format!(" ({s})")).unwrap_or_default();
            ui.label(format!("Ended: {cause}{code}"));
        }
        if !c.is_live() {
            return;
        }
        ui.horizontal_wrapped(|ui| {
            let id = Some(c.id);
            match c.state.as_str() {
                "ringing" if c.incoming => {
                    if ui.button("Answer").clicked() {
                        self.act("Answer", Request::Answer { call: id });
                    }
                    if ui.button("Reject").clicked() {
                        self.act(
                            "Reject",
                            Request::Reject {
                                call: id,
                                code: None,
                            },
                        );
                    }
                }
                "connected" | "held" => {
                    if ui.button("Hang up").on_hover_text("Ctrl+E").clicked() {
                        self.act("Hang up", Request::Hangup { call: id });
                    }
                    if c.state == "connected" {
                        if ui.button("Hold").on_hover_text("Ctrl+H").clicked() {
                            self.act("Hold", Request::Hold { call: id });
                        }
                    } else if ui.button("Resume").on_hover_text("Ctrl+H").clicked() {
                        self.resume(c);
                    }
                    let mute = if c.muted { "Unmute" } else { "Mute" };
                    if ui.button(mute).on_hover_text("Ctrl+M").clicked() {
                        self.act(
                            "Mute",
                            Request::Mute {
                                call: id,
                                on: !c.muted,
                            },
                        );
                    }
                    let rec = if c.recording {
                        "Stop recording"
                    } else {
                        "Record"
                    };
                    if ui.button(rec).clicked() {
                        let on = !c.recording;
                        self.act(
                            "Record",
                            Request::Record {
                                call: id,
                                on,
                                file: None,
                            },
                        );
                        if let Some(v) = self.vm.call_mut(c.id) {
                            v.recording = on;
                        }
                    }
                }
                _ => {
                    if ui.button("Hang up").on_hover_text("Ctrl+E").clicked() {
                        self.act("Hang up", Request::Hangup { call: id });
                    }
                }
            }
        });
        if matches!(c.state.as_str(), "connected" | "held") {
            self.transfer_controls(ui, c);
        }
    }

    /// The other calls that are up (connected or held), as `(id, "line N
    /// (party)")`: the targets of an attended transfer or a conference
    /// (`free`: only calls not already in a conference).
    fn other_calls_up(&self, c: &CallView, free: bool) -> Vec<(u64, String)> {
        self.vm
            .calls
            .iter()
            .filter(|o| {
                o.id != c.id
                    && o.is_live()
                    && matches!(o.state.as_str(), "connected" | "held")
                    && (!free || o.conference.is_none())
            })
            .map(|o| {
                let line = o
                    .line
                    .map(|l| format!("line {l}"))
                    .unwrap_or_else(|| format!("call {}", o.id));
                (o.id, format!("{line} ({})", o.remote_short()))
            })
            .collect()
    }

    /// Blind transfer to a typed number; attended transfer to another line.
    fn transfer_controls(&mut self, ui: &mut egui::Ui, c: &CallView) {
        ui.horizontal_wrapped(|ui| {
            let l = ui.label("Transfer to");
            ui.add(
                egui::TextEdit::singleline(&mut self.transfer_to)
                    .hint_text("number")
                    .desired_width(140.0),
            )
            .labelled_by(l.id);
            if ui
                .button("Blind transfer")
                .on_hover_text("Hand this caller to the number and leave the call")
                .clicked()
            {
                match dial::normalize(&self.transfer_to) {
                    Ok(target) => self.act(
                        "Transfer",
                        Request::Transfer {
                            call: Some(c.id),
                            target,
                        },
                    ),
                    Err(e) => self.vm.banner = Some(format!("Transfer: {e}")),
                }
            }
            let others: Vec<(u64, String)> = self
                .other_calls_up(c, false)
                .into_iter()
                .map(|(id, who)| (id, format!("Connect with {who}")))
                .collect();
            for (other, label) in &others {
                if ui
                    .button(label)
                    .on_hover_text("Attended transfer: the two parties talk, you leave both calls")
                    .clicked()
                {
                    self.act(
                        "Transfer",
                        Request::TransferAttended {
                            call: Some(c.id),
                            to_call: *other,
                        },
                    );
                }
            }
        });
        // Local three-way conference: merge with another line, or split.
        ui.horizontal_wrapped(|ui| {
            if let Some(n) = c.conference {
                ui.label(RichText::new(format!("In conference {n}")).strong());
                if ui
                    .button("Split conference")
                    .on_hover_text("This call stays with you; the other one is held")
                    .clicked()
                {
                    self.act("Split", Request::Split { call: Some(c.id) });
                }
                return;
            }
            let others: Vec<(u64, String)> = self
                .other_calls_up(c, true)
                .into_iter()
                .map(|(id, who)| (id, format!("Conference with {who}")))
                .collect();
            for (other, label) in others {
                if ui
                    .button(label)
                    .on_hover_text("All three of you hear each other")
                    .clicked()
                {
                    self.act("Conference", Request::Conference { a: c.id, b: other });
                }
            }
        });
    }

    // ----- history page -----

    fn history_page(&mut self, ui: &mut egui::Ui) {
        if (!self.history_requested || self.vm.history_stale)
            && let Some(link) = &self.link
        {
            link.send(Purpose::History, Request::History { limit: Some(200) });
            self.history_requested = true;
            self.vm.history_stale = false;
        }
        ui.heading("History");
        if self.history.is_empty() {
            ui.label("No calls yet.");
            return;
        }
        let mut redial = None;
        egui::Grid::new("history").striped(true).show(ui, |ui| {
            for e in &self.history {
                let s = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                let when = s("start").replace('T', " ");
                // The store keeps UTC (RFC 3339); say so rather than guess a zone.
                ui.label(format!("{} UTC", when.get(..16).unwrap_or(&when)));
                ui.label(if s("direction") == "incoming" {
                    "in"
                } else {
                    "out"
                });
                let remote = s("remote");
                ui.label(super::view::short_party(&remote));
                let talk = e.get("talk_secs").and_then(Value::as_f64).unwrap_or(0.0);
                let how = match s("disposition").as_str() {
                    "answered" => format!(
                        "answered, {}",
                        format_duration(Duration::try_from_secs_f64(talk).unwrap_or_default())
                    ),
                    other => other.to_string(),
                };
                ui.label(how);
                if ui.button("Call back").clicked() {
                    redial = Some(remote);
                }
                ui.end_row();
            }
        });
        if let Some(remote) = redial {
            self.dial = redial_target(&remote);
            self.page = Page::Phone;
            self.place_call();
        }
    }

    // ----- messages page -----

    fn messages_page(&mut self, ui: &mut egui::Ui) {
        self.vm.unread = 0;
        ui.heading("Messages");
        for m in &self.vm.messages {
            ui.horizontal_wrapped(|ui| {
                if m.incoming {
                    ui.label(RichText::new(format!("{}:", m.party)).strong());
                } else {
                    ui.label(RichText::new(format!("to {}:", m.party)).weak());
                }
                ui.label(&m.text);
                if !m.incoming {
                    ui.label(RichText::new(format!("({})", m.status)).weak());
                }
            });
        }
        ui.separator();
        ui.horizontal(|ui| {
            let l = ui.label("To");
            ui.add(egui::TextEdit::singleline(&mut self.message_to).desired_width(160.0))
                .labelled_by(l.id);
        });
        ui.horizontal(|ui| {
            let l = ui.label("Message");
            ui.add(egui::TextEdit::singleline(&mut self.message_text).desired_width(320.0))
                .labelled_by(l.id);
            if ui.button("Send").clicked() {
                self.send_message();
            }
        });
    }

    fn send_message(&mut self) {
        let target = match dial::normalize(&self.message_to) {
            Ok(t) => t,
            Err(e) => {
                self.vm.banner = Some(format!("Message: {e}"));
                return;
            }
        };
        if self.message_text.trim().is_empty() {
            self.vm.banner = Some("Message: write something first".into());
            return;
        }
        let text = std::mem::take(&mut self.message_text);
        self.vm.messages.push(super::view::MessageView {
            incoming: false,
            party: super::view::short_party(&target),
            text: text.clone(),
            status: "sending".into(),
            id: None,
        });
        let index = self.vm.messages.len() - 1;
        if let Some(link) = &self.link {
            link.send(
                Purpose::Message(index),
                Request::Message {
                    target,
                    text,
                    account: None,
                },
            );
        }
    }

    // ----- account page -----

    fn account_page(&mut self, ui: &mut egui::Ui) {
        ui.heading("Account");
        ui.label(format!(
            "Saved to {} (your own settings; an admin's file is never changed).",
            self.opts.config_path.display()
        ));
        let errors = self.form.validate();
        let id = self
            .config
            .as_ref()
            .and_then(|c| c.accounts.first())
            .map(|a| a.id.clone())
            .unwrap_or_else(|| super::account_form::FORM_ACCOUNT_ID.to_string());
        let locked_keys: Vec<&'static str> = [
            "username",
            "password",
            "domain",
            "display_name",
            "auth_username",
            "outbound_proxy",
            "tls_ca_file",
            "tls_pin_sha256",
        ]
        .into_iter()
        .filter(|k| self.locked(&format!("account.{id}.{k}")))
        .collect();
        let field = |ui: &mut egui::Ui, label: &str, value: &mut String, password: bool| {
            let key = match label {
                "User name" => "username",
                "Password" => "password",
                "Server" => "domain",
                "Display name" => "display_name",
                "Auth user name" => "auth_username",
                "Outbound proxy" => "outbound_proxy",
                "TLS CA file" => "tls_ca_file",
                _ => "tls_pin_sha256",
            };
            let locked = locked_keys.contains(&key);
            ui.horizontal(|ui| {
                let l = ui.add_sized([140.0, 18.0], egui::Label::new(label));
                ui.add_enabled(
                    !locked,
                    egui::TextEdit::singleline(value)
                        .password(password)
                        .desired_width(260.0),
                )
                .labelled_by(l.id);
                if locked {
                    ui.label("locked by your administrator");
                }
            });
        };
        let red = Color32::from_rgb(0xd0, 0x30, 0x30);
        // A field's problem shows once the agent typed in it (or tried to
        // connect): an untouched empty form is not a wall of red.
        let tried = self.form_tried;
        let show_err = |ui: &mut egui::Ui, key: &str, typed: bool| {
            if (tried || typed)
                && let Some(e) = AccountForm::error_for(&errors, key)
            {
                ui.colored_label(red, e);
            }
        };
        field(ui, "User name", &mut self.form.username, false);
        show_err(ui, "username", !self.form.username.is_empty());
        field(ui, "Password", &mut self.form.password, true);
        show_err(ui, "password", false);
        field(ui, "Server", &mut self.form.server, false);
        show_err(ui, "server", !self.form.server.is_empty());
        ui.horizontal(|ui| {
            ui.add_sized([140.0, 18.0], egui::Label::new("Transport"));
            for t in ["udp", "tcp", "tls"] {
                ui.radio_value(&mut self.form.transport, t.to_string(), t.to_uppercase());
            }
        });
        show_err(ui, "transport", true);
        egui::CollapsingHeader::new("Advanced").show(ui, |ui| {
            field(ui, "Display name", &mut self.form.display_name, false);
            field(ui, "Auth user name", &mut self.form.auth_username, false);
            show_err(ui, "auth_username", true);
            field(ui, "Outbound proxy", &mut self.form.outbound_proxy, false);
            show_err(ui, "outbound_proxy", true);
            field(ui, "TLS CA file", &mut self.form.tls_ca_file, false);
            show_err(ui, "tls_ca_file", true);
            field(
                ui,
                "TLS pin (SHA-256)",
                &mut self.form.tls_pin_sha256,
                false,
            );
            show_err(ui, "tls_pin_sha256", true);
        });
        ui.add_space(6.0);
        let busy = self.vm.has_live_calls() || self.starting.is_some();
        if ui
            .add_enabled(!busy, egui::Button::new("Connect"))
            .on_disabled_hover_text("Connects when no call is up and the phone is not restarting")
            .clicked()
        {
            if errors.is_empty() {
                self.connect();
            } else {
                self.form_tried = true;
                self.form_message = Some("Fix the fields marked in red first.".into());
            }
        }
        if let Some(m) = &self.form_message {
            ui.label(m);
        }
        // The registration result, in the same words as the status bar.
        for a in &self.vm.accounts {
            let (light, words) = account_words(a);
            ui.colored_label(light_colour(light), words);
        }
    }

    /// Save the form to the user config and restart the core with it.
    fn connect(&mut self) {
        let path = self.opts.config_path.clone();
        let existing = std::fs::read_to_string(&path).unwrap_or_default();
        let id = self
            .config
            .as_ref()
            .and_then(|c| c.accounts.first())
            .map(|a| a.id.clone());
        let account_id = id
            .clone()
            .unwrap_or_else(|| super::account_form::FORM_ACCOUNT_ID.to_string());
        let mut note = None;
        let saved = self
            .form
            .merged_config(&existing, &path, id.as_deref())
            .and_then(|(text, _)| {
                if !self.opts.keyring {
                    return Ok(text);
                }
                // The password goes to the OS keyring, not into the file;
                // without a keyring it stays in the file (readable by the
                // user only) and the agent is told.
                let user = if self.form.auth_username.trim().is_empty() {
                    self.form.username.trim()
                } else {
                    self.form.auth_username.trim()
                };
                match store_password_briefly(&account_id, user, &self.form.password) {
                    Ok(()) => super::account_form::password_to_keyring(&text, &account_id),
                    Err(e) => {
                        note = Some(format!(
                            "{e}: the password is kept in your config file, readable only by you."
                        ));
                        Ok(text)
                    }
                }
            })
            .and_then(|text| self.save_user_config(&text));
        match saved {
            Ok(config) => {
                self.form_message = Some(match note {
                    Some(n) => format!("Saved. Connecting… ({n})"),
                    None => "Saved. Connecting…".into(),
                });
                self.vm.accounts.clear();
                // The password just typed is the keyring's: no need to ask it.
                let mut config = config;
                for a in config
                    .accounts
                    .iter_mut()
                    .filter(|a| a.id == account_id && a.password_keyring && a.password.is_empty())
                {
                    a.password = self.form.password.clone();
                }
                self.launch(config);
            }
            Err(e) => self.form_message = Some(e),
        }
    }

    /// Write the user's config file and load the layers again with it. A
    /// change to a key the admin locked is refused (nothing is written); a
    /// file the layers then reject is put back as it was.
    fn save_user_config(&self, text: &str) -> Result<Config, String> {
        if let Some(current) = &self.config {
            let locked = current.locked_changes(text);
            if !locked.is_empty() {
                return Err(format!(
                    "Your administrator has locked {}: nothing was saved",
                    locked.join(", ")
                ));
            }
        }
        let path = &self.opts.config_path;
        let before = std::fs::read_to_string(path).ok();
        write_user_config(path, text)?;
        // The files only: passwords come from what the window already has
        // or from the keyring on a helper thread (`launch`).
        match self.opts.layers().load_files(false) {
            Ok(c) => Ok(c),
            Err(e) => {
                let restored = match &before {
                    Some(old) => write_user_config(path, old),
                    None => std::fs::remove_file(path).map_err(|e| e.to_string()),
                };
                if let Err(r) = restored {
                    tracing::warn!("could not put the config back: {r}");
                }
                Err(e.to_string())
            }
        }
    }

    /// Is this key (`account.main.password`, `media.codecs`) locked by the
    /// admin? Locked values are shown, not editable.
    fn locked(&self, key: &str) -> bool {
        self.config.as_ref().is_some_and(|c| c.is_locked(key))
    }

    // ----- settings page -----

    fn settings_page(&mut self, ui: &mut egui::Ui) {
        ui.heading("Appearance");
        let mut changed = false;
        ui.horizontal(|ui| {
            ui.label("Theme");
            for (t, label) in [
                (ThemeChoice::System, "System"),
                (ThemeChoice::Dark, "Dark"),
                (ThemeChoice::Light, "Light"),
            ] {
                changed |= ui.radio_value(&mut self.prefs.theme, t, label).changed();
            }
        });
        ui.horizontal(|ui| {
            let l = ui.label("UI scale");
            let r = ui
                .add(egui::Slider::new(&mut self.prefs.ui_scale, 0.75..=2.5).step_by(0.05))
                .labelled_by(l.id);
            // Apply when the drag ends, so the slider does not move under
            // the pointer while it rescales.
            changed |= r.drag_stopped() || (r.changed() && !r.dragged());
        });
        changed |= ui
            .checkbox(
                &mut self.prefs.notifications,
                "Desktop notifications for incoming and missed calls",
            )
            .changed();
        if self.tray.is_some() && cfg!(target_os = "linux") {
            let mut to_tray = self.close_to_tray();
            let r = ui.add_enabled(
                self.tray_host_present(),
                egui::Checkbox::new(
                    &mut to_tray,
                    "Closing the window keeps Softline in the tray",
                ),
            );
            let r = r.on_disabled_hover_text("No tray on this desktop");
            if r.changed() {
                self.prefs.close_to_tray = Some(to_tray);
                changed = true;
            }
        }
        // XDG autostart (Linux desktops); the Windows and macOS installers
        // own start-at-login there.
        let xdg = cfg!(all(unix, not(target_os = "macos")));
        if xdg
            && ui
                .checkbox(&mut self.prefs.autostart, "Start Softline when I log in")
                .changed()
        {
            changed = true;
            match super::prefs::autostart_path() {
                Some(p) => {
                    if let Err(e) = super::prefs::set_autostart(&p, self.prefs.autostart) {
                        self.vm.banner = Some(format!("Autostart: {e}"));
                    }
                }
                None => self.vm.banner = Some("Autostart: no home directory".into()),
            }
        }
        if changed {
            self.save_prefs();
        }
        ui.separator();
        ui.heading("Audio");
        if (!self.devices_requested || ui.button("Refresh devices").clicked())
            && let Some(link) = &self.link
        {
            link.send(Purpose::Devices, Request::Devices);
            self.devices_requested = true;
        }
        if let Some(d) = &self.devices {
            devices_view(ui, d);
        }
        if ui
            .button("Audio test (10 s)")
            .on_hover_text(
                "Hear yourself as the far end would: microphone, codec, jitter buffer, speaker",
            )
            .clicked()
        {
            self.act(
                "Audio test",
                Request::TestAudio {
                    seconds: Some(10),
                    codec: None,
                    tone: false,
                },
            );
            self.audio_test_until = Some(Instant::now() + Duration::from_secs(11));
        }
        if let Some(levels) = self.vm.audio_test_levels {
            ui.horizontal(|ui| {
                meter(ui, "Microphone level", levels.mic.rms_dbfs, false);
                meter(ui, "Speaker level", levels.speaker.rms_dbfs, false);
            });
        }
        let Some(mut form) = self.settings.clone() else {
            return;
        };
        let names = |want_input: bool| -> Vec<String> {
            let mut v = vec!["default".to_string()];
            if let Some(list) = self
                .devices
                .as_ref()
                .and_then(|d| d.get("devices"))
                .and_then(Value::as_array)
            {
                for dev in list {
                    let key = if want_input { "input" } else { "output" };
                    if dev.get(key).and_then(Value::as_bool) == Some(true)
                        && let Some(n) = dev.get("name").and_then(Value::as_str)
                        && !v.iter().any(|x| x == n)
                    {
                        v.push(n.to_string());
                    }
                }
            }
            v.push("null".to_string());
            v
        };
        let (inputs, outputs) = (names(true), names(false));
        // What the admin locked is shown, not editable.
        let lock = |key: &str| self.locked(key);
        let (l_in, l_out, l_ring) = (
            lock("audio.input"),
            lock("audio.output"),
            lock("audio.ring"),
        );
        let (l_ec, l_ns, l_agc) = (
            lock("audio.echo_cancellation"),
            lock("audio.noise_suppression"),
            lock("audio.auto_gain"),
        );
        let l_codecs = lock("media.codecs");
        let note = |ui: &mut egui::Ui, locked: bool| {
            if locked {
                ui.label("locked by your administrator");
            }
        };
        ui.horizontal(|ui| {
            ui.add_enabled_ui(!l_in, |ui| {
                device_picker(ui, "Microphone", &mut form.input, &inputs)
            });
            note(ui, l_in);
        });
        ui.horizontal(|ui| {
            ui.add_enabled_ui(!l_out, |ui| {
                device_picker(ui, "Speaker", &mut form.output, &outputs)
            });
            note(ui, l_out);
        });
        let mut ring_choices = vec![String::new()];
        ring_choices.extend(outputs.iter().cloned());
        ui.horizontal(|ui| {
            ui.add_enabled_ui(!l_ring, |ui| {
                device_picker(ui, "Ring on", &mut form.ring, &ring_choices)
            });
            note(ui, l_ring);
        });
        ui.add_enabled(
            !l_ec,
            egui::Checkbox::new(&mut form.echo_cancellation, "Echo cancellation"),
        );
        ui.add_enabled(
            !l_ns,
            egui::Checkbox::new(&mut form.noise_suppression, "Noise suppression"),
        );
        ui.add_enabled(
            !l_agc,
            egui::Checkbox::new(&mut form.auto_gain, "Automatic microphone gain"),
        );
        if l_ec || l_ns || l_agc {
            note(ui, true);
        }
        ui.label("Codecs, preferred first:");
        note(ui, l_codecs);
        ui.add_enabled_ui(!l_codecs, |ui| {
            let mut up = None;
            for (i, c) in form.codecs.iter().enumerate() {
                ui.horizontal(|ui| {
                    ui.label(format!("{}. {c}", i + 1));
                    if i > 0 && ui.small_button(format!("Move {c} up")).clicked() {
                        up = Some(i);
                    }
                });
            }
            if let Some(i) = up {
                form.codec_up(i);
            }
            ui.horizontal_wrapped(|ui| {
                for c in ALL_CODECS {
                    let mut on = form.codecs.iter().any(|x| x.eq_ignore_ascii_case(c));
                    if ui.checkbox(&mut on, *c).changed() {
                        form.toggle_codec(c);
                    }
                }
            });
        });
        let changed = self
            .config
            .as_ref()
            .is_none_or(|c| SettingsForm::from_config(c) != form);
        self.settings = Some(form);
        let busy = self.vm.has_live_calls() || self.starting.is_some();
        ui.horizontal(|ui| {
            let apply = ui
                .add_enabled(changed && !busy, egui::Button::new("Apply"))
                .on_disabled_hover_text(if busy {
                    "Applies when no call is up and the phone is not restarting"
                } else {
                    "Nothing changed"
                });
            if apply.clicked() {
                self.apply_settings();
            }
        });
        if let Some(m) = &self.settings_message {
            ui.label(m);
        }
    }

    /// Save the settings to the user config and restart the phone with them.
    fn apply_settings(&mut self) {
        let Some(form) = self.settings.clone() else {
            return;
        };
        let path = self.opts.config_path.clone();
        let existing = std::fs::read_to_string(&path).unwrap_or_default();
        match form
            .merged_config(&existing, &path)
            .and_then(|(text, _)| self.save_user_config(&text))
        {
            Ok(config) => {
                self.settings_message = Some("Saved; the phone restarted with them.".into());
                // Keyring passwords the running phone already has.
                let mut config = config;
                if let Some(old) = &self.config {
                    for a in config
                        .accounts
                        .iter_mut()
                        .filter(|a| a.password_keyring && a.password.is_empty())
                    {
                        if let Some(o) = old
                            .accounts
                            .iter()
                            .find(|o| o.id == a.id && o.auth_username() == a.auth_username())
                        {
                            a.password = o.password.clone();
                        }
                    }
                }
                self.vm.accounts.clear();
                self.launch(config);
            }
            Err(e) => self.settings_message = Some(e),
        }
    }

    // ----- compact mode -----

    fn set_compact(&mut self, ctx: &egui::Context, on: bool) {
        self.compact = on;
        ctx.send_viewport_cmd(egui::ViewportCommand::WindowLevel(if on {
            egui::WindowLevel::AlwaysOnTop
        } else {
            egui::WindowLevel::Normal
        }));
        let size = if on { [360.0, 140.0] } else { [720.0, 560.0] };
        ctx.send_viewport_cmd(egui::ViewportCommand::InnerSize(size.into()));
    }

    fn compact_ui(&mut self, ui: &mut egui::Ui, now: Instant) {
        egui::CentralPanel::default().show(ui, |ui| {
            ui.horizontal(|ui| {
                for a in &self.vm.accounts {
                    let (light, words) = account_words(a);
                    status_dot(ui, light).on_hover_text(words);
                }
                if ui.button("Full window").clicked() {
                    self.set_compact(ui.ctx(), false);
                }
            });
            if let Some(c) = self.vm.ringing_in().cloned() {
                self.incoming_alert(ui, &c);
            } else if let Some(c) = self.vm.selected_call().cloned() {
                self.call_panel(ui, &c, now);
            } else {
                self.dial_row(ui);
            }
        });
    }
}

/// eframe drives the window through this.
pub struct EframeApp(pub SoftlineApp);

impl eframe::App for EframeApp {
    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        // Shown, `ui` does it all; hidden in the tray, eframe calls only this.
        if !self.0.window_visible {
            self.0.logic(ctx, Instant::now());
        }
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.0.show(ui);
    }

    fn on_exit(&mut self, _gl: Option<&eframe::glow::Context>) {
        // Unregister and end calls before the process goes.
        if let Some(link) = self.0.link.take()
            && let Err(e) = link.shutdown_blocking()
        {
            tracing::warn!("the phone stopped with: {e}");
        }
    }
}

impl SoftlineApp {
    /// Stop the core (tests; the window does it on exit).
    pub fn shutdown(&mut self) {
        if let Some(link) = self.link.take() {
            let _ = link.shutdown_blocking();
        }
    }

    /// The phone is running and has reported its first status.
    pub fn core_ready(&self) -> bool {
        self.link.is_some()
    }

    /// The sound-device list has arrived (Settings shows it).
    pub fn devices_listed(&self) -> bool {
        self.devices.is_some()
    }

    pub fn options(&self) -> &GuiOptions {
        &self.opts
    }

    pub fn core_error(&self) -> Option<&str> {
        self.core_error.as_deref()
    }
}

/// Store a password in the OS keyring, giving up after 3 s (a session bus
/// without a keyring service can otherwise keep the window waiting on
/// D-Bus activation).
fn store_password_briefly(account_id: &str, user: &str, password: &str) -> Result<(), String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let (a, u, p) = (
        account_id.to_string(),
        user.to_string(),
        password.to_string(),
    );
    std::thread::Builder::new()
        .name("softline-keyring".into())
        .spawn(move || {
            let _ = tx.send(crate::config::secrets::store_password(&a, &u, &p));
        })
        .map_err(|e| format!("cannot reach the keyring: {e}"))?;
    rx.recv_timeout(Duration::from_secs(3))
        .unwrap_or_else(|_| Err("the keyring did not answer".into()))
}

/// What to dial to call a history entry back: its SIP URI without the
/// display name and tags (`"Bob" <sip:201@pbx>;tag=1` → `sip:201@pbx`).
fn redial_target(remote: &str) -> String {
    let inner = match (remote.find('<'), remote.find('>')) {
        (Some(a), Some(b)) if a < b => &remote[a + 1..b],
        _ => remote.split(';').next().unwrap_or(remote),
    };
    inner.trim().to_string()
}

fn keypad(ui: &mut egui::Ui) -> Option<char> {
    let mut pressed = None;
    egui::Grid::new("keypad").show(ui, |ui| {
        for row in ["123", "456", "789", "*0#"] {
            for d in row.chars() {
                if ui
                    .add_sized([36.0, 28.0], egui::Button::new(d.to_string()))
                    .clicked()
                {
                    pressed = Some(d);
                }
            }
            ui.end_row();
        }
    });
    pressed
}

fn devices_view(ui: &mut egui::Ui, d: &Value) {
    let list = d.get("devices").and_then(Value::as_array);
    match list {
        Some(list) if !list.is_empty() => {
            for dev in list {
                let name = dev.get("name").and_then(Value::as_str).unwrap_or("?");
                let dir = match (
                    dev.get("input").and_then(Value::as_bool).unwrap_or(false),
                    dev.get("output").and_then(Value::as_bool).unwrap_or(false),
                ) {
                    (true, true) => "microphone + speaker",
                    (true, false) => "microphone",
                    (false, true) => "speaker",
                    _ => "",
                };
                let default = if dev.get("default").and_then(Value::as_bool) == Some(true) {
                    " (default)"
                } else {
                    ""
                };
                ui.label(format!("{name} — {dir}{default}"));
            }
        }
        _ => {
            ui.colored_label(
                Color32::from_rgb(0xd0, 0x80, 0x20),
                "No sound device found: calls will have no audio until one is connected",
            );
        }
    }
}

fn device_picker(ui: &mut egui::Ui, label: &str, value: &mut String, choices: &[String]) {
    ui.horizontal(|ui| {
        let l = ui.add_sized([100.0, 18.0], egui::Label::new(label));
        let shown = |v: &str| {
            if v.is_empty() {
                "same as speaker".to_string()
            } else if v == "null" {
                "none".to_string()
            } else {
                v.to_string()
            }
        };
        egui::ComboBox::from_id_salt(label)
            .selected_text(shown(value))
            .show_ui(ui, |ui| {
                for c in choices {
                    ui.selectable_value(value, c.clone(), shown(c));
                }
                // A configured device that is not present now stays
                // choosable, marked as such.
                if !choices.contains(value) {
                    let v = value.clone();
                    ui.selectable_value(value, v.clone(), format!("{} (not present)", shown(&v)));
                }
            })
            .response
            .labelled_by(l.id);
    });
}

fn help_page(ui: &mut egui::Ui) {
    ui.heading("Keyboard shortcuts");
    egui::Grid::new("shortcuts").show(ui, |ui| {
        for (what, s) in SHORTCUTS {
            ui.label(ui.ctx().format_shortcut(s));
            ui.label(*what);
            ui.end_row();
        }
        ui.label("Alt+1 … Alt+9");
        ui.label("Bring line 1–9 to the front");
        ui.end_row();
        ui.label("Enter (in the number field)");
        ui.label("Call");
        ui.end_row();
    });
}

/// A level meter (RMS, −60…0 dBFS) with its label and value for screen readers.
fn meter(ui: &mut egui::Ui, label: &str, dbfs: f32, muted: bool) {
    let l = ui.label(if muted {
        format!("{label} (muted)")
    } else {
        label.to_string()
    });
    let text = if dbfs <= -60.0 {
        "silent".to_string()
    } else {
        format!("{dbfs:.0} dBFS")
    };
    ui.add(
        egui::ProgressBar::new(super::view::meter_fill(dbfs))
            .desired_width(120.0)
            .text(text),
    )
    .labelled_by(l.id);
}

/// A coloured dot for a registration state (drawn, so no font needs the glyph).
fn status_dot(ui: &mut egui::Ui, light: Light) -> egui::Response {
    let (rect, response) = ui.allocate_exact_size(egui::vec2(12.0, 12.0), egui::Sense::hover());
    ui.painter()
        .circle_filled(rect.center(), 5.0, light_colour(light));
    response
}

fn light_colour(l: Light) -> Color32 {
    match l {
        Light::Green => Color32::from_rgb(0x2e, 0xa0, 0x43),
        Light::Amber => Color32::from_rgb(0xd0, 0x90, 0x20),
        Light::Red => Color32::from_rgb(0xd0, 0x30, 0x30),
        Light::Grey => Color32::GRAY,
    }
}

/// A call's state as the agent reads it.
pub fn state_words(c: &CallView) -> String {
    let s = match c.state.as_str() {
        "calling" => "Calling…",
        "ringing" if c.incoming => "Ringing",
        "ringing" => "Ringing…",
        "early" => "Ringing (early media)",
        "connected" if c.remote_hold => "On hold by the other side",
        "connected" => "Connected",
        "held" => "On hold",
        "ending" => "Ending…",
        "ended" => "Ended",
        other => other,
    };
    s.to_string()
}

fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{:02}:{:02}", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_entries_redial_their_uri() {
        assert_eq!(redial_target("\"Bob\" <sip:201@pbx>;tag=1"), "sip:201@pbx");
        assert_eq!(redial_target("sip:600@pbx;tag=x"), "sip:600@pbx");
        assert_eq!(
            redial_target("<sip:7@10.0.0.1:5060>"),
            "sip:7@10.0.0.1:5060"
        );
    }

    #[test]
    fn durations_read_like_a_clock() {
        assert_eq!(format_duration(Duration::from_secs(0)), "00:00");
        assert_eq!(format_duration(Duration::from_secs(75)), "01:15");
        assert_eq!(format_duration(Duration::from_secs(3725)), "1:02:05");
    }
}
