//! Passwords in the OS keyring, for real: a private D-Bus session
//! (`dbus-run-session`) with `gnome-keyring-daemon` unlocked, headless.
//! `softline config password ACCOUNT` stores the password there (the same
//! `config::secrets::store_password` the GUI calls) and the layered config
//! then fills the account that says `password_keyring = true`.
#![cfg(unix)]

mod support;

use std::process::Command;

use serde_json::Value;
use support::TestDir;

const SOFTLINE: &str = env!("CARGO_BIN_EXE_softline");

#[test]
fn keyring_password_is_stored_and_filled_at_load() {
    for tool in ["dbus-run-session", "gnome-keyring-daemon"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap()
            .success();
        assert!(found, "{tool} is missing: `cargo xtask deps` installs it");
    }
    let dir = TestDir::new("keyring");
    let user = dir.file("user.toml");
    std::fs::write(
        &user,
        "[[account]]\nid = \"desk\"\nusername = \"1001\"\nauth_username = \"agent-1001\"\n\
         domain = \"127.0.0.1\"\nregister = false\npassword_keyring = true\n\n\
         [[account]]\nid = \"spare\"\nusername = \"1002\"\ndomain = \"127.0.0.1\"\n\
         register = false\npassword_keyring = true\n",
    )
    .unwrap();
    // Inside one session bus: unlock a fresh login keyring, store, then show.
    let script = format!(
        "echo -n unlock-pw | gnome-keyring-daemon --unlock --components=secrets >/dev/null || exit 90\n\
         echo 'kr-s3cret' | {SOFTLINE} --config {u} config password desk || exit 91\n\
         {SOFTLINE} --config {u} config password nobody </dev/null 2>{d}/nobody.err && exit 92\n\
         {SOFTLINE} --config {u} config show --effective --json\n",
        u = user.display(),
        d = dir.path.display(),
    );
    let out = Command::new("dbus-run-session")
        .args(["--", "sh", "-c", &script])
        .env("HOME", &dir.path)
        .env("XDG_DATA_HOME", &dir.path)
        .env("XDG_RUNTIME_DIR", &dir.path)
        .env("SOFTLINE_SYSTEM_CONFIG", dir.file("no-system.toml"))
        .env_remove("SOFTLINE_PROFILE")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}\n{stdout}\n{stderr}", out.status);
    let nobody = std::fs::read_to_string(dir.file("nobody.err")).unwrap();
    assert!(nobody.contains("no account `nobody`"), "{nobody}");
    let shown: Value = serde_json::from_str(stdout.trim()).unwrap();
    let value = |key: &str| {
        shown["values"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["key"] == key)
            .unwrap_or_else(|| panic!("{key} not in {shown}"))["value"]
            .clone()
    };
    // Filled (shown redacted), and the secret itself is nowhere.
    assert_eq!(value("account.desk.password"), "***");
    assert_eq!(value("account.spare.password"), "");
    assert!(!stdout.contains("kr-s3cret") && !stderr.contains("kr-s3cret"));
    let warnings = shown["warnings"].to_string();
    assert!(
        warnings.contains(
            "account `spare`: password_keyring is set but the keyring has no password for 1002"
        ),
        "{warnings}"
    );
    assert!(!warnings.contains("account `desk`"), "{warnings}");
}
