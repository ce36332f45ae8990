//! Splits a YAQL expression into tokens, each with its 0-based character offsets.
//!
//! Follows YAQL's lexer (`yaql/language/lexer.py`): a name immediately followed by `(` is a
//! function name; `'…'` and `"…"` strings take Python's backslash escapes (unknown escapes such
//! as `\d` keep their backslash); `` `…` `` strings are verbatim; numbers are `123` or `1.5`.

use super::YaqlError;

/// One token kind (with its value, for literals and names).
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    /// An integer literal (never negative: `-` is an operator).
    Int(u64),
    /// A float literal.
    Float(f64),
    /// A quoted string, escapes decoded.
    Str(String),
    /// A name; `call` when `(` follows immediately (`foo(`), as YAQL's `FUNC` token.
    Name {
        name: String,
        call: bool,
    },
    /// `$`.
    Dollar,
    True,
    False,
    Null,
    And,
    Or,
    Not,
    In,
    Mod,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    /// `=>`.
    Arrow,
    Dot,
    Comma,
    LParen,
    RParen,
    LBracket,
    RBracket,
    LBrace,
    RBrace,
    /// The end of the expression.
    End,
}

/// A token and where it is: `start..end` in characters.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Token {
    pub tok: Tok,
    pub start: usize,
    pub end: usize,
}

/// Tokenizes `source`; the last token is always [`Tok::End`].
pub(super) fn tokenize(source: &str) -> Result<Vec<Token>, YaqlError> {
    let chars: Vec<char> = source.chars().collect();
    let mut lexer = Lexer {
        chars: &chars,
        pos: 0,
    };
    let mut tokens = Vec::new();
    loop {
        lexer.skip_whitespace();
        let start = lexer.pos;
        let Some(c) = lexer.peek(0) else {
            tokens.push(Token {
                tok: Tok::End,
                start,
                end: start,
            });
            return Ok(tokens);
        };
        let tok = if c.is_ascii_digit() {
            lexer.number()?
        } else if is_name_start(c) {
            lexer.name()
        } else if c == '\'' || c == '"' {
            lexer.quoted(c)?
        } else if c == '`' {
            lexer.verbatim()?
        } else {
            lexer.symbol()?
        };
        tokens.push(Token {
            tok,
            start,
            end: lexer.pos,
        });
    }
}

fn is_name_start(c: char) -> bool {
    c == '_' || c.is_alphabetic()
}

fn is_name_char(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

struct Lexer<'a> {
    chars: &'a [char],
    pos: usize,
}

impl Lexer<'_> {
    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.pos + ahead).copied()
    }

    fn skip_whitespace(&mut self) {
        while self.peek(0).is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn take_while(&mut self, pred: impl Fn(char) -> bool) -> String {
        let start = self.pos;
        while self.peek(0).is_some_and(&pred) {
            self.pos += 1;
        }
        self.chars[start..self.pos].iter().collect()
    }

    fn number(&mut self) -> Result<Tok, YaqlError> {
        let start = self.pos;
        let mut text = self.take_while(|c| c.is_ascii_digit());
        let is_float =
            self.peek(0) == Some('.') && self.peek(1).is_some_and(|c| c.is_ascii_digit());
        if is_float {
            self.pos += 1;
            text.push('.');
            text.push_str(&self.take_while(|c| c.is_ascii_digit()));
        }
        if self.peek(0).is_some_and(is_name_char) {
            text.push_str(&self.take_while(is_name_char));
            return Err(YaqlError::parse(
                format!("invalid number \"{text}\""),
                start,
            ));
        }
        if is_float {
            match text.parse::<f64>() {
                Ok(f) if f.is_finite() => Ok(Tok::Float(f)),
                _ => Err(YaqlError::parse(
                    format!("number {text} is out of range"),
                    start,
                )),
            }
        } else {
            text.parse::<u64>()
                .map(Tok::Int)
                .map_err(|_| YaqlError::parse(format!("integer {text} is out of range"), start))
        }
    }

    fn name(&mut self) -> Tok {
        let name = self.take_while(is_name_char);
        let call = self.peek(0) == Some('(');
        match name.as_str() {
            "true" => Tok::True,
            "false" => Tok::False,
            "null" => Tok::Null,
            "and" => Tok::And,
            "or" => Tok::Or,
            // `not(x)` is YAQL's function form; `not x` the operator.
            "not" if !call => Tok::Not,
            "in" => Tok::In,
            "mod" => Tok::Mod,
            _ => Tok::Name { name, call },
        }
    }

    fn quoted(&mut self, quote: char) -> Result<Tok, YaqlError> {
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.peek(0) else {
                return Err(YaqlError::parse("unterminated string", start));
            };
            self.pos += 1;
            if c == quote {
                return Ok(Tok::Str(out));
            }
            if c != '\\' {
                out.push(c);
                continue;
            }
            let escape_at = self.pos - 1;
            let Some(e) = self.peek(0) else {
                return Err(YaqlError::parse("unterminated string", start));
            };
            self.pos += 1;
            match e {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                'a' => out.push('\u{7}'),
                'b' => out.push('\u{8}'),
                'f' => out.push('\u{c}'),
                'v' => out.push('\u{b}'),
                '\\' | '\'' | '"' => out.push(e),
                'x' => out.push(self.hex_escape(2, escape_at)?),
                'u' => out.push(self.hex_escape(4, escape_at)?),
                'U' => out.push(self.hex_escape(8, escape_at)?),
                '0'..='7' => {
                    let mut value = e.to_digit(8).unwrap_or(0);
                    for _ in 0..2 {
                        match self.peek(0).and_then(|d| d.to_digit(8)) {
                            Some(d) => {
                                value = value * 8 + d;
                                self.pos += 1;
                            }
                            None => break,
                        }
                    }
                    // At most 0o777, always a valid scalar value.
                    out.push(char::from_u32(value).unwrap_or('\u{fffd}'));
                }
                // Python keeps unknown escapes as written (`'\d'` is backslash, d).
                other => {
                    out.push('\\');
                    out.push(other);
                }
            }
        }
    }

    fn hex_escape(&mut self, digits: usize, escape_at: usize) -> Result<char, YaqlError> {
        let text: String = self.chars[self.pos..].iter().take(digits).collect();
        let value = (text.chars().count() == digits && text.chars().all(|c| c.is_ascii_hexdigit()))
            .then(|| u32::from_str_radix(&text, 16).ok())
            .flatten()
            .and_then(char::from_u32);
        match value {
            Some(c) => {
                self.pos += digits;
                Ok(c)
            }
            None => {
                let end = (self.pos + digits).min(self.chars.len());
                let written: String = self.chars[escape_at..end].iter().collect();
                Err(YaqlError::parse(
                    format!("invalid escape \"{written}\""),
                    escape_at,
                ))
            }
        }
    }

    fn verbatim(&mut self) -> Result<Tok, YaqlError> {
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.peek(0) {
                None => return Err(YaqlError::parse("unterminated string", start)),
                Some('`') => {
                    self.pos += 1;
                    return Ok(Tok::Str(out));
                }
                Some('\\') if self.peek(1) == Some('`') => {
                    self.pos += 2;
                    out.push('`');
                }
                Some(c) => {
                    self.pos += 1;
                    out.push(c);
                }
            }
        }
    }

    fn symbol(&mut self) -> Result<Tok, YaqlError> {
        let start = self.pos;
        let c = self.peek(0).unwrap_or(' ');
        let next = self.peek(1);
        let (tok, len) = match (c, next) {
            ('=', Some('>')) => (Tok::Arrow, 2),
            ('=', Some('=')) => {
                return Err(YaqlError::parse(
                    "unsupported operator \"==\" (YAQL compares with \"=\")",
                    start,
                ));
            }
            ('=', Some('~')) | ('!', Some('~')) | ('-', Some('>')) | ('?', Some('.')) => {
                let op: String = [c, next.unwrap_or(' ')].iter().collect();
                return Err(YaqlError::parse(
                    format!("unsupported operator \"{op}\""),
                    start,
                ));
            }
            ('!', Some('=')) => (Tok::Ne, 2),
            ('<', Some('=')) => (Tok::Le, 2),
            ('>', Some('=')) => (Tok::Ge, 2),
            ('=', _) => (Tok::Eq, 1),
            ('<', _) => (Tok::Lt, 1),
            ('>', _) => (Tok::Gt, 1),
            ('+', _) => (Tok::Plus, 1),
            ('-', _) => (Tok::Minus, 1),
            ('*', _) => (Tok::Star, 1),
            ('/', _) => (Tok::Slash, 1),
            ('%', _) => (Tok::Percent, 1),
            ('.', _) => (Tok::Dot, 1),
            (',', _) => (Tok::Comma, 1),
            ('(', _) => (Tok::LParen, 1),
            (')', _) => (Tok::RParen, 1),
            ('[', _) => (Tok::LBracket, 1),
            (']', _) => (Tok::RBracket, 1),
            ('{', _) => (Tok::LBrace, 1),
            ('}', _) => (Tok::RBrace, 1),
            ('$', Some(n)) if is_name_char(n) => {
                let name: String = self.chars[start + 1..]
                    .iter()
                    .take_while(|c| is_name_char(**c))
                    .collect();
                return Err(YaqlError::parse(
                    format!("unsupported variable \"${name}\" (only \"$\" is supported)"),
                    start,
                ));
            }
            ('$', _) => (Tok::Dollar, 1),
            ('?' | '!' | '~', _) => {
                return Err(YaqlError::parse(
                    format!("unsupported operator \"{c}\""),
                    start,
                ));
            }
            _ => {
                return Err(YaqlError::parse(
                    format!("unexpected character \"{c}\""),
                    start,
                ));
            }
        };
        self.pos += len;
        Ok(tok)
    }
}
