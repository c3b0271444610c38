//! --port parsing never panics; a parsed selector prints back to a form that
//! parses to the same selector.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data)
        && let Ok(sel) = racklet_link::Selector::parse(s)
        && !matches!(sel, racklet_link::Selector::Tty(_))
    {
        let again = racklet_link::Selector::parse(&sel.to_string()).expect("round trip");
        assert_eq!(sel, again);
    }
});
