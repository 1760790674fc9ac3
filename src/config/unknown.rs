//! Unknown keys are warnings, not errors: typos are common, and a phone
//! that refuses to start over `listen_upd` helps nobody. Each unknown key
//! is named with its file, line and key path, and with the known key it
//! most likely meant (edit distance ≤ 2). Wrong types and values stay
//! errors (serde and `Config::validate`). A warning names the key, never
//! its value, so a mistyped `pasword = "…"` does not reach the log.
//!
//! The known keys are taken from the config structs themselves (their
//! serialized form, where `None` fields are kept as `null`), so a field
//! added to a struct is known here without a second list.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

use super::{AccountConfig, Config};

/// Section name → its keys; `""` → the section names.
fn schema() -> &'static BTreeMap<String, Vec<String>> {
    static SCHEMA: OnceLock<BTreeMap<String, Vec<String>>> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let mut config = Config::default();
        if let Ok(account) =
            toml::from_str::<AccountConfig>("id = \"a\"\nusername = \"1\"\ndomain = \"x\"\n")
        {
            config.accounts.push(account);
        }
        let mut out = BTreeMap::new();
        let value = serde_json::to_value(&config).unwrap_or_default();
        let mut sections = Vec::new();
        for (section, body) in value.as_object().into_iter().flatten() {
            sections.push(section.clone());
            let fields = match body {
                serde_json::Value::Array(items) => items.first().and_then(|i| i.as_object()),
                serde_json::Value::Object(o) => Some(o),
                _ => None,
            };
            let keys = fields
                .map(|f| f.keys().cloned().collect())
                .unwrap_or_default();
            out.insert(section.clone(), keys);
        }
        out.insert(String::new(), sections);
        out
    })
}

/// An unknown key: its path (`sip.listen_upd`, `account.main.pasword`,
/// `sipp`) and the known key it is closest to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Unknown {
    pub path: String,
    pub suggestion: Option<String>,
}

/// The unknown keys of one parsed file (or layer). A known section of the
/// wrong type is left to serde, which reports it as an error.
pub(super) fn find(table: &toml::Table) -> Vec<Unknown> {
    let schema = schema();
    let known = |section: &str| schema.get(section).map(Vec::as_slice).unwrap_or(&[]);
    let mut out = Vec::new();
    let check = |out: &mut Vec<Unknown>, prefix: &str, section: &str, t: &toml::Table| {
        for key in t.keys() {
            if !known(section).contains(key) {
                out.push(Unknown {
                    path: format!("{prefix}.{key}"),
                    suggestion: closest(key, known(section)),
                });
            }
        }
    };
    for (section, value) in table {
        if !known("").contains(section) {
            out.push(Unknown {
                path: section.clone(),
                suggestion: closest(section, known("")),
            });
            continue;
        }
        match value {
            toml::Value::Table(t) => check(&mut out, section, section, t),
            toml::Value::Array(items) if section == "account" => {
                for (i, item) in items.iter().enumerate() {
                    if let Some(t) = item.as_table() {
                        let id = t.get("id").and_then(toml::Value::as_str);
                        let prefix = format!("account.{}", super::layers::account_segment(id, i));
                        check(&mut out, &prefix, section, t);
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// `FILE:LINE: unknown key `sip.listen_upd` is ignored (did you mean
/// `listen_udp`?)`, one per unknown key of `table`; `lines` maps key paths
/// to their lines in `file`.
pub(super) fn warnings(
    file: &Path,
    table: &toml::Table,
    lines: &BTreeMap<String, usize>,
) -> Vec<String> {
    find(table)
        .into_iter()
        .map(|u| {
            let mut place = file.display().to_string();
            if let Some(line) = lines.get(&u.path) {
                place.push_str(&format!(":{line}"));
            }
            let hint = u
                .suggestion
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            format!("{place}: unknown key `{}` is ignored{hint}", u.path)
        })
        .collect()
}

/// The known key closest to `key`, when at most 2 edits away (and closer
/// than the key is long, so `a` does not "mean" `id`).
fn closest(key: &str, known: &[String]) -> Option<String> {
    known
        .iter()
        .map(|k| (edit_distance(key, k), k))
        .filter(|(d, _)| *d <= 2 && *d < key.chars().count())
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k.clone())
}

/// Levenshtein distance (insertions, deletions, substitutions), by chars.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diag + usize::from(ca != *cb));
            diag = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("listen_upd", "listen_udp"), 2);
        assert_eq!(edit_distance("pasword", "password"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
    }

    #[test]
    fn unknown_sections_and_keys_with_suggestions() {
        let table: toml::Table = "[sip]\nlisten_upd = \"x\"\nt1_ms = 500\n[sipp]\na = 1\n\
             [[account]]\nid = \"main\"\npasword = \"hunter2\"\nzzzzzzzz = 1\n[lock]\nkey = []\n"
            .parse()
            .unwrap();
        let found = find(&table);
        let got: Vec<(&str, Option<&str>)> = found
            .iter()
            .map(|u| (u.path.as_str(), u.suggestion.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                ("account.main.pasword", Some("password")),
                ("account.main.zzzzzzzz", None),
                ("lock.key", Some("keys")),
                ("sip.listen_upd", Some("listen_udp")),
                ("sipp", Some("sip")),
            ]
        );
        let w = warnings(
            Path::new("/etc/x.toml"),
            &table,
            &BTreeMap::from([("account.main.pasword".to_string(), 8)]),
        );
        assert_eq!(
            w[0],
            "/etc/x.toml:8: unknown key `account.main.pasword` is ignored (did you mean `password`?)"
        );
        assert!(w.iter().all(|w| !w.contains("hunter2")), "{w:?}");
    }

    #[test]
    fn every_known_key_is_known() {
        let schema = schema();
        assert!(schema[""].contains(&"account".to_string()));
        assert!(schema["account"].contains(&"tls_pin_sha256".to_string()));
        assert!(schema["sip"].contains(&"listen_tcp".to_string()));
        assert!(schema["lock"].contains(&"keys".to_string()));
        assert!(schema["doctor"].contains(&"echo_extension".to_string()));
    }
}
