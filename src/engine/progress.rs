//! Live progress on stderr while a command works on hosts: per host, what it is doing now
//! (connecting, reading its state, the change being made). A spinner line per host when
//! stderr is a terminal (indicatif), else one timestamped line per event (CI logs); nothing
//! with `-q`, and nothing for library callers that never turned it on. Stdout (plan's
//! changes, the summary, JSON) is untouched.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

enum Sink {
    Off,
    Lines,
    Bars {
        multi: MultiProgress,
        bars: Mutex<HashMap<String, ProgressBar>>,
    },
}

static SINK: OnceLock<Sink> = OnceLock::new();

/// Turn progress on for this process (once, before any host is reached): spinners on a
/// terminal, lines otherwise; `quiet`: off.
pub fn init(quiet: bool) {
    let sink = if quiet {
        Sink::Off
    } else if std::io::stderr().is_terminal() {
        Sink::Bars {
            multi: MultiProgress::new(),
            bars: Mutex::new(HashMap::new()),
        }
    } else {
        Sink::Lines
    };
    let _ = SINK.set(sink);
}

fn sink() -> &'static Sink {
    SINK.get_or_init(|| Sink::Off)
}

/// `host` is now doing `what`.
pub(crate) fn host(host: &str, what: &str) {
    match sink() {
        Sink::Off => {}
        Sink::Lines => line(host, what),
        Sink::Bars { multi, bars } => {
            let mut bars = bars.lock().unwrap_or_else(|p| p.into_inner());
            let bar = bars.entry(host.to_string()).or_insert_with(|| {
                let bar = multi.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template("{spinner} {prefix:<12} {elapsed:>4} {wide_msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.set_prefix(host.to_string());
                bar.enable_steady_tick(Duration::from_millis(120));
                bar
            });
            bar.set_message(what.to_string());
        }
    }
}

/// `host` is done with this command: its spinner goes; a line says how it ended.
pub(crate) fn done(host: &str, how: &str) {
    match sink() {
        Sink::Off => {}
        Sink::Lines => line(host, how),
        Sink::Bars { bars, .. } => {
            let mut bars = bars.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(bar) = bars.remove(host) {
                bar.finish_and_clear();
            }
        }
    }
}

/// Print `text` on stdout without tearing the spinners.
pub(crate) fn println(text: &str) {
    match sink() {
        Sink::Bars { multi, .. } => multi.suspend(|| println!("{text}")),
        Sink::Off | Sink::Lines => println!("{text}"),
    }
}

fn line(host: &str, what: &str) {
    let now = time::OffsetDateTime::now_utc();
    let clock = now
        .format(time::macros::format_description!(
            "[hour]:[minute]:[second]"
        ))
        .unwrap_or_default();
    eprintln!("{clock} {host}: {what}");
}
