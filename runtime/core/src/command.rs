//! Commands: what the `process` capability may run, and how a command line becomes an argv.
//!
//! Default deny. The operator grants a pack the programs it may run in `squall.toml`:
//!
//! ```toml
//! [packs.ops]
//! commands = ["uname", "systemctl restart *", "/opt/tools/report **"]
//! ```
//!
//! A pattern ([`CommandPattern`]) is a list of words, written as a shell would split them
//! (quotes group words). Its first word names the program: a bare name (`uname`) matches a
//! command whose program is written as that bare name and is found on Squall's fixed search
//! path ([`SEARCH_PATH`]); a path (`/opt/tools/report`) matches that path exactly. A pattern of
//! one word allows the program with any arguments. A longer pattern matches argument by
//! argument: `*` in a word stands for any characters within one argument, `?` for one; a last
//! word `**` stands for any number of further arguments (none included). `systemctl restart *`
//! allows `systemctl restart nginx`, not `systemctl restart nginx x` nor `systemctl stop nginx`.
//!
//! Command lines (StackStorm's `cmd`) are never given to a shell unless the pack is granted
//! `shell = true`: they are split into words as a POSIX shell would ([`split_command`], quotes
//! and backslashes honoured) and the program is executed directly, so a granted pattern means
//! exactly what it says. A line that uses shell syntax — `;`, `&`, `|`, redirections, `$`,
//! backquotes, parentheses, braces, unquoted globs, `~`, `#`, a newline — would mean something
//! else to a shell, and is refused naming the syntax and the grant (`shell = true`) that would
//! allow it. With `shell = true`, the line runs under `/bin/bash -c` as StackStorm runs it, and
//! the patterns do not apply (the shell can run anything): grant it only to trusted packs.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// The search path for bare program names, and the `PATH` a command gets unless the pack is
/// granted `PATH` from the server's environment.
pub const SEARCH_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// One allowed command pattern; see the module docs for the syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandPattern {
    words: Vec<String>,
    text: String,
}

/// Why a command pattern does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid command pattern {pattern:?}: {reason}")]
pub struct CommandPatternError {
    /// The pattern as written.
    pub pattern: String,
    /// What is wrong with it.
    pub reason: String,
}

impl FromStr for CommandPattern {
    type Err = CommandPatternError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = |reason: &str| CommandPatternError {
            pattern: text.to_string(),
            reason: reason.to_string(),
        };
        let words = shlex::split(text).ok_or_else(|| err("unbalanced quotes"))?;
        let Some(program) = words.first() else {
            return Err(err("empty"));
        };
        if program.is_empty() || program.contains(['*', '?']) {
            return Err(err(
                "the program must be a name or a path, without wildcards",
            ));
        }
        if program.contains('/') && !program.starts_with('/') {
            return Err(err("a program path must be absolute"));
        }
        if let Some(i) = words.iter().position(|w| w == "**")
            && i + 1 != words.len()
        {
            return Err(err("\"**\" may only be the last word"));
        }
        Ok(CommandPattern {
            words,
            text: text.trim().to_string(),
        })
    }
}

impl CommandPattern {
    /// Whether `argv` (program first, as split by [`split_command`]) matches this pattern.
    pub fn matches(&self, argv: &[String]) -> bool {
        let Some((program, args)) = argv.split_first() else {
            return false;
        };
        if *program != self.words[0] {
            return false;
        }
        let patterns = &self.words[1..];
        if patterns.is_empty() {
            return true;
        }
        let (patterns, rest_any) = match patterns.split_last() {
            Some((last, init)) if last == "**" => (init, true),
            _ => (patterns, false),
        };
        if args.len() < patterns.len() || (!rest_any && args.len() != patterns.len()) {
            return false;
        }
        patterns.iter().zip(args).all(|(p, a)| wildcard(p, a))
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for CommandPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for CommandPattern {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for CommandPattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Whether environment variable `name` changes what code a program, its dynamic loader, its
/// shell or its interpreter runs, or is Squall's own (`SQUALL_*`): `LD_*`, `DYLD_*`,
/// `BASH_ENV`, `ENV`, `BASH_FUNC_*`, `SHELLOPTS`, `BASHOPTS`, `PS4`, `PROMPT_COMMAND`, `IFS`,
/// `PATH`, `GCONV_PATH`, `LOCPATH`, `NLSPATH`, `HOSTALIASES`, `RES_OPTIONS`, `PYTHON*`,
/// `PERL5*`, `PERLLIB`, `RUBY*`, `NODE_OPTIONS`, `NODE_PATH`, `JAVA_TOOL_OPTIONS`,
/// `_JAVA_OPTIONS`, `GIT_*`. Such a name is granted only by writing it out in `env`, never by
/// a wildcard ([`env_granted`]).
pub fn protected_env(name: &str) -> bool {
    const EXACT: &[&str] = &[
        "BASH_ENV",
        "ENV",
        "SHELLOPTS",
        "BASHOPTS",
        "PS4",
        "PROMPT_COMMAND",
        "IFS",
        "PATH",
        "GCONV_PATH",
        "LOCPATH",
        "NLSPATH",
        "HOSTALIASES",
        "RES_OPTIONS",
        "PERLLIB",
        "NODE_OPTIONS",
        "NODE_PATH",
        "JAVA_TOOL_OPTIONS",
        "_JAVA_OPTIONS",
    ];
    const PREFIXES: &[&str] = &[
        "LD_",
        "DYLD_",
        "BASH_FUNC_",
        "PYTHON",
        "PERL5",
        "RUBY",
        "GIT_",
        "SQUALL_",
    ];
    EXACT.contains(&name) || PREFIXES.iter().any(|p| name.starts_with(p))
}

/// Whether `patterns` (a pack's `env` grant) grant environment variable `name`: a pattern
/// equal to the name always does; a wildcard pattern does unless the name is
/// [`protected_env`].
pub fn env_granted(patterns: &[String], name: &str) -> bool {
    patterns
        .iter()
        .any(|p| p == name || (!protected_env(name) && wildcard(p, name)))
}

/// Whether `text` matches the glob `pattern`: `*` any run of characters, `?` one character,
/// everything else itself.
pub fn wildcard(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // Iterative matching with one backtrack point: linear in practice, never exponential.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Why a command line cannot run as it is written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandLineError {
    /// The line is empty or blank.
    #[error("the command line is empty")]
    Empty,
    /// A quote is not closed.
    #[error("the command line has an unclosed quote")]
    Unbalanced,
    /// The line uses shell syntax, which only a shell would interpret.
    #[error(
        "the command line uses shell syntax ({0}), which runs only where the pack is granted a shell"
    )]
    ShellSyntax(String),
}

/// Splits a command line into words as a POSIX shell would (quotes, backslashes), refusing
/// shell syntax that a shell would interpret differently from running the words directly.
///
/// # Errors
/// [`CommandLineError`]: empty, an unclosed quote, or shell syntax (the message names it, e.g.
/// `";"`, `"$("`, `"unquoted glob *"`).
pub fn split_command(line: &str) -> Result<Vec<String>, CommandLineError> {
    if let Some(syntax) = shell_syntax(line) {
        return Err(CommandLineError::ShellSyntax(syntax));
    }
    let words = shlex::split(line).ok_or(CommandLineError::Unbalanced)?;
    if words.is_empty() {
        return Err(CommandLineError::Empty);
    }
    Ok(words)
}

/// The first piece of shell syntax in `line` a shell would interpret (outside single quotes;
/// inside double quotes only `$` and backquotes expand), quoted for a message; `None` when the
/// line means the same split into words as run by a shell.
fn shell_syntax(line: &str) -> Option<String> {
    #[derive(PartialEq)]
    enum Q {
        None,
        Single,
        Double,
    }
    let mut q = Q::None;
    let mut chars = line.chars().peekable();
    let mut word_start = true;
    while let Some(c) = chars.next() {
        match q {
            Q::Single => {
                if c == '\'' {
                    q = Q::None;
                }
                word_start = false;
                continue;
            }
            Q::Double => {
                match c {
                    '"' => q = Q::None,
                    '\\' => {
                        chars.next();
                    }
                    '$' | '`' => return Some(quoted(c, chars.peek())),
                    _ => {}
                }
                continue;
            }
            Q::None => {}
        }
        match c {
            '\'' => q = Q::Single,
            '"' => q = Q::Double,
            // An escaped character is literal; an escaped newline is a line continuation.
            '\\' if chars.next() == Some('\n') => return Some("a newline".into()),
            ' ' | '\t' => {
                word_start = true;
                continue;
            }
            '\n' | '\r' => return Some("a newline".into()),
            ';' | '&' | '|' | '<' | '>' | '(' | ')' | '$' | '`' | '{' | '}' => {
                return Some(quoted(c, chars.peek()));
            }
            '*' | '?' | '[' => return Some(format!("unquoted glob {c}")),
            '~' | '#' if word_start => return Some(format!("\"{c}\" at the start of a word")),
            _ => {}
        }
        word_start = false;
    }
    None
}

fn quoted(c: char, next: Option<&char>) -> String {
    match (c, next) {
        ('$', Some('(')) => "\"$(\"".into(),
        ('$', Some('{')) => "\"${\"".into(),
        ('&', Some('&')) => "\"&&\"".into(),
        ('|', Some('|')) => "\"||\"".into(),
        _ => format!("\"{c}\""),
    }
}

/// Quotes `word` for a POSIX shell when it needs it (as Python's `shlex.quote`, which
/// StackStorm uses to build command lines); an empty word becomes `''`.
pub fn shell_quote(word: &str) -> String {
    shlex::try_quote(word)
        .map(|q| q.into_owned())
        .unwrap_or_else(|_| format!("'{}'", word.replace('\0', "").replace('\'', "'\"'\"'")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(line: &str) -> Vec<String> {
        split_command(line).unwrap()
    }

    #[test]
    fn patterns_match_program_and_arguments() {
        for (pattern, line, want) in [
            ("uname", "uname", true),
            ("uname", "uname -a", true),
            ("uname", "/usr/bin/uname -a", false),
            ("uname", "unamex", false),
            ("/usr/bin/uname", "/usr/bin/uname -a", true),
            ("/usr/bin/uname", "uname", false),
            ("systemctl restart *", "systemctl restart nginx", true),
            ("systemctl restart *", "systemctl restart nginx x", false),
            ("systemctl restart *", "systemctl stop nginx", false),
            ("systemctl restart *", "systemctl restart", false),
            (
                "systemctl restart nginx*",
                "systemctl restart nginx@1",
                true,
            ),
            ("echo **", "echo", true),
            ("echo **", "echo a b c", true),
            ("echo a **", "echo b", false),
            ("ls ?", "ls a", true),
            ("ls ?", "ls ab", false),
            ("grep 'a b' *", "grep 'a b' f", true),
            ("grep 'a b' *", "grep a b", false),
        ] {
            let p: CommandPattern = pattern.parse().unwrap();
            assert_eq!(p.matches(&argv(line)), want, "{pattern} vs {line}");
        }
    }

    #[test]
    fn bad_patterns_are_refused() {
        for (pattern, want) in [
            ("", "empty"),
            ("  ", "empty"),
            ("'unclosed", "unbalanced"),
            ("u* -a", "without wildcards"),
            ("bin/x", "absolute"),
            ("echo ** x", "last word"),
        ] {
            let err = pattern.parse::<CommandPattern>().unwrap_err();
            assert!(err.to_string().contains(want), "{pattern}: {err}");
        }
    }

    #[test]
    fn shell_syntax_is_named() {
        for (line, want) in [
            ("uname; id", "\";\""),
            ("uname && id", "\"&&\""),
            ("uname || id", "\"||\""),
            ("uname | id", "\"|\""),
            ("uname > /etc/x", "\">\""),
            ("cat < /etc/shadow", "\"<\""),
            ("echo $(id)", "\"$(\""),
            ("echo \"$(id)\"", "\"$(\""),
            ("echo `id`", "\"`\""),
            ("echo ${HOME}", "\"${\""),
            ("echo $HOME", "\"$\""),
            ("uname\nid", "a newline"),
            ("uname \\\nid", "a newline"),
            ("ls *.log", "unquoted glob *"),
            ("ls ~", "\"~\" at the start"),
            ("echo a #b", "\"#\" at the start"),
            ("(id)", "\"(\""),
            ("echo {a,b}", "\"{\""),
            ("'unclosed", "unclosed quote"),
            ("   ", "empty"),
        ] {
            let err = split_command(line).unwrap_err().to_string();
            assert!(err.contains(want), "{line:?}: {err}");
        }
    }

    #[test]
    fn plain_lines_split_like_a_shell() {
        for (line, want) in [
            ("uname -a", vec!["uname", "-a"]),
            ("echo 'a; b' \"c d\"", vec!["echo", "a; b", "c d"]),
            ("echo 'it''s'", vec!["echo", "its"]),
            ("echo a\\ b", vec!["echo", "a b"]),
            ("echo '$(id)' '*.log'", vec!["echo", "$(id)", "*.log"]),
            ("echo a~b a#b", vec!["echo", "a~b", "a#b"]),
            ("  uname  ", vec!["uname"]),
        ] {
            assert_eq!(argv(line), want, "{line:?}");
        }
    }

    #[test]
    fn wildcards_never_backtrack_exponentially() {
        let text = "a".repeat(10_000);
        assert!(!wildcard(
            &"*a"
                .repeat(50)
                .chars()
                .chain("b".chars())
                .collect::<String>(),
            &text
        ));
        assert!(wildcard("*", ""));
        assert!(wildcard("a*c", "abbbc"));
        assert!(!wildcard("a*c", "abbb"));
    }

    #[test]
    fn wildcards_never_grant_loader_shell_or_squall_variables() {
        let all = vec!["*".to_string()];
        for name in [
            "LD_PRELOAD",
            "BASH_ENV",
            "PATH",
            "PYTHONSTARTUP",
            "SQUALL_API_KEY",
            "IFS",
        ] {
            assert!(!env_granted(&all, name), "{name}");
            assert!(
                env_granted(&[name.to_string()], name),
                "{name} named exactly"
            );
        }
        let ld = vec!["LD_*".to_string()];
        assert!(!env_granted(&ld, "LD_LIBRARY_PATH"));
        assert!(env_granted(&all, "HTTP_PROXY"));
        assert!(env_granted(&["APP_*".to_string()], "APP_MODE"));
        assert!(!env_granted(&["APP_*".to_string()], "OTHER"));
    }

    #[test]
    fn quoting_round_trips() {
        for word in ["plain", "a b", "it's", "", "$(id)", "a\"b"] {
            let line = format!("echo {}", shell_quote(word));
            assert_eq!(shlex::split(&line).unwrap(), vec!["echo", word], "{word:?}");
        }
    }
}
