//! Real peer: PyPI k230-flash 1.4.0, unchanged, writes storage on the
//! virtual K230 (`racklet-flash sim canmv-k230 --tcp`) through the pyusb
//! stand-in in tests/k230flash/usb, and racklet-flash writes the same
//! inputs on its own virtual board: the storage each leaves must be the same
//! bytes. The cases are in tests/k230flash/run.sh.

#[test]
#[ignore = "slow: installs PyPI k230-flash into a venv under the target dir (tests/k230flash/run.sh)"]
fn k230_flash_leaves_the_storage_racklet_flash_leaves() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = std::process::Command::new("bash")
        .arg(root.join("tests/k230flash/run.sh"))
        .env("RACKLET_FLASH", racklet_tests::racklet_flash_path())
        .output()
        .expect("bash runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}");
    assert!(text.contains("k230-flash peer test: ok (4 cases)"), "{text}");
}
