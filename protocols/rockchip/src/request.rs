//! A storage verb's request ([`StorageRequest`]) to this crate's storage
//! verb and bring-up: which options the usbplug's storage stage takes, and
//! why not the others.

use racklet_link::request::{RequestError, StorageRequest, Verb as Asked};

use crate::Inputs;
use crate::storage::Verb;

/// The bring-up (none: the usbplug must already answer) and the verb of a
/// storage request, or what in it does not apply to a Rockchip board.
pub fn storage(r: &StorageRequest) -> Result<(Option<Inputs>, Verb), RequestError> {
    if let Some(m) = &r.medium
        && !m.eq_ignore_ascii_case("emmc")
    {
        return Err(RequestError::not_taken(
            &format!("--medium {m}"),
            "the usbplug writes the storage it booted with; only emmc is known here",
            "leave --medium out",
        ));
    }
    let verb = match r.verb {
        Asked::Write if r.loader_to_storage => loader_to_storage(r)?,
        Asked::Write => {
            let Some(image) = r.image.clone() else {
                return Err(RequestError::missing(
                    "give the image to write",
                    format!(
                        "racklet-flash write {} IMAGE [--at LBA | --partition NAME] --loader LOADER.bin",
                        r.board
                    ),
                ));
            };
            if r.reboot || r.no_reboot || r.sparse_limit.is_some() {
                return Err(RequestError::not_taken(
                    "--reboot, --no-reboot, --sparse-limit",
                    "not for Rockchip boards",
                    format!("`racklet-flash reset {}` resets the board", r.board),
                ));
            }
            Verb::Write { image, at: r.at, partition: one_partition(r)?, verify: r.verify }
        }
        Asked::Read => Verb::Read { at: r.at, size: r.size, partition: one_partition(r)? },
        Asked::Erase => Verb::Erase { at: r.at, size: r.size, partition: one_partition(r)?, whole: r.whole },
        Asked::Reset => Verb::Reset { maskrom: r.maskrom },
        Asked::Partitions => {
            if r.at.is_some() || !r.partitions.is_empty() {
                return Err(RequestError::not_taken(
                    "--at/--partition",
                    "partitions lists the whole GPT",
                    "drop --at/--partition",
                ));
            }
            Verb::Partitions
        }
        Asked::Oem => {
            return Err(RequestError::not_taken(
                "oem",
                "the usbplug has no vendor commands",
                "oem is for fastboot boards",
            ));
        }
    };
    let written = matches!(verb, Verb::LoaderToStorage { .. });
    Ok((bring_up(r, written)?, verb))
}

/// `write --loader-to-storage`: the --loader's IDB at LBA 64.
fn loader_to_storage(r: &StorageRequest) -> Result<Verb, RequestError> {
    let Some(loader) = r.bring_up.loader.clone() else {
        return Err(RequestError::missing(
            "--loader-to-storage writes the --loader's IDB",
            format!("racklet-flash write {} --loader-to-storage --loader LOADER.bin", r.board),
        ));
    };
    if r.at.is_some() || !r.partitions.is_empty() {
        return Err(RequestError::not_taken(
            "--at/--partition",
            "--loader-to-storage writes at LBA 64, where the boot ROM looks",
            "drop --at/--partition",
        ));
    }
    Ok(Verb::LoaderToStorage { loader, verify: r.verify, force: r.force })
}

/// `--partition NAME`: one, without `=FILE` (that is fastboot's).
fn one_partition(r: &StorageRequest) -> Result<Option<String>, RequestError> {
    match r.partitions.as_slice() {
        [] => Ok(None),
        [p] if !p.contains('=') => Ok(Some(p.clone())),
        _ => Err(RequestError::not_taken(
            "--partition",
            "give one partition NAME; the usbplug writes one image per run",
            "one --partition NAME, without =FILE",
        )),
    }
}

/// The bring-up: `--loader RKBOOT`, or raw `--dram DDR --usbplug FILE` /
/// `--rkbin DIR` as `maskrom` takes them (none: the usbplug must answer).
/// With `--loader-to-storage` the loader is what is written, not the bring-up.
fn bring_up(r: &StorageRequest, loader_is_written: bool) -> Result<Option<Inputs>, RequestError> {
    let b = &r.bring_up;
    if !b.then.is_empty() || b.loader_address.is_some() {
        return Err(RequestError::not_taken(
            "--then/--loader-address",
            "not for Rockchip boards",
            "--loader takes an RKBOOT loader (rkbin's boot_merger output), which carries every stage",
        ));
    }
    let loader = if loader_is_written { None } else { b.loader.clone() };
    if b.raw_blobs() && loader.is_some() {
        return Err(RequestError::not_taken(
            "--loader and --dram/--usbplug/--rkbin",
            "both bring the board up: give one",
            "an RKBOOT --loader carries its own DRAM init and usbplug",
        ));
    }
    if !b.raw_blobs() && loader.is_none() {
        return Ok(None);
    }
    Ok(Some(Inputs {
        bin: loader.or_else(|| b.usbplug.clone()),
        dram: b.dram.clone(),
        rkbin: b.rkbin.clone(),
        force: r.force,
        ..Default::default()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(image: &str) -> StorageRequest {
        StorageRequest {
            board: "rock-3a".into(),
            image: Some(image.into()),
            verify: true,
            ..Default::default()
        }
    }

    #[test]
    fn a_plain_write_needs_no_bring_up_and_keeps_its_place() {
        let r = StorageRequest { at: Some(64), ..write("os.img") };
        let (b, v) = storage(&r).unwrap();
        assert!(b.is_none());
        assert!(matches!(v, Verb::Write { at: Some(64), partition: None, verify: true, .. }));
    }

    #[test]
    fn what_the_usbplug_does_not_take_is_refused_with_a_fix() {
        let two = StorageRequest { partitions: vec!["a".into(), "b".into()], ..write("os.img") };
        let e = storage(&two).unwrap_err();
        assert!(e.to_string().starts_with("--partition: give one partition NAME"), "{e}");
        let sd = StorageRequest { medium: Some("sd".into()), ..write("os.img") };
        assert!(storage(&sd).unwrap_err().to_string().contains("only emmc"));
        let reboot = StorageRequest { reboot: true, ..write("os.img") };
        assert!(storage(&reboot).unwrap_err().to_string().contains("not for Rockchip boards"));
        let mut both = write("os.img");
        both.bring_up.loader = Some("loader.bin".into());
        both.bring_up.dram = Some("ddr.bin".into());
        assert!(storage(&both).unwrap_err().to_string().contains("give one"));
    }

    #[test]
    fn loader_to_storage_writes_the_loader_and_does_not_boot_with_it() {
        let mut r = StorageRequest { loader_to_storage: true, ..write("x") };
        r.image = None;
        assert!(matches!(storage(&r), Err(RequestError::Missing { .. })));
        r.bring_up.loader = Some("loader.bin".into());
        let (b, v) = storage(&r).unwrap();
        assert!(b.is_none(), "the loader is written, not sent to the maskrom");
        assert!(matches!(v, Verb::LoaderToStorage { .. }));
    }
}
