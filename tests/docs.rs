//! The docs document every field of the three kinds (docs/reference.md, generated from the CRDs)
//! and every reason (docs/api.md), and the README links every page of docs/.

/// docs/reference.md is exactly what `pterobox crds --reference` prints from the CRDs, so that its
/// text is the text `kubectl explain` shows, field for field.
#[test]
fn the_reference_is_generated_from_the_crds() {
    let page = std::fs::read_to_string("docs/reference.md").expect("docs/reference.md");
    let generated = pterobox::crd::reference::markdown();
    if page != generated {
        let first = page.lines().zip(generated.lines()).position(|(a, b)| a != b);
        let at = first.unwrap_or_else(|| page.lines().count().min(generated.lines().count()));
        panic!(
            "docs/reference.md differs from the CRDs from line {}: regenerate it with `pterobox crds --reference > docs/reference.md`\n  page:      {:?}\n  generated: {:?}",
            at + 1,
            page.lines().nth(at),
            generated.lines().nth(at)
        );
    }
    // Every field is in it: a kind's spec and status each have a table.
    for kind in ["GamePanel", "GameBox", "GameServer"] {
        for top in ["spec", "status"] {
            assert!(page.contains(&format!("#### {kind} `{top}`")), "{kind} {top}");
        }
    }
    assert!(page.contains("| `spec.deletionPolicy` | string |  |  | Overrides the box's `deletionPolicy`"));
    // Defaults are shown: the box's deletion policy, a panel's budget.
    assert!(page.contains("| `spec.deletionPolicy` | string |  | `Delete` | What deleting a server does"), "box");
    assert!(page.contains("| `spec.requestsPerMinute` | integer |  | `200` |"), "panel");
}

#[test]
fn the_docs_document_every_reason() {
    let readme = std::fs::read_to_string("docs/api.md").expect("docs/api.md");
    let section = readme.split("### Conditions and reasons").nth(1).unwrap_or_default();
    let section = section.split("\n## ").next().unwrap_or_default();
    let missing: Vec<&str> = pterobox::names::Reason::ALL
        .iter()
        .map(|r| r.as_str())
        .filter(|r| !section.contains(&format!("`{r}`")))
        .collect();
    assert!(missing.is_empty(), "reasons missing from the conditions of docs/api.md: {missing:?}");
}

/// The README stays a short first read: every page of docs/ is linked from it, and every link
/// between the pages names a file that exists.
#[test]
fn the_readme_links_every_page_of_docs_and_no_link_is_broken() {
    let readme = std::fs::read_to_string("README.md").expect("README.md");
    let lines = readme.lines().count();
    assert!(lines <= 250, "README.md has {lines} lines: the detail belongs in docs/");
    let mut pages: Vec<String> = std::fs::read_dir("docs")
        .expect("docs/")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".md"))
        .collect();
    pages.sort();
    assert!(pages.len() >= 5, "docs/ holds {pages:?}");
    for page in &pages {
        assert!(readme.contains(&format!("](docs/{page})")), "README.md does not link docs/{page}");
    }
    let mut broken = Vec::new();
    let files = std::iter::once("README.md".to_string()).chain(pages.iter().map(|p| format!("docs/{p}")));
    for file in files {
        let text = std::fs::read_to_string(&file).expect("page");
        let dir = std::path::Path::new(&file).parent().map(std::path::Path::to_path_buf).unwrap_or_default();
        for link in text.split("](").skip(1).filter_map(|rest| rest.split(')').next()) {
            let target = link.split('#').next().unwrap_or_default();
            if target.is_empty() || target.contains("://") {
                continue;
            }
            if !dir.join(target).exists() {
                broken.push(format!("{file}: {link}"));
            }
        }
    }
    assert!(broken.is_empty(), "links to files that do not exist: {broken:#?}");
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

/// The layout table of docs/development.md (the README's "the layout") matches the tree: every
/// path it names exists, every entry of `src/` and every file of the controllers is in it.
#[test]
fn the_layout_table_matches_the_tree() {
    let text = std::fs::read_to_string("docs/development.md").expect("docs/development.md");
    let table = text.split("## Layout").nth(1).expect("a Layout section");
    let ticked = |cell: &str| -> Vec<String> { cell.split('`').skip(1).step_by(2).map(str::to_string).collect() };
    let mut named = Vec::new();
    let mut described = std::collections::BTreeMap::new();
    for row in table.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = row.split(" | ").collect();
        let mut dir = String::new();
        for token in ticked(cells[0]) {
            // `src/a/b.rs`, `c.rs`: a bare name is in the directory of the path before it.
            let path = if token.contains('/') { token.clone() } else { format!("{dir}{token}") };
            dir = path.rsplit_once('/').map(|(d, _)| format!("{d}/")).unwrap_or_default();
            named.push(path.trim_end_matches('/').to_string());
            described.insert(path, cells.get(1).copied().unwrap_or_default().to_string());
        }
    }
    let missing: Vec<&String> = named.iter().filter(|p| !std::path::Path::new(p.as_str()).exists()).collect();
    assert!(missing.is_empty(), "the layout names what does not exist: {missing:?}");
    let entries = |dir: &str| -> Vec<String> {
        let mut out: Vec<String> = std::fs::read_dir(dir)
            .expect("dir")
            .filter_map(|e| Some(format!("{dir}/{}", e.ok()?.file_name().into_string().ok()?)))
            .collect();
        out.sort();
        out
    };
    let unnamed: Vec<String> = entries("src")
        .into_iter()
        .chain(entries("src/controller"))
        .filter(|e| !named.iter().any(|n| n == e || n.starts_with(&format!("{e}/"))))
        .collect();
    assert!(unnamed.is_empty(), "the layout does not name: {unnamed:?}");
    // The GameServer reconciler's stages: each file is described in its row, and each one described exists.
    let stages = &described["src/controller/gameserver/"];
    let files = entries("src/controller/gameserver");
    for file in &files {
        let name = file.rsplit('/').next().unwrap_or_default();
        assert!(stages.contains(&format!("`{name}`")), "the gameserver/ row does not describe {name}");
    }
    for name in ticked(stages).iter().filter(|t| t.ends_with(".rs")) {
        assert!(files.contains(&format!("src/controller/gameserver/{name}")), "gameserver/{name} does not exist");
    }
}
