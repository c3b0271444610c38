//! The ELF segment path: a valid ELF header with up to 300 program headers
//! whose addresses, file offsets (shared data included), file and memory
//! sizes come from the input, loaded against a window that comes from the
//! input too. It never panics, never allocates past the window, and what it
//! accepts fits the window with every rule of racklet-image.
#![no_main]
use libfuzzer_sys::fuzz_target;
use racklet_fuzz::Bytes;
use racklet_image::{ImageError, MAX_GAP, MAX_SEGMENTS, Source, Window};

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes::new(data);
    let base = u64::from(b.u32()) << (b.u8() % 33);
    let size = u64::from(b.u32() % (16 << 20)) + 1;
    let count = usize::from(b.u16() % 300);
    let entry_pick = b.u8();
    let mut segs = Vec::new();
    for _ in 0..count {
        // Addresses near the base, now and then anywhere.
        let addr = if b.u8() < 16 {
            u64::from(b.u32()) << 32 | u64::from(b.u32())
        } else {
            base.wrapping_add(u64::from(b.u32() % (size as u32 + 0x20_000)))
        };
        let offset = u64::from(b.u16());
        let filesz = u64::from(b.u16());
        let memsz = match b.u8() {
            0..8 => u64::MAX - u64::from(b.u8()),
            8..64 => filesz + (u64::from(b.u32()) << (b.u8() % 32)),
            _ => filesz,
        };
        segs.push((addr, offset, filesz, memsz));
    }
    let payload = b.rest();
    let entry = segs.get(usize::from(entry_pick) % segs.len().max(1)).map(|s| s.0).unwrap_or(base);
    let elf = racklet_fuzz::elf64_raw(243, entry, &segs, payload);
    let w = Window { board: "fuzz".into(), base, size, max_payload: None };
    match racklet_image::load_bytes(std::path::Path::new("fuzz.elf"), elf, None, &w) {
        Ok(p) => {
            let Source::Elf { segments, .. } = &p.source else { panic!("an ELF loaded as raw") };
            assert!(segments.len() <= MAX_SEGMENTS);
            let load = p.load_address.expect("an ELF has a load address");
            assert!(load >= base && load - base + p.mem_size <= size, "accepted outside the window");
            assert!(p.bytes.len() as u64 <= p.mem_size);
            let entry = p.entry.expect("an ELF has an entry");
            assert!(entry >= load && entry < load + p.bytes.len() as u64);
            let mut sorted = segments.clone();
            sorted.sort_by_key(|s| s.address);
            for w in sorted.windows(2) {
                let end = w[0].address + w[0].mem_size;
                assert!(w[1].address >= end, "overlap accepted");
                assert!(w[1].address - end <= MAX_GAP, "gap accepted");
            }
        }
        Err(ImageError::TooManySegments { count, .. }) => assert!(count > MAX_SEGMENTS),
        Err(_) => {}
    }
});
