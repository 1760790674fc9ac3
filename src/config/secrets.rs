//! Account passwords in the OS keyring (`keyring`): the Secret Service
//! over D-Bus on Linux (GNOME Keyring, KWallet), the Credential Manager
//! on Windows, the Keychain on macOS. A password typed in the GUI goes
//! there, not into a file: the face calls [`store_password`] and writes
//! `password_keyring = true` for the account in the user file. At load,
//! an account with `password_keyring = true` and no `password` gets the
//! keyring's (see [`fill_from_keyring`]). Passwords are never logged.

use super::Config;

/// The keyring service name of Softline's entries.
pub const SERVICE: &str = "softline";

/// The keyring entry of one account: service `softline`, user
/// `ACCOUNT_ID:USER` (two accounts may share a user name).
fn entry(account_id: &str, user: &str) -> Result<keyring::Entry, String> {
    keyring::Entry::new(SERVICE, &format!("{account_id}:{user}"))
        .map_err(|e| format!("keyring: {e}"))
}

/// Store (or replace) the password of `account_id`'s `user`.
pub fn store_password(account_id: &str, user: &str, password: &str) -> Result<(), String> {
    entry(account_id, user)?
        .set_password(password)
        .map_err(|e| format!("cannot store the password in the keyring: {e}"))
}

/// The stored password, `None` when the keyring has none for this account.
pub fn load_password(account_id: &str, user: &str) -> Result<Option<String>, String> {
    match entry(account_id, user)?.get_password() {
        Ok(p) => Ok(Some(p)),
        Err(keyring::Error::NoEntry) => Ok(None),
        Err(e) => Err(format!("cannot read the keyring: {e}")),
    }
}

/// Forget the stored password (no error when there is none).
pub fn delete_password(account_id: &str, user: &str) -> Result<(), String> {
    match entry(account_id, user)?.delete_credential() {
        Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
        Err(e) => Err(format!("cannot delete the password from the keyring: {e}")),
    }
}

/// Other secrets in the keyring under `softline` / `USER` (the provisioned
/// profile's, see `profile_secrets.rs`).
pub(super) struct SecretStore;

impl SecretStore {
    fn entry(user: &str) -> Result<keyring::Entry, String> {
        keyring::Entry::new(SERVICE, user).map_err(|e| format!("keyring: {e}"))
    }
    pub(super) fn get(user: &str) -> Result<Option<String>, String> {
        match Self::entry(user)?.get_password() {
            Ok(p) => Ok(Some(p)),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(format!("cannot read the keyring: {e}")),
        }
    }
    pub(super) fn set(user: &str, secret: &str) -> Result<(), String> {
        Self::entry(user)?
            .set_password(secret)
            .map_err(|e| format!("cannot store in the keyring: {e}"))
    }
    pub(super) fn delete(user: &str) -> Result<(), String> {
        match Self::entry(user)?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(format!("cannot delete from the keyring: {e}")),
        }
    }
}

/// `softline config password ACCOUNT`: the account's password, one line
/// read from stdin, into the keyring under the account's digest user.
pub fn store_from_stdin(paths: &super::LayerPaths, account_id: &str) -> Result<(), String> {
    let config = paths.load(false).map_err(|e| e.to_string())?;
    let acc = config
        .accounts
        .iter()
        .find(|a| a.id == account_id)
        .ok_or_else(|| format!("no account `{account_id}` in the configuration"))?;
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the password: {e}"))?;
    let password = line.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        return Err("an empty password was given".into());
    }
    store_password(&acc.id, acc.auth_username(), password)
}

/// Give each account with `password_keyring = true` and no `password` the
/// keyring's password. Returns warnings (no entry, no keyring) without the
/// password in them.
pub fn fill_from_keyring(config: &mut Config) -> Vec<String> {
    fill_with(config, load_password)
}

fn fill_with(
    config: &mut Config,
    load: impl Fn(&str, &str) -> Result<Option<String>, String>,
) -> Vec<String> {
    let mut warnings = Vec::new();
    for acc in config
        .accounts
        .iter_mut()
        .filter(|a| a.password_keyring && a.password.is_empty())
    {
        let user = acc.auth_username().to_string();
        match load(&acc.id, &user) {
            Ok(Some(p)) => acc.password = p,
            Ok(None) => warnings.push(format!(
                "account `{}`: password_keyring is set but the keyring has no password for {user}",
                acc.id
            )),
            Err(e) => warnings.push(format!("account `{}`: {e}", acc.id)),
        }
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn only_keyring_accounts_without_a_password_are_filled() {
        let mut config = Config::parse(
            "[[account]]\nid = \"a\"\nusername = \"1\"\ndomain = \"x\"\npassword_keyring = true\n\
             [[account]]\nid = \"b\"\nusername = \"2\"\nauth_username = \"u2\"\ndomain = \"x\"\npassword_keyring = true\n\
             [[account]]\nid = \"c\"\nusername = \"3\"\ndomain = \"x\"\npassword = \"file\"\npassword_keyring = true\n\
             [[account]]\nid = \"d\"\nusername = \"4\"\ndomain = \"x\"\n",
            Path::new("t.toml"),
        )
        .unwrap();
        let asked = std::cell::RefCell::new(Vec::new());
        let warnings = fill_with(&mut config, |id, user| {
            asked.borrow_mut().push(format!("{id}:{user}"));
            Ok((id == "a").then(|| "from-keyring".to_string()))
        });
        assert_eq!(*asked.borrow(), ["a:1", "b:u2"]);
        let pw: Vec<&str> = config
            .accounts
            .iter()
            .map(|a| a.password.as_str())
            .collect();
        assert_eq!(pw, ["from-keyring", "", "file", ""]);
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("account `b`"), "{warnings:?}");
        assert!(!warnings[0].contains("from-keyring"));
    }
}
