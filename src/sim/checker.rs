//! The panels' request validation: input normalisation, then Laravel rules collected in the panel's
//! order (one entry per failed rule per field).

use serde_json::Value;

use super::ids::{self, Kind};
use super::state::{ErrorEntry, SimError, SimResult};
use crate::crd::Flavor;

/// Every request string is trimmed and `""` becomes null, nested values included (panel
/// `app/Http/Kernel.php`: the global `TrimStrings` and `ConvertEmptyStringsToNull` middleware;
/// see [`crate::panel::as_stored`]).
pub fn normalise(v: &Value) -> Value {
    match v {
        Value::String(s) => match crate::panel::as_stored(s) {
            "" => Value::Null,
            trimmed => Value::String(trimmed.to_string()),
        },
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), normalise(v))).collect()),
        Value::Array(a) => Value::Array(a.iter().map(normalise).collect()),
        other => other.clone(),
    }
}

/// Collects validation errors of one (normalised) body.
pub struct Checker<'a> {
    body: &'a Value,
    flavor: Flavor,
    pub errors: Vec<ErrorEntry>,
}

impl<'a> Checker<'a> {
    pub fn new(body: &'a Value, flavor: Flavor) -> Self {
        Self { body, flavor, errors: Vec::new() }
    }

    pub fn get(&self, path: &str) -> Option<&'a Value> {
        let mut v = self.body;
        for part in path.split('.') {
            v = v.get(part)?;
        }
        (!v.is_null()).then_some(v)
    }

    pub fn has_key(&self, path: &str) -> bool {
        let (parent, last) = path.rsplit_once('.').map_or(("", path), |(p, l)| (p, l));
        let parent = if parent.is_empty() { Some(self.body) } else { self.get(parent) };
        parent.and_then(Value::as_object).is_some_and(|m| m.contains_key(last))
    }

    pub fn fail(&mut self, field: &str, rule: &str, detail: String) {
        let code = match self.flavor {
            Flavor::Pterodactyl | Flavor::Pelican => "ValidationException".to_string(),
            Flavor::Wisp => rule.to_string(),
        };
        self.errors.push(ErrorEntry { code, detail, field: Some((field.into(), rule.into())) });
    }

    pub fn required(&mut self, field: &str) -> Option<&'a Value> {
        let v = self.get(field);
        if v.is_none() {
            self.fail(field, "required", format!("The {field} field is required."));
        }
        v
    }

    pub fn present(&mut self, field: &str) {
        if !self.has_key(field) {
            self.fail(field, "present", format!("The {field} field must be present."));
        }
    }

    pub fn string(&mut self, field: &str, required: bool, max: Option<usize>) -> Option<String> {
        let v = if required { self.required(field)? } else { self.get(field)? };
        let Some(s) = v.as_str() else {
            self.fail(field, "string", format!("The {field} field must be a string."));
            return None;
        };
        if let Some(max) = max
            && s.chars().count() > max
        {
            self.fail(field, "max", format!("The {field} field must not be greater than {max} characters."));
        }
        Some(s.to_string())
    }

    pub fn integer(&mut self, field: &str, required: bool, min: Option<i64>, max: Option<i64>) -> Option<i64> {
        let v = if required { self.required(field)? } else { self.get(field)? };
        let n = match v {
            Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
            Value::String(s) => s.parse().ok(),
            _ => None,
        };
        let Some(n) = n else {
            self.fail(field, "integer", format!("The {field} field must be an integer."));
            return None;
        };
        match (min, max) {
            (Some(lo), Some(hi)) if n < lo || n > hi => {
                self.fail(field, "between", format!("The {field} field must be between {lo} and {hi}."))
            }
            (Some(lo), None) if n < lo => self.fail(field, "min", format!("The {field} field must be at least {lo}.")),
            _ => {}
        }
        Some(n)
    }

    /// The id of a `kind` object: an integer, or (Wisp v2) its prefixed ULID (`user_01…`), which a
    /// v2 panel accepts in bodies as well (wisp-api.md §2.1, INFERRED from the WHMCS module).
    pub fn id(&mut self, field: &str, kind: Kind) -> Option<u64> {
        let v = self.required(field)?;
        let id = match v {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => ids::parse(kind, s),
            _ => None,
        };
        if id.is_none() {
            self.fail(field, "integer", format!("The {field} field must be an integer."));
        }
        id
    }

    pub fn boolean(&mut self, field: &str) -> Option<bool> {
        let v = self.get(field)?;
        match v {
            Value::Bool(b) => Some(*b),
            Value::Number(n) if n.as_i64() == Some(0) || n.as_i64() == Some(1) => Some(n.as_i64() == Some(1)),
            _ => {
                self.fail(field, "boolean", format!("The {field} field must be true or false."));
                None
            }
        }
    }

    pub fn finish(self) -> SimResult<()> {
        if self.errors.is_empty() { Ok(()) } else { Err(SimError { status: 422, entries: self.errors }) }
    }
}
