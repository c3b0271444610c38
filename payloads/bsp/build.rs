//! Tells dependants (the payload packages) where the linker scripts live,
//! through the `links` metadata (DEP_RACKLET_BSP_LDDIR).
fn main() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("ld");
    println!("cargo:lddir={}", dir.display());
    println!("cargo:rerun-if-changed=ld");
}
