//! The README's main-job command, run verbatim from a clean clone.
//!
//! A new user copies the block under "Run the main job" into a shell in a
//! fresh checkout. This test does the same: it clones the repository's
//! committed state into a temporary directory (so nothing untracked, no
//! local build and no file outside the clone can help), takes the block's
//! command as written, and runs it there with `sh -c`. On a machine with no
//! board attached the command runs against the virtual ROM; it must end in
//! "done" with exit 0.
//!
//! Only the build directory is shared with the workspace (a separate
//! `target/readme-main-job`), so the clone's release build is incremental
//! after the first run; the sources it builds are the clone's.

use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// The fenced block that follows the paragraph starting with `lead`.
fn block_after(readme: &str, lead: &str) -> String {
    let at = readme.find(lead).unwrap_or_else(|| panic!("README has no paragraph starting {lead:?}"));
    let rest = &readme[at..];
    let open = rest.find("```").expect("a fenced block follows") + 3;
    let body_start = open + rest[open..].find('\n').expect("fence line ends") + 1;
    let close = body_start + rest[body_start..].find("```").expect("the block is closed");
    rest[body_start..close].trim().to_string()
}

#[test]
#[ignore = "slow (a release build from a clean clone): scripts/test.sh runs it"]
fn readme_main_job_runs_verbatim_from_a_clean_clone() {
    let root = workspace();
    let git = |args: &[&str], dir: &Path| {
        let o = Command::new("git").args(args).current_dir(dir).output().expect("git runs");
        assert!(o.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    // The committed state, not the working tree: that is what a clone gets.
    let top = git(&["rev-parse", "--show-toplevel"], &root);
    let tmp = tempfile::tempdir().unwrap();
    let clone = tmp.path().join("racklet-flash");
    git(&["clone", "--quiet", "--no-hardlinks", &top, clone.to_str().unwrap()], tmp.path());
    let readme = std::fs::read_to_string(clone.join("README.md")).expect("README.md");
    let cmd = block_after(&readme, "Run the main job");
    assert_eq!(cmd.lines().count(), 1, "the main job is one command:\n{cmd}");
    assert!(cmd.starts_with("cargo run"), "the main job runs through cargo: {cmd}");

    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("readme-main-job");
    let mut sh = Command::new("sh");
    sh.arg("-c").arg(&cmd).current_dir(&clone).env("CARGO_TARGET_DIR", &target);
    for v in racklet_tests::RACKLET_ENV {
        sh.env_remove(v);
    }
    let o = sh.output().expect("sh runs");
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "`{cmd}` failed ({}):\n{stdout}\n{stderr}", o.status);
    // Human output goes to stderr (stdout is for JSON and listings).
    assert!(
        stdout.lines().chain(stderr.lines()).any(|l| l.starts_with("done: canmv-k230 started")),
        "no done line:\n{stdout}\n{stderr}"
    );
}
