//! Evaluates a parsed expression against a [`YaqlHost`].
//!
//! Values are borrowed where they can be (`$.a.b` does not copy the context), and every node
//! evaluated and element produced is charged to a step budget, so no expression can run away.

use super::ast::{BinOp, Call, Expr, Func, Node, Pair};
use super::builtins::{self, list_arg};
use super::functions::Builtin;
use super::ops::{self, canonical, describe, truthy};
use super::{YaqlError, YaqlHost};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::cell::{Cell, OnceCell};
use std::collections::HashSet;

/// Steps one evaluation may take: nodes evaluated, plus elements built (`range(n)` costs `n`),
/// plus the size ([`ops::weight`]) of every value a lambda returns or a workflow function returns
/// inside a lambda, so that repeating work per element is what the budget limits. The limit is
/// `[templates] yaql_steps` (see [`super::configure`]).
pub(super) struct Budget {
    used: Cell<u64>,
    limit: u64,
}

impl Budget {
    /// Charges `steps`, failing once the total passes the limit.
    pub(super) fn charge(&self, steps: usize) -> Result<(), YaqlError> {
        let steps = u64::try_from(steps).unwrap_or(u64::MAX);
        let used = self.used.get().saturating_add(steps);
        self.used.set(used);
        if used > self.limit {
            return Err(YaqlError::eval(format!(
                "expression is too expensive (more than {} evaluation steps, [templates] \
                 yaql_steps)",
                self.limit
            )));
        }
        Ok(())
    }
}

/// Evaluates `expr`; `$` at top level is `host.root()`, fetched on first use.
pub(super) fn evaluate(expr: &Expr, host: &dyn YaqlHost) -> Result<Value, YaqlError> {
    let evaluator = Evaluator {
        host,
        root: OnceCell::new(),
        budget: Budget {
            used: Cell::new(0),
            limit: super::limits().0,
        },
    };
    evaluator.eval(expr, Scope::Top).map(Cow::into_owned)
}

/// What `$` means where an expression is evaluated.
#[derive(Clone, Copy)]
enum Scope<'s> {
    /// Top level: the host's root.
    Top,
    /// Inside a lambda: the current element.
    Item(&'s Value),
}

struct Evaluator<'h> {
    host: &'h dyn YaqlHost,
    root: OnceCell<Value>,
    budget: Budget,
}

// The methods on the recursive path keep their frames small (one step per function, errors
// built elsewhere), so that the deepest expression the parser accepts fits a thread's stack.
impl Evaluator<'_> {
    fn eval<'s>(&'s self, expr: &Expr, scope: Scope<'s>) -> Result<Cow<'s, Value>, YaqlError> {
        self.budget.charge(1)?;
        match &expr.node {
            Node::Literal(v) => Ok(Cow::Owned(v.clone())),
            Node::Root => Ok(self.root(scope)),
            Node::List(items) => self
                .all(items, scope)
                .map(|items| Cow::Owned(Value::Array(items))),
            Node::Dict(pairs) => self.dict(pairs, scope).map(Cow::Owned),
            Node::Attr(base, name) => ops::attribute(self.eval(base, scope)?, name),
            Node::Index(base, key, default) => self.index(base, key, default.as_deref(), scope),
            Node::Unary(op, operand) => {
                ops::unary(*op, &*self.eval(operand, scope)?).map(Cow::Owned)
            }
            Node::Binary(op, lhs, rhs) => self.binary(*op, lhs, rhs, scope).map(Cow::Owned),
            Node::Call(call) => self.call(call, scope).map(Cow::Owned),
        }
    }

    fn root<'s>(&'s self, scope: Scope<'s>) -> Cow<'s, Value> {
        match scope {
            Scope::Top => Cow::Borrowed(self.root.get_or_init(|| self.host.root())),
            Scope::Item(item) => Cow::Borrowed(item),
        }
    }

    // Plain loops rather than iterator adaptors: fewer frames per level in debug builds.
    fn all<'s>(&'s self, exprs: &[Expr], scope: Scope<'s>) -> Result<Vec<Value>, YaqlError> {
        let mut values = Vec::with_capacity(exprs.len());
        for expr in exprs {
            values.push(self.eval(expr, scope)?.into_owned());
        }
        Ok(values)
    }

    fn owned<'s>(&'s self, expr: &Expr, scope: Scope<'s>) -> Result<Value, YaqlError> {
        self.eval(expr, scope).map(Cow::into_owned)
    }

    fn index<'s>(
        &'s self,
        base: &Expr,
        key: &Expr,
        default: Option<&Expr>,
        scope: Scope<'s>,
    ) -> Result<Cow<'s, Value>, YaqlError> {
        let base = self.eval(base, scope)?;
        let key = self.eval(key, scope)?;
        let default = default.map(|d| self.owned(d, scope)).transpose()?;
        ops::index(base, &key, default)
    }

    fn binary<'s>(
        &'s self,
        op: BinOp,
        lhs: &Expr,
        rhs: &Expr,
        scope: Scope<'s>,
    ) -> Result<Value, YaqlError> {
        let lhs = self.eval(lhs, scope)?;
        let value = match op {
            BinOp::And if !truthy(&lhs) => false,
            BinOp::Or if truthy(&lhs) => true,
            BinOp::And | BinOp::Or => truthy(&*self.eval(rhs, scope)?),
            _ => return ops::binary(op, &lhs, &*self.eval(rhs, scope)?),
        };
        Ok(Value::Bool(value))
    }

    #[inline(never)]
    fn dict<'s>(&'s self, pairs: &[Pair], scope: Scope<'s>) -> Result<Value, YaqlError> {
        let mut map = Map::new();
        for (key, value) in pairs {
            let key = dict_key(self.owned(key, scope)?)?;
            map.insert(key, self.owned(value, scope)?);
        }
        Ok(Value::Object(map))
    }

    fn call<'s>(&'s self, call: &Call, scope: Scope<'s>) -> Result<Value, YaqlError> {
        match call.func {
            Func::Workflow(name) => {
                let args = self.all(&call.args, scope)?;
                let value = self.host.call(name, &args).map_err(YaqlError::eval)?;
                if let Scope::Item(_) = scope {
                    self.budget.charge(ops::weight(&value))?;
                }
                Ok(value)
            }
            Func::Builtin(builtin) if builtin.takes_lambda() => {
                // The parser guarantees the collection argument.
                let [collection, lambda @ ..] = call.args.as_slice() else {
                    return Err(YaqlError::eval(format!(
                        "{}() needs a list",
                        builtin.name()
                    )));
                };
                let collection = self.eval(collection, scope)?;
                let items = list_arg(builtin.name(), &collection)?;
                self.with_lambda(builtin, items, lambda.first())
            }
            Func::Builtin(_) if !call.pairs.is_empty() => self.dict(&call.pairs, scope),
            Func::Builtin(builtin) => {
                let mut args = Vec::with_capacity(call.args.len());
                for arg in &call.args {
                    args.push(self.eval(arg, scope)?);
                }
                builtins::apply(builtin, &args, &self.budget)
            }
        }
    }

    /// The functions whose second argument is a lambda, evaluated per element of `items` with
    /// `$` bound to the element; without a lambda, the element itself.
    fn with_lambda(
        &self,
        builtin: Builtin,
        items: &[Value],
        lambda: Option<&Expr>,
    ) -> Result<Value, YaqlError> {
        match builtin {
            Builtin::Select => self.map(items, lambda).map(Value::Array),
            Builtin::Where => self.filter(items, lambda).map(Value::Array),
            // Without a predicate, `any` asks whether the list is non-empty (as YAQL does).
            Builtin::Any if lambda.is_none() => Ok(Value::Bool(!items.is_empty())),
            Builtin::Any => self
                .find(items, lambda, true)
                .map(|found| Value::Bool(found.is_some())),
            Builtin::All => self
                .find(items, lambda, false)
                .map(|found| Value::Bool(found.is_none())),
            Builtin::Distinct => self.distinct(items, lambda).map(Value::Array),
            Builtin::SelectMany => {
                let mut out = Vec::new();
                for value in self.map(items, lambda)? {
                    match value {
                        Value::Array(inner) => {
                            self.budget.charge(inner.len())?;
                            out.extend(inner);
                        }
                        other => out.push(other),
                    }
                }
                Ok(Value::Array(out))
            }
            Builtin::Sort | Builtin::OrderBy | Builtin::OrderByDescending => {
                let keys = self.map(items, lambda)?;
                let descending = builtin == Builtin::OrderByDescending;
                builtins::sort_by_keys(builtin.name(), items, &keys, descending)
            }
            _ => Err(YaqlError::eval(format!(
                "{}() takes no lambda",
                builtin.name()
            ))),
        }
    }

    /// The lambda's value for every element.
    fn map(&self, items: &[Value], lambda: Option<&Expr>) -> Result<Vec<Value>, YaqlError> {
        let Some(lambda) = lambda else {
            return Ok(items.to_vec());
        };
        let mut values = Vec::with_capacity(items.len());
        for item in items {
            let value = self.eval(lambda, Scope::Item(item))?.into_owned();
            self.budget.charge(ops::weight(&value))?;
            values.push(value);
        }
        Ok(values)
    }

    /// Whether the lambda (or the element itself) is true for `item`.
    fn test(&self, item: &Value, lambda: Option<&Expr>) -> Result<bool, YaqlError> {
        match lambda {
            Some(lambda) => Ok(truthy(&*self.eval(lambda, Scope::Item(item))?)),
            None => Ok(truthy(item)),
        }
    }

    fn filter(&self, items: &[Value], lambda: Option<&Expr>) -> Result<Vec<Value>, YaqlError> {
        let mut kept = Vec::new();
        for item in items {
            if self.test(item, lambda)? {
                kept.push(item.clone());
            }
        }
        Ok(kept)
    }

    /// The first element whose test is `wanted`.
    fn find<'v>(
        &self,
        items: &'v [Value],
        lambda: Option<&Expr>,
        wanted: bool,
    ) -> Result<Option<&'v Value>, YaqlError> {
        for item in items {
            if self.test(item, lambda)? == wanted {
                return Ok(Some(item));
            }
        }
        Ok(None)
    }

    #[inline(never)]
    fn distinct(&self, items: &[Value], lambda: Option<&Expr>) -> Result<Vec<Value>, YaqlError> {
        let mut seen = HashSet::new();
        let mut kept = Vec::new();
        for item in items {
            let mut key = String::new();
            match lambda {
                Some(lambda) => canonical(&*self.eval(lambda, Scope::Item(item))?, &mut key),
                None => canonical(item, &mut key),
            }
            if seen.insert(key) {
                kept.push(item.clone());
            }
        }
        Ok(kept)
    }
}

#[inline(never)]
fn dict_key(key: Value) -> Result<String, YaqlError> {
    match key {
        Value::String(key) => Ok(key),
        other => Err(YaqlError::eval(format!(
            "dict key must be a string, got {}",
            describe(&other)
        ))),
    }
}
