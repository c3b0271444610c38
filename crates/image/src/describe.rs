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
