//! Every `.rs` file of the root crate's and the engine's test folders is a module of their one suite
//! binary. A file under `tests/suite/` that no `mod` line declares is never compiled, so its tests never
//! run and nothing says so; a `.rs` file left directly in `tests/` (or a folder beside `suite/`) is built
//! by cargo as a test binary of its own, which links the whole broker again, the cost this layout removes.

use std::path::{Path, PathBuf};

/// The test folders that hold one suite each, relative to the workspace root.
const SUITES: [&str; 3] = ["tests", "engine/tests", "dledger/tests"];

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        let entries = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Whether `source` has a line `mod <name>;` (with any visibility).
fn declares(source: &str, name: &str) -> bool {
    let line = format!("mod {name};");
    source.lines().any(|l| {
        let l = l.trim();
        let l = match l.strip_prefix("pub") {
            Some(rest) if rest.starts_with('(') => rest.split_once(')').map_or(l, |(_, r)| r),
            Some(rest) => rest,
            None => l,
        };
        l.trim() == line
    })
}

/// The file that must declare `file` (a file of the suite folder `suite`) and the module name it must
/// declare: `a.rs` and `a/mod.rs` are declared by their parent module's file, which is `main.rs` at the
/// suite's top and `mod.rs` (or `<folder>.rs` beside it) below.
fn declaration_of(suite: &Path, file: &Path) -> (Vec<PathBuf>, String) {
    let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    let (name, dir) = if stem == "mod" {
        let dir = file.parent().expect("mod.rs has a folder");
        let name = dir.file_name().and_then(|s| s.to_str()).unwrap_or("");
        (
            name.to_owned(),
            dir.parent().expect("a folder under the suite"),
        )
    } else {
        (stem.to_owned(), file.parent().expect("a file has a folder"))
    };
    let parents = if dir == suite {
        vec![suite.join("main.rs")]
    } else {
        vec![dir.join("mod.rs"), dir.with_extension("rs")]
    };
    (parents, name)
}

/// What is wrong with the test folder `tests`: one line per misplaced or undeclared file.
fn misplaced_files(workspace: &Path, tests: &Path) -> Vec<String> {
    let suite = tests.join("suite");
    let shown = |p: &Path| p.strip_prefix(workspace).unwrap_or(p).display().to_string();
    let mut wrong = Vec::new();
    if !suite.join("main.rs").is_file() {
        wrong.push(format!("{} is missing", shown(&suite.join("main.rs"))));
        return wrong;
    }
    for file in rust_files(tests) {
        if !file.starts_with(&suite) {
            wrong.push(format!(
                "{} is outside {}: cargo builds it as a test binary of its own; `git mv` it into {} and declare it in main.rs",
                shown(&file),
                shown(&suite),
                shown(&suite)
            ));
            continue;
        }
        if file == suite.join("main.rs") {
            continue;
        }
        let (parents, name) = declaration_of(&suite, &file);
        let declared = parents
            .iter()
            .any(|p| std::fs::read_to_string(p).is_ok_and(|source| declares(&source, &name)));
        if !declared {
            wrong.push(format!(
                "{} is not a module of the suite, so it never runs: add `mod {name};` to {}",
                shown(&file),
                shown(&parents[0])
            ));
        }
    }
    wrong
}

#[test]
fn every_test_file_is_a_module_of_the_suite() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"));
    let wrong: Vec<String> = SUITES
        .iter()
        .flat_map(|tests| misplaced_files(workspace, &workspace.join(tests)))
        .collect();
    assert!(
        wrong.is_empty(),
        "test files that are not modules of their suite:\n{}",
        wrong.join("\n")
    );
}

/// The checker itself finds an undeclared file, a nested one, and a file beside the suite, and accepts a
/// declared layout (in a temporary folder, so the real suite stays untouched).
#[test]
fn the_suite_guard_names_undeclared_and_misplaced_files() {
    let dir = tempfile::tempdir().unwrap();
    let tests = dir.path().join("tests");
    let suite = tests.join("suite");
    std::fs::create_dir_all(suite.join("common")).unwrap();
    let write = |path: &Path, text: &str| std::fs::write(path, text).unwrap();
    write(&suite.join("main.rs"), "mod common;\nmod declared;\n");
    write(&suite.join("declared.rs"), "");
    write(&suite.join("common").join("mod.rs"), "pub mod tls;\n");
    write(&suite.join("common").join("tls.rs"), "");
    assert_eq!(misplaced_files(dir.path(), &tests), Vec::<String>::new());

    write(&suite.join("stray.rs"), "");
    write(&suite.join("common").join("helper.rs"), "");
    write(&tests.join("beside.rs"), "");
    let wrong = misplaced_files(dir.path(), &tests);
    assert_eq!(wrong.len(), 3, "{wrong:#?}");
    assert!(
        wrong[0].starts_with("tests/beside.rs is outside tests/suite"),
        "{wrong:#?}"
    );
    assert!(
        wrong[1].starts_with("tests/suite/common/helper.rs is not a module")
            && wrong[1].ends_with("add `mod helper;` to tests/suite/common/mod.rs"),
        "{wrong:#?}"
    );
    assert!(
        wrong[2].starts_with("tests/suite/stray.rs is not a module")
            && wrong[2].ends_with("add `mod stray;` to tests/suite/main.rs"),
        "{wrong:#?}"
    );
}
