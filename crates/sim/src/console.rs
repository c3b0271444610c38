//! The UART console of a virtual USB board (K230, K1, TH1520, Rockchip):
//! a pty the board owns, on which it prints what the image it started
//! prints. The sim cannot run the image, so it recognises it by its own
//! bytes: one of the project's `hello` payloads (payloads/hello) carries
//! the text it prints, "racklet: hello from " and the one exit line its
//! board uses. For such an image the console gets the lines the real
//! payload prints on the board's UART (its `\n` sent as `\r\n`, as
//! payloads/bsp/src/uart.rs does); for any other image, nothing.
//!
//! What goes into the line besides the image's text is the board's own:
//! its name in the board table (the virtual board is told which board it
//! stands for, as it is told its port), its SoC, and the core the boot ROM
//! starts code on.

use std::io::Write;

use racklet_link::LinkError;

use crate::serial::PtyPair;

/// The text of the hello payload's first line, as payloads/hello prints it.
const HELLO: &[u8] = b"racklet: hello from ";

/// The exit lines of payloads/hello (one per board exit); a payload built
/// for one board holds only its own.
const EXITS: &[&[u8]] = &[
    b"racklet: returning to the ROM\n",
    b"racklet: jumping back into the ROM\n",
    b"racklet: parking\n",
    b"racklet: powering off\n",
];

/// How the boot ROM starts code: the word the payload uses for a core
/// (RISC-V "hart", AArch64 "core") and the id of the core the ROM runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootCore {
    pub word: &'static str,
    pub id: u32,
}

/// A board's UART, seen from the board.
pub struct Uart {
    pty: PtyPair,
    board: String,
    soc: String,
    core: BootCore,
}

impl std::fmt::Debug for Uart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Uart({} on {})", self.board, self.pty.path)
    }
}

impl Uart {
    /// A console for the board `board` (board-table name) with SoC `soc`.
    pub fn new(board: &str, soc: &str, core: BootCore) -> Result<Uart, LinkError> {
        Ok(Uart { pty: PtyPair::new()?, board: board.into(), soc: soc.into(), core })
    }

    /// The tty the host opens to read it.
    pub fn path(&self) -> String {
        self.pty.path.clone()
    }

    /// The board started `image`: print what it prints.
    pub fn runs(&mut self, image: &[u8]) {
        let text = printed(image, &self.board, &self.soc, self.core);
        if !text.is_empty() {
            // A console nobody reads keeps what fits in the pty's buffer;
            // a few hundred bytes always do.
            let _ = self.pty.device.write_all(&text);
            let _ = self.pty.device.flush();
        }
    }
}

/// What `image` prints on the board's UART once started, as bytes on the
/// wire (empty when it is not a payload this model recognises).
pub fn printed(image: &[u8], board: &str, soc: &str, core: BootCore) -> Vec<u8> {
    let has = |s: &[u8]| image.windows(s.len()).any(|w| w == s);
    if !has(HELLO) {
        return Vec::new();
    }
    let mut text = format!("racklet: hello from {board} ({soc}) {} {}\n", core.word, core.id).into_bytes();
    if let Some(exit) = EXITS.iter().find(|e| has(e)) {
        text.extend_from_slice(exit);
    }
    let mut wire = Vec::with_capacity(text.len() + 4);
    for b in text {
        if b == b'\n' {
            wire.push(b'\r');
        }
        wire.push(b);
    }
    wire
}

#[cfg(test)]
mod tests {
    use super::*;

    const HART0: BootCore = BootCore { word: "hart", id: 0 };

    #[test]
    fn a_hello_payload_prints_its_two_lines() {
        let mut image = vec![0x13u8; 64];
        image.extend_from_slice(b"racklet: hello from \0 (\0) \0racklet: jumping back into the ROM\n\0");
        assert_eq!(
            printed(&image, "canmv-k230", "k230", HART0),
            b"racklet: hello from canmv-k230 (k230) hart 0\r\nracklet: jumping back into the ROM\r\n"
        );
    }

    #[test]
    fn any_other_image_prints_nothing() {
        assert!(printed(b"\x7fELF u-boot racklet: hello", "bpi-f3", "k1", HART0).is_empty());
        assert!(printed(&[0u8; 4096], "bpi-f3", "k1", HART0).is_empty());
    }

    #[test]
    fn the_prebuilt_hello_is_recognised() {
        // The committed payload, as the user sends it (tests/… run it too).
        let p = concat!(env!("CARGO_MANIFEST_DIR"), "/../../payloads/prebuilt/canmv-k230/hello.bin");
        let image = std::fs::read(p).expect("payloads/prebuilt/canmv-k230/hello.bin is committed");
        let text = String::from_utf8(printed(&image, "canmv-k230", "k230", HART0)).unwrap();
        assert!(text.starts_with("racklet: hello from canmv-k230 (k230) hart 0\r\n"), "{text:?}");
        assert!(text.ends_with("racklet: jumping back into the ROM\r\n"), "{text:?}");
    }
}
