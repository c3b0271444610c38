//! Captures: recorded transcripts under `tests/vectors/captures/<board>/`,
//! each replayed with the command line of its header (docs/transcripts.md,
//! docs/hardware-testing.md).

use std::path::{Path, PathBuf};

use racklet_link::transcript::reader::{self, Transcript};
use racklet_link::transcript::sha256_hex;

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// The captures folder.
pub fn folder() -> PathBuf {
    workspace().join("tests/vectors/captures")
}

/// Every capture file (`*.jsonl`, `*.jsonl.zst`) under `dir`, sorted.
pub fn all(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(boards) = std::fs::read_dir(dir) else { return found };
    for b in boards.flatten().filter(|e| e.path().is_dir()) {
        for f in std::fs::read_dir(b.path()).into_iter().flatten().flatten() {
            let name = f.file_name().to_string_lossy().to_string();
            if name.ends_with(".jsonl") || name.ends_with(".jsonl.zst") {
                found.push(f.path());
            }
        }
    }
    found.sort();
    found
}

/// The capture's name: its file name without `.jsonl[.zst]`.
pub fn name(capture: &Path) -> String {
    let n = capture.file_name().map(|f| f.to_string_lossy().to_string()).unwrap_or_default();
    n.trim_end_matches(".zst").trim_end_matches(".jsonl").to_string()
}

/// Options of the recorded command line that a replay drops: how it was
/// recorded and what it ran against (flag, takes a value).
const DROPPED: &[(&str, bool)] = &[
    ("--record", true),
    ("--record-data", true),
    ("--record-redact", false),
    ("--simulate", false),
    ("--auto-simulate", false),
    ("--sim-speed", true),
    ("--fault", true),
    ("--replay", true),
    ("--replay-timing", false),
];

/// Where an input file of a capture is: as given, relative to the
/// capture's folder; by its file name in that folder; or relative to the
/// workspace root. Its SHA-256 must be the recorded one.
pub fn find_input(capture: &Path, input: &reader::InputFile) -> Result<PathBuf, String> {
    let dir = capture.parent().expect("a capture is in a folder");
    let given = Path::new(&input.path);
    let base = given.file_name().map(PathBuf::from).unwrap_or_default();
    for cand in [dir.join(given), dir.join(&base), workspace().join(given)] {
        if let Ok(bytes) = std::fs::read(&cand) {
            let sha = sha256_hex(&bytes);
            if sha == input.sha256 {
                return Ok(cand);
            }
            return Err(format!(
                "{}: input {} is {} (sha256 {sha}), the recording had {} bytes (sha256 {})",
                capture.display(),
                cand.display(),
                bytes.len(),
                input.len,
                input.sha256
            ));
        }
    }
    Err(format!(
        "{}: input {} not found next to the capture or in the workspace (see its README.md)",
        capture.display(),
        input.path
    ))
}

/// The replay command line of a capture (without the program name) and the
/// transcript: the recorded one, minus how it was recorded, inputs found
/// (`inputs` overrides where an input is), plus `--replay CAPTURE`.
pub fn replay_args(
    capture: &Path,
    inputs: &[(String, PathBuf)],
) -> Result<(Vec<String>, Transcript), String> {
    let t = reader::read_path(capture).map_err(|e| e.to_string())?;
    let h = t
        .header
        .as_ref()
        .ok_or_else(|| format!("{}: no header (a version 0 transcript)", capture.display()))?;
    let mut args = Vec::new();
    let mut it = h.argv.iter().skip(1);
    'next: while let Some(a) = it.next() {
        for &(flag, value) in DROPPED {
            if a == flag {
                if value {
                    it.next();
                }
                continue 'next;
            }
            if a.starts_with(&format!("{flag}=")) {
                continue 'next;
            }
        }
        args.push(a.clone());
    }
    for input in &h.inputs {
        let at = match inputs.iter().find(|(p, _)| p == &input.path) {
            Some((_, p)) => p.clone(),
            None => find_input(capture, input)?,
        };
        for a in args.iter_mut() {
            if a == &input.path {
                *a = at.display().to_string();
            } else if let Some((k, v)) = a.split_once('=')
                && v == input.path
            {
                // --load ADDR=FILE
                *a = format!("{k}={}", at.display());
            }
        }
    }
    args.push("--replay".into());
    args.push(capture.display().to_string());
    Ok((args, t))
}
