//! The progress sink of one job: a bar per stage on a terminal, a line
//! per stage otherwise, `stage`/`progress`/`stage_done` events with `--json`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use racklet_link::{ProgressEvent, ProgressSink};
use serde_json::{Value, json};

use super::{Mode, Output};

/// The progress sink of one job (one board).
pub struct JobReporter {
    out: Arc<Output>,
    /// Label for this board (its port), prefixed in parallel runs.
    pub label: Option<String>,
    /// The port of this job in JSON events (the selector given, if any).
    pub port: Option<String>,
    stage: Option<String>,
    /// The stage last started (it stays when the stage ends), for errors.
    pub last_stage: Option<String>,
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
    /// A reporter whose JSON events carry `port` even when its lines are
    /// not prefixed (a single board given with --port).
    pub fn with_port(out: Arc<Output>, label: Option<String>, port: Option<String>) -> Self {
        JobReporter {
            out,
            label,
            port,
            stage: None,
            last_stage: None,
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
        if let Value::Object(m) = &mut v {
            m.insert("port".into(), json!(self.port));
        }
        self.out.json(v);
    }

    /// The stage running now, or the last one that ran.
    pub fn stage(&self) -> Option<String> {
        self.stage.clone().or_else(|| self.last_stage.clone())
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

/// A size in one unit system everywhere, the binary units of the bars
/// (`512 B`, `5.50 KiB`, `1.20 MiB`).
fn human_bytes(bytes: u64) -> String {
    indicatif::HumanBytes(bytes).to_string()
}

/// The width of the terminal on stderr (80 when it does not say).
fn terminal_width() -> usize {
    console::Term::stderr().size_checked().map(|(_, w)| w as usize).unwrap_or(80)
}

/// A bar that fits a terminal `width` columns wide: the stage name cut to
/// fit, the bar taking what is left, and fewer numbers on narrow terminals.
fn bar_template(width: usize, sized: bool) -> &'static str {
    match (sized, width) {
        (false, _) => "{prefix}{msg:24!} {spinner} {bytes} {bytes_per_sec}",
        (true, 90..) => {
            "{prefix}{msg:20!} [{wide_bar}] {bytes:>10}/{total_bytes:10} {bytes_per_sec:>12} ETA {eta}"
        }
        (true, 60..) => "{prefix}{msg:14!} [{wide_bar}] {percent:>3}% {bytes_per_sec:>12}",
        (true, _) => "{prefix}{msg:10!} [{wide_bar}] {percent:>3}%",
    }
}

/// A rate in the same units as [`human_bytes`].
fn human_rate(bytes: u64, d: Duration) -> String {
    let s = d.as_secs_f64().max(1e-6);
    let r = (bytes as f64 / s) as u64;
    format!("{}/s", human_bytes(r))
}

impl ProgressSink for JobReporter {
    fn event(&mut self, event: ProgressEvent) {
        match event {
            ProgressEvent::StageStart { name, total } => {
                self.finish_bar();
                self.stage = Some(name.clone());
                self.last_stage = Some(name.clone());
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
                            ProgressStyle::with_template(bar_template(terminal_width(), total.is_some()))
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
                        let text = if self.done_bytes > 0 {
                            format!(
                                "{name}: sent {} bytes in {:.2} s ({})",
                                self.done_bytes,
                                d.as_secs_f64(),
                                human_rate(self.done_bytes, d)
                            )
                        } else {
                            format!("{name}: done")
                        };
                        self.out.line(&format!("{}{text}", self.prefix()));
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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};

    use super::bar_template;

    /// A terminal of a given width that keeps what was drawn on it.
    #[derive(Debug)]
    struct Narrow {
        width: u16,
        text: Arc<Mutex<String>>,
    }

    impl TermLike for Narrow {
        fn width(&self) -> u16 {
            self.width
        }
        fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn write_line(&self, s: &str) -> std::io::Result<()> {
            let mut t = self.text.lock().unwrap();
            t.push_str(s);
            t.push('\n');
            Ok(())
        }
        fn write_str(&self, s: &str) -> std::io::Result<()> {
            self.text.lock().unwrap().push_str(s);
            Ok(())
        }
        fn clear_line(&self) -> std::io::Result<()> {
            // Each redraw starts on a cleared line.
            self.text.lock().unwrap().push('\n');
            Ok(())
        }
        fn flush(&self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_bar_fits_narrow_terminals() {
        for width in [40u16, 60, 80, 100, 120] {
            let text = Arc::new(Mutex::new(String::new()));
            let term = Narrow { width, text: text.clone() };
            let bar =
                ProgressBar::with_draw_target(Some(1 << 20), ProgressDrawTarget::term_like(Box::new(term)));
            bar.set_style(ProgressStyle::with_template(bar_template(width as usize, true)).unwrap());
            bar.set_prefix("[1-3.4] ");
            bar.set_message("payloads/prebuilt/canmv-k230/hello.elf at 0x80360000");
            bar.set_position(300_000);
            bar.tick();
            bar.abandon();
            let drawn = text.lock().unwrap().clone();
            assert!(!drawn.trim().is_empty(), "{width}: nothing drawn");
            for line in drawn.lines() {
                let cols = console::measure_text_width(line);
                assert!(cols <= width as usize, "{width} columns: a line of {cols}: {line:?}");
            }
        }
    }
}
