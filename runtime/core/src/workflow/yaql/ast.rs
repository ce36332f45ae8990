//! The expression tree the parser builds and the evaluator walks.

use super::YaqlError;
use super::functions::Builtin;
use serde_json::Value;

/// How deeply expressions may nest (brackets, operators, calls): deeper is a parse error, so
/// evaluating a parsed expression cannot exhaust the stack.
pub(super) const MAX_DEPTH: usize = 128;

/// A node of the expression tree, with the offset of the token it came from.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Expr {
    pub node: Node,
    pub offset: usize,
    depth: usize,
}

/// `key => value`.
pub(super) type Pair = (Expr, Expr);

/// The expression forms.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Node {
    /// A number, string (quoted or a bare name), `true`, `false` or `null`.
    Literal(Value),
    /// `$`: the root at top level, the current element inside a lambda argument.
    Root,
    /// `[a, b]`.
    List(Vec<Expr>),
    /// `{k => v}`.
    Dict(Vec<Pair>),
    /// `x.name`.
    Attr(Box<Expr>, String),
    /// `x[key]` or `x[key, default]`.
    Index(Box<Expr>, Box<Expr>, Option<Box<Expr>>),
    /// `f(args)` or `receiver.f(args)` (the receiver is `args[0]`).
    Call(Call),
    /// `-x`, `+x`, `not x`.
    Unary(UnaryOp, Box<Expr>),
    /// `a op b`.
    Binary(BinOp, Box<Expr>, Box<Expr>),
}

/// A resolved function call.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Call {
    pub func: Func,
    /// Positional arguments; for a method call, the receiver first.
    pub args: Vec<Expr>,
    /// `name => value` arguments (only `dict(...)` takes them).
    pub pairs: Vec<Pair>,
}

/// What a call calls.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Func {
    Builtin(Builtin),
    /// One of [`super::WORKFLOW_FUNCTIONS`], passed to the host.
    Workflow(&'static str),
}

/// Prefix operators.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum UnaryOp {
    Neg,
    Plus,
    Not,
}

/// Binary operators.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum BinOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

impl BinOp {
    /// The operator as written (`%` is reported as `mod`).
    pub(super) fn symbol(self) -> &'static str {
        match self {
            BinOp::Or => "or",
            BinOp::And => "and",
            BinOp::Eq => "=",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::In => "in",
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Mod => "mod",
        }
    }
}

impl Expr {
    /// A node, refusing trees deeper than [`MAX_DEPTH`].
    #[inline(never)]
    pub(super) fn new(node: Node, offset: usize) -> Result<Expr, YaqlError> {
        let depth = children(&node).map(|c| c.depth).max().unwrap_or(0) + 1;
        if depth > MAX_DEPTH {
            return Err(too_deep(offset));
        }
        Ok(Expr {
            node,
            offset,
            depth,
        })
    }
}

/// The error for nesting deeper than [`MAX_DEPTH`].
#[inline(never)]
pub(super) fn too_deep(offset: usize) -> YaqlError {
    YaqlError::parse(
        format!("expression nested too deeply (more than {MAX_DEPTH} levels)"),
        offset,
    )
}

/// The direct children of a node, in source order.
pub(super) fn children(node: &Node) -> Box<dyn Iterator<Item = &Expr> + '_> {
    match node {
        Node::Literal(_) | Node::Root => Box::new(std::iter::empty()),
        Node::List(items) => Box::new(items.iter()),
        Node::Dict(pairs) => Box::new(pairs.iter().flat_map(|(k, v)| [k, v])),
        Node::Attr(base, _) | Node::Unary(_, base) => Box::new(std::iter::once(&**base)),
        Node::Index(base, key, default) => {
            Box::new([&**base, &**key].into_iter().chain(default.as_deref()))
        }
        Node::Call(call) => Box::new(
            call.args
                .iter()
                .chain(call.pairs.iter().flat_map(|(k, v)| [k, v])),
        ),
        Node::Binary(_, lhs, rhs) => Box::new([&**lhs, &**rhs].into_iter()),
    }
}
