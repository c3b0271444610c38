//! T-Head TH1520: the boot ROM flow (sheet §4).
//!
//! ROM (2345:7654, no serial): `download` u-boot-with-spl.bin, `flash:ram`,
//! `reboot`; the ROM jumps to the image in SRAM (0xffe0000000). Vendor
//! U-Boot then appears as 1234:8888 after 3-10 s.

use racklet_link::ProgressSink;

use crate::FastbootError;
use crate::client::{Departure, Fastboot};
use crate::transport::Transport;

/// The only `flash:` target the ROM acts on. It answers OKAY to any other
/// name and does nothing (sipeed/LicheePi4A issue #10), so no other name is
/// ever sent to it.
pub const RAM_PARTITION: &str = "ram";
/// Where the ROM puts the image.
pub const LOAD_ADDRESS: u64 = 0xff_e000_0000;

/// Downloads `image`, writes it to `ram` and reboots into it.
pub fn boot_ram<T: Transport>(
    fb: &mut Fastboot<T>,
    image: &[u8],
    progress: &mut dyn ProgressSink,
) -> Result<Departure, FastbootError> {
    fb.stage("u-boot-with-spl", image, progress)?;
    progress.check_cancel()?;
    fb.flash(RAM_PARTITION, progress)?;
    progress.check_cancel()?;
    fb.reboot(progress)
}
