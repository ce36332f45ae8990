//! `squall trigger list`, `squall trigger-instance list|get`, `squall webhook list`.

use crate::Failure;
use crate::client::Client;
use crate::output::{print_json, print_records};
use clap::Subcommand;
use squall_core::Ref;

/// `squall trigger` subcommands.
#[derive(Subcommand)]
pub enum TriggerCommand {
    /// List trigger types (built-in and from packs)
    List {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(client: &Client, command: TriggerCommand) -> Result<u8, Failure> {
    let TriggerCommand::List { json } = command;
    let list = client.get("/api/v1/triggertypes?limit=1000").await?.body;
    print_records(
        &list,
        &[("ref", "/ref"), ("description", "/description")],
        json,
    );
    Ok(0)
}

/// `squall trigger-instance` subcommands.
#[derive(Subcommand)]
pub enum TriggerInstanceCommand {
    /// List trigger instances, newest first
    List {
        /// Only this trigger type's
        #[arg(long, value_name = "REF")]
        trigger: Option<Ref>,
        /// Only in this status (pending, processing, processed, processing_failed)
        #[arg(long)]
        status: Option<String>,
        /// How many to show
        #[arg(short = 'n', long, default_value_t = 50)]
        limit: usize,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Show one trigger instance with its payload
    Get {
        /// Trigger instance id
        id: String,
    },
}

pub async fn run_instances(
    client: &Client,
    command: TriggerInstanceCommand,
) -> Result<u8, Failure> {
    match command {
        TriggerInstanceCommand::List {
            trigger,
            status,
            limit,
            json,
        } => {
            let list = client
                .list(
                    "/api/v1/triggerinstances",
                    &[
                        ("trigger", trigger.map(|t| t.to_string())),
                        ("status", status),
                        ("limit", Some(limit.to_string())),
                    ],
                )
                .await?;
            let columns = [
                ("id", "/id"),
                ("trigger", "/trigger"),
                ("occurrence_time", "/occurrence_time"),
                ("status", "/status"),
            ];
            print_records(&list, &columns, json);
        }
        TriggerInstanceCommand::Get { id } => print_json(
            &client
                .get(&format!("/api/v1/triggerinstances/{id}"))
                .await?
                .body,
        ),
    }
    Ok(0)
}

/// `squall webhook` subcommands.
#[derive(Subcommand)]
pub enum WebhookCommand {
    /// List webhook urls that enabled rules listen to
    List {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
}

pub async fn run_webhooks(client: &Client, command: WebhookCommand) -> Result<u8, Failure> {
    let WebhookCommand::List { json } = command;
    let list = client.get("/api/v1/webhooks").await?.body;
    let columns = [("url", "/url"), ("signed", "/signed"), ("rules", "/rules")];
    print_records(&list, &columns, json);
    Ok(0)
}
