//! Validates a manifest without a cluster, as the apiserver would: the CRD's OpenAPI schema
//! (types, required fields, enums, bounds, lengths, list keys, unknown fields), then its CEL rules.
//!
//! Meant for `pterobox check` (offline, before merge) and the webhook; the unit tests run the same
//! table of invalid manifests that `tests/crds.rs` sends to a real apiserver.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use kube::core::cel::{CompiledSchema, Validator, compile_schema};
use serde_json::Value;

use crate::budget::FieldError;

/// One of the three kinds, with its compiled schema.
struct KindSchema {
    kind: &'static str,
    schema: Value,
    compiled: CompiledSchema,
}

fn schemas() -> &'static [KindSchema] {
    static SCHEMAS: OnceLock<Vec<KindSchema>> = OnceLock::new();
    SCHEMAS.get_or_init(|| {
        super::all()
            .into_iter()
            .filter_map(|crd| {
                let kind: &'static str = match crd.spec.names.kind.as_str() {
                    "GamePanel" => "GamePanel",
                    "GameBox" => "GameBox",
                    "GameServer" => "GameServer",
                    _ => return None,
                };
                let schema = crd.spec.versions.first()?.schema.as_ref()?.open_api_v3_schema.as_ref()?;
                let schema = serde_json::to_value(schema).ok()?;
                let compiled = compile_schema(&schema);
                Some(KindSchema { kind, schema, compiled })
            })
            .collect()
    })
}

/// Validates `object` (an update when `old` is given). Returns every error, each naming its field.
pub fn validate(object: &Value, old: Option<&Value>) -> Result<(), Vec<FieldError>> {
    let api_version = object.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or_default();
    let expected_api_version = format!("{}/{}", crate::names::GROUP, crate::names::VERSION);
    if api_version != expected_api_version {
        return Err(vec![FieldError::new(
            "apiVersion",
            format!("must be {expected_api_version}, got {api_version:?}"),
        )]);
    }
    let Some(entry) = schemas().iter().find(|s| s.kind == kind) else {
        return Err(vec![FieldError::new("kind", format!("must be GamePanel, GameBox or GameServer, got {kind:?}"))]);
    };
    let mut errors = Vec::new();
    match object.pointer("/metadata/name").and_then(Value::as_str) {
        Some(name) if !name.is_empty() => {}
        _ => errors.push(FieldError::new("metadata.name", "Required value")),
    }
    for field in ["spec", "status"] {
        if let (Some(value), Some(schema)) = (object.get(field), entry.schema.pointer(&format!("/properties/{field}")))
        {
            check(schema, value, field, &mut errors);
        } else if field == "spec" {
            errors.push(FieldError::new("spec", "Required value"));
        }
    }
    // As the apiserver (1.35) does: the CEL rules run beside the schema errors that do not stop
    // them (a bound, a pattern, a minimum length), so that one pass names them all; a wrong type or
    // format, a value outside its enum, a missing field, a value too long or a list too long stops
    // them, and then the reader is told that some rules were not checked
    // (tests/fixtures/invalid-manifests.yaml has one of each, also sent to a real apiserver).
    if let Some(blocking) = errors.iter_mut().find(|e| blocks_rules(e)) {
        // Said on the error itself, so that every error names its field.
        blocking.message.push_str(
            " (some validation rules were not checked because the object was invalid; correct the existing errors to complete validation)",
        );
        return Err(errors);
    }
    if let Err(rules) = Validator::new().validate_compiled(&entry.compiled, object, old) {
        errors.extend(rules.into_vec().into_iter().map(|e| FieldError::new(e.field_path.clone(), e.message.clone())));
    }
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

/// Whether a schema error keeps the CEL rules from running (the apiserver's blocking errors:
/// `TypeInvalid`, `NotSupported`, `Required`, `TooLong`, `TooMany`; duplicates and unknown fields
/// fail its server-side apply before any validation): the messages [`check`] writes for them.
fn blocks_rules(e: &FieldError) -> bool {
    [
        "must be of type",
        "must not be null",
        "must be an integer or a string",
        "Unsupported value",
        "Required value",
        "Too long",
        "must have at most",
        "Duplicate value",
        "unknown field",
    ]
    .iter()
    .any(|start| e.message.starts_with(start))
}

fn child(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_string() } else { format!("{path}.{key}") }
}

/// Checks `value` against an OpenAPI v3 structural schema node.
fn check(schema: &Value, value: &Value, path: &str, errors: &mut Vec<FieldError>) {
    let mut err = |message: String| errors.push(FieldError::new(path, message));
    if value.is_null() {
        if !schema.get("nullable").and_then(Value::as_bool).unwrap_or(false) {
            err("must not be null".into());
        }
        return;
    }
    if schema.get("x-kubernetes-int-or-string").and_then(Value::as_bool) == Some(true) {
        match value {
            Value::Number(n) if n.is_i64() || n.is_u64() => {}
            Value::String(s) => check_length(schema, s, path, errors),
            other => err(format!("must be an integer or a string, got {other}")),
        }
        return;
    }
    match schema.get("type").and_then(Value::as_str) {
        Some("object") => check_object(schema, value, path, errors),
        Some("array") => check_array(schema, value, path, errors),
        Some("string") => match value.as_str() {
            Some(s) => check_string(schema, s, path, errors),
            None => err(format!("must be of type string, got {value}")),
        },
        Some("integer") => match value.as_i64() {
            Some(n) => check_bounds(schema, n, path, errors),
            None => err(format!("must be of type integer, got {value}")),
        },
        Some("boolean") if !value.is_boolean() => err(format!("must be of type boolean, got {value}")),
        _ => {}
    }
}

fn check_object(schema: &Value, value: &Value, path: &str, errors: &mut Vec<FieldError>) {
    let Some(map) = value.as_object() else {
        errors.push(FieldError::new(path, format!("must be of type object, got {value}")));
        return;
    };
    let properties = schema.get("properties").and_then(Value::as_object);
    let additional = schema.get("additionalProperties").filter(|a| a.is_object());
    for required in schema.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
        if !map.contains_key(required) {
            errors.push(FieldError::new(child(path, required), "Required value"));
        }
    }
    if let Some(max) = schema.get("maxProperties").and_then(Value::as_u64)
        && map.len() as u64 > max
    {
        errors.push(FieldError::new(path, format!("must have at most {max} entries, got {}", map.len())));
    }
    for (key, item) in map {
        match (properties.and_then(|p| p.get(key)), additional) {
            (Some(s), _) | (None, Some(s)) => check(s, item, &child(path, key), errors),
            (None, None) if schema.get("x-kubernetes-preserve-unknown-fields").is_none() => {
                errors.push(FieldError::new(child(path, key), "unknown field"));
            }
            (None, None) => {}
        }
    }
}

fn check_array(schema: &Value, value: &Value, path: &str, errors: &mut Vec<FieldError>) {
    let Some(items) = value.as_array() else {
        errors.push(FieldError::new(path, format!("must be of type array, got {value}")));
        return;
    };
    if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
        && items.len() as u64 > max
    {
        errors.push(FieldError::new(path, format!("must have at most {max} items, got {}", items.len())));
    }
    if let Some(item_schema) = schema.get("items") {
        for (i, item) in items.iter().enumerate() {
            check(item_schema, item, &format!("{path}[{i}]"), errors);
        }
    }
    let keys: Vec<&str> = schema
        .get("x-kubernetes-list-map-keys")
        .and_then(Value::as_array)
        .map(|k| k.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut seen = BTreeSet::new();
    for (i, item) in items.iter().enumerate() {
        let identity = match schema.get("x-kubernetes-list-type").and_then(Value::as_str) {
            Some("map") => keys.iter().map(|k| item.get(*k).cloned().unwrap_or(Value::Null).to_string()).collect(),
            Some("set") => vec![item.to_string()],
            _ => continue,
        };
        if !seen.insert(identity.clone()) {
            errors.push(FieldError::new(format!("{path}[{i}]"), format!("Duplicate value: {}", identity.join(","))));
        }
    }
}

fn check_string(schema: &Value, s: &str, path: &str, errors: &mut Vec<FieldError>) {
    check_length(schema, s, path, errors);
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.iter().any(|a| a.as_str() == Some(s))
    {
        let supported: Vec<String> = allowed.iter().map(Value::to_string).collect();
        errors.push(FieldError::new(
            path,
            format!("Unsupported value: {s:?}: supported values: {}", supported.join(", ")),
        ));
    }
    if schema.get("format").and_then(Value::as_str) == Some("date-time")
        && s.parse::<k8s_openapi::jiff::Timestamp>().is_err()
    {
        errors.push(FieldError::new(path, format!("must be of type date-time (RFC 3339), got {s:?}")));
    }
}

fn check_length(schema: &Value, s: &str, path: &str, errors: &mut Vec<FieldError>) {
    if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
        && s.len() as u64 > max
    {
        errors.push(FieldError::new(path, format!("Too long: may not be more than {max} bytes")));
    }
    if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
        && (s.chars().count() as u64) < min
    {
        errors.push(FieldError::new(path, format!("should be at least {min} chars long, got {s:?}")));
    }
    if let Some(pattern) = schema.get("pattern").and_then(Value::as_str)
        && regex::Regex::new(pattern).is_ok_and(|re| !re.is_match(s))
    {
        errors.push(FieldError::new(path, format!("should match '{pattern}', got {s:?}")));
    }
}

fn check_bounds(schema: &Value, n: i64, path: &str, errors: &mut Vec<FieldError>) {
    // schemars writes bounds as floats (`minimum: 1.0`).
    if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
        && (n as f64) < min
    {
        errors.push(FieldError::new(path, format!("must be greater than or equal to {min}, got {n}")));
    }
    if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
        && (n as f64) > max
    {
        errors.push(FieldError::new(path, format!("must be less than or equal to {max}, got {n}")));
    }
}

/// Applies a JSON merge patch (RFC 7386: objects merge, `null` removes, anything else replaces).
pub fn merge_patch(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table of invalid manifests shared with `tests/crds.rs`.
    pub(crate) fn invalid_cases() -> (Value, Vec<Value>) {
        let table: Value = serde_yaml::from_str(include_str!("../../tests/fixtures/invalid-manifests.yaml"))
            .expect("the fixture table parses");
        let cases = table["cases"].as_array().cloned().unwrap_or_default();
        (table["bases"].clone(), cases)
    }

    #[test]
    fn the_examples_are_valid() {
        for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/examples")).expect("examples/") {
            let path = entry.expect("entry").path();
            if path.extension().is_none_or(|x| x != "yaml") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("read example");
            for doc in serde_yaml::Deserializer::from_str(&text) {
                let value = Value::deserialize(doc).expect("example parses");
                if value["apiVersion"].as_str().is_some_and(|v| v.starts_with("pterobox.io/")) {
                    assert_eq!(validate(&value, None), Ok(()), "{}", path.display());
                }
            }
        }
    }

    #[test]
    fn every_invalid_manifest_is_refused_naming_its_field() {
        let (bases, cases) = invalid_cases();
        assert!(cases.len() >= 25, "the table has {} cases", cases.len());
        for case in cases {
            let name = case["name"].as_str().unwrap_or_default();
            let field = case["field"].as_str().unwrap_or_default();
            let base = bases[case["kind"].as_str().unwrap_or_default()].clone();
            let mut object = base.clone();
            merge_patch(&mut object, &case["patch"]);
            let old = case["update"].as_bool().unwrap_or(false).then_some(&base);
            let errors = validate(&object, old).expect_err(name);
            assert!(
                errors.iter().any(|e| e.field == field
                    || e.field.starts_with(&format!("{field}["))
                    || e.field.starts_with(&format!("{field}."))),
                "{name}: expected an error on {field}, got {errors:?}"
            );
            for e in &errors {
                assert!(!e.message.is_empty(), "{name}: empty message on {}", e.field);
            }
            if let Some(want) = case["message"].as_str() {
                assert!(
                    errors.iter().any(|e| e.message.contains(want)),
                    "{name}: no message says {want:?}: {errors:?}"
                );
            }
        }
    }

    #[test]
    fn the_bases_are_valid() {
        let (bases, _) = invalid_cases();
        for (kind, base) in bases.as_object().into_iter().flatten() {
            assert_eq!(validate(base, None), Ok(()), "{kind}");
        }
    }

    #[test]
    fn schema_and_rule_errors_are_named_together_unless_a_blocking_one_stops_the_rules() {
        let (bases, _) = invalid_cases();
        let mut gbox = bases["GameBox"].clone();
        // A bound (schema) and min above max (a CEL rule) at once.
        merge_patch(
            &mut gbox,
            &serde_json::json!({"spec": {"perServer": {"io": 5, "min": {"memory": "2Gi"}, "max": {"memory": "1Gi"}}}}),
        );
        let errors = validate(&gbox, None).expect_err("invalid");
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert!(fields.contains(&"spec.perServer.io"), "{errors:?}");
        let rule = |errors: &[FieldError]| errors.iter().any(|e| e.message.contains("min.memory 2Gi is above"));
        assert!(rule(&errors), "the rule's error too: {errors:?}");
        // A wrong type stops the rules, and says so.
        merge_patch(&mut gbox, &serde_json::json!({"spec": {"suspended": "yes"}}));
        let errors = validate(&gbox, None).expect_err("invalid");
        assert!(errors.iter().any(|e| e.field == "spec.suspended"), "{errors:?}");
        assert!(!rule(&errors), "{errors:?}");
        assert!(errors.iter().any(|e| e.message.contains("some validation rules were not checked")), "{errors:?}");
    }

    #[test]
    fn a_manifest_of_another_kind_is_named() {
        let pod = serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}});
        assert_eq!(validate(&pod, None).unwrap_err()[0].field, "apiVersion");
    }

    use serde::Deserialize as _;
}
