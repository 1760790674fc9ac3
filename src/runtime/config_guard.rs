//! The config's say over the control channel: a ctl command that changes a
//! setting the administrator locked is refused (`… is locked by the
//! administrator (FILE)`) and changes nothing; `status` carries the
//! config's warnings (unknown keys, ignored locked values, readable
//! passwords, provisioning notes) as `config_warnings`.

use crate::api::{Reply, Request};
use crate::config::Config;
use crate::phone::ForwardMode;

/// The config keys a request would change, if it changes settings.
pub fn keys_changed(request: &Request) -> &'static [&'static str] {
    const FORWARD_ALL: &[&str] = &[
        "phone.forward_always",
        "phone.forward_busy",
        "phone.forward_no_answer",
    ];
    match request {
        Request::Dnd { .. } => &["phone.dnd"],
        Request::Forward { mode, .. } => match mode {
            ForwardMode::Always => &["phone.forward_always"],
            ForwardMode::Busy => &["phone.forward_busy"],
            ForwardMode::NoAnswer => &["phone.forward_no_answer"],
            // `off` clears every kind of forwarding.
            ForwardMode::Off => FORWARD_ALL,
        },
        Request::Trace { .. } => &["trace.enabled"],
        _ => &[],
    }
}

/// Why `request` is refused: the first locked key it would change.
pub fn refusal(config: &Config, request: &Request) -> Option<String> {
    let key = keys_changed(request)
        .iter()
        .find(|key| config.is_locked(key))?;
    let at = config
        .lock_origin(key)
        .map(|at| format!(" ({})", at.file.display()))
        .unwrap_or_default();
    Some(format!("`{key}` is locked by the administrator{at}"))
}

/// Run a ctl request unless it changes a locked setting; a `status`
/// reply gets `config_warnings`.
pub fn guarded(config: &Config, request: Request, run: impl FnOnce(Request) -> Reply) -> Reply {
    if let Some(why) = refusal(config, &request) {
        return Reply::err(why);
    }
    let status = matches!(request, Request::Status);
    let mut reply = run(request);
    if status && let Some(result) = reply.result.as_mut().filter(|r| r.is_object()) {
        result["config_warnings"] = serde_json::json!(config.provenance.warnings);
    }
    reply
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn locked(keys: &[&str]) -> Config {
        let mut c = Config::parse("", Path::new("u.toml")).unwrap();
        c.lock.keys = keys.iter().map(|k| k.to_string()).collect();
        c
    }

    #[test]
    fn locked_settings_refuse_their_commands_only() {
        let c = locked(&["phone.forward_busy", "trace"]);
        let fwd = |mode| Request::Forward { mode, target: None };
        assert!(refusal(&c, &fwd(ForwardMode::Always)).is_none());
        let e = refusal(&c, &fwd(ForwardMode::Busy)).unwrap();
        assert!(
            e.starts_with("`phone.forward_busy` is locked by the administrator"),
            "{e}"
        );
        assert!(refusal(&c, &fwd(ForwardMode::Off)).is_some());
        assert!(refusal(&c, &Request::Trace { on: true }).is_some());
        assert!(refusal(&c, &Request::Dnd { on: true }).is_none());
        assert!(refusal(&c, &Request::Status).is_none());
        let ran = guarded(&c, Request::Dnd { on: true }, |_| {
            Reply::ok(serde_json::json!("Done"))
        });
        assert!(ran.ok);
        let refused = guarded(&c, Request::Trace { on: false }, |_| unreachable!());
        assert!(!refused.ok);
    }

    #[test]
    fn status_carries_the_config_warnings() {
        let mut c = locked(&[]);
        c.provenance
            .warnings
            .push("x.toml:3: unknown key `sip.a` is ignored".into());
        let r = guarded(&c, Request::Status, |_| {
            Reply::ok(serde_json::json!({"accounts": []}))
        });
        assert_eq!(
            r.result.unwrap()["config_warnings"],
            serde_json::json!(["x.toml:3: unknown key `sip.a` is ignored"])
        );
    }
}
