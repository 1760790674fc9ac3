//! The account form of the first run (and of Settings → Account): what the
//! agent types, checked as they type, and written to the user's own config
//! file (never to an admin's file).

use std::path::Path;

use crate::config::{Config, HostPort, parse_fingerprint};

/// The form's fields, as typed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountForm {
    pub username: String,
    pub password: String,
    /// The SIP domain / server, `host[:port]`.
    pub server: String,
    /// `udp`, `tcp` or `tls`.
    pub transport: String,
    pub display_name: String,
    pub auth_username: String,
    pub outbound_proxy: String,
    pub tls_ca_file: String,
    pub tls_pin_sha256: String,
}

/// One problem with one field (shown beside it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

/// The id the form's account gets in the config (and in `ctl --account`).
pub const FORM_ACCOUNT_ID: &str = "main";

impl AccountForm {
    pub fn new() -> AccountForm {
        AccountForm {
            transport: "udp".into(),
            ..AccountForm::default()
        }
    }

    /// Fill the form from the configured account (the first one).
    pub fn from_config(config: &Config) -> AccountForm {
        let Some(a) = config.accounts.first() else {
            return AccountForm::new();
        };
        AccountForm {
            username: a.username.clone(),
            password: a.password.clone(),
            server: a.domain.get_ref().clone(),
            transport: format!("{:?}", a.transport).to_lowercase(),
            display_name: a.display_name.clone().unwrap_or_default(),
            auth_username: a.auth_username.clone().unwrap_or_default(),
            outbound_proxy: a
                .outbound_proxy
                .as_ref()
                .map(|p| p.get_ref().clone())
                .unwrap_or_default(),
            tls_ca_file: a
                .tls_ca_file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            tls_pin_sha256: a
                .tls_pin_sha256
                .as_ref()
                .map(|p| p.get_ref().clone())
                .unwrap_or_default(),
        }
    }

    /// Every problem, field by field (empty: the form can connect).
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let mut err = |field, message: String| errors.push(FieldError { field, message });
        let user = self.username.trim();
        if user.is_empty() {
            err("username", "Enter your extension or user name".into());
        } else if let Some(c) = user
            .chars()
            .find(|c| c.is_whitespace() || matches!(c, '@' | ':' | '<' | '>' | '"' | ';'))
        {
            err("username", format!("`{c}` is not allowed in a user name"));
        }
        if self.password.is_empty() {
            err("password", "Enter the SIP password (secret)".into());
        }
        let server = self.server.trim();
        if server.is_empty() {
            err("server", "Enter the server, e.g. pbx.example.com".into());
        } else if server.chars().any(char::is_whitespace) {
            err("server", "A server name cannot contain spaces".into());
        } else if let Err(e) = HostPort::parse(server) {
            err("server", format!("Not a server address: {e}"));
        }
        if !matches!(self.transport.as_str(), "udp" | "tcp" | "tls") {
            err("transport", "Choose UDP, TCP or TLS".into());
        }
        if self.auth_username.trim().chars().any(char::is_whitespace) {
            err(
                "auth_username",
                "An auth user name cannot contain spaces".into(),
            );
        }
        let proxy = self.outbound_proxy.trim();
        if !proxy.is_empty()
            && let Err(e) = HostPort::parse(proxy)
        {
            err("outbound_proxy", format!("Not a proxy address: {e}"));
        }
        let ca = self.tls_ca_file.trim();
        if !ca.is_empty() && !Path::new(ca).is_file() {
            err("tls_ca_file", format!("No such file: {ca}"));
        }
        let pin = self.tls_pin_sha256.trim();
        if !pin.is_empty() && parse_fingerprint(pin).is_none() {
            err(
                "tls_pin_sha256",
                "A SHA-256 fingerprint is 64 hex digits (colons allowed)".into(),
            );
        }
        errors
    }

    /// The first problem with `field`, if any.
    pub fn error_for(errors: &[FieldError], field: &str) -> Option<String> {
        errors
            .iter()
            .find(|e| e.field == field)
            .map(|e| e.message.clone())
    }

    fn to_table(&self) -> toml::Table {
        let mut t = toml::Table::new();
        let mut put = |k: &str, v: &str| {
            let v = v.trim();
            if !v.is_empty() {
                t.insert(k.into(), toml::Value::String(v.to_string()));
            }
        };
        put("id", FORM_ACCOUNT_ID);
        put("username", &self.username);
        put("domain", &self.server);
        put("transport", &self.transport);
        put("display_name", &self.display_name);
        put("auth_username", &self.auth_username);
        put("outbound_proxy", &self.outbound_proxy);
        put("tls_ca_file", &self.tls_ca_file);
        put("tls_pin_sha256", &self.tls_pin_sha256);
        // Passwords keep their spaces: they are the agent's secret as typed.
        t.insert(
            "password".into(),
            toml::Value::String(self.password.clone()),
        );
        t
    }

    /// The user config text with this account in place of the form's
    /// account (other accounts and sections are kept), checked by the same
    /// parser the phone uses.
    /// `account_id`: the id of the account the form was filled from (an
    /// admin-provided account keeps its id, so the user file's entry merges
    /// with it); `None`: the form's own id.
    pub fn merged_config(
        &self,
        existing: &str,
        path: &Path,
        account_id: Option<&str>,
    ) -> Result<(String, Config), String> {
        let mut doc: toml::Table = if existing.trim().is_empty() {
            toml::Table::new()
        } else {
            existing
                .parse()
                .map_err(|e| format!("{}: cannot read the file: {e}", path.display()))?
        };
        let mut accounts: Vec<toml::Value> = match doc.remove("account") {
            Some(toml::Value::Array(a)) => a,
            _ => Vec::new(),
        };
        // The form edits the account it was filled from: the one with that
        // id in the user file, else the user file's first account when no
        // id is known, else a new entry with that id (merged by id with an
        // admin's account).
        let id_of = |v: &toml::Value| {
            v.get("id")
                .and_then(toml::Value::as_str)
                .map(str::to_string)
        };
        let pos = match account_id {
            Some(id) => accounts
                .iter()
                .position(|a| id_of(a).as_deref() == Some(id)),
            None => (!accounts.is_empty()).then_some(0),
        };
        match pos.and_then(|i| accounts.get_mut(i)) {
            Some(entry) => {
                let id = id_of(entry).unwrap_or_else(|| FORM_ACCOUNT_ID.into());
                let mut table = self.to_table();
                table.insert("id".into(), toml::Value::String(id));
                // Keys the form does not show stay as they were.
                if let toml::Value::Table(old) = entry {
                    for (k, v) in old.iter() {
                        if !table.contains_key(k) && !FORM_KEYS.contains(&k.as_str()) {
                            table.insert(k.clone(), v.clone());
                        }
                    }
                }
                *entry = toml::Value::Table(table);
            }
            None => {
                let mut table = self.to_table();
                if let Some(id) = account_id {
                    table.insert("id".into(), toml::Value::String(id.to_string()));
                }
                accounts.push(toml::Value::Table(table));
            }
        }
        doc.insert("account".into(), toml::Value::Array(accounts));
        let text = toml::to_string(&doc).map_err(|e| format!("cannot write the config: {e}"))?;
        let config = Config::parse(&text, path).map_err(|e| e.to_string())?;
        Ok((text, config))
    }
}

/// The user config text with the form account's password taken out and
/// `password_keyring = true` in its place (the password is in the OS
/// keyring, stored by the caller first).
pub fn password_to_keyring(text: &str, account_id: &str) -> Result<String, String> {
    let mut doc: toml::Table = text.parse().map_err(|e| format!("{e}"))?;
    if let Some(toml::Value::Array(accounts)) = doc.get_mut("account") {
        for a in accounts.iter_mut() {
            if let toml::Value::Table(t) = a
                && t.get("id").and_then(toml::Value::as_str) == Some(account_id)
            {
                t.remove("password");
                t.insert("password_keyring".into(), toml::Value::Boolean(true));
            }
        }
    }
    toml::to_string(&doc).map_err(|e| format!("cannot write the config: {e}"))
}

/// Keys the form owns: cleared in the file when the agent clears them.
const FORM_KEYS: &[&str] = &[
    "username",
    "domain",
    "transport",
    "display_name",
    "auth_username",
    "outbound_proxy",
    "tls_ca_file",
    "tls_pin_sha256",
    "password",
    "password_keyring",
];

/// Write the user config file: a temporary file renamed over the old one
/// (a crash never leaves half a file), readable by the user only.
pub fn write_user_config(path: &Path, text: &str) -> Result<(), String> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let tmp = path.with_extension("toml.tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    // Readable by the user only from the first byte (it may hold a password).
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = options.open(&tmp).and_then(|mut f| {
        use std::io::Write;
        f.write_all(text.as_bytes())?;
        f.sync_all()
    });
    written.map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled() -> AccountForm {
        AccountForm {
            username: "1001".into(),
            password: "s3cret word".into(),
            server: "pbx.example.com".into(),
            transport: "tls".into(),
            ..AccountForm::new()
        }
    }

    #[test]
    fn a_filled_form_validates_and_round_trips_through_the_config() {
        let form = filled();
        assert_eq!(form.validate(), vec![]);
        let (text, config) = form
            .merged_config("", Path::new("user.toml"), None)
            .unwrap();
        assert_eq!(config.accounts.len(), 1);
        assert_eq!(config.accounts[0].id, FORM_ACCOUNT_ID);
        assert_eq!(config.accounts[0].password, "s3cret word");
        assert!(text.contains("transport = \"tls\""), "{text}");
        assert_eq!(AccountForm::from_config(&config), form);
    }

    #[test]
    fn other_sections_and_unshown_keys_survive_an_edit() {
        let existing = "[media]\ncodecs = [\"pcma\"]\n\n[[account]]\nid = \"desk\"\nusername = \"1\"\ndomain = \"old\"\nauto_answer = \"always\"\ndisplay_name = \"Old\"\n";
        let mut form = filled();
        form.display_name.clear();
        let (_, config) = form
            .merged_config(existing, Path::new("u.toml"), None)
            .unwrap();
        assert_eq!(config.media.codecs, vec!["pcma".to_string()]);
        let a = &config.accounts[0];
        assert_eq!(a.id, "desk");
        assert_eq!(a.auto_answer, "always");
        assert_eq!(a.domain.get_ref(), "pbx.example.com");
        assert_eq!(
            a.display_name, None,
            "a cleared field is cleared in the file"
        );
    }

    #[test]
    fn each_bad_field_gets_its_own_message() {
        let form = AccountForm {
            username: "10 01".into(),
            password: String::new(),
            server: "pbx example".into(),
            transport: "sctp".into(),
            outbound_proxy: "[::1".into(),
            tls_pin_sha256: "abc".into(),
            tls_ca_file: "/nonexistent/ca.pem".into(),
            ..AccountForm::default()
        };
        let errors = form.validate();
        let fields: Vec<&str> = errors.iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            vec![
                "username",
                "password",
                "server",
                "transport",
                "outbound_proxy",
                "tls_ca_file",
                "tls_pin_sha256"
            ]
        );
        assert_eq!(
            AccountForm::error_for(&errors, "username").as_deref(),
            Some("` ` is not allowed in a user name")
        );
        assert_eq!(
            AccountForm::new().validate()[2].message,
            "Enter the server, e.g. pbx.example.com"
        );
    }

    #[test]
    fn the_form_edits_the_account_it_came_from() {
        let existing = "[[account]]\nid = \"main\"\nusername = \"1\"\ndomain = \"old\"\n";
        // Filled from an admin's account `corp`: a new entry with that id,
        // the user's own `main` untouched.
        let (_, c) = filled()
            .merged_config(existing, Path::new("u.toml"), Some("corp"))
            .unwrap();
        let ids: Vec<&str> = c.accounts.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids, ["main", "corp"]);
        assert_eq!(c.accounts[0].domain.get_ref(), "old");
        assert_eq!(c.accounts[1].domain.get_ref(), "pbx.example.com");
        // Filled from `main`: that entry changes.
        let (_, c) = filled()
            .merged_config(existing, Path::new("u.toml"), Some("main"))
            .unwrap();
        assert_eq!(c.accounts.len(), 1);
        assert_eq!(c.accounts[0].domain.get_ref(), "pbx.example.com");
    }

    #[cfg(unix)]
    #[test]
    fn the_user_file_is_private_from_the_start() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("softline-form-{}", std::process::id()));
        let path = dir.join("softline.toml");
        write_user_config(&path, "x = 1\n").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(!path.with_extension("toml.tmp").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_password_in_the_keyring_leaves_the_file() {
        let (text, _) = filled()
            .merged_config("", Path::new("u.toml"), None)
            .unwrap();
        let moved = password_to_keyring(&text, FORM_ACCOUNT_ID).unwrap();
        assert!(!moved.contains("s3cret"), "{moved}");
        assert!(moved.contains("password_keyring = true"), "{moved}");
        let c = Config::parse(&moved, Path::new("u.toml")).unwrap();
        assert!(c.accounts[0].password_keyring && c.accounts[0].password.is_empty());
    }

    #[test]
    fn an_unreadable_existing_file_is_an_error_not_a_loss() {
        let err = filled()
            .merged_config("[[account]\nbroken", Path::new("u.toml"), None)
            .unwrap_err();
        assert!(err.starts_with("u.toml: cannot read the file"), "{err}");
    }
}
