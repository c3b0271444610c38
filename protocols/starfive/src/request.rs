//! A storage verb's request ([`StorageRequest`]) against StarFive's
//! recovery program: it writes the SPL at 0 and U-Boot at 0x100000 of the
//! QSPI flash, each by its own option (`--spl`, `--uboot`), and nothing else.

use racklet_link::request::{RequestError, StorageRequest, Verb};

/// Refuses what the recovery flow does not take (`write` is its only verb).
pub fn check(r: &StorageRequest) -> Result<(), RequestError> {
    let board = &r.board;
    let usage = format!(
        "racklet-flash write {board} --recovery jh7110-recovery-*.bin --spl u-boot-spl.bin.normal.out --uboot u-boot.itb"
    );
    if r.verb != Verb::Write {
        return Err(RequestError::not_taken(
            r.verb.name(),
            "StarFive's recovery program only writes the QSPI flash",
            usage,
        ));
    }
    if let Some(image) = &r.image {
        return Err(RequestError::not_taken(
            &image.display().to_string(),
            "the JH7110's recovery program writes the SPL and U-Boot by name",
            usage,
        ));
    }
    if r.at.is_some() || !r.partitions.is_empty() || r.medium.is_some() {
        return Err(RequestError::not_taken(
            "--at, --partition, --medium",
            "the recovery program writes the SPL at 0 and U-Boot at 0x100000 of the QSPI flash",
            "give --spl and --uboot",
        ));
    }
    let b = &r.bring_up;
    if b.loader.is_some() || !b.then.is_empty() || b.loader_address.is_some() {
        return Err(RequestError::not_taken(
            "--loader, --then, --loader-address",
            "on StarFive boards the program the ROM runs first is the recovery program",
            "give it with --recovery FILE",
        ));
    }
    if r.reboot || r.sparse_limit.is_some() || r.loader_to_storage {
        return Err(RequestError::not_taken(
            "--reboot, --sparse-limit, --loader-to-storage",
            "the recovery program cannot reset the board or take other images",
            "set the boot switches to flash (0,0) and power-cycle the board",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_image_argument_is_refused_with_the_recovery_command_line() {
        let r = StorageRequest {
            board: "visionfive2".into(),
            image: Some("os.img".into()),
            ..Default::default()
        };
        let e = check(&r).unwrap_err();
        assert!(e.to_string().starts_with("os.img: the JH7110's recovery program"), "{e}");
        assert!(racklet_link::Classify::hint(&e).unwrap().contains("--recovery"));
        assert!(check(&StorageRequest::default()).is_ok());
    }
}
