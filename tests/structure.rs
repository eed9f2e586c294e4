//! The shape of the code a newcomer reads first, held by tests: the GameServer reconciler's wiring
//! stays short, no function of the controllers grows past a screen, the panel-error table names
//! every variant, and `metrics` does not depend on `panel` (which depends on it).

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            out.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// The source without its unit tests (`#[cfg(test)] mod tests` to the end, as this crate writes them).
fn without_tests(text: &str) -> &str {
    text.find("#[cfg(test)]\nmod tests").map_or(text, |at| &text[..at])
}

/// The braces of a line that open or close blocks: those in string and character literals do not.
fn depth_change(line: &str) -> i64 {
    let (mut change, mut in_string, mut chars) = (0, false, line.chars().peekable());
    while let Some(c) = chars.next() {
        match (in_string, c) {
            (true, '\\') => {
                chars.next();
            }
            (true, '"') | (false, '"') => in_string = !in_string,
            (false, '\'') => {
                // A character literal such as '{' (a lifetime has no closing quote soon after).
                let rest: String = chars.clone().take(3).collect();
                if rest.chars().nth(1) == Some('\'') {
                    chars.next();
                    chars.next();
                }
            }
            (false, '/') if chars.peek() == Some(&'/') => break,
            (false, '{') => change += 1,
            (false, '}') => change -= 1,
            _ => {}
        }
    }
    change
}

/// Each function of `text` (outside its unit tests) with its length in lines, signature to closing
/// brace.
fn functions(text: &str) -> Vec<(String, usize)> {
    let lines: Vec<&str> = without_tests(text).lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let words: Vec<&str> = lines[i].split_whitespace().collect();
        let at = words.iter().position(|w| *w == "fn");
        let is_fn = at.is_some_and(|at| {
            words[..at].iter().all(|w| ["pub", "pub(super)", "pub(crate)", "async", "const", "unsafe"].contains(w))
        });
        let Some(name) = at.filter(|_| is_fn).and_then(|at| words.get(at + 1)) else {
            i += 1;
            continue;
        };
        let name = name.split(['(', '<']).next().unwrap_or_default().to_string();
        let (mut depth, mut opened, mut end) = (0, false, i);
        for (j, line) in lines.iter().enumerate().skip(i) {
            if !opened && line.trim_end().ends_with(';') && !line.contains('{') {
                break; // a declaration without a body
            }
            depth += depth_change(line);
            opened |= line.contains('{');
            end = j;
            if opened && depth <= 0 {
                break;
            }
        }
        if opened {
            out.push((name, end - i + 1));
            i = end + 1;
        } else {
            i += 1;
        }
    }
    out
}

#[test]
fn the_scanner_measures_functions_as_written() {
    let text = "fn a() {\n    let s = \"{\";\n    let c = '}';\n}\n\npub(super) async fn b<'a>(x: &'a str)\n    -> usize\n{\n    1\n}\nfn c(&self);\n#[cfg(test)]\nmod tests {\n    fn d() {}\n}\n";
    assert_eq!(functions(text), vec![("a".to_string(), 4), ("b".to_string(), 5)]);
}

#[test]
fn no_function_of_the_controllers_is_longer_than_60_lines() {
    let mut long = Vec::new();
    for path in sources(&root().join("src/controller")) {
        for (name, lines) in functions(&read(&path)) {
            if lines > 60 {
                long.push(format!("{}: fn {name} has {lines} lines", path.display()));
            }
        }
    }
    assert!(long.is_empty(), "split these:\n{}", long.join("\n"));
}

#[test]
fn the_gameserver_reconcilers_wiring_stays_short() {
    let path = root().join("src/controller/gameserver/mod.rs");
    let lines = read(&path).lines().count();
    assert!(lines <= 200, "{} has {lines} lines: its stages belong in their own files", path.display());
}

#[test]
fn the_panel_error_table_names_every_variant() {
    let table = read(&root().join("src/controller/panel_errors.rs"));
    let code = without_tests(&table);
    assert!(!code.contains("_ =>"), "a catch-all in the panel-error table would absorb a new variant");
    // Every variant of `PanelError` has its row.
    let errors = read(&root().join("src/panel/error.rs"));
    let variants: Vec<&str> = errors
        .lines()
        .filter_map(|l| l.strip_prefix("    ").filter(|l| l.chars().next().is_some_and(char::is_uppercase)))
        .filter_map(|l| l.split([' ', '{', '(', ',']).next())
        .collect();
    assert!(variants.len() >= 10, "read the variants: {variants:?}");
    for variant in variants {
        assert!(code.contains(&format!("PanelError::{variant} ")), "no row for PanelError::{variant}");
    }
}

#[test]
fn metrics_does_not_depend_on_the_panel_client() {
    // `panel` records its requests in `metrics`; the other way round would be a cycle.
    for file in ["src/metrics.rs", "src/digest.rs"] {
        let text = read(&root().join(file));
        for forbidden in ["crate::panel", "use crate::{panel", "super::panel"] {
            assert!(!text.contains(forbidden), "{file} names {forbidden}");
        }
    }
}
