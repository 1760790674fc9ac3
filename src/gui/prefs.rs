//! The window's own preferences (theme, scale): a small JSON file next to
//! the user's config, separate from the phone's settings.

use std::path::Path;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ThemeChoice {
    #[default]
    System,
    Dark,
    Light,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GuiPrefs {
    pub theme: ThemeChoice,
    /// egui zoom factor: 1.0 is the platform's own scale.
    pub ui_scale: f32,
    /// Desktop notifications for incoming calls (when the window is not in
    /// front) and missed calls.
    pub notifications: bool,
    /// Start Softline with the desktop session (Linux: an XDG autostart entry).
    pub autostart: bool,
    /// Closing the window hides it in the tray instead of quitting.
    /// `None`: on when a tray host shows our icon, off otherwise.
    pub close_to_tray: Option<bool>,
}

impl Default for GuiPrefs {
    fn default() -> GuiPrefs {
        GuiPrefs {
            theme: ThemeChoice::System,
            ui_scale: 1.0,
            notifications: true,
            autostart: false,
            close_to_tray: None,
        }
    }
}

impl GuiPrefs {
    /// Read the file; a missing or unreadable one gives the defaults (with
    /// a log line when it exists but cannot be read).
    pub fn load(path: &Path) -> GuiPrefs {
        let Ok(text) = std::fs::read_to_string(path) else {
            return GuiPrefs::default();
        };
        match serde_json::from_str::<GuiPrefs>(&text) {
            Ok(mut p) => {
                p.ui_scale = clamp_scale(p.ui_scale);
                p
            }
            Err(e) => {
                tracing::warn!("{}: ignored ({e})", path.display());
                GuiPrefs::default()
            }
        }
    }

    pub fn save(&self, path: &Path) -> Result<(), String> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let text = serde_json::to_string_pretty(self).map_err(|e| e.to_string())?;
        std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// The XDG autostart entry's path (`$XDG_CONFIG_HOME/autostart`), where
/// desktops look for programs to start with the session.
pub fn autostart_path() -> Option<std::path::PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(std::path::PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| {
            std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".config"))
        })?;
    Some(base.join("autostart").join("softline.desktop"))
}

/// Write or remove the autostart entry (Linux and other XDG desktops; on
/// Windows and macOS the installer's recipes own this).
pub fn set_autostart(path: &Path, on: bool) -> Result<(), String> {
    if !on {
        return match std::fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(format!("{}: {e}", path.display())),
        };
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let entry = "[Desktop Entry]\nType=Application\nName=Softline\nComment=SIP softphone\nExec=softline\nIcon=softline\nTerminal=false\nX-GNOME-Autostart-enabled=true\n";
    std::fs::write(path, entry).map_err(|e| format!("{}: {e}", path.display()))
}

/// Keep the scale usable whatever the file says.
fn clamp_scale(s: f32) -> f32 {
    if s.is_finite() {
        s.clamp(0.75, 2.5)
    } else {
        1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefs_round_trip_and_bad_files_fall_back() {
        let dir = std::env::temp_dir().join(format!("softline-prefs-{}", std::process::id()));
        let path = dir.join("gui.json");
        let p = GuiPrefs {
            theme: ThemeChoice::Dark,
            ui_scale: 1.5,
            notifications: false,
            autostart: true,
            close_to_tray: Some(true),
        };
        p.save(&path).unwrap();
        assert_eq!(GuiPrefs::load(&path), p);
        std::fs::write(&path, r#"{"theme":"light","ui_scale":40}"#).unwrap();
        assert_eq!(GuiPrefs::load(&path).ui_scale, 2.5);
        std::fs::write(&path, "{not json").unwrap();
        assert_eq!(GuiPrefs::load(&path), GuiPrefs::default());
        let auto = dir.join("autostart").join("softline.desktop");
        set_autostart(&auto, true).unwrap();
        assert!(
            std::fs::read_to_string(&auto)
                .unwrap()
                .contains("Exec=softline")
        );
        set_autostart(&auto, false).unwrap();
        assert!(!auto.exists());
        set_autostart(&auto, false).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
