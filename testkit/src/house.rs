//! The house rules, checked by each crate's tests so they stay true: one layout for folders
//! of modules (`name/mod.rs`, never `name.rs` beside `name/`), no source file over
//! [`MAX_CODE_LINES`] lines of code (its tests aside), and one module map per crate, in the
//! crate root's `//!` doc, that names every module and nothing that is not one, with no
//! import cycle between the top-level modules.
//!
//! The map names a top-level module as an intra-doc link (`` [`hub`] ``) and a nested one by
//! its path under `src/`, without `.rs` (`` `hub/join` ``, `` `store/dynamodb/` ``).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Most lines of code (not blank, not a comment, before the file's `#[cfg(test)]`) a source
/// file may hold.
pub const MAX_CODE_LINES: usize = 500;

/// Lines of code in a source file's text: not blank, not a comment, before `#[cfg(test)]`.
pub fn code_lines(text: &str) -> usize {
    text.lines()
        .take_while(|line| !line.starts_with("#[cfg(test)]"))
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with("//"))
        .count()
}

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The module path of a file under `src` (`hub/join`, `hub` for `hub/mod.rs`); `None` for
/// the crate root.
fn module_of(src: &Path, file: &Path, root: &str) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?.with_extension("");
    let rel = rel.to_string_lossy().replace('\\', "/");
    if rel == root.trim_end_matches(".rs") || rel == "lib" || rel == "main" {
        return None;
    }
    Some(rel.strip_suffix("/mod").unwrap_or(&rel).to_string())
}

fn is_ident(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// What the root's `//!` map names: top-level modules (intra-doc links) and nested paths.
fn mapped(root_text: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let doc: String = root_text
        .lines()
        .filter_map(|l| l.strip_prefix("//!"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut top = BTreeSet::new();
    let mut nested = BTreeSet::new();
    let parts: Vec<&str> = doc.split('`').collect();
    for (i, token) in parts.iter().enumerate() {
        if i % 2 == 0 {
            continue;
        }
        let linked =
            parts[i - 1].ends_with('[') && parts.get(i + 1).is_some_and(|p| p.starts_with(']'));
        if linked && is_ident(token) {
            top.insert(token.to_string());
        }
        let path = token.trim_end_matches('/');
        if path.contains('/') && path.split('/').all(is_ident) {
            nested.insert(path.to_string());
        }
    }
    (top, nested)
}

/// The top-level modules each top-level module names through `crate::`.
fn imports(
    src: &Path,
    root: &str,
    modules: &BTreeSet<String>,
) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in rust_files(src) {
        let Some(module) = module_of(src, &file, root) else {
            continue;
        };
        let top = module.split('/').next().unwrap_or_default().to_string();
        let text = fs::read_to_string(&file).unwrap_or_default();
        let code = text
            .lines()
            .take_while(|line| !line.starts_with("#[cfg(test)]"))
            .filter(|line| !line.trim_start().starts_with("//"));
        for line in code {
            for (i, _) in line.match_indices("crate::") {
                let name: String = line[i + 7..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if name != top && modules.contains(&name) {
                    graph.entry(top.clone()).or_default().insert(name);
                }
            }
        }
    }
    graph
}

/// A cycle in `graph`, if any, as the modules along it.
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut found = path[at..].to_vec();
            found.push(node.to_string());
            return Some(found);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, graph, path, done) {
                return Some(found);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

/// Every way the crate whose sources are `src` (its root file `root`, e.g. `lib.rs`) breaks
/// the house rules; empty when it keeps them.
pub fn problems(src: &Path, root: &str) -> Vec<String> {
    let mut out = Vec::new();
    let files = rust_files(src);
    let mut modules = BTreeSet::new();
    for file in &files {
        let text = fs::read_to_string(file).unwrap_or_default();
        let lines = code_lines(&text);
        if lines > MAX_CODE_LINES {
            out.push(format!(
                "{} holds {lines} lines of code (at most {MAX_CODE_LINES}): split it",
                file.display()
            ));
        }
        if file.file_name().is_some_and(|n| n != "mod.rs") && file.with_extension("").is_dir() {
            out.push(format!(
                "{} sits beside its folder: move it to {}/mod.rs",
                file.display(),
                file.with_extension("").display()
            ));
        }
        modules.extend(module_of(src, file, root));
    }
    let root_text = fs::read_to_string(src.join(root)).unwrap_or_default();
    let (top, nested) = mapped(&root_text);
    let top_level: BTreeSet<String> = modules
        .iter()
        .filter(|m| !m.contains('/'))
        .cloned()
        .collect();
    for module in &modules {
        let named = if module.contains('/') {
            nested.contains(module)
        } else {
            top.contains(module)
        };
        if !named {
            out.push(format!("{root}'s module map does not name `{module}`"));
        }
    }
    for name in top.iter().filter(|m| !top_level.contains(*m)) {
        out.push(format!(
            "{root}'s module map names [`{name}`], which is no module"
        ));
    }
    for path in nested.iter().filter(|m| !modules.contains(*m)) {
        out.push(format!(
            "{root}'s module map names `{path}`, which is no module"
        ));
    }
    if let Some(found) = cycle(&imports(src, root, &top_level)) {
        out.push(format!("modules import each other: {}", found.join(" -> ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_lines_skip_blanks_comments_and_tests() {
        let text = "//! doc\n\nfn a() {}\n    // note\nfn b() {}\n#[cfg(test)]\nmod tests {}\n";
        assert_eq!(code_lines(text), 2);
    }

    #[test]
    fn the_map_names_links_and_paths_only() {
        let (top, nested) = mapped(
            "//! - [`hub`]: rooms; `hub/join` joins; `store/dynamodb/` tables.\n\
             //! `welcome` and [`config::Settings`] and `docs/PROTOCOL.md` are no modules.\n",
        );
        assert_eq!(top.into_iter().collect::<Vec<_>>(), ["hub"]);
        assert_eq!(
            nested.into_iter().collect::<Vec<_>>(),
            ["hub/join", "store/dynamodb"]
        );
    }

    #[test]
    fn testkit_keeps_the_house_rules() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let problems = problems(&src, "lib.rs");
        assert!(problems.is_empty(), "{problems:#?}");
    }

    #[test]
    fn a_cycle_is_found() {
        let graph = BTreeMap::from([
            ("a".to_string(), BTreeSet::from(["b".to_string()])),
            ("b".to_string(), BTreeSet::from(["c".to_string()])),
            ("c".to_string(), BTreeSet::from(["a".to_string()])),
        ]);
        assert_eq!(cycle(&graph).map(|c| c.len()), Some(4));
        let acyclic = BTreeMap::from([("a".to_string(), BTreeSet::from(["b".to_string()]))]);
        assert_eq!(cycle(&acyclic), None);
    }
}
