//! Admin locks: `[lock] keys = ["account.*.password", "media.codecs", "audio"]`.
//!
//! A key path is dotted: `section.key`, or `account.ID.key` for an account
//! (`*` stands for any one segment, so `account.*.password` is every
//! account's password). A path locks everything under it: `audio` locks the
//! whole `[audio]` section, `account` every account. Locks come from the
//! admin's layers (system file, provisioned profile); a later layer's value
//! for a locked key is ignored with a warning (see `layers.rs`).

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{ConfigError, key_line};

/// `[lock]`: key paths later layers may not change.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct LockSection {
    /// Locked key paths (`section`, `section.key`, `account.*.key`).
    pub keys: Vec<String>,
}

/// Does lock `pattern` cover key `path`? The pattern's segments must be a
/// prefix of the path's, `*` matching any one segment.
pub fn matches(pattern: &str, path: &str) -> bool {
    let pat: Vec<&str> = pattern.split('.').collect();
    let key: Vec<&str> = path.split('.').collect();
    pat.len() <= key.len() && pat.iter().zip(key.iter()).all(|(p, k)| *p == "*" || p == k)
}

/// The sections a lock may name (the top-level keys of the config).
const SECTIONS: &[&str] = &[
    "sip",
    "account",
    "audio",
    "media",
    "trace",
    "phone",
    "history",
    "provisioning",
    "doctor",
];

/// Check the lock patterns: non-empty dotted paths over a known section, so
/// an admin's typo is an error instead of a lock that silently locks nothing.
pub(super) fn validate(locks: &LockSection, text: &str, path: &Path) -> Result<(), ConfigError> {
    for pattern in &locks.keys {
        let segments: Vec<&str> = pattern.split('.').collect();
        let well_formed = segments.iter().all(|s| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '*'))
        });
        let known = segments
            .first()
            .is_some_and(|s| SECTIONS.contains(s) || *s == "*");
        if !well_formed || !known {
            return Err(ConfigError {
                file: path.to_path_buf(),
                line: key_line(text, "lock", "keys"),
                key: Some("lock.keys".into()),
                message: format!(
                    "`{pattern}` is not a key path such as `media.codecs`, `audio` or \
                     `account.*.password` (sections: {})",
                    SECTIONS.join(", ")
                ),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_cover_paths_below_them() {
        assert!(matches("audio", "audio.input"));
        assert!(matches("media.codecs", "media.codecs"));
        assert!(!matches("media.codecs", "media.ptime_ms"));
        assert!(matches("account.*.password", "account.main.password"));
        assert!(!matches("account.*.password", "account.main.username"));
        assert!(matches("account", "account.main.password"));
        assert!(matches("account.main", "account.main.domain"));
        assert!(!matches("account.main", "account.other.domain"));
        assert!(!matches("media.codecs.x", "media.codecs"));
        assert!(!matches("audi", "audio.input"));
    }

    #[test]
    fn a_lock_on_an_unknown_section_is_an_error_with_its_line() {
        let locks = LockSection {
            keys: vec!["media.codecs".into(), "meida.codecs".into()],
        };
        let text = "[lock]\n\nkeys = [\"media.codecs\", \"meida.codecs\"]\n";
        let e = validate(&locks, text, Path::new("sys.toml")).unwrap_err();
        assert_eq!((e.line, e.key.as_deref()), (Some(3), Some("lock.keys")));
        assert!(e.message.contains("meida.codecs"), "{}", e.message);
        let ok = LockSection {
            keys: vec!["account.*.password".into(), "audio".into()],
        };
        assert!(validate(&ok, "", Path::new("sys.toml")).is_ok());
    }
}
