//! `docs/reference.md`, generated from the CRDs (`pterobox crds --reference`): every field of the
//! three kinds with its type, whether it is required, its default and its description — the text `kubectl
//! explain` shows, so that the two cannot drift apart (`tests/docs.rs` compares them).

use std::fmt::Write as _;

use serde_json::Value;

/// The whole page.
pub fn markdown() -> String {
    let mut out = String::from(
        "# Field reference\n\n[← README](../README.md)\n\nGenerated from the CRDs by `pterobox crds --reference` \
         (`kubectl explain` shows the same text);\n`tests/docs.rs` fails when this page differs from it. \
         A default is what the apiserver fills in when the field\nis left out; where the meaning \
         says what an unset field does instead, no value is filled in. Conditions are\nstandard \
         `metav1.Condition`s.\n",
    );
    for crd in super::all() {
        let kind = &crd.spec.names.kind;
        let schema =
            crd.spec.versions.first().and_then(|v| v.schema.as_ref()).and_then(|s| s.open_api_v3_schema.as_ref());
        let schema = serde_json::to_value(schema).unwrap_or_default();
        for top in ["spec", "status"] {
            let mut rows = Vec::new();
            fields(&schema["properties"][top], top, &mut rows);
            rows.sort_by(|a, b| a.field.cmp(&b.field));
            let _ = write!(
                out,
                "\n#### {kind} `{top}`\n\n| field | type | required | default | meaning |\n|---|---|---|---|---|\n"
            );
            for row in rows {
                let required = if row.required { "yes" } else { "" };
                let (field, kind, default, meaning) = (row.field, row.kind, row.default, row.meaning);
                let _ = writeln!(out, "| `{field}` | {kind} | {required} | {default} | {meaning} |");
            }
        }
    }
    out
}

/// A row of the reference.
struct Row {
    field: String,
    kind: String,
    required: bool,
    /// The value the apiserver fills in when the field is left out (the schema's `default`).
    default: String,
    /// The description, on one line.
    meaning: String,
}

/// One row per field under `schema`, at `path`.
fn fields(schema: &Value, path: &str, out: &mut Vec<Row>) {
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else { return };
    let required: Vec<&str> =
        schema.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
    for (name, child) in properties {
        let field = format!("{path}.{name}");
        let meaning = child.get("description").and_then(Value::as_str).unwrap_or_default();
        let meaning = meaning.split_whitespace().collect::<Vec<_>>().join(" ").replace('|', "\\|");
        let default = match child.get("default") {
            None => String::new(),
            Some(Value::String(s)) => format!("`{s}`"),
            Some(v) => format!("`{v}`"),
        };
        out.push(Row {
            field: field.clone(),
            kind: type_of(name, child),
            required: required.contains(&name.as_str()),
            default: default.replace('|', "\\|"),
            meaning,
        });
        // Standard `metav1.Condition`s: not repeated for each kind.
        if field == "status.conditions" {
            continue;
        }
        fields(child, &field, out);
        if let Some(items) = child.get("items") {
            fields(items, &format!("{field}[]"), out);
        }
    }
}

/// A field's type as a reader says it. The schema cannot tell a resource quantity from another
/// int-or-string (both are `x-kubernetes-int-or-string`): the resources are named.
fn type_of(name: &str, schema: &Value) -> String {
    if schema.get("x-kubernetes-int-or-string").and_then(Value::as_bool) == Some(true) {
        let quantity = ["memory", "disk", "cpu", "swap"].contains(&name);
        return if quantity { "quantity" } else { "int or string" }.to_string();
    }
    match schema.get("type").and_then(Value::as_str) {
        Some("array") => format!("array of {}", schema.get("items").map_or("?".into(), |i| type_of("", i))),
        Some(t) => t.to_string(),
        None => "object".to_string(),
    }
}
