//! `info FILE --board B` and `maskrom B FILE` agree: "fits B" exactly when
//! maskrom takes the file (exit 0 in a simulated run), "does not fit B"
//! (exit 2) exactly when maskrom refuses it before anything is sent (exit
//! 2) — over raw binaries, each family's payloads and formats, a FIT, and
//! one board of each boot ROM (ux review §6).

use std::path::Path;

use racklet_tests::{file, fit, k1_fsbl, pattern, prebuilt_hello, racklet_flash, rk3568_loader};
use serde_json::Value;

const BOARDS: [&str; 8] =
    ["rock-3a", "rock-5b", "canmv-k230", "milkv-duo", "milkv-duo-s", "visionfive2", "bpi-f3", "lichee-pi-4a"];

/// info's verdict for `board`: None when it does not fit, Some(slot) when
/// it does (slot: the option it goes through, "" for the payload argument).
fn verdict(dir: &Path, f: &Path, board: &str) -> Option<String> {
    let o =
        racklet_flash().current_dir(dir).args(["info", "--json", "--board", board]).arg(f).output().unwrap();
    let info = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["event"] == "info")
        .unwrap_or_else(|| {
            panic!("no info event for {}: {}", f.display(), String::from_utf8_lossy(&o.stderr))
        });
    let row = &info["boards"][0];
    assert_eq!(row["board"], board);
    let fits = row["fits"].as_bool().unwrap();
    assert_eq!(o.status.code(), Some(if fits { 0 } else { 2 }), "info exit for {} on {board}", f.display());
    fits.then(|| row["as"].as_str().unwrap_or("").to_string())
}

#[test]
fn info_says_fits_exactly_when_maskrom_takes_the_file() {
    let d = tempfile::tempdir().unwrap();
    let mut files = vec![
        file(d.path(), "raw.bin", &pattern(3000, 1)),
        file(d.path(), "loader.bin", &rk3568_loader()),
        file(d.path(), "FSBL.bin", &k1_fsbl(&pattern(5000, 2))),
        file(d.path(), "u-boot.itb", &fit(&pattern(3000, 3))),
    ];
    for (board, soc) in
        [("rock-3a", "rk3568"), ("canmv-k230", "k230"), ("visionfive2", "jh7110"), ("milkv-duo", "cv1800b")]
    {
        if let Some(p) = prebuilt_hello(board, soc) {
            files.push(p.clone());
            files.push(p.with_extension("bin"));
        }
    }
    let (mut fits, mut refused) = (0, 0);
    for f in &files {
        for board in BOARDS {
            let v = verdict(d.path(), f, board);
            let mut args = vec!["maskrom".to_string(), board.to_string()];
            if let Some(slot) = v.as_deref().filter(|s| !s.is_empty()) {
                args.push(slot.to_string());
            }
            args.push(f.display().to_string());
            args.push("--simulate".into());
            let o = racklet_flash().current_dir(d.path()).args(&args).output().unwrap();
            let text = String::from_utf8_lossy(&o.stderr);
            match v {
                Some(_) => {
                    assert_eq!(
                        o.status.code(),
                        Some(0),
                        "info says {} fits {board}, maskrom: {text}",
                        f.display()
                    );
                    fits += 1;
                }
                None => {
                    assert_eq!(
                        o.status.code(),
                        Some(2),
                        "info says {} does not fit {board}, maskrom: {text}",
                        f.display()
                    );
                    refused += 1;
                }
            }
        }
    }
    // Both verdicts were exercised.
    assert!(fits >= 8 && refused >= 8, "fits {fits}, refused {refused}");
}

/// A FIT is named, fits no board as a first stage, and is refused by
/// `maskrom` with the option that takes it; `--force` sends it raw anyway.
#[test]
fn a_fit_is_named_and_refused_as_a_first_stage() {
    let d = tempfile::tempdir().unwrap();
    let f = file(d.path(), "u-boot.itb", &fit(&pattern(2000, 5)));
    let o = racklet_flash().arg("info").arg(&f).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("U-Boot FIT image") && out.contains("racklet"), "{out}");
    assert!(out.contains("fits no board"), "{out}");
    let o = racklet_flash().args(["maskrom", "visionfive2"]).arg(&f).arg("--simulate").output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("U-Boot FIT image") && err.contains("--then-ymodem"), "{err}");
    let o = racklet_flash()
        .args(["maskrom", "visionfive2"])
        .arg(&f)
        .args(["--simulate", "--force"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
}
