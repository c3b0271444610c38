//! Gives every `<payload>-<board>` binary its board's linker script.
use std::{env, fs, path::PathBuf};

fn main() {
    let lddir = PathBuf::from(env::var("DEP_RACKLET_BSP_LDDIR").expect("racklet-bsp links metadata"));
    let pkg = env::var("CARGO_PKG_NAME").unwrap();
    println!("cargo:rerun-if-changed={}", lddir.display());
    println!("cargo:rustc-link-arg-bins=-L{}", lddir.display());
    let manifest = fs::read_to_string("Cargo.toml").unwrap();
    for line in manifest.lines() {
        // [[bin]] name = "<pkg>-<board>"
        let Some(rest) = line.strip_prefix("name = \"") else { continue };
        let bin = rest.trim_end_matches('"');
        let Some(board) = bin.strip_prefix(&format!("{pkg}-")) else { continue };
        let script = lddir.join(format!("{board}.ld"));
        assert!(script.exists(), "no linker script {} for {bin}", script.display());
        println!("cargo:rustc-link-arg-bin={bin}=-T{}", script.display());
    }
}
