//! `racklet-gadget`: serves a virtual boot ROM (or the rig's own test
//! models) as a real USB gadget. Runs inside the rig's Linux guest.
//!
//! ```text
//! racklet-gadget usb --model loop|rk3568|...|k230|k230d|k1|th1520 --udc dummy_udc.0 --name NAME
//!                [--fault NAME] [--storage FILE] [--delay SECS] [--unplug-after BYTES]
//!                [--stop-file PATH] [--max-time SECS]
//! racklet-gadget acm --model echo|sg2000|sg2002|cv1800b --udc dummy_udc.1 --name NAME
//!                [--fault NAME] [--delay SECS]
//!                [--unplug-after BYTES] [--stop-file PATH] [--max-time SECS]
//! ```
//!
//! It logs what happens on stderr and ends with one line on stdout:
//! `VERDICT <name> ok|fail <what the model received>`; exit 0 for ok.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use racklet_gadget::acm;
use racklet_gadget::configfs::GADGET_ROOT;
use racklet_gadget::serve::{self, ServeOptions};
use racklet_gadget::testdev::{EchoRom, LoopDevice};
use racklet_link::Classify;
use racklet_sim::models::Scenario;
use racklet_sim::serial::SimSerialBus;
use racklet_sim::usb::{SharedDevice, SimUsbBus};

struct Args {
    mode: String,
    model: String,
    udc: String,
    name: String,
    delay: Duration,
    unplug_after: Option<u64>,
    stop_file: Option<PathBuf>,
    max_time: Duration,
    fault: Option<String>,
    /// The virtual board's storage in FILE (as `--sim-storage`), so what
    /// two clients leave can be compared byte for byte.
    storage: Option<PathBuf>,
}

fn secs(s: &str) -> Result<Duration, String> {
    s.parse::<f64>()
        .ok()
        .filter(|x| x.is_finite() && *x >= 0.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| format!("'{s}' is not a number of seconds"))
}

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let mode = it.next().ok_or("usage: racklet-gadget usb|acm --model NAME --udc UDC --name NAME ...")?;
    let mut a = Args {
        mode,
        model: String::new(),
        udc: "dummy_udc.0".into(),
        name: "rig".into(),
        delay: Duration::ZERO,
        unplug_after: None,
        stop_file: None,
        max_time: Duration::from_secs(120),
        fault: None,
        storage: None,
    };
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--model" => a.model = val()?,
            "--udc" => a.udc = val()?,
            "--name" => a.name = val()?,
            "--delay" => a.delay = secs(&val()?)?,
            "--max-time" => a.max_time = secs(&val()?)?,
            "--unplug-after" => {
                a.unplug_after = Some(val()?.parse().map_err(|e| format!("--unplug-after: {e}"))?)
            }
            "--stop-file" => a.stop_file = Some(val()?.into()),
            "--fault" => a.fault = Some(val()?),
            "--storage" => a.storage = Some(val()?.into()),
            f => return Err(format!("unknown option {f}")),
        }
    }
    Ok(a)
}

type Verdict = Box<dyn FnMut() -> Result<String, String>>;

/// The virtual board of a run of this program: at port "gadget", with its
/// fault and its storage file.
fn scenario(fault: Option<&str>, storage: Option<PathBuf>) -> Scenario {
    Scenario { fault: fault.map(str::to_string), storage, ..Scenario::at("gadget") }
}

/// The USB models this program can serve, by name, with their fault by
/// name (as `racklet-flash maskrom --simulate --fault NAME` takes it).
fn usb_model(
    name: &str,
    fault: Option<&str>,
    storage: Option<PathBuf>,
) -> Result<(SharedDevice, Verdict), String> {
    let no_fault = |model: &str| match fault {
        Some(f) => Err(format!("the {model} model has no faults (got '{f}')")),
        None => Ok(()),
    };
    match name {
        // Every SoC of the sim's registry: its own model, fault names and verdict.
        soc if racklet_sim::models::model(soc).is_some() => registry_model(soc, scenario(fault, storage)),
        // A fastboot board already in vendor U-Boot's fastboot, for the
        // storage verbs (`k1-uboot`, `th1520-uboot`).
        soc if soc.strip_suffix("-uboot").is_some_and(|s| ["k1", "th1520"].contains(&s)) => {
            uboot_model(soc.trim_end_matches("-uboot"), scenario(fault, storage))
        }
        "loop" => {
            no_fault("loop")?;
            let d = Arc::new(Mutex::new(LoopDevice::default()));
            let v = d.clone();
            let verdict: Verdict =
                Box::new(move || Ok(v.lock().unwrap_or_else(|e| e.into_inner()).verdict()));
            Ok((d, verdict))
        }
        other => Err(format!(
            "unknown USB model '{other}' (known: loop, and the SoCs of the sim registry: {})",
            racklet_sim::models::MODELS
                .iter()
                .flat_map(|m| m.socs.iter().copied())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// A USB model of the sim's registry, by SoC: attached to a bus of its own,
/// from which the gadget takes the device to serve.
fn registry_model(soc: &str, scenario: Scenario) -> Result<(SharedDevice, Verdict), String> {
    use racklet_sim::models::attach;
    use racklet_sim::rom::Verdict as RomVerdict;
    let usb = SimUsbBus::new();
    let mut rom = attach(soc, &scenario, &usb, &SimSerialBus::new()).map_err(|e| match e.hint() {
        Some(h) => format!("{e} ({h})"),
        None => e.to_string(),
    })?;
    let dev = usb.attached().pop().ok_or_else(|| format!("the {soc} model is not a USB device"))?;
    Ok((
        dev,
        Box::new(move || match rom.verdict() {
            RomVerdict::Started { summary } => Ok(summary),
            RomVerdict::NotStarted { why } => Err(why),
        }),
    ))
}

/// Vendor U-Boot's fastboot with its eMMC, as `racklet-flash write` finds it.
fn uboot_model(soc: &str, scenario: Scenario) -> Result<(SharedDevice, Verdict), String> {
    use racklet_sim::rom::Verdict as RomVerdict;
    let usb = SimUsbBus::new();
    let mut rom =
        racklet_sim::fastboot::attach_storage(soc, &scenario, false, &usb).map_err(|e| e.to_string())?;
    let dev = usb.attached().pop().ok_or_else(|| format!("the {soc} model is not a USB device"))?;
    Ok((
        dev,
        Box::new(move || match rom.verdict() {
            RomVerdict::Started { summary } => Ok(summary),
            RomVerdict::NotStarted { why } => Err(why),
        }),
    ))
}

fn main() -> ExitCode {
    let a = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("racklet-gadget: {e}");
            return ExitCode::from(2);
        }
    };
    let name = a.name.clone();
    let log: serve::Log = Arc::new(move |s| eprintln!("gadget[{name}]: {s}"));
    let result = match a.mode.as_str() {
        "usb" => run_usb(&a, log),
        "acm" => run_acm(&a, log),
        m => Err(format!("unknown mode '{m}' (usb or acm)")),
    };
    match result {
        Ok(v) => {
            println!("VERDICT {} ok {v}", a.name);
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("VERDICT {} fail {e}", a.name);
            ExitCode::FAILURE
        }
    }
}

fn options(a: &Args) -> ServeOptions {
    ServeOptions {
        name: a.name.clone(),
        udc: a.udc.clone(),
        configfs_root: GADGET_ROOT.into(),
        ffs_root: "/dev/usb-ffs".into(),
        bind_delay: a.delay,
        unplug_after: a.unplug_after,
        stop_file: a.stop_file.clone(),
        max_time: a.max_time,
    }
}

fn run_usb(a: &Args, log: serve::Log) -> Result<String, String> {
    let (dev, mut verdict) = usb_model(&a.model, a.fault.as_deref(), a.storage.clone())?;
    let report = serve::serve(dev, &options(a), log.clone()).map_err(|e| e.to_string())?;
    log(format!(
        "served: {} bytes received, {} binds, unplugged: {}",
        report.received, report.binds, report.unplugged
    ));
    verdict()
}

/// The serial models this program can serve over ACM, by name: the
/// bus they publish their pty on, and their verdict.
fn serial_model(name: &str, fault: Option<&str>) -> Result<(SimSerialBus, Verdict), String> {
    let bus = SimSerialBus::new();
    match name {
        // Sophgo CV18xx/SG200x USB ROMs (CDC-ACM), RISC-V core, from the
        // sim's own chip table (racklet_sim::models).
        "sg2000" | "sg2002" | "cv1800b" => {
            let mut sc = racklet_sim::models::Scenario::at("gadget");
            sc.fault = fault.map(str::to_string);
            let mut rom = racklet_sim::models::attach(name, &sc, &racklet_sim::usb::SimUsbBus::new(), &bus)
                .map_err(|e| e.to_string())?;
            Ok((
                bus,
                Box::new(move || match rom.verdict() {
                    racklet_sim::rom::Verdict::Started { summary } => Ok(summary),
                    racklet_sim::rom::Verdict::NotStarted { why } => Err(why),
                }),
            ))
        }
        "echo" => {
            if let Some(f) = fault {
                return Err(format!("the echo model has no faults (got '{f}')"));
            }
            let mut rom = EchoRom::spawn(bus.clone(), "gadget").map_err(|e| e.to_string())?;
            Ok((bus, Box::new(move || Ok(rom.verdict()))))
        }
        other => Err(format!("unknown serial model '{other}' (known: echo, sg2000, sg2002, cv1800b)")),
    }
}

fn run_acm(a: &Args, log: serve::Log) -> Result<String, String> {
    let (bus, mut verdict) = serial_model(&a.model, a.fault.as_deref())?;
    let report = acm::serve_serial(bus, &options(a), log.clone()).map_err(|e| e.to_string())?;
    log(format!(
        "served: {} bytes received, {} binds, unplugged: {}",
        report.received, report.binds, report.unplugged
    ));
    verdict()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fastboot models come from the sim's registry, with its verdict:
    /// nothing started is a failure, and fault names are the registry's.
    #[test]
    fn fastboot_models_come_from_the_registry() {
        for (name, id) in [("k1", (0x361c, 0x1001)), ("th1520", (0x2345, 0x7654))] {
            let (dev, mut verdict) = usb_model(name, None, None).unwrap();
            let info = racklet_sim::usb::lock(&dev).info().unwrap();
            assert_eq!((info.vid, info.pid), id);
            assert!(verdict().unwrap_err().contains("nothing started"));
        }
        assert!(usb_model("k1", Some("silent"), None).is_ok());
        let e = usb_model("th1520", Some("nope"), None).err().unwrap();
        assert!(e.contains("unknown fault 'nope'") && e.contains("no-reenumerate"), "{e}");
    }
}
