//! A storage verb's request ([`StorageRequest`]) to this crate's storage
//! inputs: vendor U-Boot's fastboot flashes and erases partitions by name,
//! and is asked (`partitions`, `oem`) through the same bring-up.

use std::path::PathBuf;

use racklet_link::request::{RequestError, StorageRequest, Verb as Asked};

use crate::Inputs;
use crate::storage::StorageInputs;

/// The storage inputs of `write`, `erase`, `partitions` or `oem`, or what
/// in the request does not apply to a fastboot board.
pub fn storage(r: &StorageRequest) -> Result<StorageInputs, RequestError> {
    let base =
        StorageInputs { bring_up: bring_up(r), bundle: r.bring_up.bundle.clone(), ..Default::default() };
    match r.verb {
        Asked::Write => write(r, base),
        Asked::Erase => {
            if r.whole || r.size.is_some() || r.at.is_some() {
                return Err(by_name(
                    "--at/--size/--whole",
                    "erase on fastboot boards takes partitions by name",
                ));
            }
            if r.partitions.is_empty() {
                return Err(RequestError::missing(
                    "erase on fastboot boards takes partitions by name",
                    format!("racklet-flash erase {} --partition NAME (repeatable)", r.board),
                ));
            }
            Ok(StorageInputs { erase: r.partitions.clone(), reboot: false, ..base })
        }
        Asked::Partitions => {
            if r.at.is_some() || r.medium.is_some() || r.partitions.iter().any(|p| p.contains('=')) {
                return Err(RequestError::not_taken(
                    "--at/--medium/--partition NAME=FILE",
                    "partitions on fastboot boards takes only --partition NAME (more names to look up)",
                    "give the names alone: --partition NAME",
                ));
            }
            Ok(base)
        }
        Asked::Oem => Ok(base),
        Asked::Read | Asked::Reset => Err(RequestError::not_taken(
            r.verb.name(),
            "vendor U-Boot's fastboot neither reads storage back nor resets on its own",
            "`write` ends with `reboot` unless --no-reboot",
        )),
    }
}

fn write(r: &StorageRequest, base: StorageInputs) -> Result<StorageInputs, RequestError> {
    if let (Some(image), Some(_)) = (&r.image, &r.bring_up.bundle) {
        return Err(RequestError::not_taken(
            &image.display().to_string(),
            "--bundle gives every partition",
            "leave out the image",
        ));
    }
    let mut flash = Vec::new();
    for p in &r.partitions {
        match (p.split_once('='), &r.image) {
            (Some((n, f)), _) if !n.is_empty() && !f.is_empty() => {
                flash.push((n.to_string(), PathBuf::from(f)))
            }
            (None, Some(image)) if r.partitions.len() == 1 => flash.push((p.clone(), image.clone())),
            _ => {
                return Err(RequestError::not_taken(
                    &format!("--partition {p}"),
                    "write it as NAME=FILE",
                    "e.g. --partition rootfs=rootfs.ext4",
                ));
            }
        }
    }
    if let (Some(image), true) = (&r.image, r.partitions.is_empty()) {
        return Err(RequestError::missing(
            format!(
                "{}: say which partition it goes to (fastboot flashes partitions by name)",
                image.display()
            ),
            format!("racklet-flash write {} --partition NAME={}", r.board, image.display()),
        ));
    }
    if r.at.is_some() || r.medium.is_some() {
        return Err(by_name("--at/--medium", "vendor U-Boot's fastboot writes partitions by name"));
    }
    if r.loader_to_storage {
        return Err(by_name("--loader-to-storage", "it writes a Rockchip IDB"));
    }
    Ok(StorageInputs { flash, reboot: !r.no_reboot, sparse_limit: r.sparse_limit, ..base })
}

fn by_name(flags: &str, why: &str) -> RequestError {
    RequestError::not_taken(
        flags,
        why,
        "name the partitions: --partition NAME=FILE (erase: --partition NAME)",
    )
}

/// The ROM stages from --loader and --then; a bundle gives the loader
/// itself, so the run starts from the boot ROM too. None: U-Boot's
/// fastboot already answers.
fn bring_up(r: &StorageRequest) -> Option<Inputs> {
    let b = &r.bring_up;
    (b.loader.is_some() || b.bundle.is_some()).then(|| Inputs {
        image: b.loader.clone(),
        then: b.then.clone(),
        await_next: true,
        stage_timeout: r.stage_timeout,
        force: r.force,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_req() -> StorageRequest {
        StorageRequest { board: "lichee-pi-4a".into(), ..Default::default() }
    }

    #[test]
    fn partitions_are_flashed_in_order_and_one_image_takes_one_name() {
        let r =
            StorageRequest { partitions: vec!["boot=b.ext4".into(), "root=r.ext4".into()], ..write_req() };
        let i = storage(&r).unwrap();
        assert_eq!(i.flash, vec![("boot".into(), "b.ext4".into()), ("root".into(), "r.ext4".into())]);
        assert!(i.reboot && i.bring_up.is_none());
        let one =
            StorageRequest { image: Some("r.ext4".into()), partitions: vec!["root".into()], ..write_req() };
        assert_eq!(storage(&one).unwrap().flash, vec![("root".into(), "r.ext4".into())]);
    }

    #[test]
    fn what_fastboot_cannot_do_is_refused_before_the_device() {
        let no_name = StorageRequest { image: Some("r.ext4".into()), ..write_req() };
        assert!(matches!(storage(&no_name), Err(RequestError::Missing { .. })));
        let bad = StorageRequest { partitions: vec!["=x".into()], ..write_req() };
        assert_eq!(storage(&bad).unwrap_err().to_string(), "--partition =x: write it as NAME=FILE");
        let at = StorageRequest { at: Some(0), partitions: vec!["a=b".into()], ..write_req() };
        assert!(storage(&at).unwrap_err().to_string().starts_with("--at/--medium"));
        let erase = StorageRequest { verb: Asked::Erase, whole: true, ..write_req() };
        assert!(storage(&erase).unwrap_err().to_string().starts_with("--at/--size/--whole"));
        let nothing = StorageRequest { verb: Asked::Erase, ..write_req() };
        assert!(matches!(storage(&nothing), Err(RequestError::Missing { .. })));
    }
}
