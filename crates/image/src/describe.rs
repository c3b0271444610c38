//! What `racklet-flash info` says about a file: each protocol crate decodes
//! its own formats into a [`Description`]; the CLI prints it (text or JSON)
//! and runs the fit checks against the board table.

use serde::Serialize;

/// A decoded file.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Description {
    /// What the file is ("RKBOOT loader (\"LDR \")", "JH7110 SPL image", ...).
    pub kind: String,
    /// The protocol (driver name) whose boards take this format.
    pub protocol: Option<&'static str>,
    /// Decoded fields, in file order.
    pub fields: Vec<Field>,
    /// Integrity checks, in the order the ROM would apply them.
    pub checks: Vec<Check>,
    /// SoCs this file is for, when the format says.
    pub socs: Vec<String>,
    /// The payload inside the file, for fit checks against a board.
    pub payload: Option<Contained>,
}

/// One decoded field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Field {
    pub name: String,
    pub value: String,
}

/// One integrity check and its outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub name: String,
    pub ok: bool,
}

/// A payload inside a file: where it loads (when the file says) and its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Contained {
    pub load_address: Option<u64>,
    pub len: u64,
}

impl Description {
    /// A description of `kind` for boards of `protocol`.
    pub fn new(kind: impl Into<String>, protocol: &'static str) -> Self {
        Description { kind: kind.into(), protocol: Some(protocol), ..Default::default() }
    }

    /// Adds a decoded field.
    pub fn field(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.fields.push(Field { name: name.into(), value: value.into() });
    }

    /// Adds an integrity check.
    pub fn check(&mut self, name: impl Into<String>, ok: bool) {
        self.checks.push(Check { name: name.into(), ok });
    }

    /// True when every integrity check passed.
    pub fn intact(&self) -> bool {
        self.checks.iter().all(|c| c.ok)
    }
}

/// What a payload no protocol claims holds: an ELF's architecture, load
/// address, entry and segments (and the SHA-256 of its flat image), or a
/// raw binary, which `looks_like` names when the file almost has one of the
/// protocols' headers.
pub fn payload(p: &crate::Payload, looks_like: Option<String>) -> Description {
    let mut r = Description::default();
    match &p.source {
        crate::Source::Elf { arch, segments } => {
            r.kind = format!("ELF ({arch})");
            r.field("architecture", arch.to_string());
            r.field("load address", format!("0x{:x}", p.load_address.unwrap_or(0)));
            r.field("entry", format!("0x{:x}", p.entry.unwrap_or(0)));
            for (i, s) in segments.iter().enumerate() {
                r.field(
                    format!("segment {i}"),
                    format!("0x{:x}, {} bytes in file, {} in memory", s.address, s.file_size, s.mem_size),
                );
            }
        }
        crate::Source::Raw => {
            r.kind = match looks_like {
                Some(what) => format!("raw binary (looks like {what})"),
                None => "raw binary".into(),
            };
        }
    }
    r.field("image size", format!("{} bytes", p.bytes.len()));
    r.payload = Some(Contained { load_address: p.load_address, len: p.mem_size });
    if matches!(p.source, crate::Source::Elf { .. }) {
        r.field("sha256 of the flat image", crate::sha256_hex(&p.bytes));
    }
    r
}

/// True when `bytes` read as a text file (valid UTF-8, no NUL and no other
/// control characters but tab, newline, carriage return and form feed):
/// machine code and firmware images always hold some. A README or a
/// script given as the payload, say.
pub fn looks_like_text(bytes: &[u8]) -> bool {
    !bytes.is_empty()
        && std::str::from_utf8(bytes)
            .is_ok_and(|t| t.chars().all(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r' | '\x0c')))
}

/// What a flattened device tree holds, from its header and structure block
/// (devicetree specification v0.4 §5: big-endian header, magic 0xd00dfeed;
/// tokens BEGIN_NODE 1, END_NODE 2, PROP 3, NOP 4, END 9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceTree {
    /// `totalsize` from the header.
    pub total_size: u32,
    pub version: u32,
    /// A U-Boot FIT (flattened image tree): the root has an `images` node.
    pub fit: bool,
    /// The root's `description` property, when it has one.
    pub description: Option<String>,
}

/// The FDT magic as the file's first bytes.
pub const FDT_MAGIC: [u8; 4] = [0xd0, 0x0d, 0xfe, 0xed];

/// Reads a flattened device tree's header and walks its structure block;
/// `None` unless `bytes` start with the FDT magic. A damaged structure
/// stops the walk (what was found so far stands); nothing here panics.
pub fn device_tree(bytes: &[u8]) -> Option<DeviceTree> {
    if !bytes.starts_with(&FDT_MAGIC) {
        return None;
    }
    let be = |at: usize| -> Option<u32> {
        bytes.get(at..at.checked_add(4)?).map(|b| u32::from_be_bytes(b.try_into().expect("4 bytes")))
    };
    let total_size = be(4)?;
    let (off_struct, off_strings, version) = (be(8)? as usize, be(12)? as usize, be(20)?);
    let name_at = |off: usize| -> Option<&[u8]> {
        let s = bytes.get(off_strings.checked_add(off)?..)?;
        Some(&s[..s.iter().position(|&b| b == 0)?])
    };
    let mut t = DeviceTree { total_size, version, fit: false, description: None };
    let (mut at, mut depth) = (off_struct, 0usize);
    // Every token moves `at` forward by at least 4, so this ends.
    while let Some(token) = be(at) {
        at += 4;
        match token {
            1 => {
                let rest = bytes.get(at..).unwrap_or(&[]);
                let Some(n) = rest.iter().position(|&b| b == 0) else { break };
                if depth == 1 && &rest[..n] == b"images" {
                    t.fit = true;
                }
                depth += 1;
                at += (n + 1).div_ceil(4) * 4;
            }
            2 => depth = depth.saturating_sub(1),
            3 => {
                let (Some(len), Some(name)) = (be(at), be(at + 4)) else { break };
                let data = at + 8;
                if depth == 1 && name_at(name as usize) == Some(b"description") {
                    let v = bytes.get(data..data.saturating_add(len as usize)).unwrap_or(&[]);
                    let v = v.strip_suffix(&[0]).unwrap_or(v);
                    t.description = Some(String::from_utf8_lossy(v).into_owned());
                }
                at = data.saturating_add((len as usize).div_ceil(4) * 4);
            }
            4 => {}
            _ => break,
        }
    }
    Some(t)
}

/// A [`Description`] of a flattened device tree: a U-Boot FIT image
/// (`u-boot.itb`, `uImage.itb`) or a plain device tree blob. No boot ROM
/// starts one: a FIT is a later stage, which the stage before it unpacks.
pub fn device_tree_description(bytes: &[u8]) -> Option<Description> {
    let t = device_tree(bytes)?;
    let mut r = Description {
        kind: if t.fit { "U-Boot FIT image (flattened image tree)" } else { "device tree blob" }.into(),
        ..Default::default()
    };
    if let Some(d) = &t.description {
        r.field("description", d.clone());
    }
    r.field("total size", format!("{} bytes", t.total_size));
    r.field("version", t.version.to_string());
    r.check("total size within the file", t.total_size as usize <= bytes.len() && t.total_size >= 40);
    Some(r)
}

#[cfg(test)]
mod fdt_tests {
    use super::*;

    /// A device tree laid out by hand from the specification: a root with
    /// a `description` property and, when `fit`, an `images` node.
    fn fdt(fit: bool) -> Vec<u8> {
        let mut st = Vec::new();
        let word = |v: &mut Vec<u8>, x: u32| v.extend(x.to_be_bytes());
        word(&mut st, 1);
        st.extend([0, 0, 0, 0]); // the root's empty name, padded
        word(&mut st, 3);
        word(&mut st, 7); // "U-Boot\0", then 1 byte of padding
        word(&mut st, 0); // nameoff of "description"
        st.extend(b"U-Boot\0\0");
        word(&mut st, 1);
        st.extend(if fit { b"images\0\0" } else { b"chosen\0\0" });
        word(&mut st, 2);
        word(&mut st, 2);
        word(&mut st, 9);
        let strings = b"description\0";
        let mut h = Vec::new();
        let total = 40 + st.len() + strings.len();
        for x in [0xd00d_feed, total as u32, 40, (40 + st.len()) as u32, 40, 17, 16, 0, strings.len() as u32]
        {
            word(&mut h, x);
        }
        word(&mut h, st.len() as u32);
        h.extend(st);
        h.extend(strings);
        h
    }

    #[test]
    fn a_fit_is_told_from_a_plain_device_tree() {
        let t = device_tree(&fdt(true)).unwrap();
        assert!(t.fit);
        assert_eq!(t.description.as_deref(), Some("U-Boot"));
        assert_eq!(t.version, 17);
        let d = device_tree_description(&fdt(true)).unwrap();
        assert!(d.kind.starts_with("U-Boot FIT image") && d.intact(), "{d:?}");
        let t = device_tree(&fdt(false)).unwrap();
        assert!(!t.fit);
        assert_eq!(device_tree_description(&fdt(false)).unwrap().kind, "device tree blob");
        assert!(device_tree(b"\x7fELF").is_none());
    }

    #[test]
    fn text_is_told_from_code() {
        assert!(looks_like_text(b"# notes\n\tsome text\r\n"));
        assert!(looks_like_text("émoji ✓\n".as_bytes()));
        assert!(!looks_like_text(b"\x7fELF\x02\x01\x01\x00"));
        assert!(!looks_like_text(&[0x6f, 0x00, 0x00, 0x02]), "a RISC-V jump");
        assert!(!looks_like_text(b""));
        assert!(!looks_like_text(&[0xff, 0xfe, 0x41]));
    }

    #[test]
    fn a_damaged_tree_is_walked_without_panicking() {
        let good = fdt(true);
        for n in 0..good.len() {
            let _ = device_tree(&good[..n]);
            let mut bad = good.clone();
            bad[n] ^= 0xff;
            let _ = device_tree(&bad);
        }
        let mut short = fdt(true);
        short.truncate(60);
        assert!(!device_tree_description(&short).unwrap().intact(), "total size past the end");
    }
}
