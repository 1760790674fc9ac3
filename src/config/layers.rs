//! Layered configuration: built-in defaults < system file < provisioned
//! profile < user file. Layers are merged as TOML tables (a later layer's key
//! replaces an earlier one's; `[[account]]` tables are merged by `id`), then
//! the merged table is parsed and validated once, as one text whose every
//! line remembers the layer file and line it came from, so an error still
//! names the file, line and key the admin or the agent wrote. Keys locked by
//! an admin layer (`[lock]`, see `locks.rs`) are skipped in later layers,
//! with a warning.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;
use toml::de::{DeTable, DeValue};

use super::{Config, ConfigError, key_at, line_of, locks};

/// Which layer a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LayerKind {
    System,
    Profile,
    User,
}

impl LayerKind {
    /// The admin's layers may lock keys; the user's may not.
    pub fn is_admin(self) -> bool {
        !matches!(self, LayerKind::User)
    }
    pub fn name(self) -> &'static str {
        match self {
            LayerKind::System => "system",
            LayerKind::Profile => "profile",
            LayerKind::User => "user",
        }
    }
}

/// Where a value was set: a layer file and the line of its key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Origin {
    pub file: PathBuf,
    pub line: Option<usize>,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        Ok(())
    }
}

/// Where the values of a loaded config came from.
#[derive(Debug, Clone, Default)]
pub struct Provenance {
    /// The layer files read, lowest first.
    pub layers: Vec<(LayerKind, PathBuf)>,
    /// Key path (`sip.t1_ms`, `account.main.password`) → where it was set;
    /// a key not here has its built-in default.
    pub origins: BTreeMap<String, Origin>,
    /// Ignored locked values, readable passwords, a missing profile: logged
    /// at start and shown by `softline config show`.
    pub warnings: Vec<String>,
    /// Each lock pattern of the admin's layers and where it was set.
    pub locks: Vec<(String, Origin)>,
}

/// Environment variable naming the system file (tests, unusual installs).
pub const SYSTEM_CONFIG_ENV: &str = "SOFTLINE_SYSTEM_CONFIG";
/// Environment variable naming the provisioned profile file.
pub const PROFILE_ENV: &str = "SOFTLINE_PROFILE";

/// The platform's system file (the admin's), if the platform has one.
pub fn system_default() -> Option<PathBuf> {
    #[cfg(target_os = "windows")]
    {
        let base = std::env::var_os("ProgramData")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(r"C:\ProgramData"));
        Some(base.join("Softline").join("softline.toml"))
    }
    #[cfg(target_os = "macos")]
    {
        Some(PathBuf::from(
            "/Library/Application Support/Softline/softline.toml",
        ))
    }
    #[cfg(not(any(target_os = "windows", target_os = "macos")))]
    {
        Some(PathBuf::from("/etc/softline/softline.toml"))
    }
}

/// The files of the layers. Missing system and profile files are skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerPaths {
    pub system: Option<PathBuf>,
    /// The profile; `None` = the system file's `[provisioning] profile_cache`.
    pub profile: Option<PathBuf>,
    pub user: PathBuf,
}

impl LayerPaths {
    /// The platform's system file (or `$SOFTLINE_SYSTEM_CONFIG`), the
    /// profile from `$SOFTLINE_PROFILE` (else the system file says), and
    /// the user's file.
    pub fn discover(user: PathBuf) -> LayerPaths {
        let env = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        LayerPaths {
            system: env(SYSTEM_CONFIG_ENV).or_else(system_default),
            profile: env(PROFILE_ENV),
            user,
        }
    }

    /// Read, merge and validate the layers. Without a system file or
    /// profile this is exactly `Config::load(user)` (or, when the user file
    /// is missing and `require_user` is false, the built-in defaults).
    /// Accounts with `password_keyring = true` and no password get the
    /// keyring's (a missing one is a warning).
    pub fn load(&self, require_user: bool) -> Result<Config, ConfigError> {
        let mut config = self.load_files(require_user)?;
        let warnings = super::secrets::fill_from_keyring(&mut config);
        config.provenance.warnings.extend(warnings);
        Ok(config)
    }

    /// [`load`](Self::load) without the keyring: the files only (the window
    /// reads the keyring on a helper thread, see `gui::app`).
    pub fn load_files(&self, require_user: bool) -> Result<Config, ConfigError> {
        let mut layers = Vec::new();
        let mut warnings = Vec::new();
        if let Some(system) = &self.system
            && let Some(layer) = Layer::read(LayerKind::System, system)?
        {
            layers.push(layer);
        }
        let profile = self.profile.clone().or_else(|| {
            let system = layers.first()?;
            let section = system.table.get("provisioning")?;
            match section.get("profile_cache").and_then(|p| p.as_str()) {
                Some(path) => {
                    let dir = system.file.parent().unwrap_or(Path::new(""));
                    Some(dir.join(path))
                }
                // A provisioning URL without a cache path: the user's cache dir.
                None => section
                    .get("url")
                    .and_then(|_| super::provisioning::default_cache_path()),
            }
        });
        if let Some(profile) = profile {
            let key = layers
                .first()
                .and_then(|s| s.table.get("provisioning")?.get("public_key")?.as_str());
            // The cache holds no secrets: they come back from the keyring
            // (or this run's memory) before the signature is checked.
            let text = match std::fs::read_to_string(&profile) {
                Ok(text) => {
                    let (text, notes) = super::profile_secrets::restore(&text, &profile);
                    warnings.extend(
                        notes
                            .into_iter()
                            .map(|n| format!("{}: {n}", profile.display())),
                    );
                    Some(text)
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => {
                    return Err(ConfigError {
                        file: profile.clone(),
                        line: None,
                        key: None,
                        message: format!("cannot read the file: {e}"),
                    });
                }
            };
            let refused = match (key, &text) {
                (Some(k), Some(t)) => {
                    super::provisioning::check_cached(k, &profile, t.as_bytes()).err()
                }
                _ => None,
            };
            let layer = match (&refused, text) {
                (None, Some(text)) => Some(Layer::parse(LayerKind::Profile, &profile, text)?),
                _ => None,
            };
            match layer {
                Some(layer) => layers.push(layer),
                None => warnings.push(match &refused {
                    Some(why) => {
                        format!("{}: refused: {why}; starting without it", profile.display())
                    }
                    None => format!(
                        "{}: no provisioned profile there yet; starting without it",
                        profile.display()
                    ),
                }),
            }
        }
        if layers.is_empty() {
            // No admin layer: the user's file alone, exactly as before
            // layering (the origins are added for `config show`).
            let text = match std::fs::read_to_string(&self.user) {
                Ok(text) => text,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && !require_user => {
                    return Config::parse("", &self.user);
                }
                Err(_) => return Config::load(&self.user),
            };
            let mut config = Config::parse(&text, &self.user)?;
            // Unknown keys (found by `Config::parse`).
            warnings.append(&mut config.provenance.warnings);
            let layer = Layer::parse(LayerKind::User, &self.user, text)?;
            warnings.extend(readable_password_warning(&layer));
            if !config.lock.keys.is_empty() {
                config.lock.keys.clear();
                warnings.push(format!(
                    "{}: `[lock]` is ignored here: only the administrator's files lock keys",
                    layer.origin("lock")
                ));
            }
            config.provenance = Provenance {
                layers: vec![(layer.kind, layer.file.clone())],
                origins: layer
                    .lines
                    .keys()
                    .map(|k| (k.clone(), layer.origin(k)))
                    .collect(),
                warnings,
                locks: Vec::new(),
            };
            return Ok(config);
        }
        let user = Layer::read(LayerKind::User, &self.user)?;
        layers.extend(user);
        merge(&layers, warnings)
    }
}

/// One layer file: its text, its table and the line of every key path.
struct Layer {
    kind: LayerKind,
    file: PathBuf,
    table: toml::Table,
    lines: BTreeMap<String, usize>,
}

impl Layer {
    /// `None` when the file does not exist.
    fn read(kind: LayerKind, file: &Path) -> Result<Option<Layer>, ConfigError> {
        match std::fs::read_to_string(file) {
            Ok(text) => Layer::parse(kind, file, text).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ConfigError {
                file: file.to_path_buf(),
                line: None,
                key: None,
                message: format!("cannot read the file: {e}"),
            }),
        }
    }

    fn parse(kind: LayerKind, file: &Path, text: String) -> Result<Layer, ConfigError> {
        let table: toml::Table = toml::from_str(&text).map_err(|e| ConfigError {
            file: file.to_path_buf(),
            line: e.span().map(|s| line_of(&text, s.start)),
            key: e.span().and_then(|s| key_at(&text, s.start)),
            message: e.message().to_string(),
        })?;
        let lines = key_lines(&text);
        Ok(Layer {
            kind,
            file: file.to_path_buf(),
            table,
            lines,
        })
    }

    fn origin(&self, path: &str) -> Origin {
        Origin {
            file: self.file.clone(),
            line: self.lines.get(path).copied(),
        }
    }
}

/// The key-path segment of the `index`th account: its id, else `#index`.
pub(super) fn account_segment(id: Option<&str>, index: usize) -> String {
    id.map(str::to_string)
        .unwrap_or_else(|| format!("#{index}"))
}

/// [`account_segment`] of the `index`th `[[account]]` table as parsed with
/// spans (its `id` string when it has one).
pub(super) fn de_account_segment(table: &DeTable<'_>, index: usize) -> String {
    let id = table.iter().find_map(|(k, v)| match v.get_ref() {
        DeValue::String(s) if k.get_ref() == "id" => Some(s.to_string()),
        _ => None,
    });
    account_segment(id.as_deref(), index)
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

/// The line of every key path (`sip.t1_ms`, `account.main.password`) of a
/// TOML text.
pub(super) fn key_lines(text: &str) -> BTreeMap<String, usize> {
    let mut lines = BTreeMap::new();
    if let Ok(doc) = DeTable::parse(text) {
        walk_lines("", doc.get_ref(), text, &mut lines);
    }
    lines
}

/// Record the line of every key (and account table) under `prefix`.
fn walk_lines(prefix: &str, table: &DeTable<'_>, text: &str, out: &mut BTreeMap<String, usize>) {
    for (key, value) in table.iter() {
        let path = join(prefix, key.get_ref());
        out.entry(path.clone())
            .or_insert_with(|| line_of(text, key.span().start));
        match value.get_ref() {
            DeValue::Table(t) => walk_lines(&path, t, text, out),
            DeValue::Array(items) if path == "account" => {
                for (i, item) in items.iter().enumerate() {
                    let DeValue::Table(t) = item.get_ref() else {
                        continue;
                    };
                    let account = join(&path, &de_account_segment(t, i));
                    let line = t
                        .iter()
                        .map(|(k, _)| line_of(text, k.span().start))
                        .min()
                        .unwrap_or_else(|| line_of(text, item.span().start));
                    out.entry(account.clone()).or_insert(line);
                    walk_lines(&account, t, text, out);
                }
            }
            _ => {}
        }
    }
}

/// The lock (and where it was set) covering `path`, if any.
fn lock_for<'a>(locks: &'a [(String, Origin)], path: &str) -> Option<&'a (String, Origin)> {
    locks.iter().find(|(p, _)| locks::matches(p, path))
}

/// Merges layers, lowest first.
#[derive(Default)]
struct Merger {
    merged: toml::Table,
    /// Key path prefix of each merged account, in order.
    accounts: Vec<String>,
    origins: BTreeMap<String, Origin>,
    locks: Vec<(String, Origin)>,
    warnings: Vec<String>,
}

impl Merger {
    fn locked(&mut self, locks: &[(String, Origin)], layer: &Layer, path: &str) -> bool {
        let Some((pattern, at)) = lock_for(locks, path) else {
            return false;
        };
        self.warnings.push(format!(
            "{}: key `{path}` is locked by the administrator (`{pattern}` at {at}); \
             this value is ignored",
            layer.origin(path)
        ));
        true
    }

    fn add(&mut self, layer: &Layer) {
        // A layer obeys the locks of the layers below it.
        let locks = self.locks.clone();
        for (section, value) in &layer.table {
            match (section.as_str(), value) {
                ("lock", toml::Value::Table(t)) => self.add_locks(layer, t),
                ("account", toml::Value::Array(items)) => self.add_accounts(layer, items, &locks),
                (_, toml::Value::Table(t)) => {
                    if !matches!(self.merged.get(section), Some(toml::Value::Table(_))) {
                        self.merged
                            .insert(section.clone(), toml::Value::Table(Default::default()));
                    }
                    self.origins
                        .entry(section.clone())
                        .or_insert_with(|| layer.origin(section));
                    for (key, v) in t {
                        let path = join(section, key);
                        if self.locked(&locks, layer, &path) {
                            continue;
                        }
                        if let Some(toml::Value::Table(target)) = self.merged.get_mut(section) {
                            target.insert(key.clone(), v.clone());
                        }
                        self.origins.insert(path.clone(), layer.origin(&path));
                    }
                }
                _ => {
                    if !self.locked(&locks, layer, section) {
                        self.merged.insert(section.clone(), value.clone());
                        self.origins.insert(section.clone(), layer.origin(section));
                    }
                }
            }
        }
    }

    /// `[lock] keys` from admin layers add up; the user's `[lock]` is ignored.
    fn add_locks(&mut self, layer: &Layer, table: &toml::Table) {
        if !layer.kind.is_admin() {
            self.warnings.push(format!(
                "{}: `[lock]` is ignored here: only the administrator's files lock keys",
                layer.origin("lock")
            ));
            return;
        }
        let mut rest = table.clone();
        let keys = rest.remove("keys");
        let patterns: Option<Vec<String>> = keys.as_ref().and_then(|k| {
            k.as_array()?
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect()
        });
        let lock = self
            .merged
            .entry("lock")
            .or_insert_with(|| toml::Value::Table(Default::default()));
        let Some(lock) = lock.as_table_mut() else {
            return;
        };
        match patterns {
            Some(patterns) => {
                let origin = layer.origin("lock.keys");
                let mut all: Vec<toml::Value> = lock
                    .get("keys")
                    .and_then(|k| k.as_array())
                    .cloned()
                    .unwrap_or_default();
                for p in patterns {
                    if !all.iter().any(|v| v.as_str() == Some(p.as_str())) {
                        all.push(toml::Value::String(p.clone()));
                    }
                    self.locks.push((p, origin.clone()));
                }
                lock.insert("keys".into(), toml::Value::Array(all));
                self.origins.entry("lock.keys".into()).or_insert(origin);
            }
            // Not a list of strings: let validation report it, with its line.
            None => {
                if let Some(k) = keys {
                    lock.insert("keys".into(), k);
                    self.origins
                        .insert("lock.keys".into(), layer.origin("lock.keys"));
                }
            }
        }
        // Unknown keys in `[lock]` go through, for validation to report.
        for (k, v) in rest {
            let path = join("lock", &k);
            self.origins.insert(path.clone(), layer.origin(&path));
            lock.insert(k, v);
        }
    }

    fn add_accounts(&mut self, layer: &Layer, items: &[toml::Value], locks: &[(String, Origin)]) {
        if !matches!(self.merged.get("account"), Some(toml::Value::Array(_))) {
            self.merged
                .insert("account".into(), toml::Value::Array(Vec::new()));
            self.accounts.clear();
        }
        for (i, item) in items.iter().enumerate() {
            let id = item.get("id").and_then(toml::Value::as_str);
            let prefix = join("account", &account_segment(id, i));
            let Some(table) = item.as_table() else {
                // Not a table: validation reports it.
                self.push_account(prefix, item.clone(), layer);
                continue;
            };
            let existing = id.and_then(|id| {
                self.merged
                    .get("account")?
                    .as_array()?
                    .iter()
                    .position(|a| a.get("id").and_then(toml::Value::as_str) == Some(id))
            });
            let index = match existing {
                Some(index) => index,
                None => {
                    // A new account where the admin locked accounts.
                    if self.locked(locks, layer, &prefix) {
                        continue;
                    }
                    self.push_account(
                        prefix.clone(),
                        toml::Value::Table(Default::default()),
                        layer,
                    )
                }
            };
            for (key, v) in table {
                let path = join(&prefix, key);
                // The id is what the accounts are matched by: equal already.
                if key != "id" && self.locked(locks, layer, &path) {
                    continue;
                }
                if let Some(target) = self
                    .merged
                    .get_mut("account")
                    .and_then(|a| a.as_array_mut())
                    .and_then(|a| a.get_mut(index))
                    .and_then(|a| a.as_table_mut())
                {
                    target.insert(key.clone(), v.clone());
                }
                if key == "id" {
                    // Where the account was first defined.
                    self.origins
                        .entry(path.clone())
                        .or_insert_with(|| layer.origin(&path));
                } else {
                    self.origins.insert(path.clone(), layer.origin(&path));
                }
            }
        }
    }

    fn push_account(&mut self, prefix: String, value: toml::Value, layer: &Layer) -> usize {
        let Some(list) = self
            .merged
            .get_mut("account")
            .and_then(|a| a.as_array_mut())
        else {
            return 0;
        };
        list.push(value);
        self.origins
            .entry(prefix.clone())
            .or_insert_with(|| layer.origin(&prefix));
        self.accounts.push(prefix);
        list.len() - 1
    }
}

/// A bare TOML key, or a quoted one.
fn toml_key(key: &str) -> String {
    if !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
    {
        key.to_string()
    } else {
        toml::Value::String(key.to_string()).to_string()
    }
}

/// The merged table as TOML text, and the key path behind each of its lines.
fn emit(merged: &toml::Table, accounts: &[String]) -> (String, Vec<Option<String>>) {
    let mut text = String::new();
    let mut paths: Vec<Option<String>> = Vec::new();
    let mut push = |line: String, path: Option<String>| {
        for _ in 0..=line.matches('\n').count() {
            paths.push(path.clone());
        }
        text.push_str(&line);
        text.push('\n');
    };
    let account_tables = match merged.get("account") {
        Some(toml::Value::Array(items)) if items.iter().all(|i| i.is_table()) => Some(items),
        _ => None,
    };
    for (k, v) in merged {
        let section = v.is_table() || (k == "account" && account_tables.is_some());
        if !section {
            push(format!("{} = {v}", toml_key(k)), Some(k.clone()));
        }
    }
    for (k, v) in merged {
        if let toml::Value::Table(t) = v {
            push(format!("[{}]", toml_key(k)), Some(k.clone()));
            for (key, value) in t {
                push(format!("{} = {value}", toml_key(key)), Some(join(k, key)));
            }
        }
    }
    for (i, item) in account_tables.into_iter().flatten().enumerate() {
        let prefix = accounts
            .get(i)
            .cloned()
            .unwrap_or_else(|| format!("account.#{i}"));
        push("[[account]]".into(), Some(prefix.clone()));
        for (key, value) in item.as_table().into_iter().flatten() {
            push(
                format!("{} = {value}", toml_key(key)),
                Some(join(&prefix, key)),
            );
        }
    }
    (text, paths)
}

fn merge(layers: &[Layer], mut warnings: Vec<String>) -> Result<Config, ConfigError> {
    let mut merger = Merger::default();
    for layer in layers {
        merger.add(layer);
        warnings.extend(super::unknown::warnings(
            &layer.file,
            &layer.table,
            &layer.lines,
        ));
        warnings.extend(readable_password_warning(layer));
    }
    let (text, line_paths) = emit(&merger.merged, &merger.accounts);
    let top = layers.last().map(|l| l.file.clone()).unwrap_or_default();
    let mut config = Config::parse(&text, &top).map_err(|e| {
        // Name the layer file and line the bad value came from.
        let key = e.key.as_deref().map(|k| account_key(k, &merger.accounts));
        let origin = key
            .as_deref()
            .and_then(|k| merger.origins.get(k))
            .or_else(|| {
                let path = line_paths.get(e.line?.checked_sub(1)?)?.as_deref()?;
                merger.origins.get(path)
            });
        ConfigError {
            file: origin.map(|o| o.file.clone()).unwrap_or(top.clone()),
            line: origin.and_then(|o| o.line),
            key: key.or(e.key),
            message: e.message,
        }
    })?;
    warnings.append(&mut merger.warnings);
    config.provenance = Provenance {
        layers: layers.iter().map(|l| (l.kind, l.file.clone())).collect(),
        origins: merger.origins,
        warnings,
        locks: merger.locks,
    };
    Ok(config)
}

/// `account[2].registrar` → `account.ID.registrar` (ID of the 3rd account).
fn account_key(key: &str, accounts: &[String]) -> String {
    let Some(rest) = key.strip_prefix("account[") else {
        return key.to_string();
    };
    let Some((index, tail)) = rest.split_once(']') else {
        return key.to_string();
    };
    match index.parse::<usize>().ok().and_then(|i| accounts.get(i)) {
        Some(prefix) => format!("{prefix}{tail}"),
        None => key.to_string(),
    }
}

/// Keys whose values are secrets: shown as `***`.
pub fn is_secret_key(key: &str) -> bool {
    let last = key.rsplit('.').next().unwrap_or(key);
    ["password", "pin", "token", "secret"]
        .iter()
        .any(|s| last == *s || last.ends_with(&format!("_{s}")))
}

/// Does this table hold a non-empty secret anywhere?
fn holds_secret(table: &toml::Table) -> bool {
    table.iter().any(|(k, v)| match v {
        toml::Value::String(s) => is_secret_key(k) && !s.is_empty(),
        toml::Value::Table(t) => holds_secret(t),
        toml::Value::Array(items) => items.iter().any(|i| i.as_table().is_some_and(holds_secret)),
        _ => false,
    })
}

/// A file holding a password that other users can read (unix mode & 077).
fn readable_password_warning(layer: &Layer) -> Option<String> {
    password_mode_warning(&layer.file, &layer.table)
}

#[cfg(unix)]
fn password_mode_warning(file: &Path, table: &toml::Table) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(file).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0 && holds_secret(table)).then(|| {
        format!(
            "{}: holds a password but other users can read it (mode {mode:03o}); \
             run `chmod 600 {}`",
            file.display(),
            file.display()
        )
    })
}

#[cfg(not(unix))]
fn password_mode_warning(_file: &Path, _table: &toml::Table) -> Option<String> {
    None
}

/// `softline config check FILE`: validate one file on its own. Returns the
/// config and its warnings (unknown keys, a readable password).
pub fn check_file(file: &Path) -> Result<(Config, Vec<String>), ConfigError> {
    let config = Config::load(file)?;
    let mut warnings = config.provenance.warnings.clone();
    warnings.extend(
        std::fs::read_to_string(file)
            .ok()
            .and_then(|text| text.parse::<toml::Table>().ok())
            .and_then(|table| password_mode_warning(file, &table)),
    );
    Ok((config, warnings))
}

/// One value of the effective config.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EffectiveValue {
    /// Key path: `sip.t1_ms`, `account.main.password`.
    pub key: String,
    /// The value; secrets are `"***"`.
    pub value: toml::Value,
    /// Where it was set; `None` = the built-in default.
    pub origin: Option<Origin>,
    pub locked: bool,
}

/// Every leaf of a config table as (key path, value); accounts by id.
fn leaves(table: &toml::Table) -> Vec<(String, toml::Value)> {
    let mut out = Vec::new();
    for (section, value) in table {
        match value {
            toml::Value::Table(t) => {
                for (k, v) in t {
                    out.push((join(section, k), v.clone()));
                }
            }
            toml::Value::Array(items) if section == "account" => {
                for (i, item) in items.iter().enumerate() {
                    let id = item.get("id").and_then(toml::Value::as_str);
                    let prefix = join(section, &account_segment(id, i));
                    for (k, v) in item.as_table().into_iter().flatten() {
                        out.push((join(&prefix, k), v.clone()));
                    }
                }
            }
            v => out.push((section.clone(), v.clone())),
        }
    }
    out
}

impl Config {
    /// Where the value at this key path was set (`None`: the default).
    pub fn origin(&self, path: &str) -> Option<&Origin> {
        self.provenance.origins.get(path)
    }

    /// Where the lock covering this key path was set (`None`: not locked).
    pub fn lock_origin(&self, path: &str) -> Option<Origin> {
        if !self.is_locked(path) {
            return None;
        }
        lock_for(&self.provenance.locks, path)
            .map(|(_, at)| at.clone())
            .or_else(|| self.origin("lock.keys").cloned())
    }

    /// Every value of this config with its origin, secrets redacted.
    pub fn effective_values(&self) -> Vec<EffectiveValue> {
        let table = toml::Table::try_from(self).unwrap_or_default();
        leaves(&table)
            .into_iter()
            .map(|(key, value)| {
                let value = match value {
                    toml::Value::String(s) if is_secret_key(&key) && !s.is_empty() => {
                        toml::Value::String("***".into())
                    }
                    v => v,
                };
                EffectiveValue {
                    origin: self.origin(&key).cloned(),
                    locked: self.is_locked(&key),
                    key,
                    value,
                }
            })
            .collect()
    }

    /// `softline config show --effective`: TOML with each value's origin.
    pub fn show_effective(&self) -> String {
        let mut out = String::from("# Softline: effective configuration\n");
        for (kind, file) in &self.provenance.layers {
            out.push_str(&format!("# layer {}: {}\n", kind.name(), file.display()));
        }
        for w in &self.provenance.warnings {
            out.push_str(&format!("# warning: {w}\n"));
        }
        let mut section = String::new();
        for v in self.effective_values() {
            let (head, key) = match v.key.split_once('.') {
                Some(("account", rest)) => {
                    let (id, key) = rest.split_once('.').unwrap_or((rest, ""));
                    (format!("[[account]] # {id}"), key.to_string())
                }
                Some((s, key)) => (format!("[{s}]"), key.to_string()),
                None => (String::new(), v.key.clone()),
            };
            if head != section {
                out.push_str(&format!("\n{head}\n"));
                section = head;
            }
            let origin = v
                .origin
                .as_ref()
                .map(Origin::to_string)
                .unwrap_or_else(|| "default".into());
            let lock = if v.locked { " (locked)" } else { "" };
            out.push_str(&format!(
                "{} = {}  # {origin}{lock}\n",
                toml_key(&key),
                v.value
            ));
        }
        out
    }

    /// `softline config show --effective --json`.
    pub fn show_effective_json(&self) -> serde_json::Value {
        let values: Vec<serde_json::Value> = self
            .effective_values()
            .into_iter()
            .map(|v| {
                serde_json::json!({
                    "key": v.key,
                    "value": serde_json::to_value(&v.value).unwrap_or_default(),
                    "origin": v.origin.as_ref().map(Origin::to_string).unwrap_or_else(|| "default".into()),
                    "file": v.origin.as_ref().map(|o| o.file.display().to_string()),
                    "line": v.origin.as_ref().and_then(|o| o.line),
                    "locked": v.locked,
                })
            })
            .collect();
        let layers: Vec<serde_json::Value> = self
            .provenance
            .layers
            .iter()
            .map(|(k, f)| serde_json::json!({"kind": k.name(), "file": f.display().to_string()}))
            .collect();
        serde_json::json!({
            "layers": layers,
            "warnings": self.provenance.warnings,
            "values": values,
        })
    }

    /// Locked key paths whose value `new_user_text` (the user file a face
    /// is about to write) would change: the face must refuse to write them.
    /// Text that is not TOML has no locked changes (validation rejects it).
    pub fn locked_changes(&self, new_user_text: &str) -> Vec<String> {
        let Ok(new) = new_user_text.parse::<toml::Table>() else {
            return Vec::new();
        };
        let current: BTreeMap<String, toml::Value> = toml::Table::try_from(self)
            .map(|t| leaves(&t).into_iter().collect())
            .unwrap_or_default();
        leaves(&new)
            .into_iter()
            .filter(|(key, value)| self.is_locked(key) && current.get(key) != Some(value))
            .map(|(key, _)| key)
            .collect()
    }
}
