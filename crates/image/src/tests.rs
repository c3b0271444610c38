//! Tests build their ELF files by hand from the ELF specification
//! (`racklet_tests::elf64`), so the expected flat images do not come from
//! the code under test.

use super::*;

use racklet_tests::elf64;

const RISCV: u16 = 243;
const AARCH64: u16 = 183;

fn p() -> PathBuf {
    PathBuf::from("payload.elf")
}

/// Anywhere, any size: the tests of the ELF rules themselves.
fn any() -> Window {
    Window::anywhere("test", u64::MAX, "test")
}

fn load_bytes(path: &Path, bytes: Vec<u8>, arch: Option<Arch>) -> Result<Payload, ImageError> {
    super::load_bytes(path, bytes, arch, &any())
}

fn read_input(path: &Path) -> Result<Vec<u8>, ImageError> {
    super::read_input(path, 1 << 20, "a test input can be")
}

#[test]
fn two_segments_with_a_small_gap_flatten_with_zero_fill() {
    let elf = elf64(RISCV, 0x8000_0000, &[(0x8000_0000, &[1, 2, 3, 4], 4), (0x8000_0008, &[9, 9], 0x100)]);
    let pl = load_bytes(&p(), elf, Some(Arch::Riscv64)).unwrap();
    assert_eq!(pl.bytes, vec![1, 2, 3, 4, 0, 0, 0, 0, 9, 9]);
    assert_eq!(pl.load_address, Some(0x8000_0000));
    assert_eq!(pl.entry, Some(0x8000_0000));
    assert!(matches!(pl.source, Source::Elf { arch: Arch::Riscv64, .. }));
}

#[test]
fn segment_order_in_the_file_does_not_matter() {
    let elf = elf64(RISCV, 0x100, &[(0x104, &[5], 1), (0x100, &[1, 2, 3, 4], 4)]);
    let pl = load_bytes(&p(), elf, None).unwrap();
    assert_eq!(pl.bytes, vec![1, 2, 3, 4, 5]);
}

#[test]
fn wrong_architecture_is_refused_by_name() {
    let elf = elf64(AARCH64, 0x100, &[(0x100, &[1], 1)]);
    let e = load_bytes(&p(), elf, Some(Arch::Riscv64)).unwrap_err();
    assert!(matches!(e, ImageError::WrongArch { found: Arch::Aarch64, expected: Arch::Riscv64, .. }));
    assert!(e.to_string().contains("payload.elf"));
}

#[test]
fn overlap_gap_entry_and_empty_are_refused() {
    let overlap = elf64(RISCV, 0x100, &[(0x100, &[1, 2, 3, 4], 4), (0x102, &[5], 1)]);
    assert!(matches!(load_bytes(&p(), overlap, None), Err(ImageError::Overlap { .. })));
    let gap = elf64(RISCV, 0x100, &[(0x100, &[1], 1), (0x100 + 1 + MAX_GAP + 1, &[2], 1)]);
    assert!(matches!(load_bytes(&p(), gap, None), Err(ImageError::Gap { .. })));
    let just_fits = elf64(RISCV, 0x100, &[(0x100, &[1], 1), (0x100 + 1 + MAX_GAP, &[2], 1)]);
    assert_eq!(load_bytes(&p(), just_fits, None).unwrap().bytes.len() as u64, MAX_GAP + 2);
    let entry = elf64(RISCV, 0x200, &[(0x100, &[1], 1)]);
    assert!(matches!(load_bytes(&p(), entry, None), Err(ImageError::EntryOutside { .. })));
    let bss_only = elf64(RISCV, 0x100, &[(0x100, &[], 0x100)]);
    assert!(matches!(load_bytes(&p(), bss_only, None), Err(ImageError::NoSegments { .. })));
}

#[test]
fn truncated_elf_is_a_clear_error_not_a_panic() {
    let elf = elf64(RISCV, 0x100, &[(0x100, &[1, 2, 3, 4, 5, 6, 7, 8], 8)]);
    for cut in [5, 20, 63, 64, 100, elf.len() - 1] {
        let r = load_bytes(&p(), elf[..cut].to_vec(), None);
        assert!(matches!(r, Err(ImageError::BadElf { .. })), "cut at {cut}: {r:?}");
    }
}

#[test]
fn raw_files_pass_through() {
    let pl = load_bytes(&p(), vec![0x13, 0, 0, 0], Some(Arch::Riscv64)).unwrap();
    assert_eq!(pl.source, Source::Raw);
    assert_eq!(pl.load_address, None);
    // sha256("") style check with a known vector: sha256 of the 3 bytes "abc".
    assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

#[test]
fn files_that_are_missing_empty_or_directories() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(read_input(dir.path()), Err(ImageError::IsDirectory { .. })));
    let empty = dir.path().join("empty.bin");
    std::fs::write(&empty, b"").unwrap();
    assert!(matches!(read_input(&empty), Err(ImageError::Empty { .. })));
    assert!(matches!(read_input(&dir.path().join("nope")), Err(ImageError::Read { .. })));
}

#[test]
fn window_checks() {
    let w = Window { board: "b".into(), base: 0x1000, size: 0x100, max_payload: None };
    check_fit(&p(), 0x1000, 0x100, &w).unwrap();
    assert!(matches!(check_fit(&p(), 0x1000, 0x101, &w), Err(ImageError::TooLarge { limit: 0x100, .. })));
    assert!(matches!(check_fit(&p(), 0x1080, 0x81, &w), Err(ImageError::TooLarge { limit: 0x80, .. })));
    assert!(matches!(check_fit(&p(), 0x800, 0x10, &w), Err(ImageError::OutsideWindow { .. })));
    assert!(matches!(check_fit(&p(), 0x1100, 0x1, &w), Err(ImageError::OutsideWindow { .. })));
    let strict = Window { max_payload: Some((0x20, "spl_tool's buffer".into())), ..w };
    let e = check_fit(&p(), 0x1000, 0x21, &strict).unwrap_err();
    assert!(e.to_string().contains("spl_tool's buffer"), "{e}");
}

/// Found by the `elf` fuzz target: a segment whose end passes 2^64 made the
/// flattening arithmetic overflow (a panic in debug builds).
#[test]
fn segment_past_the_end_of_the_address_space_is_refused() {
    for addr in [u64::MAX, u64::MAX - 3] {
        let elf = elf64(RISCV, addr, &[(addr, &[1, 2, 3, 4], 4)]);
        let r = load_bytes(&p(), elf, None);
        assert!(matches!(r, Err(ImageError::BadElf { .. })), "0x{addr:x}: {r:?}");
    }
    let ends_at_the_top = elf64(RISCV, u64::MAX - 4, &[(u64::MAX - 4, &[1, 2, 3, 4], 4)]);
    assert_eq!(load_bytes(&p(), ends_at_the_top, None).unwrap().bytes, vec![1, 2, 3, 4]);
    let two = elf64(RISCV, 0x100, &[(0x100, &[1], 1), (u64::MAX - 1, &[2, 3], 2)]);
    assert!(matches!(load_bytes(&p(), two, None), Err(ImageError::BadElf { .. })));
}

#[test]
fn fifos_and_devices_are_refused_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("f");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    for path in [fifo.as_path(), Path::new("/dev/zero"), Path::new("/dev/null")] {
        let e = read_input(path).unwrap_err();
        assert!(matches!(e, ImageError::NotRegular { .. }), "{}: {e}", path.display());
        assert!(e.to_string().contains("not a regular file"), "{e}");
    }
}

#[test]
fn size_is_judged_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("sparse.bin");
    std::fs::File::create(&big).unwrap().set_len(8 << 30).unwrap();
    let e = super::read_input(&big, 1 << 20, "a stage of b can be").unwrap_err();
    assert!(matches!(e, ImageError::InputTooLarge { size, limit: 0x10_0000, .. } if size == 8 << 30), "{e}");
    assert!(e.to_string().contains("a stage of b can be"), "{e}");
    let ok = dir.path().join("ok.bin");
    std::fs::write(&ok, [7u8; 100]).unwrap();
    assert_eq!(super::read_input(&ok, 100, "x").unwrap(), vec![7u8; 100]);
    assert!(matches!(super::read_input(&ok, 99, "x"), Err(ImageError::InputTooLarge { size: 100, .. })));
}

#[test]
fn a_read_stops_when_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("f.bin");
    std::fs::write(&f, vec![1u8; 3 << 20]).unwrap();
    let asked = std::cell::Cell::new(0);
    let cancel = || {
        asked.set(asked.get() + 1);
        asked.get() > 1
    };
    let e = read_input_until(&f, 8 << 20, "x", &cancel).unwrap_err();
    assert!(matches!(e, ImageError::Interrupted { .. }), "{e}");
}

/// 3000 segments that share one piece of file data used to be flattened
/// (gigabytes) before anything was checked.
#[test]
fn segment_count_and_footprint_are_checked_before_allocating() {
    let data = [0x13u8, 0, 0, 0];
    let segs: Vec<(u64, &[u8], u64)> =
        (0..(MAX_SEGMENTS as u64 + 1)).map(|i| (0x1000 + i * 8, &data[..], 4)).collect();
    let e = load_bytes(&p(), elf64(RISCV, 0x1000, &segs), None).unwrap_err();
    assert!(matches!(e, ImageError::TooManySegments { count, .. } if count == MAX_SEGMENTS + 1), "{e}");
    // The flat span is judged against the window before the image exists.
    let w = Window { board: "b".into(), base: 0x1000, size: 0x100, max_payload: None };
    let far = elf64(RISCV, 0x1000, &[(0x1000, &data, 4), (0x1000 + MAX_GAP, &data, 4)]);
    let e = super::load_bytes(&p(), far, None, &w).unwrap_err();
    assert!(matches!(e, ImageError::TooLarge { limit: 0x100, .. }), "{e}");
}

#[test]
fn memory_size_counts_in_the_fit() {
    let w = Window { board: "b".into(), base: 0x1000, size: 0x100, max_payload: None };
    let bss = elf64(RISCV, 0x1000, &[(0x1000, &[1, 2, 3, 4], 0x101)]);
    let e = super::load_bytes(&p(), bss, None, &w).unwrap_err();
    assert!(matches!(e, ImageError::TooLarge { size: 0x101, .. }), "{e}");
    let fits = elf64(RISCV, 0x1000, &[(0x1000, &[1, 2, 3, 4], 0x100)]);
    let pl = super::load_bytes(&p(), fits, None, &w).unwrap();
    assert_eq!((pl.bytes.len(), pl.mem_size), (4, 0x100));
    let wraps = elf64(RISCV, 0x1000, &[(0x1000, &[1, 2, 3, 4], u64::MAX)]);
    assert!(matches!(load_bytes(&p(), wraps, None), Err(ImageError::BadElf { .. })));
    // A .bss that runs into the next segment overlaps it.
    let overlap = elf64(RISCV, 0x1000, &[(0x1000, &[1, 2, 3, 4], 0x20), (0x1010, &[5], 1)]);
    assert!(matches!(load_bytes(&p(), overlap, None), Err(ImageError::Overlap { .. })));
}

#[test]
fn info_describes_an_elf_by_its_segments_and_a_raw_file_by_its_size() {
    let elf = elf64(RISCV, 0x8000_0004, &[(0x8000_0000, &[1, 2, 3, 4], 4), (0x8000_0008, &[9, 9], 0x100)]);
    let p = load_bytes(&PathBuf::from("a.elf"), elf, None).unwrap();
    let d = describe::payload(&p, None);
    assert_eq!(d.kind, "ELF (riscv64)");
    let f = |n: &str| d.fields.iter().find(|f| f.name == n).map(|f| f.value.clone());
    assert_eq!(f("load address").as_deref(), Some("0x80000000"));
    assert_eq!(f("entry").as_deref(), Some("0x80000004"));
    assert_eq!(f("segment 1").as_deref(), Some("0x80000008, 2 bytes in file, 256 in memory"));
    // Four bytes, a hole of four, two bytes: ten bytes flat; .bss after them.
    assert_eq!(f("image size").as_deref(), Some("10 bytes"));
    assert_eq!(d.payload.unwrap().len, 0x108);
    assert!(f("sha256 of the flat image").is_some());
    let raw = load_bytes(&PathBuf::from("a.bin"), vec![0; 16], None).unwrap();
    let d = describe::payload(&raw, Some("an RKBOOT loader".into()));
    assert_eq!(d.kind, "raw binary (looks like an RKBOOT loader)");
    assert_eq!(d.fields.len(), 1, "{:?}", d.fields);
    assert_eq!(d.payload.unwrap().load_address, None);
}
