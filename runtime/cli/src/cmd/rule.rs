//! `squall rule list|get|enable|disable`, `squall rule-enforcement list`.

use crate::Failure;
use crate::client::Client;
use crate::output::{print_records, print_table, records};
use clap::Subcommand;
use serde_json::json;
use squall_core::Ref;

/// `squall rule` subcommands.
#[derive(Subcommand)]
pub enum RuleCommand {
    /// List rules
    List {
        /// Only this pack's rules
        #[arg(long)]
        pack: Option<String>,
        /// Only enabled (true) or disabled (false) rules
        #[arg(long)]
        enabled: Option<bool>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Show one rule
    Get {
        /// Rule ref
        reference: Ref,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Enable a rule (kept across restarts)
    Enable {
        /// Rule ref
        reference: Ref,
    },
    /// Disable a rule (kept across restarts)
    Disable {
        /// Rule ref
        reference: Ref,
    },
}

const RULE_COLUMNS: [(&str, &str); 5] = [
    ("ref", "/ref"),
    ("enabled", "/enabled"),
    ("trigger", "/trigger/type"),
    ("action", "/action/ref"),
    ("description", "/description"),
];

pub async fn run(client: &Client, command: RuleCommand) -> Result<u8, Failure> {
    match command {
        RuleCommand::List {
            pack,
            enabled,
            json,
        } => {
            let list = client
                .list(
                    "/api/v1/rules",
                    &[
                        ("pack", pack),
                        ("enabled", enabled.map(|e| e.to_string())),
                        ("limit", Some("1000".into())),
                    ],
                )
                .await?;
            print_records(&list, &RULE_COLUMNS, json);
        }
        RuleCommand::Get { reference, json } => {
            let rule = client
                .get(&format!("/api/v1/rules/{reference}"))
                .await?
                .body;
            let rows = [
                ("ref", "/ref"),
                ("enabled", "/enabled"),
                ("type", "/type/ref"),
                ("description", "/description"),
                ("trigger", "/trigger"),
                ("criteria", "/criteria"),
                ("action", "/action"),
                ("metadata_file", "/metadata_file"),
            ];
            crate::output::print_record(&rule, &rows, json);
        }
        RuleCommand::Enable { reference } => set_enabled(client, &reference, true).await?,
        RuleCommand::Disable { reference } => set_enabled(client, &reference, false).await?,
    }
    Ok(0)
}

async fn set_enabled(client: &Client, reference: &Ref, enabled: bool) -> Result<(), Failure> {
    let path = format!("/api/v1/rules/{reference}");
    let rule = client.set_enabled(&path, enabled).await?;
    print_table(&records(&json!([rule]), &RULE_COLUMNS));
    Ok(())
}

/// `squall rule-enforcement` subcommands.
#[derive(Subcommand)]
pub enum EnforcementCommand {
    /// List rule enforcements, newest first
    List {
        /// Only this rule's
        #[arg(long, value_name = "REF")]
        rule: Option<Ref>,
        /// Only those for this trigger instance id
        #[arg(long, value_name = "ID")]
        trigger_instance: Option<String>,
        /// Only the one that requested this execution id
        #[arg(long, value_name = "ID")]
        execution: Option<String>,
        /// How many to show
        #[arg(short = 'n', long, default_value_t = 50)]
        limit: usize,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
}

pub async fn run_enforcements(client: &Client, command: EnforcementCommand) -> Result<u8, Failure> {
    let EnforcementCommand::List {
        rule,
        trigger_instance,
        execution,
        limit,
        json,
    } = command;
    let list = client
        .list(
            "/api/v1/ruleenforcements",
            &[
                ("rule_ref", rule.map(|r| r.to_string())),
                ("trigger_instance", trigger_instance),
                ("execution", execution),
                ("limit", Some(limit.to_string())),
            ],
        )
        .await?;
    let columns = [
        ("id", "/id"),
        ("rule.ref", "/rule/ref"),
        ("trigger_instance_id", "/trigger_instance_id"),
        ("execution_id", "/execution_id"),
        ("status", "/status"),
        ("failure_reason", "/failure_reason"),
        ("enforced_at", "/enforced_at"),
    ];
    print_records(&list, &columns, json);
    Ok(0)
}
