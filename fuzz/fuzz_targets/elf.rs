//! ELF loading never panics, and what it accepts is consistent.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::path::Path::new("fuzz.elf");
    // Bounded like the CLI's DRAM stages, so no input can ask for more.
    let w = racklet_image::Window::anywhere("fuzz", 64 << 20, "the fuzz limit");
    if let Ok(p) = racklet_image::load_bytes(path, data.to_vec(), None, &w)
        && let (Some(load), Some(entry)) = (p.load_address, p.entry)
    {
        assert!(entry >= load && entry < load + p.bytes.len() as u64);
        assert!(p.bytes.len() as u64 <= p.mem_size && p.mem_size <= 64 << 20);
    }
});
