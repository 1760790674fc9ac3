//! A saved corpus under `tests/corpus/`, for the tests that replay one.
//! Included with `#[path = "support/corpus.rs"]`.

use std::path::Path;

/// The files of `tests/corpus/<name>` whose names end in `.<ext>`, sorted
/// by name: (file name, contents).
pub fn corpus(name: &str, ext: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(name);
    let suffix = format!(".{ext}");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(&suffix))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|n| {
            let data = std::fs::read(dir.join(&n)).unwrap();
            (n, data)
        })
        .collect()
}
