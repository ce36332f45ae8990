//! `squall apikey create|list`: API keys for servers listening beyond loopback.
//!
//! Keys are written straight to the data directory's store (run this on the server's machine;
//! the store may be open by a running server at the same time). The key is printed once; only
//! its SHA-256 is kept.

use super::run::user;
use crate::Failure;
use crate::output::{out, print_records};
use crate::settings::Settings;
use clap::Subcommand;
use jiff::Timestamp;
use squall_core::apikey::{ApiKey, ApiKeyId};
use squall_server::api::key_hash;
use squall_store::{ApiKeyStore, Batch, BatchStore};

/// `squall apikey` subcommands.
#[derive(Subcommand)]
pub enum ApiKeyCommand {
    /// Create a key and print it (once)
    Create {
        /// Who the key acts as [default: $USER]
        #[arg(long)]
        user: Option<String>,
        /// What the key is for
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List keys (never the keys themselves)
    List {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(settings: &Settings, command: ApiKeyCommand) -> Result<u8, Failure> {
    let store = settings.open_store()?;
    match command {
        ApiKeyCommand::Create {
            user: who,
            description,
        } => {
            let mut secret = [0u8; 32];
            getrandom::fill(&mut secret)
                .map_err(|e| Failure::internal(format!("no randomness: {e}")))?;
            let key = hex::encode(secret);
            let record = ApiKey {
                id: ApiKeyId::new(),
                key_hash: key_hash(&key),
                user: who.unwrap_or_else(user),
                description,
                created_at: Timestamp::now(),
                enabled: true,
            };
            let mut batch = Batch::new();
            batch.put_api_key(&record);
            store.commit(batch).await.map_err(Failure::internal)?;
            eprintln!(
                "API key {} for {} created; it is not shown again:",
                record.id, record.user
            );
            out(&format!("{key}\n"));
        }
        ApiKeyCommand::List { json } => {
            let keys = store.api_keys().await.map_err(Failure::internal)?;
            let list = serde_json::to_value(&keys).map_err(Failure::internal)?;
            let columns = [
                ("id", "/id"),
                ("user", "/user"),
                ("description", "/description"),
                ("created_at", "/created_at"),
                ("enabled", "/enabled"),
            ];
            print_records(&list, &columns, json);
        }
    }
    Ok(0)
}
