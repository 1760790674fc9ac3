//! The tray icon: the phone's status at a glance (registered, registration
//! failed and why, in a call, do not disturb, missed calls) and a menu with
//! Show/Hide window, Do not disturb and Quit.
//!
//! Linux: a StatusNotifierItem with a `com.canonical.dbusmenu` menu on the
//! session bus (crate `ksni`, pure Rust over zbus), shown by KDE, GNOME with
//! the AppIndicator extension, XFCE, waybar and others. Without a tray host
//! (no `org.kde.StatusNotifierWatcher`) nothing breaks: the item waits, and
//! registers when a host appears. Windows and macOS: no tray yet ([`Tray`]
//! is inert there).
//!
//! The tray holds no phone logic: it shows a [`TrayState`] computed from the
//! view model ([`tray_state`]) and hands the window [`TrayAction`]s, which
//! the window turns into the same requests as its own buttons.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};

use super::link::Repaint;
use super::view::{Light, ViewModel, account_words};

/// What the agent picked in the tray.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrayAction {
    /// Show the window when hidden, hide it when shown (the icon's click too).
    ToggleWindow,
    /// Turn do-not-disturb on or off.
    Dnd(bool),
    /// Quit Softline (the window's close, without "close to tray").
    Quit,
}

/// How urgent the item is (the StatusNotifierItem `Status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Urgency {
    /// Registered and idle.
    Active,
    /// A call rings, a registration failed or calls were missed.
    NeedsAttention,
}

/// Everything the tray shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrayState {
    /// One line: `Softline — Registered`, `Softline — In a call`, …
    pub title: String,
    /// The details (each account's state in words, DND, missed calls).
    pub tooltip: String,
    pub urgency: Urgency,
    /// A freedesktop icon name for the state.
    pub icon_name: String,
    pub dnd: bool,
    /// The window is shown (the menu offers Hide), else Show.
    pub window_visible: bool,
}

impl Default for TrayState {
    fn default() -> TrayState {
        TrayState {
            title: "Softline".into(),
            tooltip: "Starting the phone…".into(),
            urgency: Urgency::Active,
            icon_name: "softline".into(),
            dnd: false,
            window_visible: true,
        }
    }
}

/// The tray's view of the view model: `missed` is the count of calls missed
/// since the agent last looked.
pub fn tray_state(vm: &ViewModel, missed: usize, window_visible: bool) -> TrayState {
    let dnd = vm.settings.as_ref().is_some_and(|s| s.dnd);
    let ringing = vm.ringing_in().map(|c| c.remote_short());
    let in_call = vm
        .calls
        .iter()
        .any(|c| c.is_live() && !c.is_ringing_in() && c.state != "ending");
    let failed = vm.accounts.iter().find(|a| a.state == "failed");
    let registered = vm.accounts.iter().any(|a| a.state == "registered");
    let headline = if let Some(who) = &ringing {
        format!("Incoming call from {who}")
    } else if in_call {
        "In a call".to_string()
    } else if failed.is_some() {
        "Registration failed".to_string()
    } else if registered {
        "Registered".to_string()
    } else if vm.accounts.is_empty() {
        "No account".to_string()
    } else {
        "Not registered".to_string()
    };
    let mut title = format!("Softline — {headline}");
    if dnd {
        title.push_str(" (do not disturb)");
    }
    let mut lines: Vec<String> = vm
        .accounts
        .iter()
        .map(|a| {
            format!(
                "{}: {}",
                super::view::short_party(&a.aor),
                account_words(a).1
            )
        })
        .collect();
    if dnd {
        lines.push("Do not disturb: incoming calls are turned away".into());
    }
    if missed > 0 {
        lines.push(if missed == 1 {
            "1 missed call".to_string()
        } else {
            format!("{missed} missed calls")
        });
    }
    if lines.is_empty() {
        lines.push(headline.clone());
    }
    let attention = ringing.is_some() || failed.is_some() || missed > 0;
    let icon_name = if ringing.is_some() || in_call {
        "call-start"
    } else if failed.is_some_and(|a| account_words(a).0 == Light::Red) {
        "network-error"
    } else if dnd {
        "notifications-disabled"
    } else {
        "softline"
    };
    TrayState {
        title,
        tooltip: lines.join("\n"),
        urgency: if attention {
            Urgency::NeedsAttention
        } else {
            Urgency::Active
        },
        icon_name: icon_name.into(),
        dnd,
        window_visible,
    }
}

/// The running tray (or nothing, where there is no tray yet).
pub struct Tray {
    updates: Option<Sender<TrayState>>,
    actions: Receiver<TrayAction>,
    /// A tray host (StatusNotifierWatcher) has our item.
    host: Arc<AtomicBool>,
    last: Option<TrayState>,
}

impl Tray {
    /// Start the tray in the background (never blocks the window); `wake`
    /// asks the window for a frame when the agent picks something.
    pub fn start(wake: Repaint) -> Tray {
        let (action_tx, actions) = channel();
        let host = Arc::new(AtomicBool::new(false));
        let updates = platform::start(action_tx, wake, host.clone());
        Tray {
            updates,
            actions,
            host,
            last: None,
        }
    }

    /// A tray host shows our item (so hiding the window to the tray is safe).
    pub fn host_present(&self) -> bool {
        self.host.load(Ordering::Acquire)
    }

    /// Show this state (only changes are sent).
    pub fn update(&mut self, state: TrayState) {
        if self.last.as_ref() == Some(&state) {
            return;
        }
        if let Some(tx) = &self.updates
            && tx.send(state.clone()).is_err()
        {
            self.updates = None;
        }
        self.last = Some(state);
    }

    /// What the agent picked since the last call (never blocks).
    pub fn actions(&self) -> Vec<TrayAction> {
        self.actions.try_iter().collect()
    }
}

#[cfg(not(target_os = "linux"))]
mod platform {
    use super::*;

    /// No tray on this platform yet.
    pub fn start(
        _actions: Sender<TrayAction>,
        _wake: Repaint,
        _host: Arc<AtomicBool>,
    ) -> Option<Sender<TrayState>> {
        None
    }
}

#[cfg(target_os = "linux")]
mod platform {
    use super::*;
    use ksni::blocking::TrayMethods;

    /// Our StatusNotifierItem: the state to show and where picks go.
    struct Item {
        state: TrayState,
        actions: Sender<TrayAction>,
        wake: Repaint,
        host: Arc<AtomicBool>,
    }

    impl Item {
        fn pick(&self, a: TrayAction) {
            if self.actions.send(a).is_ok() {
                (self.wake)();
            }
        }
    }

    impl ksni::Tray for Item {
        fn id(&self) -> String {
            "softline".into()
        }
        fn category(&self) -> ksni::Category {
            ksni::Category::Communications
        }
        fn title(&self) -> String {
            self.state.title.clone()
        }
        fn status(&self) -> ksni::Status {
            match self.state.urgency {
                Urgency::Active => ksni::Status::Active,
                Urgency::NeedsAttention => ksni::Status::NeedsAttention,
            }
        }
        fn icon_name(&self) -> String {
            self.state.icon_name.clone()
        }
        fn attention_icon_name(&self) -> String {
            self.state.icon_name.clone()
        }
        fn tool_tip(&self) -> ksni::ToolTip {
            ksni::ToolTip {
                icon_name: self.state.icon_name.clone(),
                icon_pixmap: Vec::new(),
                title: self.state.title.clone(),
                description: self.state.tooltip.clone(),
            }
        }
        fn activate(&mut self, _x: i32, _y: i32) {
            self.pick(TrayAction::ToggleWindow);
        }
        fn menu(&self) -> Vec<ksni::MenuItem<Self>> {
            use ksni::menu::{CheckmarkItem, StandardItem};
            let show = if self.state.window_visible {
                "Hide window"
            } else {
                "Show window"
            };
            let dnd = self.state.dnd;
            vec![
                StandardItem {
                    label: show.into(),
                    activate: Box::new(|t: &mut Item| t.pick(TrayAction::ToggleWindow)),
                    ..Default::default()
                }
                .into(),
                CheckmarkItem {
                    label: "Do not disturb".into(),
                    checked: dnd,
                    // The checkmark follows the core's answer (a new state),
                    // not the click.
                    activate: Box::new(move |t: &mut Item| t.pick(TrayAction::Dnd(!dnd))),
                    ..Default::default()
                }
                .into(),
                ksni::MenuItem::Separator,
                StandardItem {
                    label: "Quit".into(),
                    icon_name: "application-exit".into(),
                    activate: Box::new(|t: &mut Item| t.pick(TrayAction::Quit)),
                    ..Default::default()
                }
                .into(),
            ]
        }
        fn watcher_online(&self) {
            tracing::info!("tray: a tray host appeared");
            self.host.store(true, Ordering::Release);
        }
        fn watcher_offline(&self, reason: ksni::OfflineReason) -> bool {
            tracing::info!("tray: no tray host ({reason:?}); the item waits for one");
            self.host.store(false, Ordering::Release);
            // Keep the item: a host that starts later picks it up.
            true
        }
    }

    pub fn start(
        actions: Sender<TrayAction>,
        wake: Repaint,
        host: Arc<AtomicBool>,
    ) -> Option<Sender<TrayState>> {
        let (tx, rx) = channel::<TrayState>();
        let spawned = std::thread::Builder::new()
            .name("softline-tray".into())
            .spawn(move || {
                // Until told otherwise by `watcher_offline`, a registration
                // that went through means a host has the item.
                host.store(true, Ordering::Release);
                let item = Item {
                    state: TrayState::default(),
                    actions,
                    wake,
                    host: host.clone(),
                };
                let handle = match item.assume_sni_available(true).spawn() {
                    Ok(h) => h,
                    Err(e) => {
                        host.store(false, Ordering::Release);
                        tracing::info!("no tray icon: {e}");
                        return;
                    }
                };
                for state in rx {
                    if handle
                        .update(|item: &mut Item| item.state = state)
                        .is_none()
                    {
                        break;
                    }
                }
                handle.shutdown().wait();
            });
        match spawned {
            Ok(_) => Some(tx),
            Err(e) => {
                tracing::warn!("no tray icon: {e}");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn the_state_says_registration_calls_dnd_and_missed_calls() {
        let now = Instant::now();
        let mut vm = ViewModel::default();
        vm.apply_event(
            r#"{"event":"account","id":"a","aor":"sip:201@pbx","state":"registered","transport":"udp"}"#,
            now,
        );
        let s = tray_state(&vm, 0, true);
        assert_eq!(s.title, "Softline — Registered");
        assert_eq!(s.tooltip, "201: Registered over UDP");
        assert_eq!(s.urgency, Urgency::Active);
        vm.apply_event(
            r#"{"event":"account","id":"a","aor":"sip:201@pbx","state":"failed","reason":"401 Unauthorized","cause":"credentials","transport":"udp"}"#,
            now,
        );
        vm.apply_event(r#"{"event":"settings","dnd":true,"lines":2}"#, now);
        let s = tray_state(&vm, 2, false);
        assert_eq!(s.title, "Softline — Registration failed (do not disturb)");
        assert!(
            s.tooltip.contains("Password rejected (401 Unauthorized)"),
            "{}",
            s.tooltip
        );
        assert!(s.tooltip.contains("2 missed calls"), "{}", s.tooltip);
        assert!(s.dnd && !s.window_visible);
        assert_eq!(s.urgency, Urgency::NeedsAttention);
        vm.apply_event(
            r#"{"event":"call","id":1,"direction":"outgoing","state":"connected","remote":"<sip:600@pbx>"}"#,
            now,
        );
        assert!(
            tray_state(&vm, 0, true)
                .title
                .starts_with("Softline — In a call")
        );
    }
}
