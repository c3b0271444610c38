//! The faults of a run with several virtual boards: `--fault` names one
//! fault for every board, or one per board by its USB port path.

use crate::models::SimError;

/// A `--fault` value: comma-separated `NAME` (every virtual board of the
/// run) or `PORT=NAME` (the board at that USB port path), as in
/// `--fault stall,1-2=crc`. What each name means is the model's
/// ([`crate::rom`]'s fault lists); this only says which board gets which.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortFaults {
    /// The last bare `NAME`: every board without a fault of its own.
    every: Option<String>,
    /// `PORT=NAME`, in order (the first for a port is its fault).
    by_port: Vec<(String, String)>,
}

impl std::str::FromStr for PortFaults {
    type Err = std::convert::Infallible;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let mut f = PortFaults::default();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part.split_once('=') {
                Some((port, name)) => f.by_port.push((port.to_string(), name.to_string())),
                None => f.every = Some(part.to_string()),
            }
        }
        Ok(f)
    }
}

impl PortFaults {
    /// The fault of the virtual board at `port`.
    pub fn for_port(&self, port: &str) -> Option<String> {
        self.by_port.iter().find(|(p, _)| p == port).map(|(_, n)| n.clone()).or_else(|| self.every.clone())
    }

    /// Every `PORT=NAME` must name a virtual board of the run (one at each
    /// of `ports`).
    pub fn check_ports(&self, ports: &[String]) -> Result<(), SimError> {
        match self.by_port.iter().find(|(p, _)| !ports.contains(p)) {
            Some((port, name)) => {
                Err(SimError::NoBoardAt { port: port.clone(), fault: name.clone(), ports: ports.to_vec() })
            }
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(spec: &str) -> PortFaults {
        spec.parse().unwrap()
    }

    #[test]
    fn faults_by_port_and_for_every_board() {
        assert_eq!(f("").for_port("1-1"), None);
        assert_eq!(f("stall").for_port("1-2").as_deref(), Some("stall"));
        assert_eq!(f("stall,1-2=crc").for_port("1-2").as_deref(), Some("crc"));
        assert_eq!(f("stall,1-2=crc").for_port("1-3").as_deref(), Some("stall"));
        assert_eq!(f("1-2=crc").for_port("1-3"), None);
        assert!(f("1-2=crc").check_ports(&["1-2".into()]).is_ok());
        let e = f("1-9=crc").check_ports(&["1-1".into(), "1-2".into()]).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("no virtual board of this run is at 1-9") && text.contains("1-1, 1-2"),
            "{text}"
        );
        assert!(racklet_link::Classify::hint(&e).unwrap().contains("--port 1-9"));
    }
}
