//! A storage verb's request ([`StorageRequest`]) to the kburn loader's
//! inputs and verb: which options the K230's storage stage takes.

use racklet_link::request::{RequestError, StorageRequest, Verb as Asked};

use crate::storage::{Inputs, Verb};

/// The loader inputs and the verb of a storage request, or what in it does
/// not apply to a K230 board.
pub fn storage(r: &StorageRequest) -> Result<(Inputs, Verb), RequestError> {
    let b = &r.bring_up;
    if !b.then.is_empty() {
        return Err(RequestError::not_taken(
            "--then",
            "the K230's boot ROM runs one loader, which writes the storage",
            "give the kburn loader with --loader",
        ));
    }
    let medium = if r.verb == Asked::Reset { None } else { r.medium.clone() };
    let inputs = Inputs { loader: b.loader.clone(), loader_address: b.loader_address, medium };
    let verb = match r.verb {
        Asked::Write => {
            let Some(image) = r.image.clone() else {
                return Err(RequestError::missing(
                    "give the image to write",
                    format!("racklet-flash write {} IMAGE --medium sd --loader loader_mmc.bin", r.board),
                ));
            };
            if !r.partitions.is_empty() {
                return Err(RequestError::not_taken(
                    "--partition",
                    "the K230's kburn loader writes by offset or a .kdimg's own parts",
                    "give --at OFFSET, or a .kdimg",
                ));
            }
            if r.sparse_limit.is_some() {
                return Err(RequestError::not_taken(
                    "--sparse-limit",
                    "the kburn loader takes the image in its own chunks",
                    "leave --sparse-limit out",
                ));
            }
            Verb::Write { image, at: r.at, verify: r.verify, reboot: r.reboot }
        }
        Asked::Read => {
            let (Some(at), Some(size)) = (r.at, r.size) else {
                return Err(RequestError::missing(
                    "read needs --at and --size on K230 boards",
                    format!("racklet-flash read {} --medium sd --at OFFSET --size N -o FILE", r.board),
                ));
            };
            Verb::Read { at, size }
        }
        Asked::Erase => {
            let size = match (r.size, r.whole) {
                (Some(n), _) => Some(n),
                (None, true) => None,
                (None, false) => {
                    return Err(RequestError::missing(
                        "erase needs --size N (or --whole)",
                        format!("racklet-flash erase {} --medium sd --at OFFSET --size N", r.board),
                    ));
                }
            };
            Verb::Erase { at: r.at.unwrap_or(0), size }
        }
        Asked::Reset if r.maskrom => {
            return Err(RequestError::not_taken(
                "--maskrom",
                "the kburn loader's REBOOT resets the chip",
                "it enters its boot ROM when it finds nothing to boot (or with BOOT held)",
            ));
        }
        // The loader's REBOOT: the plan picks the medium its session probes.
        Asked::Reset => Verb::Reset,
        Asked::Partitions | Asked::Oem => {
            return Err(RequestError::not_taken(
                r.verb.name(),
                "the K230's kburn loader has no partition table or vendor commands",
                "read the medium with `read --at --size`",
            ));
        }
    };
    Ok((inputs, verb))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_and_erase_say_what_they_need() {
        let read = StorageRequest {
            board: "canmv-k230".into(),
            verb: Asked::Read,
            at: Some(0),
            ..Default::default()
        };
        let e = storage(&read).unwrap_err();
        assert_eq!(e.to_string(), "read needs --at and --size on K230 boards");
        let erase = StorageRequest { verb: Asked::Erase, whole: true, ..Default::default() };
        assert!(matches!(storage(&erase), Ok((_, Verb::Erase { at: 0, size: None }))));
        let reset = StorageRequest { verb: Asked::Reset, maskrom: true, ..Default::default() };
        assert!(storage(&reset).unwrap_err().to_string().starts_with("--maskrom"));
    }
}
