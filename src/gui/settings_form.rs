//! Settings the agent may change from the window: sound devices (input,
//! output, ring), codec order and the microphone processing. Written to
//! the user's own config file like the account form; the phone restarts
//! with them when no call is up.

use std::path::Path;

use crate::config::Config;

/// Codecs the agent can order (names as `[media] codecs` takes them).
pub const ALL_CODECS: &[&str] = &["opus", "G722", "PCMU", "PCMA"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsForm {
    pub input: String,
    pub output: String,
    /// Empty: ring where the output is.
    pub ring: String,
    /// Enabled codecs, preferred first.
    pub codecs: Vec<String>,
    pub echo_cancellation: bool,
    pub noise_suppression: bool,
    pub auto_gain: bool,
}

impl SettingsForm {
    pub fn from_config(c: &Config) -> SettingsForm {
        SettingsForm {
            input: c.audio.input.clone(),
            output: c.audio.output.clone(),
            ring: c.audio.ring.clone().unwrap_or_default(),
            codecs: c.media.codecs.clone(),
            echo_cancellation: c.audio.echo_cancellation,
            noise_suppression: c.audio.noise_suppression,
            auto_gain: c.audio.auto_gain,
        }
    }

    /// Move codec `i` one place up (towards preferred).
    pub fn codec_up(&mut self, i: usize) {
        if i > 0 && i < self.codecs.len() {
            self.codecs.swap(i - 1, i);
        }
    }

    /// Switch a codec on (appended last) or off; the last one stays on.
    pub fn toggle_codec(&mut self, name: &str) {
        if let Some(i) = self
            .codecs
            .iter()
            .position(|c| c.eq_ignore_ascii_case(name))
        {
            if self.codecs.len() > 1 {
                self.codecs.remove(i);
            }
        } else {
            self.codecs.push(name.to_string());
        }
    }

    /// The user config text with these settings in it (everything else
    /// kept), checked by the phone's own parser.
    pub fn merged_config(&self, existing: &str, path: &Path) -> Result<(String, Config), String> {
        let mut doc: toml::Table = if existing.trim().is_empty() {
            toml::Table::new()
        } else {
            existing
                .parse()
                .map_err(|e| format!("{}: cannot read the file: {e}", path.display()))?
        };
        let section = |doc: &mut toml::Table, name: &str| -> toml::Table {
            match doc.remove(name) {
                Some(toml::Value::Table(t)) => t,
                _ => toml::Table::new(),
            }
        };
        let mut audio = section(&mut doc, "audio");
        let s = |v: &str| toml::Value::String(v.to_string());
        audio.insert("input".into(), s(&self.input));
        audio.insert("output".into(), s(&self.output));
        if self.ring.trim().is_empty() {
            audio.remove("ring");
        } else {
            audio.insert("ring".into(), s(&self.ring));
        }
        audio.insert(
            "echo_cancellation".into(),
            toml::Value::Boolean(self.echo_cancellation),
        );
        audio.insert(
            "noise_suppression".into(),
            toml::Value::Boolean(self.noise_suppression),
        );
        audio.insert("auto_gain".into(), toml::Value::Boolean(self.auto_gain));
        doc.insert("audio".into(), toml::Value::Table(audio));
        let mut media = section(&mut doc, "media");
        media.insert(
            "codecs".into(),
            toml::Value::Array(self.codecs.iter().map(|c| s(c)).collect()),
        );
        doc.insert("media".into(), toml::Value::Table(media));
        let text = toml::to_string(&doc).map_err(|e| format!("cannot write the config: {e}"))?;
        let config = Config::parse(&text, path).map_err(|e| e.to_string())?;
        Ok((text, config))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_round_trip_and_keep_the_rest_of_the_file() {
        let existing = "[sip]\nlisten_udp = \"127.0.0.1:0\"\n\n[audio]\ninput = \"null\"\nlimiter = false\n\n[[account]]\nid = \"a\"\nusername = \"1\"\ndomain = \"pbx\"\n";
        let c = Config::parse(existing, Path::new("u.toml")).unwrap();
        let mut f = SettingsForm::from_config(&c);
        assert_eq!(f.codecs, ["opus", "G722", "PCMU", "PCMA"]);
        f.codec_up(2);
        f.toggle_codec("opus");
        f.output = "Jabra".into();
        f.ring = "default".into();
        f.echo_cancellation = false;
        let (_, c2) = f.merged_config(existing, Path::new("u.toml")).unwrap();
        assert_eq!(c2.media.codecs, ["PCMU", "G722", "PCMA"]);
        assert_eq!(c2.audio.output, "Jabra");
        assert_eq!(c2.audio.ring.as_deref(), Some("default"));
        assert!(!c2.audio.echo_cancellation);
        assert!(!c2.audio.limiter, "keys the form does not show are kept");
        assert_eq!(c2.accounts.len(), 1);
        assert_eq!(SettingsForm::from_config(&c2), f);
    }

    #[test]
    fn the_last_codec_cannot_be_switched_off() {
        let mut f = SettingsForm::from_config(&Config::parse("", Path::new("u")).unwrap());
        for c in ALL_CODECS {
            f.toggle_codec(c);
        }
        assert_eq!(f.codecs.len(), 1);
        f.codec_up(0);
        f.codec_up(9);
        assert_eq!(f.codecs.len(), 1);
    }
}
