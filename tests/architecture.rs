//! The module graph, read from the source: every `crate::<module>` a file names is an edge,
//! and each top-level module may only reach the modules listed for it below. The listed
//! graph is itself checked to have no cycle, so no module imports one above it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Each top-level module and the modules it may use, lowest layers first.
const ALLOWED: &[(&str, &[&str])] = &[
    ("auth", &[]),
    ("cache", &[]),
    ("telemetry", &[]),
    ("cli", &[]),
    ("error", &["auth", "cache"]),
    ("config", &["cache"]),
    ("domain", &["error"]),
    ("validate", &["error"]),
    ("db", &["config", "domain", "telemetry"]),
    ("switches", &["cache", "config", "db", "domain", "telemetry"]),
    ("state", &["auth", "cache", "config", "db", "switches", "telemetry"]),
    ("service", &["auth", "cache", "config", "db", "domain", "error", "state", "switches", "telemetry"]),
    (
        "api",
        &["auth", "cache", "config", "db", "domain", "error", "service", "state", "switches", "telemetry", "validate"],
    ),
    ("app", &["api", "error", "state", "telemetry"]),
    ("server", &["config"]),
    ("jobs", &["config", "db", "domain", "error", "service", "switches"]),
    ("import", &["auth", "db", "validate"]),
    ("bench", &["auth", "cache", "config", "db", "domain", "error", "jobs", "validate"]),
    (
        "commands",
        &[
            "app", "auth", "bench", "cli", "config", "db", "domain", "error", "import", "jobs", "server", "service",
            "state", "switches", "validate",
        ],
    ),
];

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path);
        }
    }
}

/// The top-level module a file under `src/` belongs to (`src/db/users.rs` → `db`).
fn module_of(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).unwrap();
    let first = relative.components().next().unwrap().as_os_str().to_string_lossy().into_owned();
    first.trim_end_matches(".rs").to_owned()
}

/// Every `crate::<name>` the text mentions.
fn crate_references(text: &str) -> BTreeSet<String> {
    text.match_indices("crate::")
        .map(|(at, _)| {
            text[at + "crate::".len()..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect()
        })
        .filter(|name: &String| !name.is_empty())
        .collect()
}

fn actual_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let module = module_of(&src, &file);
        if module == "lib" || module == "main" {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        // Grouped paths would hide their modules from this reader.
        assert!(!text.contains("crate::{"), "{}: write one `use crate::<module>` per module", file.display());
        let uses = crate_references(&text);
        graph.entry(module.clone()).or_default().extend(uses.into_iter().filter(|used| *used != module));
    }
    graph
}

#[test]
fn every_module_uses_only_the_layers_below_it() {
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut violations = Vec::new();
    for (module, uses) in actual_graph() {
        let Some(permitted) = allowed.get(module.as_str()) else {
            violations.push(format!("{module} is not in the architecture's table"));
            continue;
        };
        for used in uses {
            if !permitted.contains(&used.as_str()) {
                violations.push(format!("{module} uses {used}"));
            }
        }
    }
    assert!(violations.is_empty(), "module graph violations:\n{}", violations.join("\n"));
}

#[test]
fn the_permitted_graph_has_no_cycle() {
    // Each module is listed after everything it may use, so the table is its own
    // topological order: a cycle would need an edge pointing down the list.
    let position: BTreeMap<&str, usize> = ALLOWED.iter().enumerate().map(|(i, (module, _))| (*module, i)).collect();
    for (index, (module, uses)) in ALLOWED.iter().enumerate() {
        for used in *uses {
            let used_at = position.get(used).unwrap_or_else(|| panic!("{used} is not in the table"));
            assert!(*used_at < index, "{module} may use {used}, which is listed after it");
        }
    }
}

#[test]
fn the_reader_finds_references() {
    let uses = crate_references("use crate::db::users;\nlet x = crate::service::views::flush;");
    assert_eq!(uses, ["db", "service"].map(String::from).into());
}
