//! Parses tokens into an [`Expr`] tree by precedence climbing, with YAQL's operator table
//! (`yaql/language/factory.py`), loosest first: `or`; `and`; prefix `not`; comparisons and `in`;
//! `+ -`; `* / mod %`; prefix `- +`; then postfix `.name`, `.method(…)`, `[index]`.
//!
//! Function and method names are resolved here, so unknown ones are parse errors.

use super::ast::{BinOp, Call, Expr, Func, MAX_DEPTH, Node, Pair, UnaryOp, too_deep};
use super::functions::{self, Builtin};
use super::lexer::{Tok, Token, tokenize};
use super::{WORKFLOW_FUNCTIONS, YaqlError};
use serde_json::{Number, Value};

const NOT_BP: u8 = 3;
const UNARY_BP: u8 = 7;

/// A binary operator token: the operator and its binding power (higher binds tighter).
fn binary(tok: &Tok) -> Option<(BinOp, u8)> {
    Some(match tok {
        Tok::Or => (BinOp::Or, 1),
        Tok::And => (BinOp::And, 2),
        Tok::Eq => (BinOp::Eq, 4),
        Tok::Ne => (BinOp::Ne, 4),
        Tok::Lt => (BinOp::Lt, 4),
        Tok::Le => (BinOp::Le, 4),
        Tok::Gt => (BinOp::Gt, 4),
        Tok::Ge => (BinOp::Ge, 4),
        Tok::In => (BinOp::In, 4),
        Tok::Plus => (BinOp::Add, 5),
        Tok::Minus => (BinOp::Sub, 5),
        Tok::Star => (BinOp::Mul, 6),
        Tok::Slash => (BinOp::Div, 6),
        Tok::Mod | Tok::Percent => (BinOp::Mod, 6),
        _ => return None,
    })
}

/// Parses a whole expression.
pub(super) fn parse(source: &str) -> Result<Expr, YaqlError> {
    let tokens = tokenize(source)?;
    if tokens.len() == 1 {
        return Err(YaqlError::parse("empty expression", 0));
    }
    let mut parser = Parser {
        source: source.chars().collect(),
        tokens,
        pos: 0,
        nesting: 0,
    };
    let expr = parser.expr(0)?;
    match parser.peek().tok {
        Tok::End => Ok(expr),
        _ => Err(parser.unexpected()),
    }
}

struct Parser {
    source: Vec<char>,
    tokens: Vec<Token>,
    pos: usize,
    nesting: usize,
}

impl Parser {
    fn peek(&self) -> &Token {
        // `tokenize` always ends with `End`, and `advance` never passes it.
        &self.tokens[self.pos.min(self.tokens.len() - 1)]
    }

    fn advance(&mut self) -> Token {
        let token = self.peek().clone();
        if token.tok != Tok::End {
            self.pos += 1;
        }
        token
    }

    /// The current token as an error message names it.
    fn found(&self) -> String {
        let token = self.peek();
        if token.tok == Tok::End {
            return "end of expression".to_string();
        }
        let text: String = self.source[token.start..token.end].iter().collect();
        format!("\"{text}\"")
    }

    /// The error for the current token.
    #[inline(never)]
    fn unexpected(&self) -> YaqlError {
        YaqlError::parse(format!("unexpected {}", self.found()), self.peek().start)
    }

    #[inline(never)]
    fn expect(&mut self, tok: Tok, what: &str) -> Result<(), YaqlError> {
        if self.peek().tok == tok {
            self.advance();
            return Ok(());
        }
        let message = format!("expected \"{what}\" but found {}", self.found());
        Err(YaqlError::parse(message, self.peek().start))
    }

    // The methods that recurse (`expr` down to `arguments` and back) keep their frames small:
    // whatever happens after the recursive call is done by a separate, non-recursive method.

    fn expr(&mut self, min_bp: u8) -> Result<Expr, YaqlError> {
        self.nesting += 1;
        if self.nesting > MAX_DEPTH {
            return Err(too_deep(self.peek().start));
        }
        let mut lhs = self.prefix()?;
        loop {
            lhs = match self.peek().tok {
                Tok::Dot => self.member(lhs)?,
                Tok::LBracket => self.index(lhs)?,
                ref tok => match binary(tok) {
                    Some((op, bp)) if bp > min_bp => self.binary(op, bp, lhs)?,
                    _ => break,
                },
            };
        }
        self.nesting -= 1;
        Ok(lhs)
    }

    fn binary(&mut self, op: BinOp, bp: u8, lhs: Expr) -> Result<Expr, YaqlError> {
        let at = self.advance().start;
        let rhs = self.expr(bp)?;
        Expr::new(Node::Binary(op, Box::new(lhs), Box::new(rhs)), at)
    }

    fn prefix(&mut self) -> Result<Expr, YaqlError> {
        match self.peek().tok {
            Tok::Name { call: true, .. } => self.function(None),
            Tok::Minus => self.unary(UnaryOp::Neg, UNARY_BP),
            Tok::Plus => self.unary(UnaryOp::Plus, UNARY_BP),
            Tok::Not => self.unary(UnaryOp::Not, NOT_BP),
            Tok::LParen => self.parenthesized(),
            Tok::LBracket => self.list_literal(),
            Tok::LBrace => self.dict_literal(),
            _ => self.atom(),
        }
    }

    fn parenthesized(&mut self) -> Result<Expr, YaqlError> {
        self.advance();
        let inner = self.expr(0)?;
        self.expect(Tok::RParen, ")")?;
        Ok(inner)
    }

    fn list_literal(&mut self) -> Result<Expr, YaqlError> {
        let at = self.advance().start;
        let items = self.list(Tok::RBracket, "]")?;
        Expr::new(Node::List(items), at)
    }

    fn dict_literal(&mut self) -> Result<Expr, YaqlError> {
        let at = self.advance().start;
        let (args, pairs) = self.arguments(Tok::RBrace, "}")?;
        self.dict_node(args, pairs, at)
    }

    /// `{…}`: only `key => value` pairs.
    #[inline(never)]
    fn dict_node(&self, args: Vec<Expr>, pairs: Vec<Pair>, at: usize) -> Result<Expr, YaqlError> {
        match args.first() {
            Some(arg) => Err(YaqlError::parse(
                "expected \"key => value\" in {...}",
                arg.offset,
            )),
            None => Expr::new(Node::Dict(pairs), at),
        }
    }

    /// A literal, a bare name (a string) or `$`.
    fn atom(&mut self) -> Result<Expr, YaqlError> {
        let node = match &self.peek().tok {
            Tok::Int(i) => Node::Literal(Value::from(*i)),
            Tok::Float(f) => Node::Literal(Number::from_f64(*f).map_or(Value::Null, Value::Number)),
            Tok::Str(s)
            | Tok::Name {
                name: s,
                call: false,
            } => Node::Literal(Value::from(s.as_str())),
            Tok::True => Node::Literal(Value::Bool(true)),
            Tok::False => Node::Literal(Value::Bool(false)),
            Tok::Null => Node::Literal(Value::Null),
            Tok::Dollar => Node::Root,
            _ => return Err(self.unexpected()),
        };
        let at = self.advance().start;
        Expr::new(node, at)
    }

    fn unary(&mut self, op: UnaryOp, bp: u8) -> Result<Expr, YaqlError> {
        let at = self.advance().start;
        let operand = self.expr(bp)?;
        Expr::new(Node::Unary(op, Box::new(operand)), at)
    }

    /// Comma-separated expressions up to `close`.
    fn list(&mut self, close: Tok, what: &str) -> Result<Vec<Expr>, YaqlError> {
        let (items, pairs) = self.arguments(close, what)?;
        match pairs.first() {
            Some((key, _)) => Err(YaqlError::parse("unexpected \"=>\" in a list", key.offset)),
            None => Ok(items),
        }
    }

    /// Comma-separated `expr` or `expr => expr` up to `close`.
    fn arguments(&mut self, close: Tok, what: &str) -> Result<(Vec<Expr>, Vec<Pair>), YaqlError> {
        let mut args = Vec::new();
        let mut pairs = Vec::new();
        if self.peek().tok == close {
            self.advance();
            return Ok((args, pairs));
        }
        loop {
            let item = self.expr(0)?;
            if self.peek().tok == Tok::Arrow {
                self.advance();
                pairs.push((item, self.expr(0)?));
            } else if pairs.is_empty() {
                args.push(item);
            } else {
                return Err(positional_after_pair(&item));
            }
            if self.peek().tok != Tok::Comma {
                self.expect(close, what)?;
                return Ok((args, pairs));
            }
            self.advance();
        }
    }

    /// `.name` or `.method(args)` after `receiver`.
    fn member(&mut self, receiver: Expr) -> Result<Expr, YaqlError> {
        self.advance();
        match self.peek().tok {
            Tok::Name { call: true, .. } => self.function(Some(receiver)),
            _ => self.attribute(receiver),
        }
    }

    /// `name` after `receiver.`
    fn attribute(&mut self, receiver: Expr) -> Result<Expr, YaqlError> {
        let Tok::Name { name, call: false } = &self.peek().tok else {
            let message = format!("expected a name after \".\" but found {}", self.found());
            return Err(YaqlError::parse(message, self.peek().start));
        };
        let name = name.clone();
        let at = self.advance().start;
        Expr::new(Node::Attr(Box::new(receiver), name), at)
    }

    /// `[key]` or `[key, default]` after `base`.
    fn index(&mut self, base: Expr) -> Result<Expr, YaqlError> {
        let at = self.advance().start;
        let items = self.list(Tok::RBracket, "]")?;
        self.index_node(base, items, at)
    }

    #[inline(never)]
    fn index_node(&self, base: Expr, items: Vec<Expr>, at: usize) -> Result<Expr, YaqlError> {
        let mut items = items.into_iter();
        let (Some(key), default, None) = (items.next(), items.next(), items.next()) else {
            return Err(YaqlError::parse(
                "an index takes one key (and optionally a default)",
                at,
            ));
        };
        Expr::new(
            Node::Index(Box::new(base), Box::new(key), default.map(Box::new)),
            at,
        )
    }

    /// `name(args)` (the current token is the name); `receiver` for a method call.
    fn function(&mut self, receiver: Option<Expr>) -> Result<Expr, YaqlError> {
        let token = self.advance();
        let func = lookup(&token, receiver.is_some())?;
        self.expect(Tok::LParen, "(")?;
        let (args, pairs) = self.arguments(Tok::RParen, ")")?;
        call(func, token, receiver, args, pairs)
    }
}

/// The function a name token calls, or the error for an unknown one.
#[inline(never)]
fn lookup(token: &Token, method: bool) -> Result<Func, YaqlError> {
    let Tok::Name { name, .. } = &token.tok else {
        return Err(YaqlError::parse("expected a function name", token.start));
    };
    if let Some(workflow) = WORKFLOW_FUNCTIONS.iter().find(|f| *f == name) {
        if method {
            let message = format!("workflow function \"{name}\" cannot be called as a method");
            return Err(YaqlError::parse(message, token.start));
        }
        return Ok(Func::Workflow(workflow));
    }
    let kind = if method { "method" } else { "function" };
    functions::lookup(name)
        .map(Func::Builtin)
        .ok_or_else(|| YaqlError::parse(format!("unknown {kind} \"{name}\""), token.start))
}

/// A call node, once its arguments are checked.
#[inline(never)]
fn call(
    func: Func,
    token: Token,
    receiver: Option<Expr>,
    written: Vec<Expr>,
    mut pairs: Vec<Pair>,
) -> Result<Expr, YaqlError> {
    let (Tok::Name { name, .. }, at) = (token.tok, token.start) else {
        return Err(YaqlError::parse("expected a function name", token.start));
    };
    let method = receiver.is_some();
    let mut args: Vec<Expr> = receiver.into_iter().chain(written).collect();
    match func {
        // st2kv(key, decrypt => true): Orquesta's one named parameter, passed positionally.
        Func::Workflow("st2kv")
            if args.len() == 1
                && matches!(pairs.as_slice(), [(key, _)]
                    if key.node == Node::Literal(Value::from("decrypt"))) =>
        {
            args.extend(pairs.pop().map(|(_, value)| value));
        }
        Func::Builtin(builtin) if pairs.is_empty() || builtin == Builtin::Dict => {
            functions::check_arity(&name, builtin, args.len(), !pairs.is_empty(), method)
                .map_err(|message| YaqlError::parse(message, at))?;
        }
        _ => {}
    }
    // Only dict(k => v) and st2kv(key, decrypt => true) take `name => value` arguments.
    if let Some((key, _)) = pairs.first()
        && func != Func::Builtin(Builtin::Dict)
    {
        let message = format!("\"{name}\" takes no \"name => value\" arguments");
        return Err(YaqlError::parse(message, key.offset));
    }
    Expr::new(Node::Call(Call { func, args, pairs }), at)
}

#[inline(never)]
fn positional_after_pair(item: &Expr) -> YaqlError {
    YaqlError::parse(
        "positional argument after a \"name => value\" argument",
        item.offset,
    )
}
