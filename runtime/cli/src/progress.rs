//! A spinner on stderr for work that takes more than a second (compiling a component the first
//! time, a slow action). Nothing is drawn for quick work or when stderr is not a terminal.

use indicatif::{ProgressBar, ProgressStyle};
use std::time::Duration;

/// Shows `message` with a spinner if still running after one second; cleared on drop.
pub struct Progress {
    bar: ProgressBar,
    task: tokio::task::JoinHandle<()>,
}

impl Progress {
    /// Starts the delay for `message`.
    pub fn start(message: impl Into<String>) -> Progress {
        let bar = ProgressBar::new_spinner();
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
        bar.set_message(message.into());
        let shown = bar.clone();
        let task = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if console_is_terminal() {
                shown.set_draw_target(indicatif::ProgressDrawTarget::stderr());
                shown.set_style(
                    ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                        .expect("valid template"),
                );
                shown.enable_steady_tick(Duration::from_millis(100));
            }
        });
        Progress { bar, task }
    }
}

fn console_is_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal()
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.task.abort();
        self.bar.finish_and_clear();
    }
}
