//! The demo's voice: chapter headings, each command shown before its output, a line saying
//! what it shows, PASS/FAIL/SKIP marks, and the closing summary table.

use std::io::IsTerminal;
use std::process::{Command, Output};

/// How one check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    Pass,
    Fail,
    Skip,
}

#[derive(Debug)]
struct Outcome {
    chapter: String,
    what: String,
    mark: Mark,
    detail: String,
}

/// Prints the walk-through and keeps the score.
#[derive(Debug)]
pub struct Narrator {
    color: bool,
    chapter: String,
    outcomes: Vec<Outcome>,
    /// Substitutions that make shown commands readable (long temp paths -> short names).
    aliases: Vec<(String, String)>,
}

const WIDTH: usize = 78;
/// Output longer than this many lines is cut in the middle when shown.
const MAX_LINES: usize = 18;

impl Narrator {
    pub fn new() -> Self {
        Self {
            color: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
            chapter: String::new(),
            outcomes: Vec::new(),
            aliases: Vec::new(),
        }
    }

    /// Show `long` as `short` in displayed commands and output.
    pub fn alias(&mut self, long: &str, short: &str) {
        self.aliases.push((long.to_owned(), short.to_owned()));
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    fn shorten(&self, text: &str) -> String {
        self.aliases
            .iter()
            .fold(text.to_owned(), |acc, (long, short)| {
                acc.replace(long, short)
            })
    }

    pub fn banner(&self, title: &str, lines: &[&str]) {
        let bar = "=".repeat(WIDTH);
        println!("{}", self.paint("1;36", &bar));
        println!("{}", self.paint("1;36", &format!("  {title}")));
        println!("{}", self.paint("1;36", &bar));
        for l in lines {
            println!("  {l}");
        }
    }

    /// Start chapter `title`; `intro` says what is about to happen.
    pub fn chapter(&mut self, title: &str, intro: &str) {
        self.chapter = title.to_owned();
        let rule = "-".repeat(WIDTH.saturating_sub(title.len() + 4));
        println!();
        println!("{}", self.paint("1;33", &format!("-- {title} {rule}")));
        for l in wrap(intro, WIDTH - 2) {
            println!("  {l}");
        }
    }

    /// A line of plain narration.
    pub fn say(&self, text: &str) {
        for l in wrap(&self.shorten(text), WIDTH - 2) {
            println!("  {l}");
        }
    }

    /// Announce a command before it runs.
    pub fn command(&self, cmd: &Command) {
        self.command_text(&describe(cmd));
    }

    pub fn command_text(&self, text: &str) {
        println!();
        println!("  {} {}", self.paint("1;32", "$"), self.shorten(text));
    }

    /// Show what a command printed (stdout, then stderr), indented and bounded.
    pub fn output(&self, out: &Output) {
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        let err = String::from_utf8_lossy(&out.stderr);
        if !err.trim().is_empty() {
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(&err);
        }
        self.block(&text);
        if !out.status.success() {
            println!("    {}", self.paint("2", &format!("({})", out.status)));
        }
    }

    /// Show some text as command output.
    pub fn block(&self, text: &str) {
        let text = self.shorten(text);
        let lines: Vec<&str> = text.lines().collect();
        let shown: Vec<String> = if lines.len() > MAX_LINES {
            let head = &lines[..MAX_LINES - 4];
            let tail = &lines[lines.len() - 3..];
            let mut v: Vec<String> = head.iter().map(|s| (*s).to_owned()).collect();
            v.push(format!(
                "... ({} more lines)",
                lines.len() - head.len() - tail.len()
            ));
            v.extend(tail.iter().map(|s| (*s).to_owned()));
            v
        } else {
            lines.iter().map(|s| (*s).to_owned()).collect()
        };
        for l in shown {
            println!("    {}", self.paint("2", &l));
        }
    }

    /// The "what this shows" line after a command.
    pub fn shows(&self, text: &str) {
        let mut first = true;
        for l in wrap(text, WIDTH - 16) {
            let lead = if first {
                "what this shows:"
            } else {
                "                "
            };
            first = false;
            println!("  {} {l}", self.paint("36", lead));
        }
    }

    /// Record a check that must hold. Returns `ok` so callers can chain.
    pub fn check(&mut self, what: &str, ok: bool, detail: &str) -> bool {
        self.mark(what, if ok { Mark::Pass } else { Mark::Fail }, detail);
        ok
    }

    pub fn skip(&mut self, what: &str, why: &str) {
        self.mark(what, Mark::Skip, why);
    }

    fn mark(&mut self, what: &str, mark: Mark, detail: &str) {
        let tag = match mark {
            Mark::Pass => self.paint("1;32", "PASS"),
            Mark::Fail => self.paint("1;31", "FAIL"),
            Mark::Skip => self.paint("1;35", "SKIP"),
        };
        let detail = self.shorten(detail);
        if detail.is_empty() {
            println!("  {tag}  {what}");
        } else {
            println!("  {tag}  {what} ({detail})");
        }
        self.outcomes.push(Outcome {
            chapter: self.chapter.clone(),
            what: what.to_owned(),
            mark,
            detail,
        });
    }

    pub fn failures(&self) -> usize {
        self.outcomes
            .iter()
            .filter(|o| o.mark == Mark::Fail)
            .count()
    }

    /// The closing table: one row per check, then the totals.
    pub fn summary(&self, elapsed: std::time::Duration) {
        println!();
        let bar = "=".repeat(WIDTH);
        println!("{}", self.paint("1;36", &bar));
        println!("{}", self.paint("1;36", "  Summary"));
        println!("{}", self.paint("1;36", &bar));
        let chapter_w = self
            .outcomes
            .iter()
            .map(|o| o.chapter.len())
            .max()
            .unwrap_or(0)
            .min(26);
        for o in &self.outcomes {
            let tag = match o.mark {
                Mark::Pass => self.paint("32", "PASS"),
                Mark::Fail => self.paint("31", "FAIL"),
                Mark::Skip => self.paint("35", "SKIP"),
            };
            let chapter: String = o.chapter.chars().take(chapter_w).collect();
            println!("  {tag}  {chapter:<chapter_w$}  {}", o.what);
            if o.mark != Mark::Pass && !o.detail.is_empty() {
                for l in wrap(&o.detail, WIDTH - chapter_w - 10) {
                    println!("        {:chapter_w$}    {}", "", self.paint("2", &l));
                }
            }
        }
        let count = |m: Mark| self.outcomes.iter().filter(|o| o.mark == m).count();
        println!(
            "\n  {} passed, {} failed, {} skipped in {:.1}s",
            count(Mark::Pass),
            count(Mark::Fail),
            count(Mark::Skip),
            elapsed.as_secs_f64()
        );
    }
}

impl Default for Narrator {
    fn default() -> Self {
        Self::new()
    }
}

/// The command line as a shell user would type it (arguments with spaces or quotes quoted).
pub fn describe(cmd: &Command) -> String {
    let mut parts = vec![quote(&cmd.get_program().to_string_lossy())];
    parts.extend(cmd.get_args().map(|a| quote(&a.to_string_lossy())));
    parts.join(" ")
}

fn quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,[]{}".contains(c));
    if plain {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// Greedy word wrap; words longer than `width` stay whole.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    for para in text.lines() {
        let mut line = String::new();
        for word in para.split_whitespace() {
            if !line.is_empty() && line.len() + 1 + word.len() > width {
                lines.push(std::mem::take(&mut line));
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_commands_quote_arguments_a_shell_would_split() {
        let mut c = Command::new("curl");
        c.args(["-d", "{\"title\": \"it's\"}", "https://x/y"]);
        assert_eq!(
            describe(&c),
            r#"curl -d '{"title": "it'\''s"}' https://x/y"#
        );
    }

    #[test]
    fn wrap_breaks_at_width_and_keeps_long_words() {
        assert_eq!(wrap("aa bb cc", 5), ["aa bb", "cc"]);
        assert_eq!(wrap("abcdefgh", 3), ["abcdefgh"]);
    }
}
