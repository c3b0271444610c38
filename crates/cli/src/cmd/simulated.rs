//! The simulated world of a `--simulate` run: one virtual board per port
//! on simulated buses (at the link speed `--sim-speed` asks), each with its
//! `--fault`, and the verdicts of the virtual boards on the jobs.

use anyhow::Result;
use racklet_link::{FailureClass, Selector};
use racklet_sim::rom::{Verdict, VirtualRom};
use racklet_sim::serial::SimSerialBus;
use racklet_sim::usb::{LinkModel, SimUsbBus};
use racklet_sim::world::PortFaults;

use super::run::JobResult;
use crate::args::connect::{SimSpeed, SimulationArgs};
use crate::error::{classify, fail};
use crate::output::Output;

/// The virtual devices of a simulated run, by USB port path.
pub type Sims = Vec<(String, Box<dyn VirtualRom>)>;

/// Attaches the board's virtual device at a USB port path, with a fault.
pub type AttachSim<'a> =
    dyn Fn(&str, Option<String>, &SimUsbBus, &SimSerialBus) -> Result<Box<dyn VirtualRom>> + 'a;

/// The simulated buses with a virtual board at each USB port path the
/// selectors name (at 1-1 when they name none).
pub fn world(
    sim: &SimulationArgs,
    selectors: &[Selector],
    attach: &AttachSim,
) -> Result<(SimUsbBus, SimSerialBus, Sims)> {
    let su = match sim.sim_speed {
        None => SimUsbBus::new(),
        Some(SimSpeed::High) => SimUsbBus::with_model(LinkModel::HIGH_SPEED),
        Some(SimSpeed::Full) => SimUsbBus::with_model(LinkModel::FULL_SPEED),
    };
    let ss = SimSerialBus::new();
    let mut paths: Vec<String> = selectors
        .iter()
        .filter_map(|s| match s {
            Selector::UsbPath(p) => Some(p.clone()),
            _ => None,
        })
        .collect();
    if paths.is_empty() {
        paths.push("1-1".into());
    }
    let faults: PortFaults = sim.fault.as_deref().unwrap_or_default().parse().unwrap_or_default();
    faults.check_ports(&paths).map_err(classify)?;
    let mut sims = Vec::new();
    for p in &paths {
        let s = attach(p, faults.for_port(p), &su, &ss)?;
        sims.push((p.clone(), s));
    }
    Ok((su, ss, sims))
}

/// Simulated, a tty given with --port is the virtual board's UART (its
/// virtual USB-UART adapter's port, the first free `1-N`): the same command
/// line runs with and without a board.
pub fn ttys_to_ports(selectors: &mut [Selector], out: &Output) {
    let mut n = 0;
    for i in 0..selectors.len() {
        if let Selector::Tty(tty) = &selectors[i] {
            let path = loop {
                n += 1;
                let p = format!("1-{n}");
                if !selectors.contains(&Selector::UsbPath(p.clone())) {
                    break p;
                }
            };
            out.line(&format!(
                "--simulate: the virtual board's UART (USB-UART adapter at port {path}) stands in for {}",
                tty.display()
            ));
            selectors[i] = Selector::UsbPath(path);
        }
    }
}

/// In simulation, the virtual device's verdict must agree with the job. It
/// is paired with the job by the board the job found, and a job that claims
/// success without a verdict has not shown one.
pub fn judge(results: &mut [JobResult], sims: Sims, simulate: bool) {
    let mut judged = vec![false; results.len()];
    for (path, mut sim) in sims {
        let verdict = match sim.verdict() {
            Verdict::Started { summary } => Ok(summary),
            Verdict::NotStarted { why } => Err(why),
        };
        let mine: Vec<usize> =
            (0..results.len()).filter(|&i| results[i].device.as_deref() == Some(path.as_str())).collect();
        for &i in &mine {
            judged[i] = true;
            let r = &mut results[i];
            if mine.len() > 1 {
                if r.outcome.is_ok() {
                    r.outcome = Err(fail(
                        FailureClass::Other,
                        format!("{} jobs of this run used the one virtual board at {path}", mine.len()),
                    ));
                }
                continue;
            }
            match (&mut r.outcome, &verdict) {
                (Ok(_), Ok(v)) => r.verdict = Some(v.clone()),
                (Ok(_), Err(v)) => {
                    r.outcome = Err(fail(
                        FailureClass::Rejected,
                        format!("the virtual ROM did not accept the load: {v}"),
                    ));
                }
                (Err(_), _) => {}
            }
        }
    }
    if simulate {
        for (r, judged) in results.iter_mut().zip(judged) {
            if r.outcome.is_ok() && !judged {
                r.outcome = Err(fail(
                    FailureClass::Other,
                    format!(
                        "no virtual ROM gave a verdict on this job (it reached {}), so its success is unproven",
                        r.device.as_deref().unwrap_or("no device")
                    ),
                ));
            }
        }
    }
}
