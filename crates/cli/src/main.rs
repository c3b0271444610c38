//! The racklet-flash binary.

fn main() -> std::process::ExitCode {
    racklet_flash::main_entry()
}
