//! Provisioned secrets stay out of the profile cache. A fetched profile is
//! cached with every secret value (`password`, `*_token`, … see
//! `is_secret_key`) replaced by `""`; the secrets go to the OS keyring
//! (service `softline`, user `profile:KEY.PATH`), and always to this
//! process's memory. When the cache is read, each emptied secret is put
//! back from memory or the keyring, exactly as the server wrote it (the
//! literal text is what is stored), so the admin's signature still
//! verifies over the restored bytes.
//!
//! Without a keyring the secrets live in memory only: this run works, and
//! a note says that an offline start will need the provisioning server
//! (the cached profile then lacks its passwords; a signed one cannot be
//! checked and is refused). Secrets are never logged.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use toml::de::{DeTable, DeValue};

use super::layers::is_secret_key;

/// Key path → the secret's literal text (quotes included) and whether the
/// keyring holds it too; this process only.
type Memory = BTreeMap<String, (String, bool)>;
static MEMORY: Mutex<Memory> = Mutex::new(BTreeMap::new());

/// `CACHE.secrets` beside the cache: the key paths whose secrets were
/// taken out (no values), so an empty value the admin wrote stays empty.
pub(super) fn list_path(cache: &Path) -> PathBuf {
    let mut name = cache.file_name().unwrap_or_default().to_os_string();
    name.push(".secrets");
    cache.with_file_name(name)
}

/// The text of `CACHE.secrets`.
pub(super) fn list_text(secrets: &[(String, String)]) -> String {
    secrets.iter().map(|(p, _)| format!("{p}\n")).collect()
}

fn keyring_user(path: &str) -> String {
    format!("profile:{path}")
}

/// A secret value of a profile text: key path, byte span of its literal.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SecretValue {
    path: String,
    span: Range<usize>,
    empty: bool,
}

/// Every string value under a secret key, with the same key paths as
/// `layers::key_lines` (accounts by id, else `#index`).
fn secret_values(text: &str) -> Vec<SecretValue> {
    let mut out = Vec::new();
    if let Ok(doc) = DeTable::parse(text) {
        walk("", doc.get_ref(), &mut out);
    }
    out.sort_by_key(|s| s.span.start);
    out
}

fn walk(prefix: &str, table: &DeTable<'_>, out: &mut Vec<SecretValue>) {
    for (key, value) in table.iter() {
        let key = key.get_ref();
        let path = if prefix.is_empty() {
            key.to_string()
        } else {
            format!("{prefix}.{key}")
        };
        match value.get_ref() {
            DeValue::String(s) if is_secret_key(&path) => out.push(SecretValue {
                path,
                span: value.span(),
                empty: s.is_empty(),
            }),
            DeValue::Table(t) => walk(&path, t, out),
            DeValue::Array(items) if path == "account" => {
                for (i, item) in items.iter().enumerate() {
                    let DeValue::Table(t) = item.get_ref() else {
                        continue;
                    };
                    let seg = super::layers::de_account_segment(t, i);
                    walk(&format!("{path}.{seg}"), t, out);
                }
            }
            _ => {}
        }
    }
}

/// The profile without its secrets, and the secrets (key path, literal).
/// Also the paths of secrets the profile leaves empty (their stored
/// values must not come back).
pub(super) fn strip(text: &str) -> (String, Vec<(String, String)>, Vec<String>) {
    let mut stripped = String::with_capacity(text.len());
    let mut secrets = Vec::new();
    let mut empty = Vec::new();
    let mut at = 0;
    for s in secret_values(text) {
        let (Some(before), Some(literal)) = (text.get(at..s.span.start), text.get(s.span.clone()))
        else {
            continue;
        };
        if s.empty {
            empty.push(s.path);
            continue;
        }
        stripped.push_str(before);
        stripped.push_str("\"\"");
        secrets.push((s.path, literal.to_string()));
        at = s.span.end;
    }
    stripped.push_str(text.get(at..).unwrap_or(""));
    (stripped, secrets, empty)
}

/// Put the emptied secrets of a cached profile back, from `lookup` (key
/// path → literal, and whether it came from the keyring). Returns the
/// text and notes (never a secret).
fn restore_with(
    text: &str,
    stripped: &[String],
    lookup: impl Fn(&str) -> Option<(String, bool)>,
) -> (String, Vec<String>) {
    let mut out = String::with_capacity(text.len());
    let mut notes = Vec::new();
    let mut at = 0;
    let mut memory_only = Vec::new();
    let values = secret_values(text);
    for s in values
        .into_iter()
        .filter(|s| s.empty && stripped.contains(&s.path))
    {
        let Some(before) = text.get(at..s.span.start) else {
            continue;
        };
        match lookup(&s.path) {
            Some((literal, from_keyring)) => {
                out.push_str(before);
                out.push_str(&literal);
                at = s.span.end;
                if !from_keyring {
                    memory_only.push(s.path);
                }
            }
            None => notes.push(format!(
                "`{}`: the provisioned secret is not in the keyring; an offline start \
                 needs the provisioning server",
                s.path
            )),
        }
    }
    out.push_str(text.get(at..).unwrap_or(""));
    if !memory_only.is_empty() {
        notes.push(format!(
            "no keyring: the provisioned secrets ({}) are kept in memory only; \
             an offline start will need the provisioning server",
            memory_only.join(", ")
        ));
    }
    (out, notes)
}

/// The cached profile with its secrets put back (this run's memory first:
/// it has the latest profile's; then the keyring), and notes for the log
/// and `status`.
pub(super) fn restore(text: &str, cache: &Path) -> (String, Vec<String>) {
    let listed = std::fs::read_to_string(list_path(cache)).unwrap_or_default();
    let stripped: Vec<String> = listed.lines().map(str::to_string).collect();
    let keyring_ok = std::cell::Cell::new(true);
    restore_with(text, &stripped, |path| {
        if let Some(kept) = MEMORY.lock().unwrap_or_else(|e| e.into_inner()).get(path) {
            return Some(kept.clone());
        }
        if !keyring_ok.get() {
            return None;
        }
        match super::secrets::SecretStore::get(&keyring_user(path)) {
            Ok(v) => v.map(|literal| (literal, true)),
            Err(_) => {
                // No keyring at all: do not ask again for every key.
                keyring_ok.set(false);
                None
            }
        }
    })
}

/// Keep the secrets of a profile about to be cached: in memory (so the
/// stripped cache can be validated and used by this run), then the
/// keyring. Returns the memory as it was, for [`forget`] when the profile
/// is refused.
pub(super) fn remember(secrets: &[(String, String)]) -> Memory {
    let mut memory = MEMORY.lock().unwrap_or_else(|e| e.into_inner());
    let before = memory.clone();
    for (path, literal) in secrets {
        memory.insert(path.clone(), (literal.clone(), false));
    }
    before
}

/// Undo [`remember`] (the profile was refused).
pub(super) fn forget(before: Memory) {
    *MEMORY.lock().unwrap_or_else(|e| e.into_inner()) = before;
}

/// The profile was accepted: its secrets into the keyring, and the
/// entries of secrets it leaves empty removed. A note when there is no
/// keyring (the secrets stay in memory only).
pub(super) fn commit(secrets: &[(String, String)], empty: &[String]) {
    let mut memory = MEMORY.lock().unwrap_or_else(|e| e.into_inner());
    for (path, literal) in secrets {
        match super::secrets::SecretStore::set(&keyring_user(path), literal) {
            Ok(()) => {
                if let Some(kept) = memory.get_mut(path) {
                    kept.1 = true;
                }
            }
            Err(e) => {
                tracing::warn!(
                    "provisioning: {e}: the provisioned secrets are kept in memory only; \
                     an offline start will need the provisioning server"
                );
                break;
            }
        }
    }
    for path in empty {
        let _ = super::secrets::SecretStore::delete(&keyring_user(path));
        memory.remove(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROFILE: &str = "[provisioning]\ntoken = 'tok'\n\n[[account]]\nid = \"main\"\n\
                           password = \"p\\\"w\"  # quoted\nusername = \"1\"\n\n\
                           [[account]]\nusername = \"2\"\nauth_password = \"\"\n";

    #[test]
    fn strip_empties_every_secret_and_restore_gives_the_exact_bytes_back() {
        let (stripped, secrets, empty) = strip(PROFILE);
        assert!(
            !stripped.contains("p\\\"w") && !stripped.contains("'tok'"),
            "{stripped}"
        );
        assert!(stripped.contains("password = \"\"  # quoted"), "{stripped}");
        assert_eq!(
            secrets,
            [
                ("provisioning.token".to_string(), "'tok'".to_string()),
                (
                    "account.main.password".to_string(),
                    "\"p\\\"w\"".to_string()
                ),
            ]
        );
        assert_eq!(empty, ["account.#1.auth_password"]);
        let listed: Vec<String> = secrets.iter().map(|(p, _)| p.clone()).collect();
        let found: BTreeMap<String, String> = secrets.into_iter().collect();
        // An empty secret the admin wrote is not looked up.
        let (back, notes) = restore_with(&stripped, &listed, |p| {
            assert_ne!(p, "account.#1.auth_password");
            found.get(p).map(|l| (l.clone(), true))
        });
        assert_eq!(back, PROFILE);
        let (back, notes2) = restore_with(&stripped, &listed, |p| {
            found.get(p).map(|l| (l.clone(), true))
        });
        assert_eq!(back, PROFILE);
        assert!(notes.is_empty() && notes2.is_empty(), "{notes:?}");
        // From memory only: the same bytes, and a note without the secret.
        let (back, notes) = restore_with(&stripped, &listed, |p| {
            found.get(p).map(|l| (l.clone(), false))
        });
        assert_eq!(back, PROFILE);
        assert_eq!(notes.len(), 1);
        assert!(notes[0].contains("memory only"), "{notes:?}");
        assert!(!notes[0].contains("tok'") && !notes[0].contains("p\\\"w"));
        // Nothing stored: the text stays stripped, with a note per secret.
        let (back, notes) = restore_with(&stripped, &listed, |_| None);
        assert_eq!(back, stripped);
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(notes[1].starts_with("`account.main.password`"), "{notes:?}");
    }
}
