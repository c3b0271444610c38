//! Asking vendor U-Boot's fastboot, writing nothing: its variables and
//! partitions (`racklet-flash partitions`) and vendor commands
//! (`racklet-flash oem`). The board is brought up from its ROM first when
//! the plan says so ([`crate::storage::plan_session`]).
//!
//! `getvar:all` is asked first (AOSP's README; U-Boot's
//! `fastboot_getvar_all`: one `INFO<name>: <value>` per variable, then
//! OKAY). The vendor U-Boots of both boards predate it and FAIL it
//! ("Variable not implemented": eshattow/spacemit-com-uboot-2022.10 and
//! revyos/thead-u-boot `fb_getvar.c` have no `all`), so the known variables
//! are then asked one by one ([`VARIABLES`]). Neither way lists the
//! partitions of a vendor U-Boot, so the names of the vendor layout
//! ([`vendor_partitions`]), or the user's, are looked up with
//! `partition-size:NAME` and `partition-type:NAME`.

use racklet_image::Target;
use racklet_link::Connector;

use crate::boot::Options;
use crate::plan::Soc;
use crate::report::Report;
use crate::storage::{StorageError, StoragePlan, reach_uboot};

/// The variables asked one by one when `getvar:all` is refused: the
/// standard ones (AOSP `constants.h`, U-Boot `fb_getvar.c`) and SpacemiT's
/// storage probes (`blk-size`, `mtd-size`, what its flasher reads).
pub const VARIABLES: &[&str] = &[
    "version",
    "version-bootloader",
    "product",
    "serialno",
    "max-download-size",
    "current-slot",
    "platform",
    "blk-size",
    "mtd-size",
];

/// The partition names of the vendor layout, looked up when the device
/// does not list its partitions: K1, the GPT of SpacemiT's
/// `partition_universal.json` (bootinfo is not a GPT partition); TH1520,
/// the Lichee Pi 4A's U-Boot `partitions` and the `uboot` of Sipeed's steps.
pub fn vendor_partitions(soc: Soc) -> &'static [&'static str] {
    match soc {
        Soc::K1 => &["fsbl", "env", "opensbi", "uboot", "bootfs", "rootfs"],
        Soc::Th1520 => &["uboot", "table", "boot", "root"],
    }
}

/// One partition as the device reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PartitionInfo {
    pub name: String,
    /// `partition-size`, in bytes.
    pub size: Option<u64>,
    /// `partition-type` (the filesystem U-Boot finds, or `raw`).
    #[serde(rename = "type")]
    pub kind: Option<String>,
}

/// What vendor U-Boot said about itself.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VarsReport {
    #[serde(skip)]
    pub bring_up: Option<Report>,
    pub uboot: String,
    /// `getvar all`, or each variable in turn.
    pub source: String,
    pub variables: Vec<(String, String)>,
    pub partitions: Vec<PartitionInfo>,
    /// Names looked up that the device does not have.
    pub not_found: Vec<String>,
}

impl VarsReport {
    pub fn facts(&self) -> Vec<(String, String)> {
        let mut f: Vec<(String, String)> = self.bring_up.as_ref().map(Report::facts).unwrap_or_default();
        f.retain(|(k, _)| k != "u-boot");
        f.push(("u-boot".into(), self.uboot.clone()));
        f.push(("variables from".into(), self.source.clone()));
        for (n, v) in &self.variables {
            f.push((format!("variable {n}"), v.clone()));
        }
        for p in &self.partitions {
            let size = p.size.map(|s| format!("{s} bytes")).unwrap_or_else(|| "size not given".into());
            let kind = p.kind.as_deref().map(|k| format!(", {k}")).unwrap_or_default();
            f.push((format!("partition {}", p.name), format!("{size}{kind}")));
        }
        if !self.not_found.is_empty() {
            f.push(("not found".into(), self.not_found.join(", ")));
        }
        f
    }
}

/// `getvar all`'s lines: the variables, and the partitions its
/// `partition-size:NAME` and `partition-type:NAME` lines describe (as AOSP
/// bootloaders list them), in the order first named.
pub fn split_all(all: Vec<(String, String)>) -> (Vec<(String, String)>, Vec<PartitionInfo>) {
    let mut variables = Vec::new();
    let mut partitions: Vec<PartitionInfo> = Vec::new();
    for (n, v) in all {
        let part = n.strip_prefix("partition-size:").map(|p| (p, true));
        let part = part.or_else(|| n.strip_prefix("partition-type:").map(|p| (p, false)));
        let Some((name, is_size)) = part else {
            variables.push((n, v));
            continue;
        };
        let at = match partitions.iter().position(|p| p.name == name) {
            Some(i) => i,
            None => {
                partitions.push(PartitionInfo { name: name.into(), size: None, kind: None });
                partitions.len() - 1
            }
        };
        if is_size {
            partitions[at].size = crate::response::parse_size(&v);
        } else {
            partitions[at].kind = Some(v);
        }
    }
    (variables, partitions)
}

/// Vendor U-Boot's variables and partitions; `probe` adds partition names
/// to look up (the vendor layout's when empty).
pub fn partitions(
    conn: &mut Connector,
    plan: &StoragePlan,
    target: &Target,
    opts: &Options,
    probe: &[String],
) -> Result<VarsReport, StorageError> {
    let (mut fb, uboot, bring_up) = reach_uboot(conn, plan, target, opts)?;
    let progress = &mut *conn.progress;
    let mut partitions: Vec<PartitionInfo> = Vec::new();
    let mut variables = Vec::new();
    // An OKAY with no INFO lines lists nothing (old devices answer an empty
    // OKAY to variables they do not know): asked one by one too.
    let source = match fb.getvar_all(progress)?.filter(|all| !all.is_empty()) {
        Some(all) => {
            (variables, partitions) = split_all(all);
            "getvar all".to_string()
        }
        None => {
            for name in VARIABLES {
                if let Some(v) = fb.getvar_opt(name, progress)? {
                    variables.push((name.to_string(), v));
                }
            }
            "each variable in turn (the device refuses getvar all)".to_string()
        }
    };
    let mut not_found = Vec::new();
    let names: Vec<String> = if probe.is_empty() {
        vendor_partitions(plan.soc).iter().map(|s| s.to_string()).collect()
    } else {
        probe.to_vec()
    };
    for name in names {
        if partitions.iter().any(|p| p.name == name) {
            continue;
        }
        match fb.getvar_opt(&format!("partition-size:{name}"), progress)? {
            Some(size) => {
                let kind = fb.getvar_opt(&format!("partition-type:{name}"), progress)?;
                partitions.push(PartitionInfo { name, size: crate::response::parse_size(&size), kind });
            }
            None => not_found.push(name),
        }
    }
    Ok(VarsReport {
        bring_up,
        uboot: format!("fastboot at {}", uboot.device().at_address()),
        source,
        variables,
        partitions,
        not_found,
    })
}

/// What an `oem` command answered.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OemReport {
    #[serde(skip)]
    pub bring_up: Option<Report>,
    pub uboot: String,
    pub command: String,
    /// Its INFO lines, in order.
    pub info: Vec<String>,
    /// The OKAY text.
    pub answer: String,
}

impl OemReport {
    pub fn facts(&self) -> Vec<(String, String)> {
        let mut f: Vec<(String, String)> = self.bring_up.as_ref().map(Report::facts).unwrap_or_default();
        f.retain(|(k, _)| k != "u-boot");
        f.push(("u-boot".into(), self.uboot.clone()));
        f.push(("command".into(), self.command.clone()));
        for (i, l) in self.info.iter().enumerate() {
            f.push((format!("info {}", i + 1), l.clone()));
        }
        f.push(("answer".into(), if self.answer.is_empty() { "OKAY".into() } else { self.answer.clone() }));
        f
    }
}

/// `oem WORDS…` (one packet, the words joined by single spaces as the AOSP
/// client sends it). A FAIL is the device's refusal, its text kept.
pub fn oem(
    conn: &mut Connector,
    plan: &StoragePlan,
    target: &Target,
    opts: &Options,
    words: &[String],
) -> Result<OemReport, StorageError> {
    let (mut fb, uboot, bring_up) = reach_uboot(conn, plan, target, opts)?;
    let progress = &mut *conn.progress;
    let args: Vec<&str> = words.iter().map(String::as_str).collect();
    let answer = fb.oem(&args, progress)?;
    Ok(OemReport {
        bring_up,
        uboot: format!("fastboot at {}", uboot.device().at_address()),
        command: format!("oem {}", words.join(" ")),
        info: fb.last_info().to_vec(),
        answer,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn getvar_all_lines_split_into_variables_and_partitions() {
        let lines = [
            "version: 0.4",
            "partition-type:boot: raw",
            "partition-size:boot: 0x0000000001f40000",
            "partition-size:userdata: 0x10000",
            "max-download-size: 0x10000000",
        ];
        let all = lines.iter().map(|l| crate::client::split_var(l)).collect();
        let (vars, parts) = split_all(all);
        assert_eq!(
            vars,
            [("version".to_string(), "0.4".to_string()), ("max-download-size".into(), "0x10000000".into())]
        );
        assert_eq!(
            parts,
            [
                PartitionInfo { name: "boot".into(), size: Some(0x1f4_0000), kind: Some("raw".into()) },
                PartitionInfo { name: "userdata".into(), size: Some(0x10000), kind: None },
            ]
        );
    }
}
