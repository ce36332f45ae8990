//! `squall key set|get|list|delete`: the datastore, as `st2 key`.
//!
//! `--scope system` (default) is shared; `--scope user` is the keys of the user the CLI runs
//! as (`$USER`, as `squall run` requests executions). Secrets (`set --encrypt`) are encrypted
//! by the server (or the in-process API) before they are stored; `get`/`list` print their
//! ciphertext unless `--decrypt` is given.

use crate::Failure;
use crate::client::{Client, query};
use crate::output::{out, print_json, print_records, print_table, records};
use clap::{Subcommand, ValueEnum};
use http::Method;
use serde_json::{Value, json};

/// Which keys a command works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scope {
    /// Shared keys (st2kv.system)
    System,
    /// The keys of the user the CLI runs as (st2kv.user)
    User,
}

/// Which keys `list` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListScope {
    /// Shared keys (st2kv.system)
    System,
    /// The keys of the user the CLI runs as (st2kv.user)
    User,
    /// Both
    All,
}

/// `squall key` subcommands.
#[derive(Subcommand)]
pub enum KeyCommand {
    /// Set a key (create or replace)
    Set {
        /// Key name (letters, digits, _ - . : /)
        name: String,
        /// Value (text; JSON text for structure)
        value: String,
        /// Store the value encrypted (a secret); reads show its ciphertext unless decrypted
        #[arg(long, short = 'e')]
        encrypt: bool,
        /// Scope of the key
        #[arg(long, short = 's', value_enum, default_value_t = Scope::System)]
        scope: Scope,
        /// Seconds until the key expires
        #[arg(long, short = 'l', value_name = "SECONDS")]
        ttl: Option<i64>,
        /// Print the stored record as JSON
        #[arg(long)]
        json: bool,
    },
    /// Print a key's value (a secret's ciphertext unless --decrypt)
    Get {
        /// Key name
        name: String,
        /// Show a secret value decrypted
        #[arg(long, short = 'd')]
        decrypt: bool,
        /// Scope of the key
        #[arg(long, short = 's', value_enum, default_value_t = Scope::System)]
        scope: Scope,
        /// Print the whole record as JSON
        #[arg(long)]
        json: bool,
    },
    /// List keys (secrets as ciphertext unless --decrypt)
    List {
        /// Only keys starting with this
        #[arg(long)]
        prefix: Option<String>,
        /// Which keys
        #[arg(long, short = 's', value_enum, default_value_t = ListScope::System)]
        scope: ListScope,
        /// Show secret values decrypted
        #[arg(long, short = 'd')]
        decrypt: bool,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Delete a key
    Delete {
        /// Key name
        name: String,
        /// Scope of the key
        #[arg(long, short = 's', value_enum, default_value_t = Scope::System)]
        scope: Scope,
    },
}

const COLUMNS: &[(&str, &str)] = &[
    ("name", "/name"),
    ("value", "/value"),
    ("secret", "/secret"),
    ("encrypted", "/encrypted"),
    ("scope", "/scope"),
    ("user", "/user"),
    ("expire_timestamp", "/expire_timestamp"),
];

fn scope_name(scope: Scope) -> &'static str {
    match scope {
        Scope::System => "system",
        Scope::User => "user",
    }
}

/// `scope` (and for the user scope, who) as query pairs.
fn scope_query(scope: &str, decrypt: bool) -> Vec<(&'static str, Option<String>)> {
    let user = (scope != "system").then(crate::cmd::run::user);
    vec![
        ("scope", Some(scope.to_string())),
        ("user", user),
        ("decrypt", decrypt.then(|| "true".to_string())),
    ]
}

/// `/api/v1/keys/<name>` with the name percent-encoded as one path segment (names may hold
/// `/`; a bad name reaches the server intact and is refused there, naming it).
fn key_path(name: &str) -> String {
    let mut escaped = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b':') {
            escaped.push(b as char);
        } else {
            escaped.push_str(&format!("%{b:02X}"));
        }
    }
    format!("/api/v1/keys/{escaped}")
}

fn show(kv: &Value, json: bool) {
    if json {
        print_json(kv);
    } else {
        print_table(&records(&Value::Array(vec![kv.clone()]), COLUMNS));
    }
}

pub async fn run(client: &Client, command: KeyCommand) -> Result<u8, Failure> {
    match command {
        KeyCommand::Set {
            name,
            value,
            encrypt,
            scope,
            ttl,
            json,
        } => {
            let mut body = json!({
                "name": name,
                "value": value,
                "secret": encrypt,
                "scope": scope_name(scope),
            });
            if scope == Scope::User {
                body["user"] = json!(crate::cmd::run::user());
            }
            if let Some(ttl) = ttl {
                body["ttl"] = json!(ttl);
            }
            let kv = client
                .call(Method::PUT, &key_path(&name), Some(body))
                .await?
                .body;
            show(&kv, json);
        }
        KeyCommand::Get {
            name,
            decrypt,
            scope,
            json,
        } => {
            let q = query(&scope_query(scope_name(scope), decrypt));
            let kv = client.get(&format!("{}{q}", key_path(&name))).await?.body;
            if json {
                print_json(&kv);
            } else {
                out(&format!("{}\n", kv["value"].as_str().unwrap_or_default()));
            }
        }
        KeyCommand::List {
            prefix,
            scope,
            decrypt,
            json,
        } => {
            let scope = match scope {
                ListScope::System => "system",
                ListScope::User => "user",
                ListScope::All => "all",
            };
            let mut pairs = scope_query(scope, decrypt);
            pairs.push(("prefix", prefix));
            let list = client.list("/api/v1/keys", &pairs).await?;
            print_records(&list, COLUMNS, json);
        }
        KeyCommand::Delete { name, scope } => {
            let q = query(&scope_query(scope_name(scope), false));
            client
                .call(Method::DELETE, &format!("{}{q}", key_path(&name)), None)
                .await?;
            out(&format!("deleted {name}\n"));
        }
    }
    Ok(0)
}
