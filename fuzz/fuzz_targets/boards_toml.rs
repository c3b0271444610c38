//! A user's board file never panics the parser; every accepted board passes
//! the table's own validity rules.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(b) = racklet_flash::boards::parse_str("fuzz.toml", text)
    {
        for board in &b.boards {
            assert!(board.sram_size > 0);
            assert!(board.load_address >= board.sram_base);
        }
    }
});
