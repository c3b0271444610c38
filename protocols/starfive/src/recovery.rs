//! Writing the QSPI flash through StarFive's recovery program
//! (`racklet-flash write visionfive2 --recovery … --spl … --uboot …`), the
//! flow of xypron/JH71xx-tools `vf2-recover` (sheet §3.1, §3.2):
//!
//! 1. the recovery image (`jh7110-recovery-*.bin`, headed already: StarFive
//!    ships it with version 0x01010001 and a valid CRC-32) goes to the ROM by
//!    XMODEM, as any boot image does;
//! 2. the program inits DDR and prints its menu, ending in
//!    `'load 0x********' to change.`;
//! 3. for the SPL: `0\r\n`, a line with `send file by xmodem`, XMODEM-CRC of
//!    `u-boot-spl.bin.normal.out` (with its 0x400 header), `updata success`;
//! 4. for U-Boot: the same with `2\r\n` and `u-boot.itb`.
//!
//! The files go to the program in 128-byte blocks, as vf2-recover sends
//! them (whether its receiver takes 1K blocks is not known). A menu shown
//! again without `updata success` is a failed update; so is silence.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use racklet_image::Target;
use racklet_link::{Connector, LinkError, ProgressSink, SerialLink};
use serde::Serialize;

use crate::StarfiveError;
use crate::boot::{BAUD, BootOptions, UART, transfer};
use crate::console::{BANNER, CRC_ERROR, crc_error_line, printable, wait_for_poll};
use crate::header::{Header, HeaderError};
use crate::plan::{ImageKind, PlanError, headed_image};
use crate::report::Transfer;
use crate::xmodem::{self, BlockSize, NakPolicy};

/// The end of the menu's last line before its prompt (vf2-recover waits for it).
pub const MENU_END: &str = "to change.";
/// What the program prints when it starts its XMODEM receive.
pub const SEND_FILE: &str = "send file by xmodem";
/// Its confirmation of a written file (sic).
pub const SUCCESS: &str = "updata success";
/// What U-Boot SPL prints when it asks for its next stage over UART
/// (common/spl/spl.c's boot_from_devices): the image the ROM started was
/// an SPL, not the recovery program.
pub const SPL_ASKS: &str = "Trying to boot from UART";

/// A part of the flash the menu updates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Part {
    /// Entry 0, `update 2ndboot/SPL in flash`: at 0, 0xF0000 bytes of room.
    Spl,
    /// Entry 2, `update fw_verif/uboot in flash`: at 0x100000, 0xF00000 bytes.
    Uboot,
}

impl Part {
    /// What is typed at the menu (vf2-recover's `0\r\n` and `2\r\n`).
    pub fn choice(self) -> &'static str {
        match self {
            Part::Spl => "0\r\n",
            Part::Uboot => "2\r\n",
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Part::Spl => "SPL",
            Part::Uboot => "U-Boot",
        }
    }
    /// The flag that gives the file.
    pub fn flag(self) -> &'static str {
        match self {
            Part::Spl => "--spl",
            Part::Uboot => "--uboot",
        }
    }
    /// Where the program writes it (U-Boot's jh7110_common.rst layout, sheet §3.3).
    pub fn offset(self) -> u64 {
        match self {
            Part::Spl => 0,
            Part::Uboot => 0x10_0000,
        }
    }
    /// The room it has there.
    pub fn room(self) -> u64 {
        match self {
            Part::Spl => 0xF_0000,
            Part::Uboot => 0xF0_0000,
        }
    }
    fn stage(self) -> &'static str {
        match self {
            Part::Spl => "spl",
            Part::Uboot => "u-boot",
        }
    }
}

/// One file for the flash.
#[derive(Debug, Clone)]
pub struct FlashFile {
    pub part: Part,
    pub path: PathBuf,
    pub data: Vec<u8>,
}

/// The user's files.
#[derive(Debug, Clone, Default)]
pub struct RecoveryInputs {
    pub recovery: Option<PathBuf>,
    pub spl: Option<PathBuf>,
    pub uboot: Option<PathBuf>,
}

/// Everything a flash write sends.
#[derive(Debug, Clone)]
pub struct RecoveryPlan {
    pub recovery: PathBuf,
    /// The recovery image as the ROM receives it.
    pub image: Vec<u8>,
    pub kind: ImageKind,
    /// In the order they are written: the SPL first, as vf2-recover does.
    pub files: Vec<FlashFile>,
}

/// Why a flash write cannot be planned: bad input.
#[derive(Debug, thiserror::Error)]
pub enum RecoveryPlanError {
    #[error("writing the SPI flash of {board} needs the recovery program (--recovery FILE)")]
    NoRecovery { board: String },
    #[error("nothing to write: give --spl FILE, --uboot FILE or both")]
    NothingToWrite,
    #[error("{}: not a headed JH7110 image; StarFive's recovery images are (version 0x01010001)", path.display())]
    RecoveryNotHeaded { path: PathBuf },
    #[error("{}: not a headed JH7110 image; the ROM reads the SPL from flash with its 0x400-byte header", path.display())]
    SplNotHeaded { path: PathBuf },
    #[error("{}: {error}", path.display())]
    Header { path: PathBuf, error: HeaderError },
    #[error(transparent)]
    Plan(#[from] PlanError),
}

impl racklet_link::Classify for RecoveryPlanError {
    fn class(&self) -> racklet_link::FailureClass {
        match self {
            RecoveryPlanError::Plan(e) => e.class(),
            _ => racklet_link::FailureClass::BadInput,
        }
    }
    fn hint(&self) -> Option<String> {
        match self {
            RecoveryPlanError::NoRecovery { board } => Some(format!(
                "racklet-flash write {board} --recovery jh7110-recovery-20230322.bin --spl u-boot-spl.bin.normal.out --uboot u-boot.itb (the recovery images are in github.com/starfive-tech/Tools, recovery/)"
            )),
            RecoveryPlanError::RecoveryNotHeaded { .. } => {
                Some("give StarFive's jh7110-recovery-*.bin as it is".into())
            }
            RecoveryPlanError::SplNotHeaded { .. } => Some(
                "give u-boot-spl.bin.normal.out, or head the bare SPL with `racklet-flash image visionfive2 u-boot-spl.bin -o u-boot-spl.bin.normal.out`".into(),
            ),
            RecoveryPlanError::Header { error, .. } => error.hint(),
            RecoveryPlanError::Plan(e) => e.hint(),
            _ => None,
        }
    }
}

fn read_part(path: &Path, part: Part) -> Result<FlashFile, RecoveryPlanError> {
    let what = format!("the {} has at 0x{:x} of the QSPI flash", part.name(), part.offset());
    let data = racklet_image::read_input(path, part.room(), &what).map_err(PlanError::from)?;
    // An empty file is refused by read_input, by name.
    if part == Part::Spl {
        let h = Header::parse(&data).ok_or_else(|| RecoveryPlanError::SplNotHeaded { path: path.into() })?;
        h.verify(&data).map_err(|error| RecoveryPlanError::Header { path: path.into(), error })?;
    }
    Ok(FlashFile { part, path: path.into(), data })
}

/// Plans a flash write: every file is read and checked before the port is
/// touched. The recovery image must be headed (it is sent as it is, after
/// the ROM's own checks: CRC-32, size); the SPL must be headed too (the ROM
/// boots it from flash by that header) and its CRC-32 hold; each file must
/// fit its room in the flash.
pub fn plan(inputs: &RecoveryInputs, target: &Target) -> Result<RecoveryPlan, RecoveryPlanError> {
    let recovery = inputs
        .recovery
        .clone()
        .ok_or_else(|| RecoveryPlanError::NoRecovery { board: target.board.clone() })?;
    if inputs.spl.is_none() && inputs.uboot.is_none() {
        return Err(RecoveryPlanError::NothingToWrite);
    }
    let (image, kind) = headed_image(&recovery, target)?;
    if !matches!(kind, ImageKind::Headed { .. }) {
        return Err(RecoveryPlanError::RecoveryNotHeaded { path: recovery });
    }
    let mut files = Vec::new();
    if let Some(p) = &inputs.spl {
        files.push(read_part(p, Part::Spl)?);
    }
    if let Some(p) = &inputs.uboot {
        files.push(read_part(p, Part::Uboot)?);
    }
    Ok(RecoveryPlan { recovery, image, kind, files })
}

/// Timing of the recovery flow.
#[derive(Debug, Clone)]
pub struct RecoveryOptions {
    /// The ROM stage (the recovery image): its XMODEM settings and poll wait.
    pub boot: BootOptions,
    /// From the recovery image's EOT to the menu: DDR init and its tests.
    pub menu_timeout: Duration,
    /// From a menu choice to the program's XMODEM poll.
    pub choice_timeout: Duration,
    /// From a file's EOT to `updata success`: erasing and programming up to
    /// 15 MiB of SPI NOR.
    pub update_timeout: Duration,
    /// The port runs at the line rate even if it is a pty (`--simulate`).
    pub paced: bool,
}

impl Default for RecoveryOptions {
    fn default() -> Self {
        RecoveryOptions {
            boot: BootOptions::default(),
            menu_timeout: Duration::from_secs(30),
            choice_timeout: Duration::from_secs(10),
            update_timeout: Duration::from_secs(300),
            paced: false,
        }
    }
}

/// The step of the flow that was under way, for errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Waiting for the recovery program's menu after the image.
    Menu,
    /// Waiting for `send file by xmodem` and the poll after a menu choice.
    Choice(Part),
    /// Waiting for `updata success` after a file.
    Confirm(Part),
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::Menu => write!(f, "waiting for the recovery program's menu ('{MENU_END}')"),
            Step::Choice(p) => {
                write!(f, "waiting for the recovery program to ask for the {} ('{SEND_FILE}')", p.name())
            }
            Step::Confirm(p) => {
                write!(f, "waiting for the recovery program to confirm the {} ('{SUCCESS}')", p.name())
            }
        }
    }
}

impl Step {
    pub fn hint(self) -> String {
        match self {
            Step::Menu => "is --recovery StarFive's jh7110-recovery-*.bin? It prints 'JH7110 secondboot version' and a menu after DDR init; power-cycle the board and try again".into(),
            Step::Choice(_) => "the menu did not take the choice; power-cycle the board and run the write again".into(),
            Step::Confirm(_) => "the file was sent but not confirmed; power-cycle the board and run the write again (the flash may hold a partial update)".into(),
        }
    }
}

/// One file written.
#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    pub part: Part,
    pub path: String,
    pub offset: u64,
    pub transfer: Transfer,
}

/// A finished flash write.
#[derive(Debug, Clone, Serialize)]
pub struct RecoveryReport {
    pub port: String,
    /// Whether throughput is stated against the line rate (see [`crate::Report::paced`]).
    pub line_rate: bool,
    pub recovery: Transfer,
    /// The recovery program's first line (`JH7110 secondboot version: …`), when seen.
    pub version: Option<String>,
    pub files: Vec<FileReport>,
}

impl RecoveryReport {
    pub fn facts(&self) -> Vec<(String, String)> {
        let mut v = vec![("port".to_string(), self.port.clone())];
        let r = &self.recovery;
        v.push((
            "recovery".into(),
            format!(
                "{} bytes to the ROM in {} blocks, {} NAKs, {}",
                r.bytes,
                r.blocks,
                r.naks,
                crate::report::throughput(r.throughput, self.line_rate)
            ),
        ));
        if let Some(s) = &self.version {
            v.push(("recovery program".into(), s.clone()));
        }
        for f in &self.files {
            v.push((
                f.part.name().to_string(),
                format!(
                    "{}: {} bytes written at 0x{:x} ({} blocks, {} NAKs), {SUCCESS}",
                    f.path, f.transfer.bytes, f.offset, f.transfer.blocks, f.transfer.naks
                ),
            ));
        }
        v
    }
}

/// The console text as it comes, searched for the program's words.
struct Console {
    text: Vec<u8>,
}

impl Console {
    fn find(&self, s: &str) -> Option<usize> {
        self.text.windows(s.len()).position(|w| w == s.as_bytes())
    }

    /// Reads until `want` shows; then drops the text up to its end and
    /// returns what came before it. `fail` ends the wait early (the menu
    /// shown again): `Ok(Err(text))`. The ROM's `CRC Error` or banner
    /// fail as the ROM's refusal.
    fn wait<L: SerialLink + ?Sized>(
        &mut self,
        link: &mut L,
        want: &str,
        fail: Option<&str>,
        timeout: Duration,
        step: Step,
        progress: &dyn ProgressSink,
    ) -> Result<Result<String, String>, StarfiveError> {
        let start = Instant::now();
        let mut buf = [0u8; 512];
        loop {
            if let Some(at) = self.find(want) {
                let before = String::from_utf8_lossy(&self.text[..at]).to_string();
                self.text.drain(..at + want.len());
                return Ok(Ok(before));
            }
            if let Some(f) = fail
                && self.find(f).is_some()
            {
                return Ok(Err(printable(&self.text)));
            }
            if self.find(CRC_ERROR).is_some() {
                let text = printable(&self.text);
                return Err(StarfiveError::RomCrcError { text: crc_error_line(&text) });
            }
            if self.find(BANNER).is_some() {
                return Err(StarfiveError::RomRestarted { what: format!("it printed {BANNER} again") });
            }
            progress.check_cancel()?;
            let left = timeout.saturating_sub(start.elapsed());
            if left.is_zero() {
                return Err(StarfiveError::RecoveryNoAnswer {
                    step,
                    waited: timeout,
                    printed: printable(&self.text),
                });
            }
            match link.read(&mut buf, left.min(Duration::from_millis(200))) {
                Ok(n) => self.text.extend_from_slice(&buf[..n]),
                Err(LinkError::Timeout { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// The first line of the program's greeting, when it printed one.
fn version_line(text: &str) -> Option<String> {
    let at = text.find("JH7110 secondboot version")?;
    let line = text[at..].split(['\r', '\n']).next()?;
    Some(line.trim().to_string())
}

/// What [`write_uart`] sent.
#[derive(Debug, Clone)]
pub struct UartWrite {
    /// The recovery image, to the ROM.
    pub rom: xmodem::SendStats,
    /// The program's `JH7110 secondboot version` line, when it printed one.
    pub version: Option<String>,
    /// Each file confirmed with `updata success`, in order.
    pub files: Vec<(Part, xmodem::SendStats)>,
}

/// The recovery flow on an open link: the recovery image to the ROM, then
/// each file through the menu.
pub fn write_uart<L: SerialLink + ?Sized>(
    link: &mut L,
    plan: &RecoveryPlan,
    opts: &RecoveryOptions,
    progress: &mut dyn ProgressSink,
) -> Result<UartWrite, StarfiveError> {
    let bo = &opts.boot;
    {
        let cancel = || progress.check_cancel();
        wait_for_poll(link, bo.poll_timeout, bo.poll_grace, false, &[], &cancel)?;
    }
    link.clear_input()?;
    progress.stage("recovery", Some(plan.image.len() as u64));
    let rom = xmodem::send(link, &plan.image, &bo.xmodem, progress)?;
    progress.done("recovery");
    let mut console = Console { text: rom.trailing.clone() };
    let greeting =
        match console.wait(link, MENU_END, Some(SPL_ASKS), opts.menu_timeout, Step::Menu, progress)? {
            Ok(before) => before,
            Err(printed) => return Err(StarfiveError::NotRecovery { path: plan.recovery.clone(), printed }),
        };
    let version = version_line(&greeting);
    // The program's receiver gets what vf2-recover sends it: 128-byte blocks.
    let mut cfg = bo.xmodem.clone();
    cfg.block = BlockSize::B128;
    cfg.nak_policy = NakPolicy::Resend;
    let mut sent = Vec::new();
    for (i, f) in plan.files.iter().enumerate() {
        if i > 0 {
            // The menu again, after the last file's `updata success`.
            let step = Step::Menu;
            if let Err(text) = console.wait(link, MENU_END, None, opts.menu_timeout, step, progress)? {
                return Err(StarfiveError::RecoveryNoAnswer {
                    step,
                    waited: opts.menu_timeout,
                    printed: text,
                });
            }
        }
        let step = Step::Choice(f.part);
        link.write_all(f.part.choice().as_bytes())?;
        if let Err(text) =
            console.wait(link, SEND_FILE, Some(MENU_END), opts.choice_timeout, step, progress)?
        {
            return Err(StarfiveError::UpdateFailed { what: f.part.name().into(), printed: text });
        }
        let rest = std::mem::take(&mut console.text);
        {
            let cancel = || progress.check_cancel();
            wait_for_poll(link, opts.choice_timeout, bo.poll_grace, false, &rest, &cancel).map_err(|e| {
                match e {
                    StarfiveError::NoPoll { waited, printed } => {
                        StarfiveError::RecoveryNoAnswer { step, waited, printed }
                    }
                    e => e,
                }
            })?;
        }
        link.clear_input()?;
        progress.stage(f.part.stage(), Some(f.data.len() as u64));
        let stats = xmodem::send(link, &f.data, &cfg, progress)?;
        progress.done(f.part.stage());
        console.text = stats.trailing.clone();
        let step = Step::Confirm(f.part);
        if let Err(text) = console.wait(link, SUCCESS, Some(MENU_END), opts.update_timeout, step, progress)? {
            return Err(StarfiveError::UpdateFailed { what: f.part.name().into(), printed: text });
        }
        sent.push((f.part, stats));
    }
    Ok(UartWrite { rom, version, files: sent })
}

/// The whole flash write through `conn`: finds the UART, opens it at
/// 115200, runs [`write_uart`], and reports.
pub fn write(
    conn: &mut Connector,
    plan: &RecoveryPlan,
    target: &Target,
    opts: &RecoveryOptions,
) -> Result<RecoveryReport, StarfiveError> {
    let info = conn.find_serial(None, UART)?;
    let mut link = conn.open_serial(&info, target.baud.unwrap_or(BAUD))?;
    let mut o = opts.clone();
    o.boot.poll_timeout = conn.wait.unwrap_or(o.boot.poll_timeout);
    let names: Vec<String> =
        plan.files.iter().map(|f| format!("{} {}", f.part.name(), f.path.display())).collect();
    conn.progress.say(format!(
        "{}: {}; then {}; waiting up to {}s for the ROM's XMODEM poll on {}{}",
        plan.recovery.display(),
        plan.kind,
        names.join(", then "),
        o.boot.poll_timeout.as_secs_f64(),
        info.path,
        crate::boot::entry_advice(o.paced)
    ));
    let UartWrite { rom, version, files: sent } = write_uart(&mut *link, plan, &o, &mut *conn.progress)?;
    let name = if o.boot.xmodem.block == BlockSize::K1 { "xmodem-1k" } else { "xmodem" };
    let files = sent
        .iter()
        .zip(&plan.files)
        .map(|((part, s), f)| FileReport {
            part: *part,
            path: f.path.display().to_string(),
            offset: part.offset(),
            transfer: transfer("xmodem", BlockSize::B128.bytes(), s),
        })
        .collect();
    Ok(RecoveryReport {
        port: info.path.clone(),
        line_rate: !crate::boot::is_pty(&info.path) || o.paced,
        recovery: transfer(name, o.boot.xmodem.block.bytes(), &rom),
        version,
        files,
    })
}
