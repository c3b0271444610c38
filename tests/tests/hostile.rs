//! Hostile input and unsafe output: the cases of the bad-input
//! corpus that need a file system set up at run time (FIFOs, symlinks,
//! sparse files, existing outputs), verdicts in simulated parallel runs, and
//! the `sim` servers.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command as Std, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use racklet_tests::file;

fn rf() -> Command {
    racklet_tests::racklet_flash()
}

fn corpus(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("bad-inputs").join(name)
}

fn text(o: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn mkfifo(p: &Path) {
    let ok = Std::new("mkfifo").arg(p).status().expect("mkfifo runs").success();
    assert!(ok, "mkfifo {}", p.display());
}

/// Runs racklet-flash with a short limit: a FIFO must not block it.
fn quick(args: &[&std::ffi::OsStr]) -> std::process::Output {
    rf().args(args).timeout(Duration::from_secs(20)).output().unwrap()
}

fn os<S: AsRef<std::ffi::OsStr> + ?Sized>(s: &S) -> &std::ffi::OsStr {
    s.as_ref()
}

// --- A verdict is never dropped ------------------------------------------------

/// `--run` outside every load, forced past the check: the virtual ROM
/// refuses the jump, and that verdict counts whatever --port named it by.
#[test]
fn the_virtual_roms_verdict_counts_for_every_kind_of_selector() {
    let code = corpus("code.bin");
    let load = format!("0x80360000={}", code.display());
    for port in [None, Some("1-1"), Some("29f1:0230")] {
        let mut c = rf();
        c.args(["maskrom", "canmv-k230", "--load", &load, "--run", "0x90000000", "--force", "--simulate"]);
        if let Some(p) = port {
            c.args(["--port", p]);
        }
        let o = c.output().unwrap();
        let t = text(&o);
        assert_eq!(o.status.code(), Some(7), "--port {port:?}: {t}");
        assert!(t.contains("did not accept"), "--port {port:?}: {t}");
        assert!(!t.lines().any(|l| l.starts_with("done:")), "--port {port:?}: {t}");
    }
}

/// Two selectors for the one virtual board: it is flashed once, and its
/// verdict is checked.
#[test]
fn selectors_that_name_the_same_board_are_one_job() {
    let code = corpus("code.bin");
    for ports in [["29f1:0230", "1-2"], ["1-1", "1-1"]] {
        let o = rf()
            .args(["maskrom", "canmv-k230"])
            .arg(&code)
            .args(["--simulate", "--port", ports[0], "--port", ports[1]])
            .output()
            .unwrap();
        let t = text(&o);
        assert_eq!(o.status.code(), Some(0), "{ports:?}: {t}");
        assert_eq!(t.lines().filter(|l| l.contains("done:")).count(), 1, "{ports:?}: {t}");
        assert!(t.contains("virtual ROM:"), "{ports:?}: {t}");
        assert!(t.contains("name the same board"), "{ports:?}: {t}");
    }
    // The same with a verdict that says no: the one job fails.
    let load = format!("0x80360000={}", code.display());
    let o = rf()
        .args(["maskrom", "canmv-k230", "--load", &load, "--run", "0x90000000", "--force", "--simulate"])
        .args(["--port", "29f1:0230", "--port", "1-2"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(7), "{}", text(&o));
}

/// Every board of a parallel run gets its own verdict, even when its job
/// was named by vid:pid.
#[test]
fn parallel_jobs_each_get_their_boards_verdict() {
    let code = corpus("code.bin");
    let o = rf()
        .args(["maskrom", "visionfive2"])
        .arg(&code)
        .args(["--simulate", "--port", "1-1", "--port", "1-2", "--fault", "1-2=corrupt-image"])
        .output()
        .unwrap();
    let t = text(&o);
    assert_eq!(o.status.code(), Some(7), "{t}");
    let row = |p: &str| t.lines().find(|l| l.starts_with(p) && !l.starts_with('[')).unwrap_or("").to_string();
    assert!(row("1-1 ").contains("ok"), "{t}");
    assert!(row("1-2 ").contains("rejected"), "{t}");
}

// --- Inputs are bounded before they are read -------------------------------------

#[test]
fn fifos_are_refused_not_waited_on() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("payload.fifo");
    mkfifo(&fifo);
    let out = dir.path().join("out.img");
    let cases: Vec<Vec<&std::ffi::OsStr>> = vec![
        vec![os("maskrom"), os("canmv-k230"), fifo.as_os_str(), os("--simulate")],
        vec![os("info"), fifo.as_os_str()],
        vec![os("image"), os("visionfive2"), fifo.as_os_str(), os("-o"), out.as_os_str()],
        vec![os("boards"), os("--boards"), fifo.as_os_str()],
    ];
    for args in cases {
        let o = quick(&args);
        let t = text(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {t}");
        assert!(t.contains("not a regular file") && t.contains("payload.fifo"), "{args:?}: {t}");
    }
    assert!(!out.exists());
}

/// A file larger than any stage the board takes is refused by its size,
/// before it is read (a sparse file costs no disk).
#[test]
fn oversized_inputs_are_refused_by_their_size() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.bin");
    std::fs::File::create(&big).unwrap().set_len(2 << 30).unwrap();
    for args in [
        vec![os("maskrom"), os("visionfive2"), big.as_os_str(), os("--simulate")],
        vec![os("info"), big.as_os_str()],
        vec![
            os("image"),
            os("visionfive2"),
            big.as_os_str(),
            os("-o"),
            dir.path().join("o").into_os_string().leak(),
        ],
    ] {
        let o = quick(&args);
        let t = text(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {t}");
        assert!(t.contains("2147483648 bytes") && t.contains("larger than"), "{args:?}: {t}");
    }
    let boards = dir.path().join("boards.toml");
    let mut f = std::fs::File::create(&boards).unwrap();
    f.write_all(b"# a board file\n").unwrap();
    f.set_len(64 << 20).unwrap();
    let o = quick(&[os("boards"), os("--boards"), boards.as_os_str()]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(t.contains("boards.toml") && t.contains("larger than"), "{t}");
}

// --- Outputs are safe --------------------------------------------------------------

#[test]
fn image_output_never_replaces_what_is_not_a_regular_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let code = corpus("code.bin");
    let fifo = d.join("out.fifo");
    mkfifo(&fifo);
    let to_null = d.join("card");
    std::os::unix::fs::symlink("/dev/null", &to_null).unwrap();
    std::fs::create_dir(d.join("a-dir")).unwrap();
    for target in [&fifo, &to_null, &d.join("a-dir")] {
        let o = rf()
            .args(["image", "visionfive2"])
            .arg(&code)
            .arg("-o")
            .arg(target)
            .arg("--force")
            .output()
            .unwrap();
        let t = text(&o);
        assert_eq!(o.status.code(), Some(2), "{}: {t}", target.display());
        assert!(t.contains("not a regular file"), "{}: {t}", target.display());
        assert!(!t.contains("wrote"), "{t}");
    }
    assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo_like());
    assert!(std::fs::symlink_metadata(&to_null).unwrap().file_type().is_symlink());
    assert!(d.join("a-dir").is_dir());
}

trait FifoLike {
    fn is_fifo_like(&self) -> bool;
}
impl FifoLike for std::fs::FileType {
    fn is_fifo_like(&self) -> bool {
        use std::os::unix::fs::FileTypeExt;
        self.is_fifo()
    }
}

/// A symlink planted where the old code put its temporary file must not
/// redirect the write.
#[test]
fn planted_temporary_file_symlinks_redirect_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let victim = file(d, "victim.txt", b"precious");
    std::os::unix::fs::symlink(&victim, d.join(".y.img.racklet-tmp")).unwrap();
    let o = rf()
        .args(["image", "visionfive2"])
        .arg(corpus("code.bin"))
        .arg("-o")
        .arg(d.join("y.img"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    let m = std::fs::symlink_metadata(d.join("y.img")).unwrap();
    assert!(m.file_type().is_file(), "y.img is not a regular file");
    // No temporary file is left behind.
    let left: Vec<_> = std::fs::read_dir(d)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("racklet-tmp") && n != ".y.img.racklet-tmp")
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// Eight writers of one output: every run succeeds and the file is whole.
#[test]
fn concurrent_image_writers_do_not_trip_over_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("same.img");
    let code = corpus("code.bin");
    let codes: Vec<Option<i32>> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    rf().args(["image", "visionfive2"])
                        .arg(&code)
                        .arg("-o")
                        .arg(&out)
                        .arg("--force")
                        .output()
                        .unwrap()
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap().status.code()).collect()
    });
    assert!(codes.iter().all(|c| *c == Some(0)), "{codes:?}");
    let one = rf()
        .args(["image", "visionfive2"])
        .arg(&code)
        .arg("-o")
        .arg(dir.path().join("one.img"))
        .output()
        .unwrap();
    assert_eq!(one.status.code(), Some(0));
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(dir.path().join("one.img")).unwrap());
}

fn sim_k230(extra: &[&std::ffi::OsStr]) -> std::process::Output {
    rf().args(["maskrom", "canmv-k230"])
        .arg(corpus("code.bin"))
        .arg("--simulate")
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn record_is_treated_like_an_output_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // An existing file is kept without --force.
    let existing = file(d, "existing.jsonl", b"keep me\n");
    let o = sim_k230(&[os("--record"), existing.as_os_str()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("exists"), "{}", text(&o));
    assert_eq!(std::fs::read(&existing).unwrap(), b"keep me\n");
    // A symlink is not followed.
    let target = file(d, "target.txt", b"target\n");
    let link = d.join("link.jsonl");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let o = sim_k230(&[os("--record"), link.as_os_str()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert_eq!(std::fs::read(&target).unwrap(), b"target\n");
    // With --force the file is replaced, atomically, by a whole transcript.
    let o = sim_k230(&[os("--record"), existing.as_os_str(), os("--force")]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let t = std::fs::read_to_string(&existing).unwrap();
    assert!(
        t.lines().count() > 2 && t.lines().all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()),
        "{t}"
    );
}

#[test]
fn concurrent_recorders_never_leave_invalid_json() {
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("t.jsonl");
    let outs: Vec<std::process::Output> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..4).map(|_| s.spawn(|| sim_k230(&[os("--record"), rec.as_os_str()]))).collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    // Without --force only one of them may create the file; the others
    // find it taken (up front, or when they come to move theirs in place).
    let ok = outs.iter().filter(|o| o.status.code() == Some(0)).count();
    assert_eq!(ok, 1, "{} recorders succeeded", ok);
    for o in &outs {
        let c = o.status.code();
        assert!(c == Some(0) || (c == Some(2) && text(o).contains("exists")), "{c:?}: {}", text(o));
    }
    let t = std::fs::read_to_string(&rec).unwrap();
    for l in t.lines() {
        serde_json::from_str::<serde_json::Value>(l).unwrap_or_else(|e| panic!("{e}: {l}"));
    }
    // One run's transcript, not several interleaved: one open record per stage.
    let solo = dir.path().join("solo.jsonl");
    assert_eq!(sim_k230(&[os("--record"), solo.as_os_str()]).status.code(), Some(0));
    assert_eq!(t.lines().count(), std::fs::read_to_string(&solo).unwrap().lines().count());
}

#[test]
fn parallel_records_carry_the_port() {
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("t.jsonl");
    let o = sim_k230(&[os("--port"), os("1-1"), os("--port"), os("1-2"), os("--record"), rec.as_os_str()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let t = std::fs::read_to_string(&rec).unwrap();
    let mut ports = std::collections::BTreeSet::new();
    for l in t.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        // The run's own first and last records (docs/transcripts.md) are no board's.
        if v["t"] == "header" || v["t"] == "end" {
            continue;
        }
        ports.insert(v["port"].as_str().unwrap_or_else(|| panic!("no port in {l}")).to_string());
    }
    assert_eq!(ports.into_iter().collect::<Vec<_>>(), ["1-1", "1-2"]);
}

// --- Board files ----------------------------------------------------------------

#[test]
fn board_names_are_looked_up_whatever_their_case() {
    let o = rf()
        .args(["info", "--board", "myboard"])
        .arg(corpus("code.bin"))
        .arg("--boards")
        .arg(corpus("boards-upper-case.toml"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = rf()
        .args(["info", "--board", "MYBOARD"])
        .arg(corpus("code.bin"))
        .arg("--boards")
        .arg(corpus("boards-upper-case.toml"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

// --- The sim servers -------------------------------------------------------------

/// Starts `racklet-flash sim ARGS` and returns it with the first line it
/// prints on stdout (the address).
fn start_sim(args: &[&str]) -> (std::process::Child, String, BufReader<std::process::ChildStdout>) {
    let bin = assert_cmd::cargo::cargo_bin("racklet-flash");
    let mut c = Std::new(bin);
    for v in racklet_tests::RACKLET_ENV {
        c.env_remove(v);
    }
    let mut child = c.args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    (child, line.trim().to_string(), out)
}

/// A fastboot-over-TCP client (sheet §2): handshake, then 8-byte big-endian
/// lengths before every packet.
struct Fb(TcpStream);

impl Fb {
    fn connect(addr: &str) -> Fb {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut f = Fb(s);
        f.0.write_all(b"FB01").unwrap();
        let mut h = [0u8; 4];
        f.0.read_exact(&mut h).unwrap();
        assert_eq!(&h, b"FB01");
        f
    }
    fn send(&mut self, b: &[u8]) {
        self.0.write_all(&(b.len() as u64).to_be_bytes()).unwrap();
        self.0.write_all(b).unwrap();
    }
    fn recv(&mut self) -> std::io::Result<String> {
        let mut n = [0u8; 8];
        self.0.read_exact(&mut n)?;
        let mut b = vec![0u8; u64::from_be_bytes(n) as usize];
        self.0.read_exact(&mut b)?;
        Ok(String::from_utf8_lossy(&b).into_owned())
    }
    fn cmd(&mut self, c: &str) -> std::io::Result<String> {
        self.send(c.as_bytes());
        self.recv()
    }
}

fn kill(mut c: std::process::Child) -> String {
    let _ = c.kill();
    let mut e = String::new();
    let _ = c.stderr.take().unwrap().read_to_string(&mut e);
    let _ = c.wait();
    e
}

#[test]
fn tcp_sim_serves_a_client_while_another_idles() {
    let (child, addr, _out) = start_sim(&["sim", "bpi-f3", "--tcp", "127.0.0.1:0", "--keep"]);
    let addr = addr.trim_start_matches("tcp:").to_string();
    let _idle = Fb::connect(&addr);
    let start = Instant::now();
    let mut b = Fb::connect(&addr);
    let r = b.cmd("getvar:version-brom");
    let took = start.elapsed();
    let err = kill(child);
    assert!(matches!(&r, Ok(s) if s.starts_with("OKAY1.0")), "{r:?} after {took:?}; {err}");
}

#[test]
fn tcp_sim_forgets_a_download_its_client_dropped() {
    let (child, addr, _out) = start_sim(&["sim", "bpi-f3", "--tcp", "127.0.0.1:0", "--keep"]);
    let addr = addr.trim_start_matches("tcp:").to_string();
    {
        let mut a = Fb::connect(&addr);
        assert!(a.cmd("download:00001000").unwrap().starts_with("DATA"));
        a.send(&[0u8; 100]);
    }
    std::thread::sleep(Duration::from_millis(200));
    let mut b = Fb::connect(&addr);
    let r = b.cmd("getvar:version-brom");
    let err = kill(child);
    assert!(matches!(&r, Ok(s) if s.starts_with("OKAY1.0")), "{r:?}; {err}");
}

#[test]
fn sim_warns_when_it_listens_beyond_this_machine() {
    let (child, _addr, _out) = start_sim(&["sim", "bpi-f3", "--tcp", "0.0.0.0:0", "--keep"]);
    std::thread::sleep(Duration::from_millis(300));
    let err = kill(child);
    assert!(err.contains("warning") && err.contains("network"), "{err}");
}

#[test]
fn sim_save_does_not_follow_a_planted_symlink() {
    let dir = tempfile::tempdir().unwrap();
    let save = dir.path().join("save");
    std::fs::create_dir(&save).unwrap();
    let precious = file(dir.path(), "precious.txt", b"precious");
    std::os::unix::fs::symlink(&precious, save.join("00-rom.bin")).unwrap();
    let (child, addr, mut out) =
        start_sim(&["sim", "bpi-f3", "--tcp", "127.0.0.1:0", "--save", save.to_str().unwrap()]);
    let addr = addr.trim_start_matches("tcp:").to_string();
    {
        let mut a = Fb::connect(&addr);
        assert!(a.cmd("download:00000010").unwrap().starts_with("DATA"));
        a.send(&[7u8; 16]);
        let _ = a.recv();
    }
    let mut rest = String::new();
    let _ = out.read_to_string(&mut rest);
    let err = kill(child);
    assert_eq!(std::fs::read(&precious).unwrap(), b"precious", "{rest}{err}");
}

#[test]
fn sophgo_sim_does_not_create_a_missing_tmpdir() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no").join("such").join("tmp");
    let o = rf()
        .args(["sim", "milkv-duo"])
        .env("TMPDIR", &missing)
        .timeout(Duration::from_secs(20))
        .output()
        .unwrap();
    assert_ne!(o.status.code(), Some(0), "{}", text(&o));
    assert!(!dir.path().join("no").exists(), "the sim created {}", missing.display());
}

#[test]
fn sophgo_sim_cleans_up_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let bin = assert_cmd::cargo::cargo_bin("racklet-flash");
    let mut c = Std::new(bin);
    for v in racklet_tests::RACKLET_ENV {
        c.env_remove(v);
    }
    let mut child = c
        .args(["sim", "milkv-duo"])
        .env("TMPDIR", dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert!(line.starts_with(dir.path().to_str().unwrap()), "{line}");
    let ok = Std::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success();
    assert!(ok);
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().map(|e| e.path()).collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}
