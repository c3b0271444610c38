//! ELF loading never panics, and what it accepts is consistent.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::path::Path::new("fuzz.elf");
    if let Ok(p) = racklet_image::load_bytes(path, data.to_vec(), None)
        && let (Some(load), Some(entry)) = (p.load_address, p.entry)
    {
        assert!(entry >= load && entry < load + p.bytes.len() as u64);
    }
});
