//! Output: indicatif bars on a terminal, plain lines otherwise, JSON events
//! with `--json`. All three are sinks of the same progress events.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use indicatif::{MultiProgress, ProgressDrawTarget};
use racklet_link::FailureClass;
use serde_json::{Value, json};

mod progress;
pub mod report;

pub use progress::JobReporter;

/// The version of the JSON events (`v` in each; docs/json-events.md).
pub const JSON_VERSION: u32 = 1;

/// How output is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Progress bars on stderr (a terminal).
    Bars,
    /// One line per stage and message on stderr.
    Plain,
    /// JSON events on stdout.
    Json,
}

/// Process-wide output state, shared by every job.
pub struct Output {
    pub mode: Mode,
    pub verbose: u8,
    pub quiet: bool,
    multi: MultiProgress,
    lock: Mutex<()>,
    cancel: Arc<AtomicBool>,
    /// The board this command is about, for the `board` key of events that
    /// do not name one themselves.
    board: Mutex<Option<String>>,
}

impl Output {
    pub fn new(json: bool, verbose: u8, quiet: bool, cancel: Arc<AtomicBool>) -> Arc<Output> {
        let mode = if json {
            Mode::Json
        } else if std::io::stderr().is_terminal() && !quiet {
            Mode::Bars
        } else {
            Mode::Plain
        };
        let multi = MultiProgress::with_draw_target(if mode == Mode::Bars {
            ProgressDrawTarget::stderr_with_hz(10)
        } else {
            ProgressDrawTarget::hidden()
        });
        Arc::new(Output {
            mode,
            verbose,
            quiet,
            multi,
            lock: Mutex::new(()),
            cancel,
            board: Mutex::new(None),
        })
    }

    /// Names the board the command is about: events without a `board` get it.
    pub fn set_board(&self, name: &str) {
        *self.board.lock().unwrap_or_else(|e| e.into_inner()) = Some(name.to_string());
    }

    /// Writes one JSON event line to stdout. Every event is one object with
    /// `event`, `board` and `port` (null when the event is about no board or
    /// no port) and `ts_ms` (docs/json-events.md).
    pub fn json(&self, mut v: Value) {
        let board = self.board.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        if let Value::Object(m) = &mut v {
            debug_assert!(m.contains_key("event"), "a JSON event without `event`: {m:?}");
            m.insert("v".into(), json!(JSON_VERSION));
            m.entry("board").or_insert_with(|| json!(board));
            m.entry("port").or_insert(Value::Null);
            m.entry("ts_ms").or_insert_with(|| {
                json!(
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_millis() as u64)
                        .unwrap_or(0)
                )
            });
        }
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{v}");
        let _ = out.flush();
    }

    /// A human line on stderr (not in JSON mode, not when quiet).
    pub fn line(&self, text: &str) {
        if self.mode == Mode::Json || self.quiet {
            return;
        }
        let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        if self.mode == Mode::Bars {
            let _ = self.multi.println(text);
        } else {
            eprintln!("{text}");
        }
    }

    pub fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::SeqCst)
    }

    /// Reports a failure: an `error` event, or `error:` and `hint:` lines on
    /// stderr (prefixed with the port in parallel runs). Errors are shown
    /// even with --quiet.
    pub fn error(&self, e: &anyhow::Error, at: &ErrorAt) {
        let class = if self.cancelled() { FailureClass::Interrupted } else { crate::error::class_of(e) };
        let message = crate::error::message_of(e);
        let hint = crate::error::hint_of(e);
        if self.mode == Mode::Json {
            let mut ev = json!({"event":"error","stage":at.stage,"class":class.name(),
                "exit_code":class.exit_code(),"message":message,"hint":hint});
            if let Some(b) = &at.board {
                ev["board"] = json!(b);
            }
            ev["port"] = json!(at.port);
            self.json(ev);
        } else {
            let pre = at.prefix.as_ref().map(|p| format!("[{p}] ")).unwrap_or_default();
            let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
            let say = |t: String| {
                if self.mode == Mode::Bars {
                    let _ = self.multi.println(&t);
                } else {
                    eprintln!("{t}");
                }
            };
            say(format!("{pre}error: {message}"));
            if let Some(h) = hint {
                say(format!("{pre}hint: {h}"));
            }
        }
    }
}

/// Where an error happened, for [`Output::error`].
#[derive(Debug, Default, Clone)]
pub struct ErrorAt {
    pub board: Option<String>,
    pub port: Option<String>,
    /// The stage that was running (or ran last) when the error came.
    pub stage: Option<String>,
    /// The port shown before each line in a parallel run.
    pub prefix: Option<String>,
}
