//! Typed reads from a TOML table that record problems with their full path instead of stopping
//! at the first, so `check-config` can list every error at once.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{parse_duration, Secret};

/// Collects errors while reading tables.
pub struct Reader<'e> {
    errors: &'e mut Vec<String>,
    /// The `*_file` credential files read so far, for the reload watcher.
    files_read: Vec<PathBuf>,
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn type_name(v: &toml::Value) -> &'static str {
    match v {
        toml::Value::String(_) => "a string",
        toml::Value::Integer(_) => "an integer",
        toml::Value::Float(_) => "a number",
        toml::Value::Boolean(_) => "a boolean",
        toml::Value::Datetime(_) => "a date",
        toml::Value::Array(_) => "an array",
        toml::Value::Table(_) => "a table",
    }
}

impl<'e> Reader<'e> {
    /// A reader appending to `errors`.
    pub fn new(errors: &'e mut Vec<String>) -> Reader<'e> {
        Reader {
            errors,
            files_read: Vec::new(),
        }
    }

    /// Record `path: message`.
    pub fn error(&mut self, path: &str, message: &str) {
        self.errors.push(format!("{path}: {message}"));
    }

    /// Report every key of `t` not in `allowed`.
    pub fn allow_only(&mut self, path: &str, t: &toml::Table, allowed: &[&str]) {
        for k in t.keys() {
            if !allowed.contains(&k.as_str()) {
                self.error(
                    &join(path, k),
                    &format!("unknown key (allowed here: {})", allowed.join(", ")),
                );
            }
        }
    }

    /// A sub-table, if present.
    pub fn table<'t>(
        &mut self,
        path: &str,
        t: &'t toml::Table,
        key: &str,
    ) -> Option<&'t toml::Table> {
        match t.get(key)? {
            toml::Value::Table(x) => Some(x),
            v => {
                self.error(
                    &join(path, key),
                    &format!(
                        "must be a table ([{}]), not {}",
                        join(path, key),
                        type_name(v)
                    ),
                );
                None
            }
        }
    }

    /// An optional boolean.
    pub fn boolean(&mut self, path: &str, t: &toml::Table, key: &str) -> Option<bool> {
        match t.get(key)? {
            toml::Value::Boolean(b) => Some(*b),
            _ => {
                self.error(&join(path, key), "must be true or false");
                None
            }
        }
    }

    /// An optional string.
    pub fn string(&mut self, path: &str, t: &toml::Table, key: &str) -> Option<String> {
        match t.get(key)? {
            toml::Value::String(s) => Some(s.clone()),
            v => {
                self.error(
                    &join(path, key),
                    &format!("must be a string, not {}", type_name(v)),
                );
                None
            }
        }
    }

    /// A required non-empty string; `what` says what to write.
    pub fn required_string(
        &mut self,
        path: &str,
        t: &toml::Table,
        key: &str,
        what: &str,
    ) -> Option<String> {
        match self.string(path, t, key) {
            Some(s) if !s.trim().is_empty() => Some(s),
            Some(_) => {
                self.error(
                    &join(path, key),
                    &format!("must not be empty: write {what}"),
                );
                None
            }
            None => {
                if !t.contains_key(key) {
                    self.error(&join(path, key), &format!("is required: write {what}"));
                }
                None
            }
        }
    }

    /// An optional duration string (`"60s"`); zero only when `allow_zero`.
    pub fn duration(
        &mut self,
        path: &str,
        t: &toml::Table,
        key: &str,
        allow_zero: bool,
    ) -> Option<Duration> {
        let s = self.string(path, t, key)?;
        match parse_duration(&s) {
            Ok(d) if d.is_zero() && !allow_zero => {
                self.error(&join(path, key), "must be longer than zero");
                None
            }
            Ok(d) => Some(d),
            Err(e) => {
                self.error(&join(path, key), &e);
                None
            }
        }
    }

    /// An optional whole number in `min..=max`.
    pub fn count(
        &mut self,
        path: &str,
        t: &toml::Table,
        key: &str,
        min: usize,
        max: usize,
    ) -> Option<usize> {
        match t.get(key)? {
            toml::Value::Integer(n) if *n >= min as i64 && *n <= max as i64 => Some(*n as usize),
            toml::Value::Integer(n) => {
                self.error(
                    &join(path, key),
                    &format!("{n} is out of range: use {min} to {max}"),
                );
                None
            }
            v => {
                self.error(
                    &join(path, key),
                    &format!("must be a whole number, not {}", type_name(v)),
                );
                None
            }
        }
    }

    /// An optional list of strings.
    pub fn string_list(&mut self, path: &str, t: &toml::Table, key: &str) -> Option<Vec<String>> {
        match t.get(key)? {
            toml::Value::Array(a) => {
                let mut out = Vec::new();
                for (i, v) in a.iter().enumerate() {
                    match v {
                        toml::Value::String(s) => out.push(s.clone()),
                        v => self.error(
                            &format!("{}[{i}]", join(path, key)),
                            &format!("must be a string, not {}", type_name(v)),
                        ),
                    }
                }
                Some(out)
            }
            v => {
                self.error(
                    &join(path, key),
                    &format!(
                        "must be a list of strings such as [\"a\", \"b\"], not {}",
                        type_name(v)
                    ),
                );
                None
            }
        }
    }

    /// The credential files read since the last call.
    pub fn take_files_read(&mut self) -> Vec<PathBuf> {
        std::mem::take(&mut self.files_read)
    }

    /// `key` or `key_file` (exactly one); a file's content is trimmed of surrounding whitespace.
    /// Error messages never contain the value.
    pub fn secret_or_file(
        &mut self,
        path: &str,
        t: &toml::Table,
        key: &str,
        required: bool,
        base: Option<&Path>,
    ) -> Option<Secret> {
        let file_key = format!("{key}_file");
        let inline = self.string(path, t, key);
        let file = self.string(path, t, &file_key);
        match (inline, file) {
            (Some(_), Some(_)) => {
                self.error(
                    &join(path, key),
                    &format!("set either {key} or {file_key}, not both"),
                );
                None
            }
            (Some(s), None) if s.is_empty() => {
                self.error(
                    &join(path, key),
                    &format!("is empty: set it (e.g. \"${{ENV_VAR}}\") or use {file_key}"),
                );
                None
            }
            (Some(s), None) => Some(Secret::new(s)),
            (None, Some(f)) => {
                let p = Path::new(&f);
                let full = match base {
                    Some(b) if p.is_relative() => b.join(p),
                    _ => p.to_path_buf(),
                };
                self.files_read.push(full.clone());
                match std::fs::read_to_string(&full) {
                    Ok(s) if s.trim().is_empty() => {
                        self.error(
                            &join(path, &file_key),
                            &format!("file {} is empty", full.display()),
                        );
                        None
                    }
                    Ok(s) => Some(Secret::new(s.trim())),
                    Err(e) => {
                        self.error(
                            &join(path, &file_key),
                            &format!("cannot read {}: {e}", full.display()),
                        );
                        None
                    }
                }
            }
            (None, None) => {
                if required && !t.contains_key(key) && !t.contains_key(&file_key) {
                    self.error(
                        &join(path, key),
                        &format!("is required: set {key} (e.g. \"${{ENV_VAR}}\") or {file_key}"),
                    );
                }
                None
            }
        }
    }
}
