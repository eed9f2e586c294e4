//! The README documents every field of the three kinds (it is generated from the same schema).

use serde_json::Value;

fn fields(schema: &Value, path: &str, out: &mut Vec<String>) {
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else { return };
    for (name, child) in properties {
        let field = format!("{path}.{name}");
        if field == "status.conditions" {
            out.push(field);
            continue; // standard metav1.Condition
        }
        fields(child, &field, out);
        if let Some(items) = child.get("items") {
            fields(items, &format!("{field}[]"), out);
        }
        out.push(field);
    }
}

#[test]
fn the_readme_documents_every_field_of_every_kind() {
    let readme = std::fs::read_to_string("README.md").expect("README.md");
    let mut missing = Vec::new();
    for crd in pterobox::crd::all() {
        let kind = crd.spec.names.kind.clone();
        let schema = serde_json::to_value(&crd.spec.versions[0].schema).expect("schema");
        let mut all = Vec::new();
        for top in ["spec", "status"] {
            fields(&schema["openAPIV3Schema"]["properties"][top], top, &mut all);
        }
        assert!(all.len() > 5, "{kind}: no fields found");
        let section = readme.split(&format!("#### {kind} `spec`")).nth(1).unwrap_or_default();
        for field in all {
            if !section.contains(&format!("| `{field}` |")) {
                missing.push(format!("{kind} {field}"));
            }
        }
    }
    assert!(missing.is_empty(), "fields missing from the README's field reference: {missing:#?}");
}

#[test]
fn the_readme_documents_every_reason() {
    let readme = std::fs::read_to_string("README.md").expect("README.md");
    let section = readme.split("### Conditions and reasons").nth(1).unwrap_or_default();
    let section = section.split("\n## ").next().unwrap_or_default();
    let missing: Vec<&str> = pterobox::names::Reason::ALL
        .iter()
        .map(|r| r.as_str())
        .filter(|r| !section.contains(&format!("`{r}`")))
        .collect();
    assert!(missing.is_empty(), "reasons missing from the README's conditions: {missing:?}");
}

/// An optional field of an enum type keeps its own description in the CRD (`kubectl explain`):
/// a doc comment on the enum used to replace it, so a server's `deletionPolicy` never said that it
/// overrides its box's.
#[test]
fn optional_enum_fields_keep_their_own_description() {
    let description = |kind: &str, path: &[&str]| {
        let crd = pterobox::crd::all().into_iter().find(|c| c.spec.names.kind == kind).expect("kind");
        let mut schema = serde_json::to_value(&crd.spec.versions[0].schema).expect("schema")["openAPIV3Schema"].clone();
        for p in path {
            schema = schema["properties"][*p].clone();
        }
        schema["description"].as_str().unwrap_or_default().to_string()
    };
    assert!(description("GameServer", &["spec", "deletionPolicy"]).starts_with("Overrides the box's"));
    assert!(description("GamePanel", &["spec", "wispApiVersion"]).starts_with("Wisp only"));
}
