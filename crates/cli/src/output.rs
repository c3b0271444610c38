//! Output: indicatif bars on a terminal, plain lines otherwise, JSON events
//! with `--json`. All three are sinks of the same progress events.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use racklet_link::{ProgressEvent, ProgressSink};
use serde_json::{Value, json};

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
        Arc::new(Output { mode, verbose, quiet, multi, lock: Mutex::new(()), cancel })
    }

    /// Writes one JSON event line to stdout.
    pub fn json(&self, mut v: Value) {
        let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        if let Value::Object(m) = &mut v {
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
}

/// The progress sink of one job (one board).
pub struct JobReporter {
    out: Arc<Output>,
    /// Label for this board (its port), prefixed in parallel runs.
    pub label: Option<String>,
    stage: Option<String>,
    total: Option<u64>,
    done_bytes: u64,
    started: Instant,
    stage_started: Instant,
    last_json: Option<Instant>,
    bar: Option<ProgressBar>,
    /// Stages and bytes, for the summary.
    pub stages: Vec<(String, u64, Duration)>,
}

impl JobReporter {
    pub fn new(out: Arc<Output>, label: Option<String>) -> Self {
        JobReporter {
            out,
            label,
            stage: None,
            total: None,
            done_bytes: 0,
            started: Instant::now(),
            stage_started: Instant::now(),
            last_json: None,
            bar: None,
            stages: Vec::new(),
        }
    }

    fn prefix(&self) -> String {
        self.label.as_ref().map(|l| format!("[{l}] ")).unwrap_or_default()
    }

    fn json(&self, mut v: Value) {
        if let (Some(l), Value::Object(m)) = (&self.label, &mut v) {
            m.insert("port".into(), json!(l));
        }
        self.out.json(v);
    }

    /// Seconds since the job started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    fn finish_bar(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

fn human_rate(bytes: u64, d: Duration) -> String {
    let s = d.as_secs_f64().max(1e-6);
    let r = bytes as f64 / s;
    if r >= 1e6 { format!("{:.1} MB/s", r / 1e6) } else { format!("{:.1} kB/s", r / 1e3) }
}

impl ProgressSink for JobReporter {
    fn event(&mut self, event: ProgressEvent) {
        match event {
            ProgressEvent::StageStart { name, total } => {
                self.finish_bar();
                self.stage = Some(name.clone());
                self.total = total;
                self.done_bytes = 0;
                self.stage_started = Instant::now();
                self.last_json = None;
                match self.out.mode {
                    Mode::Json => self.json(json!({"event":"stage","name":name,"total":total})),
                    Mode::Bars => {
                        let bar = self.out.multi.add(match total {
                            Some(t) => ProgressBar::new(t),
                            None => ProgressBar::new_spinner(),
                        });
                        bar.set_style(
                            ProgressStyle::with_template(
                                "{prefix}{msg:12} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
                            )
                            .unwrap_or_else(|_| ProgressStyle::default_bar())
                            .progress_chars("=> "),
                        );
                        bar.set_prefix(self.prefix());
                        bar.set_message(name);
                        self.bar = Some(bar);
                    }
                    Mode::Plain => {
                        if !self.out.quiet {
                            let t = total.map(|t| format!(" ({t} bytes)")).unwrap_or_default();
                            self.out.line(&format!("{}{name}{t}...", self.prefix()));
                        }
                    }
                }
            }
            ProgressEvent::Advance { bytes } => {
                self.done_bytes += bytes;
                if let Some(b) = &self.bar {
                    b.inc(bytes);
                }
                if self.out.mode == Mode::Json {
                    let now = Instant::now();
                    let due =
                        self.last_json.is_none_or(|t| now.duration_since(t) >= Duration::from_millis(100));
                    let complete = self.total == Some(self.done_bytes);
                    if due || complete {
                        self.last_json = Some(now);
                        self.json(json!({"event":"progress","stage":self.stage,"bytes":self.done_bytes,"total":self.total}));
                    }
                }
            }
            ProgressEvent::StageDone { name } => {
                self.finish_bar();
                let d = self.stage_started.elapsed();
                self.stages.push((name.clone(), self.done_bytes, d));
                match self.out.mode {
                    Mode::Json => self.json(json!({"event":"stage_done","name":name,"bytes":self.done_bytes,"ms":d.as_millis() as u64})),
                    _ => {
                        let rate = if self.done_bytes > 0 {
                            format!(", {} bytes in {:.2}s, {}", self.done_bytes, d.as_secs_f64(), human_rate(self.done_bytes, d))
                        } else {
                            String::new()
                        };
                        self.out.line(&format!("{}{name} done{rate}", self.prefix()));
                    }
                }
                self.stage = None;
            }
            ProgressEvent::Message { text } => match self.out.mode {
                Mode::Json => self.json(json!({"event":"message","text":text})),
                _ => self.out.line(&format!("{}{text}", self.prefix())),
            },
        }
    }

    fn cancelled(&self) -> bool {
        self.out.cancelled()
    }
}

impl Drop for JobReporter {
    fn drop(&mut self) {
        self.finish_bar();
    }
}
