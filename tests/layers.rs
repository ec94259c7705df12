//! The crate's layers import strictly downward (see `src/architecture.md`): a module names only
//! modules of the layers above its own line, never a sibling's or a lower line's. Read from the
//! source, so a new `use crate::recipe` in an objective fails here, not in review.

use std::collections::BTreeMap;
use std::path::Path;

/// The layers, foundation first; a module may import those of earlier lines only.
const LAYERS: &[&[&str]] = &[
    &["error"],
    &["util", "device"],
    &["corpus"],
    &["tokenize"],
    &["dataset"],
    &["noise"],
    &["data"],
    &["kernels"],
    &["blocks"],
    &["lora", "quantize"],
    &["preset", "objectives"],
    &["pretrainer"],
    &["train"],
    &["hf"],
    &["recipe"],
    &["fill_mask", "generate", "finetune"],
    &["align"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|line| line.contains(&module))
}

/// The top-level module a source file belongs to: `src/objectives/mlm.rs` → `objectives`.
fn module_of(path: &Path, src: &Path) -> String {
    let relative = path.strip_prefix(src).unwrap();
    let first = relative.components().next().unwrap().as_os_str();
    first.to_string_lossy().trim_end_matches(".rs").to_string()
}

/// Every `crate::NAME` a file's code (not its comments, not its test module) names.
fn named_modules(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim_start() == "#[cfg(test)]" && !line.starts_with(' ') {
            break;
        }
        let code = line.trim_start();
        if code.starts_with("//") {
            continue;
        }
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            found.push((i + 1, name));
        }
    }
    found
}

fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_module_imports_only_the_layers_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut faults = BTreeMap::new();
    let mut checked = 0;
    for path in &files {
        let module = module_of(path, &src);
        let Some(own) = layer_of(&module) else {
            continue; // lib.rs and test_support: the crate's root and test scaffolding.
        };
        checked += 1;
        let text = std::fs::read_to_string(path).unwrap();
        for (line, name) in named_modules(&text) {
            if name == module || name == "test_support" {
                continue;
            }
            let Some(theirs) = layer_of(&name) else {
                continue; // a re-export at the root (`crate::Result`, `crate::Pretrainer`…)
            };
            if theirs >= own {
                let at = format!("{}:{line}", path.strip_prefix(&src).unwrap().display());
                faults.insert(at, format!("{module} names {name}"));
            }
        }
    }
    assert!(
        checked > 100,
        "only {checked} source files found under {src:?}"
    );
    assert!(
        faults.is_empty(),
        "imports against the layers:\n{}",
        faults
            .iter()
            .map(|(at, what)| format!("  {at}: {what}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn the_check_sees_an_upward_import() {
    let text = "use crate::recipe::Recipe;\n// crate::hf in a comment\n#[cfg(test)]\nmod tests { use crate::align; }\n";
    let names: Vec<String> = named_modules(text).into_iter().map(|(_, n)| n).collect();
    assert_eq!(names, ["recipe"]);
    assert!(layer_of("recipe") > layer_of("objectives"));
}
