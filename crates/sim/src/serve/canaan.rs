//! `racklet-flash sim` for a K230 / K230D board.
//!
//! The K230's boot ROM is a USB device (canaan-k230.md §1). Outside this
//! process a virtual one can only be served as a real USB gadget: FunctionFS
//! on a USB device controller, which needs root and a kernel with gadget
//! support — `racklet-gadget usb --model k230` does that inside the QEMU USB
//! rig (docs/usb-rig.md). There is no pty or TCP form of a USB ROM, so this
//! server checks its options and says where the virtual K230 can be reached
//! instead.

use racklet_link::{Classify, FailureClass};

use crate::canaan::{Fault, chip};

/// What to serve.
#[derive(Debug, Clone)]
pub struct Options {
    /// The board's name, for messages.
    pub board: String,
    /// Its SoC (`k230`, `k230d`).
    pub soc: String,
    /// The fault the virtual ROM would inject.
    pub fault: Option<Fault>,
}

/// Why the virtual K230 is not served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServeError {
    /// The SoC is not one of the family.
    #[error("there is no virtual K230 ROM for SoC '{soc}'")]
    UnknownSoc { soc: String },
    /// A USB ROM needs a USB gadget to be served outside the process.
    #[error(
        "{board} boots over USB: its virtual ROM cannot be served outside this process (that needs a USB gadget: FunctionFS on a USB device controller, as racklet-gadget does in the QEMU USB rig)"
    )]
    NeedsGadget { board: String, soc: String },
}

impl Classify for ServeError {
    fn class(&self) -> FailureClass {
        match self {
            ServeError::UnknownSoc { .. } => FailureClass::BadInput,
            ServeError::NeedsGadget { .. } => FailureClass::Other,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            ServeError::UnknownSoc { .. } => None,
            ServeError::NeedsGadget { board, soc } => Some(format!(
                "run it in-process: `racklet-flash maskrom {board} payload.bin --simulate [--fault NAME]`; or as a USB gadget in the rig: `racklet-gadget usb --model {soc}` (docs/usb-rig.md)"
            )),
        }
    }
}

/// Serves the virtual K230 of `opts.soc`: always refused with the reason.
pub fn serve(opts: &Options) -> Result<(), ServeError> {
    let chip = chip(&opts.soc).ok_or_else(|| ServeError::UnknownSoc { soc: opts.soc.clone() })?;
    Err(ServeError::NeedsGadget { board: opts.board.clone(), soc: chip.soc.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_usb_rom_is_not_served_outside_the_process() {
        let opts = Options { board: "canmv-k230".into(), soc: "k230".into(), fault: Some(Fault::NoJump) };
        let e = serve(&opts).unwrap_err();
        assert_eq!(e.class(), FailureClass::Other);
        assert!(e.hint().unwrap().contains("maskrom canmv-k230 payload.bin --simulate"), "{e}");
        let e = serve(&Options { soc: "k210".into(), ..opts }).unwrap_err();
        assert_eq!(e.class(), FailureClass::BadInput);
    }
}
