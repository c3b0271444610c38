//! Every JSON event racklet-flash writes is one object on one line that
//! docs/json-events.schema.json accepts: a simulated run of every board in
//! the table, failing and parallel runs, and the other commands.

use std::path::PathBuf;

use racklet_tests::{file, k1_fsbl, pattern, prebuilt_hello, racklet_flash};
use serde_json::Value;

fn validator() -> jsonschema::Validator {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/json-events.schema.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    jsonschema::validator_for(&schema).expect("the schema is a valid JSON Schema")
}

/// The events of one run's stdout, each checked against the schema.
fn events(v: &jsonschema::Validator, what: &str, stdout: &[u8]) -> Vec<Value> {
    let text = String::from_utf8_lossy(stdout);
    assert!(!text.trim().is_empty(), "{what}: no JSON on stdout");
    text.lines()
        .map(|line| {
            let ev: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{what}: not one JSON object per line ({e}): {line}"));
            let errors: Vec<String> =
                v.iter_errors(&ev).map(|e| format!("{} at {}", e, e.instance_path())).collect();
            assert!(
                errors.is_empty(),
                "{what}: event fails the schema:\n  {line}\n  {}",
                errors.join("\n  ")
            );
            ev
        })
        .collect()
}

fn run(v: &jsonschema::Validator, args: &[&str]) -> (Vec<Value>, i32) {
    let o = racklet_flash().args(args).output().unwrap();
    let evs = events(v, &args.join(" "), &o.stdout);
    (evs, o.status.code().unwrap_or(-1))
}

#[test]
fn every_event_of_every_board_s_simulated_run_fits_the_schema() {
    let v = validator();
    let d = tempfile::tempdir().unwrap();
    let fsbl = file(d.path(), "FSBL.bin", &k1_fsbl(&pattern(4000, 7)));
    let dram = prebuilt_hello("rock-3a", "rk3568").expect("the prebuilt rock-3a hello");
    let usbplug = file(d.path(), "usbplug.bin", &racklet_tests::rk_usbplug(9000, 2));
    let usbplug = usbplug.to_str().unwrap();
    let (boards, rc) = run(&v, &["boards", "--json"]);
    assert_eq!(rc, 0);
    let mut done_by_protocol = std::collections::BTreeMap::<String, usize>::new();
    for b in &boards {
        assert_eq!(b["event"], "board");
        let name = b["name"].as_str().unwrap();
        let soc = b["soc"].as_str().unwrap();
        let protocol = b["protocol"].as_str().unwrap();
        let payload = match (protocol, soc) {
            ("fastboot", "k1") => fsbl.clone(),
            _ => prebuilt_hello(name, soc).unwrap_or_else(|| dram.clone()),
        };
        let payload = payload.to_str().unwrap();
        let mut args = vec!["maskrom", name, "--simulate", "--json", "--stage-timeout", "2s"];
        if protocol == "rockchip" {
            // DRAM init and a usbplug, so the usbplug's answer is reported too
            args.extend(["--dram", payload, usbplug]);
        } else {
            args.push(payload);
        }
        let (evs, rc) = run(&v, &args);
        assert_eq!(evs[0]["event"], "start", "{name}: the first event is start");
        let last = evs.last().unwrap();
        assert!(matches!(last["event"].as_str(), Some("done" | "error")), "{name}: ends with {last}");
        assert_eq!(rc == 0, last["event"] == "done", "{name}: exit {rc} but {last}");
        for e in &evs {
            assert_eq!(e["board"], name, "{name}: every event names the board: {e}");
        }
        if rc == 0 {
            *done_by_protocol.entry(protocol.to_string()).or_default() += 1;
            assert!(!last["facts"]["stages"].as_array().unwrap().is_empty(), "{name}: {last}");
            assert!(last["facts"]["port"].is_string(), "{name}: {last}");
            // scripts read details by key: a key said twice hides one of them
            let mut keys = std::collections::BTreeSet::new();
            for d in last["details"].as_array().unwrap() {
                let key = d["key"].as_str().unwrap();
                assert!(keys.insert(key), "{name}: the detail {key:?} appears twice: {last}");
            }
        }
    }
    for p in ["rockchip", "canaan", "sophgo", "starfive", "fastboot"] {
        assert!(done_by_protocol.contains_key(p), "no {p} board ran to done: {done_by_protocol:?}");
    }
}

#[test]
fn failing_parallel_and_other_commands_fit_the_schema() {
    let v = validator();
    let d = tempfile::tempdir().unwrap();
    let hello = prebuilt_hello("canmv-k230", "k230").unwrap();
    let hello = hello.to_str().unwrap();

    // A failing run: the error names the stage, the class and its exit code.
    let (evs, rc) = run(&v, &["maskrom", "canmv-k230", hello, "--simulate", "--json", "--fault", "unplug"]);
    let err = evs.last().unwrap();
    assert_eq!((err["event"].as_str(), rc), (Some("error"), 8), "{err}");
    assert_eq!(err["exit_code"], 8);
    assert!(
        err["stage"].as_str().is_some_and(|s| s.contains("hello.elf")),
        "the failed stage is named: {err}"
    );

    // A parallel run: one board fails, its error is tagged with its port,
    // and the summary has a row per board.
    let (evs, rc) = run(
        &v,
        &[
            "maskrom",
            "canmv-k230",
            hello,
            "--simulate",
            "--json",
            "--port",
            "1-1",
            "--port",
            "1-2",
            "--fault",
            "1-2=unplug",
        ],
    );
    assert_eq!(rc, 8);
    let errors: Vec<&Value> = evs.iter().filter(|e| e["event"] == "error").collect();
    assert_eq!(errors.len(), 1, "{evs:?}");
    assert_eq!(errors[0]["port"], "1-2");
    let summary = evs.last().unwrap();
    assert_eq!(summary["event"], "summary");
    assert_eq!(summary["boards"].as_array().unwrap().len(), 2);

    // The other commands.
    run(&v, &["list", "--json"]);
    run(&v, &["boards", "visionfive2", "--json"]);
    run(&v, &["info", hello, "--json"]);
    let (evs, rc) = run(&v, &["info", hello, "--board", "visionfive2", "--json"]);
    assert_eq!((rc, evs.len()), (2, 2), "info, then the error: {evs:?}");
    let out = d.path().join("k230.img");
    run(&v, &["image", "canmv-k230", hello, "-o", out.to_str().unwrap(), "--json"]);
    // A usage error under --json.
    let (evs, rc) = run(&v, &["maskrom", "canmv-k230", "--no-such-option", "--json"]);
    assert_eq!(rc, 2);
    assert_eq!(evs[0]["class"], "bad_input");
}

#[test]
fn the_schema_and_its_page_name_the_same_events() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs");
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("json-events.schema.json")).unwrap())
            .unwrap();
    let page = std::fs::read_to_string(root.join("json-events.md")).unwrap();
    for e in schema["properties"]["event"]["enum"].as_array().unwrap() {
        let e = e.as_str().unwrap();
        assert!(page.contains(&format!("| `{e}` |")), "docs/json-events.md does not document `{e}`");
    }
}
