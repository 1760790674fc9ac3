//! The fuzz corpus as a test: every seed and every saved fuzzer finding in
//! fuzz/corpus/parse, plus the RFC 4475 messages, must satisfy the parser's
//! invariants (no panic, serialize → parse is the identity).

use std::path::{Path, PathBuf};

use softline::sip::parse::check_invariants;

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files_under(&path, out);
        } else if path.extension().is_none_or(|e| e != "md") {
            out.push(path);
        }
    }
}

#[test]
fn fuzz_corpus_holds_the_parser_invariants() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    files_under(&root.join("fuzz/corpus/parse"), &mut files);
    let seeds = files.len();
    files_under(&root.join("tests/corpus"), &mut files);
    assert!(
        seeds >= 2 && files.len() >= seeds + 49,
        "corpus went missing: {} files",
        files.len()
    );
    for path in &files {
        let data = std::fs::read(path).unwrap();
        if let Err(why) = check_invariants(&data) {
            panic!("{}: {why}", path.display());
        }
        // Every prefix too: truncation is the commonest real-world damage.
        for cut in (0..data.len()).step_by(13) {
            if let Err(why) = check_invariants(&data[..cut]) {
                panic!("{} cut at {cut}: {why}", path.display());
            }
        }
    }
}
