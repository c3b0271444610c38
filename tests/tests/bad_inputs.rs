//! The bad-input corpus (tests/bad-inputs/): every case exits 2 with a
//! message that names the problem (and the file, when a file is the
//! problem) — never a panic, never a backtrace.

use std::path::Path;

#[test]
fn every_bad_input_exits_2_with_a_named_problem() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("bad-inputs");
    let cases = std::fs::read_to_string(dir.join("cases.tsv")).unwrap();
    let mut n = 0;
    let mut failures = Vec::new();
    for line in cases.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let cols: Vec<&str> = line.split('\t').collect();
        assert_eq!(cols.len(), 4, "cases.tsv: bad row {line:?}");
        let (name, args, want, names_file) = (cols[0], cols[1], cols[2], cols[3] == "y");
        let mut files = Vec::new();
        let argv: Vec<String> = args
            .split(' ')
            .map(|a| {
                if a == "@DIR" {
                    dir.display().to_string()
                } else if let Some(f) = a.strip_prefix('@') {
                    files.push(f.to_string());
                    dir.join(f).display().to_string()
                } else if let Some((k, f)) = a.split_once("=@") {
                    format!("{k}={}", dir.join(f).display())
                } else {
                    a.to_string()
                }
            })
            .collect();
        // With backtraces on, so a panic would show one.
        let out = racklet_tests::racklet_flash().args(&argv).env("RUST_BACKTRACE", "1").output().unwrap();
        let text =
            format!("{}{}", String::from_utf8_lossy(&out.stderr), String::from_utf8_lossy(&out.stdout));
        n += 1;
        let mut why = Vec::new();
        if out.status.code() != Some(2) {
            why.push(format!("exit {:?}, want 2", out.status.code()));
        }
        if !text.contains(want) {
            why.push(format!("message lacks {want:?}"));
        }
        if names_file && !files.iter().any(|f| text.contains(f.as_str())) {
            why.push(format!("message does not name the file {files:?}"));
        }
        if text.contains("panicked") || text.contains("stack backtrace") {
            why.push("panicked or printed a backtrace".into());
        }
        if !why.is_empty() {
            failures.push(format!("{name}: {}\n{text}", why.join("; ")));
        }
    }
    assert!(n >= 25, "the corpus has {n} cases; the issue asks for at least 25");
    assert!(failures.is_empty(), "{} of {n} cases failed:\n{}", failures.len(), failures.join("\n"));
}
