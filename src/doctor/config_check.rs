//! (a) Config sanity: the file loads (errors name file, line and key) and
//! the account to check exists.

use std::path::Path;

use super::{CheckResult, transport_name};
use crate::config::{AccountConfig, Config, LayerPaths};

/// The loaded config and the account to check, or the failed check.
pub(super) fn check(
    path: &Path,
    account: Option<&str>,
) -> Result<(CheckResult, Config, AccountConfig), CheckResult> {
    // The layers the phone runs with (the admin's system file and profile
    // under the user's file), so the doctor checks what the phone will use.
    let config = LayerPaths::discover(path.to_path_buf())
        .load(true)
        .map_err(|e| {
            let place = match (e.line, &e.key) {
                (Some(line), Some(key)) => {
                    format!("`{key}` at line {line} of {}", e.file.display())
                }
                (Some(line), None) => format!("line {line} of {}", e.file.display()),
                (None, Some(key)) => format!("`{key}` in {}", e.file.display()),
                (None, None) => e.file.display().to_string(),
            };
            CheckResult::failed(
                "config",
                e.to_string(),
                format!(
                    "Fix {place} (see docs/config.md); `softline config check {}` checks it again.",
                    e.file.display()
                ),
            )
        })?;
    let ids: Vec<&str> = config.accounts.iter().map(|a| a.id.as_str()).collect();
    let chosen = match account {
        Some(id) => config.accounts.iter().find(|a| a.id == id),
        None => config.accounts.first(),
    };
    let Some(chosen) = chosen.cloned() else {
        return Err(match account {
            Some(id) => CheckResult::failed(
                "config",
                format!(
                    "{}: no account `{id}` (accounts: {})",
                    path.display(),
                    if ids.is_empty() {
                        "none".to_string()
                    } else {
                        ids.join(", ")
                    }
                ),
                "Pass one of the account ids above with --account.",
            ),
            None => CheckResult::failed(
                "config",
                format!("{}: no [[account]] configured", path.display()),
                "Add an [[account]] with id, username, password and domain (see docs/config.md).",
            ),
        });
    };
    let mut evidence = format!(
        "{}: {} account(s); checking `{}`: sip:{}@{} over {}",
        path.display(),
        config.accounts.len(),
        chosen.id,
        chosen.username,
        chosen.domain(),
        transport_name(chosen.transport)
    );
    if chosen.first_hop() != chosen.domain() {
        evidence.push_str(&format!(" via {}", chosen.first_hop()));
    }
    if chosen.password.is_empty() {
        // Some servers trust by address; the REGISTER check will tell.
        evidence.push_str("\nno password set: only a server that trusts your address accepts that");
    }
    Ok((CheckResult::passed("config", evidence), config, chosen))
}
