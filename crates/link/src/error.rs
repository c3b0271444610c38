//! Link errors and the failure classes that the CLI maps to exit codes.

use std::time::Duration;

/// What kind of failure ended a run. The CLI maps each class to its own exit
/// code, so scripts can tell "no board attached" from "the ROM said no".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    /// Bad usage or a bad input file (exit 2).
    BadInput,
    /// No matching device was found (exit 3).
    NotFound,
    /// Several devices matched and no selector chose one (exit 4).
    Ambiguous,
    /// The operating system refused access to the device (exit 5).
    Permission,
    /// The device did not answer in time (exit 6).
    Timeout,
    /// The boot ROM answered, and refused what was sent (exit 7).
    Rejected,
    /// The device went away in the middle of a transfer (exit 8).
    Disconnected,
    /// Any other I/O failure on the link (exit 9).
    Io,
    /// The user interrupted the run (exit 130).
    Interrupted,
    /// Anything else (exit 1).
    Other,
}

impl FailureClass {
    /// The process exit code documented in the README for this class.
    pub fn exit_code(self) -> i32 {
        match self {
            FailureClass::Other => 1,
            FailureClass::BadInput => 2,
            FailureClass::NotFound => 3,
            FailureClass::Ambiguous => 4,
            FailureClass::Permission => 5,
            FailureClass::Timeout => 6,
            FailureClass::Rejected => 7,
            FailureClass::Disconnected => 8,
            FailureClass::Io => 9,
            FailureClass::Interrupted => 130,
        }
    }

    /// Stable lower-case name, used in JSON events.
    pub fn name(self) -> &'static str {
        match self {
            FailureClass::BadInput => "bad_input",
            FailureClass::NotFound => "not_found",
            FailureClass::Ambiguous => "ambiguous",
            FailureClass::Permission => "permission",
            FailureClass::Timeout => "timeout",
            FailureClass::Rejected => "rejected",
            FailureClass::Disconnected => "disconnected",
            FailureClass::Io => "io",
            FailureClass::Interrupted => "interrupted",
            FailureClass::Other => "other",
        }
    }
}

/// Errors that carry a failure class. Every protocol crate's error enum
/// implements it so the CLI can choose the exit code without string matching.
pub trait Classify {
    /// The failure class of this error.
    fn class(&self) -> FailureClass;
    /// The fix, kept apart from the message (shown as `hint:` and in the
    /// JSON `error` event), when the error knows one.
    fn hint(&self) -> Option<String> {
        None
    }
}

/// An error on a USB or serial link.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The transfer did not complete in time.
    #[error("{op} timed out after {}", fmt_duration(*.after))]
    Timeout { op: String, after: Duration },
    /// The device stalled the endpoint: a boot ROM's way of saying no.
    #[error("{op}: the device stalled the transfer (it refused the request or the data)")]
    Stall { op: String },
    /// The device disappeared.
    #[error("{op}: the device disconnected")]
    Disconnected { op: String },
    /// The OS denied access.
    #[error("permission denied opening {device}")]
    PermissionDenied { device: String, hint: String },
    /// The device is claimed by another program or driver.
    #[error("{device} is busy (claimed by another program or kernel driver)")]
    Busy { device: String },
    /// No such device, interface or endpoint: `what` (at the user's
    /// selector `at`, after waiting `waited`).
    #[error("no {what}{} found{}", at.as_ref().map(|a| format!(" at {a}")).unwrap_or_default(), waited.map(|w| format!(" (waited {})", fmt_duration(w))).unwrap_or_default())]
    NotFound { what: String, at: Option<String>, waited: Option<Duration> },
    /// Several devices match and nothing chose one.
    #[error("{} devices look like {what}; choose one with --port:\n  {}", candidates.len(), candidates.join("\n  "))]
    Ambiguous { what: String, candidates: Vec<String> },
    /// The selector names a device of the other transport (a tty for a USB ROM).
    #[error("--port {given}: {what} is not reached through it; give {want}")]
    WrongTransport { what: String, given: String, want: &'static str },
    /// The device is there but its configuration is not set yet.
    #[error("{device} is not configured yet")]
    NotConfigured { device: String },
    /// The machine shows no USB bus at all (a container without `/sys` or
    /// `/dev/bus/usb`, say): there is simply no device to find.
    #[error("no USB bus is visible on this machine ({missing} does not exist)")]
    NoUsbBus { missing: String },
    /// The user interrupted the run between two transfers.
    #[error("interrupted")]
    Interrupted,
    /// Anything else.
    #[error("{op}: {message}")]
    Io { op: String, message: String },
}

impl LinkError {
    /// `what` is not there (no selector, no wait).
    pub fn not_found(what: impl Into<String>) -> Self {
        LinkError::NotFound { what: what.into(), at: None, waited: None }
    }

    /// A generic I/O error for operation `op`.
    pub fn io(op: impl Into<String>, message: impl std::fmt::Display) -> Self {
        LinkError::Io { op: op.into(), message: message.to_string() }
    }
}

impl Classify for LinkError {
    fn class(&self) -> FailureClass {
        match self {
            LinkError::Timeout { .. } => FailureClass::Timeout,
            LinkError::Stall { .. } => FailureClass::Rejected,
            LinkError::Disconnected { .. } => FailureClass::Disconnected,
            LinkError::PermissionDenied { .. } => FailureClass::Permission,
            LinkError::Busy { .. } => FailureClass::Io,
            LinkError::NotFound { .. } | LinkError::NoUsbBus { .. } => FailureClass::NotFound,
            LinkError::Ambiguous { .. } => FailureClass::Ambiguous,
            LinkError::WrongTransport { .. } => FailureClass::BadInput,
            LinkError::NotConfigured { .. } => FailureClass::Io,
            LinkError::Interrupted => FailureClass::Interrupted,
            LinkError::Io { .. } => FailureClass::Io,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            LinkError::NoUsbBus { .. } => Some(NO_USB_BUS_HINT.to_string()),
            LinkError::NotFound { waited: None, .. } => {
                Some("add --wait 30s to wait for it; `racklet-flash list` shows what is attached".into())
            }
            LinkError::PermissionDenied { hint, .. } => Some(hint.clone()),
            _ => None,
        }
    }
}

/// The fix when no USB bus is visible.
pub const NO_USB_BUS_HINT: &str = "in a container, pass the host's USB through (`-v /sys:/sys:ro --device /dev/bus/usb` for docker or podman); without a board, run against the virtual ROM with --simulate";

/// Formats a duration the way users write it (`500ms`, `5s`).
pub fn fmt_duration(d: Duration) -> String {
    if d.as_millis().is_multiple_of(1000) {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// The fix for a permission error on Linux, named as snagboot does.
pub const PERMISSION_HINT: &str = "install the udev rules (`racklet-flash udev-rules | sudo tee /etc/udev/rules.d/70-racklet-flash.rules && sudo udevadm control --reload && sudo udevadm trigger`) and add yourself to the plugdev group (`sudo usermod -aG plugdev $USER`, then log in again)";

/// The fix for a permission error on a serial port.
pub const SERIAL_PERMISSION_HINT: &str =
    "add yourself to the dialout group (`sudo usermod -aG dialout $USER`, then log in again)";
