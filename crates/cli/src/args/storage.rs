//! The storage verbs — `write`, `read`, `erase`, `reset`, `partitions` — one
//! surface for every boot ROM that leads to a storage stage (Rockchip's
//! usbplug, the K230's kburn loader, U-Boot's fastboot, the JH7110 recovery
//! program). What each board needs to get there ("bring-up") and how it
//! addresses its storage are the protocol's; the verbs are the same.

use std::path::PathBuf;

use clap::Args;
use racklet_link::request::{self, StorageRequest, Verb};

use crate::args::connect::{ConnectArgs, SimulationArgs};

/// A size or an address on a medium: `0x…`, decimal, or with a binary
/// unit `K`, `M`, `G`, `T` (`512K`, `64M`, `0x1000`); `_` is ignored.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim().replace('_', "");
    let bad = || format!("'{s}' is not a size or address (write 0x8000, 32768, 64K, 16M or 2G)");
    if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        return u64::from_str_radix(h, 16).map_err(|_| bad());
    }
    let (digits, shift) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                _ => return Err(bad()),
            };
            (&t[..i], shift)
        }
        _ => (t.as_str(), 0),
    };
    let n: u64 = digits.parse().map_err(|_| bad())?;
    n.checked_mul(1u64 << shift).ok_or_else(|| format!("'{s}' is too large"))
}

/// What every storage verb takes: the board, how to reach it, how to bring
/// it from its boot ROM to the storage stage when it is not there yet, and
/// how its virtual twin behaves under `--simulate`.
#[derive(Debug, Args, Clone)]
pub struct StorageTarget {
    /// Board name (see `racklet-flash boards`).
    pub board: String,
    #[command(flatten)]
    pub connect: ConnectArgs,
    #[command(flatten)]
    pub bring_up: BringUp,
    #[command(flatten)]
    pub sim: SimulationArgs,
}

/// How to bring the board from its boot ROM to the stage that writes
/// storage. Skipped when that stage already answers.
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Bring-up")]
pub struct BringUp {
    /// The loader the boot ROM runs first: a Rockchip RKBOOT loader, the
    /// K230 kburn loader, the K1 FSBL, the TH1520 U-Boot.
    #[arg(long, value_name = "FILE")]
    pub loader: Option<PathBuf>,
    /// Where the loader goes, when the ROM takes an address (K230).
    #[arg(long, value_name = "ADDR", value_parser = parse_size)]
    pub loader_address: Option<u64>,
    /// Next stages after the loader, in order (e.g. the K1's u-boot.itb).
    #[arg(long = "then", value_name = "FILE")]
    pub then: Vec<PathBuf>,
    /// `write` on K1/TH1520 boards: an unpacked vendor OS image (a Bianbu
    /// release zip, the RevyOS image set) giving the stages and every
    /// partition, flashed whole as the vendor flasher does.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["loader", "then"])]
    pub bundle: Option<PathBuf>,
    #[command(flatten)]
    pub rockchip: RockchipBringUp,
}

/// Rockchip's raw-blob bring-up of the storage verbs, as `maskrom` takes
/// it: a DRAM-init blob and a usbplug, or both from an rkbin checkout.
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Rockchip bring-up")]
pub struct RockchipBringUp {
    /// Rockchip: the DRAM-init blob (0x471 stage), with --usbplug.
    #[arg(long, value_name = "DDR")]
    pub dram: Option<PathBuf>,
    /// Rockchip: a raw usbplug (0x472 stage), after --dram.
    #[arg(long, value_name = "FILE")]
    pub usbplug: Option<PathBuf>,
    /// Rockchip: take the DDR blob and usbplug from an rkbin checkout.
    #[arg(long, value_name = "DIR")]
    pub rkbin: Option<PathBuf>,
}

impl RockchipBringUp {
    /// The flags given, with their files.
    pub fn given(&self) -> Vec<(&'static str, &std::path::Path)> {
        [("--dram", &self.dram), ("--usbplug", &self.usbplug), ("--rkbin", &self.rkbin)]
            .into_iter()
            .filter_map(|(f, p)| p.as_deref().map(|p| (f, p)))
            .collect()
    }
}

/// Where on the medium: an offset (bytes, or sectors where the protocol
/// counts sectors), a partition, a medium.
#[derive(Debug, Args, Clone, Default)]
pub struct Place {
    /// Start: an LBA on a block device (Rockchip: 512-byte sectors) or a byte
    /// offset on a medium (K230); sizes take 0x…, K, M, G.
    #[arg(long, value_name = "WHERE", value_parser = parse_size)]
    pub at: Option<u64>,
    /// A partition by name (from the device's GPT or partition table);
    /// `NAME=FILE` writes FILE there (repeatable on boards that flash
    /// partitions, e.g. through fastboot).
    #[arg(long, value_name = "NAME[=FILE]")]
    pub partition: Vec<String>,
    /// The medium, on boards with several (K230: emmc, sd, spi-nand, spi-nor, otp).
    #[arg(long, value_name = "MEDIUM")]
    pub medium: Option<String>,
}

/// `racklet-flash write <board> [IMAGE]`
#[derive(Debug, Args, Clone)]
pub struct WriteArgs {
    #[command(flatten)]
    pub target: StorageTarget,
    /// The image: raw, Android sparse, a raw image with a .bmap beside it,
    /// or compressed (.gz, .xz, .zst; streamed).
    pub image: Option<PathBuf>,
    #[command(flatten)]
    pub place: Place,
    /// Do not read the written range back to compare it.
    #[arg(long)]
    pub no_verify: bool,
    /// Reset the board when done.
    #[arg(long, conflicts_with = "no_reboot")]
    pub reboot: bool,
    /// Do not reset the board when done (where resetting is the default).
    #[arg(long)]
    pub no_reboot: bool,
    /// Fastboot: send images larger than this as several Android sparse
    /// images, each at most this big (AOSP fastboot's -S); the device's
    /// max-download-size when that is smaller.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub sparse_limit: Option<u64>,
    /// Rockchip: write the --loader's IDB at LBA 64, where the boot ROM
    /// looks for it (rkdeveloptool ul): built from an RKBOOT loader's
    /// FlashData and FlashBoot, or an idbloader image (mkimage -T rksd) as it is.
    #[arg(long, conflicts_with = "image")]
    pub loader_to_storage: bool,
    #[command(flatten)]
    pub starfive: crate::args::starfive::StarfiveWriteArgs,
}

/// `racklet-flash read <board> --at WHERE --size N -o FILE`
#[derive(Debug, Args, Clone)]
pub struct ReadArgs {
    #[command(flatten)]
    pub target: StorageTarget,
    #[command(flatten)]
    pub place: Place,
    /// How much to read (0x…, K, M, G); a whole partition when omitted with --partition.
    #[arg(long, value_name = "N", value_parser = parse_size)]
    pub size: Option<u64>,
    /// Where to put what was read (`-` for standard output).
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
}

/// `racklet-flash erase <board> (--at WHERE --size N | --partition NAME | --whole)`
#[derive(Debug, Args, Clone)]
pub struct EraseArgs {
    #[command(flatten)]
    pub target: StorageTarget,
    #[command(flatten)]
    pub place: Place,
    /// How much to erase.
    #[arg(long, value_name = "N", value_parser = parse_size)]
    pub size: Option<u64>,
    /// Erase the whole medium (rkdeveloptool `ef`). Not `--all`: that
    /// already means every attached board, and the two together must never
    /// be one typo apart.
    #[arg(long, conflicts_with_all = ["size", "partition"])]
    pub whole: bool,
}

/// `racklet-flash reset <board>`
#[derive(Debug, Args, Clone)]
pub struct ResetArgs {
    #[command(flatten)]
    pub target: StorageTarget,
    /// Reset into the boot ROM's download mode (maskrom) instead of booting.
    #[arg(long)]
    pub maskrom: bool,
}

/// `racklet-flash partitions <board>`
#[derive(Debug, Args, Clone)]
pub struct PartitionsArgs {
    #[command(flatten)]
    pub target: StorageTarget,
    #[command(flatten)]
    pub place: Place,
}

/// `racklet-flash oem <board> WORD…`
#[derive(Debug, Args, Clone)]
pub struct OemArgs {
    #[command(flatten)]
    pub target: StorageTarget,
    /// The vendor command's words, sent as one `oem WORD WORD…` packet (a
    /// word starting with `-` goes after `--`).
    #[arg(required = true, num_args = 1.., value_name = "WORD")]
    pub words: Vec<String>,
}

/// The protocol-neutral request of a storage verb: what was given, for the
/// board's protocol crate to map and check (`racklet_link::request`).
impl StorageTarget {
    pub fn request(&self, verb: Verb) -> StorageRequest {
        let b = &self.bring_up;
        StorageRequest {
            board: self.board.clone(),
            verb,
            bring_up: request::BringUp {
                loader: b.loader.clone(),
                loader_address: b.loader_address,
                then: b.then.clone(),
                bundle: b.bundle.clone(),
                dram: b.rockchip.dram.clone(),
                usbplug: b.rockchip.usbplug.clone(),
                rkbin: b.rockchip.rkbin.clone(),
            },
            force: self.connect.force,
            stage_timeout: self.connect.stage_timeout,
            verify: true,
            ..Default::default()
        }
    }
}

impl Place {
    fn into_request(self, r: StorageRequest) -> StorageRequest {
        StorageRequest { at: self.at, partitions: self.partition, medium: self.medium, ..r }
    }
}

impl WriteArgs {
    pub fn request(&self) -> StorageRequest {
        StorageRequest {
            image: self.image.clone(),
            verify: !self.no_verify,
            reboot: self.reboot,
            no_reboot: self.no_reboot,
            sparse_limit: self.sparse_limit,
            loader_to_storage: self.loader_to_storage,
            ..self.place.clone().into_request(self.target.request(Verb::Write))
        }
    }
}

impl ReadArgs {
    pub fn request(&self) -> StorageRequest {
        StorageRequest { size: self.size, ..self.place.clone().into_request(self.target.request(Verb::Read)) }
    }
}

impl EraseArgs {
    pub fn request(&self) -> StorageRequest {
        StorageRequest {
            size: self.size,
            whole: self.whole,
            ..self.place.clone().into_request(self.target.request(Verb::Erase))
        }
    }
}

impl ResetArgs {
    pub fn request(&self) -> StorageRequest {
        StorageRequest { maskrom: self.maskrom, ..self.target.request(Verb::Reset) }
    }
}

impl PartitionsArgs {
    pub fn request(&self) -> StorageRequest {
        self.place.clone().into_request(self.target.request(Verb::Partitions))
    }
}

impl OemArgs {
    pub fn request(&self) -> StorageRequest {
        StorageRequest { words: self.words.clone(), ..self.target.request(Verb::Oem) }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_take_hex_decimal_and_binary_units() {
        assert_eq!(parse_size("0x8000"), Ok(0x8000));
        assert_eq!(parse_size("32768"), Ok(32768));
        assert_eq!(parse_size("64K"), Ok(64 << 10));
        assert_eq!(parse_size("16m"), Ok(16 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("1_000"), Ok(1000));
        for bad in ["", "0x", "12Q", "K", "-1", "1.5G", "0xZZ"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        assert!(parse_size("20000000T").unwrap_err().contains("too large"));
    }
}
