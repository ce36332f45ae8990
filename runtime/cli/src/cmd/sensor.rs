//! `squall sensor list|get|enable|disable`: the loaded sensors and their live status (as
//! StackStorm's `st2 sensor`).

use crate::Failure;
use crate::client::Client;
use crate::output::{print_record, print_records, print_table, records};
use clap::Subcommand;
use serde_json::json;
use squall_core::Ref;

/// `squall sensor` subcommands.
#[derive(Subcommand)]
pub enum SensorCommand {
    /// List sensors with their state (running, backing_off, disabled, failed, stopped)
    List {
        /// Only this pack's sensors
        #[arg(long)]
        pack: Option<String>,
        /// Only enabled (true) or disabled (false) sensors
        #[arg(long)]
        enabled: Option<bool>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Show one sensor: metadata, state, counters, last error, next poll
    Get {
        /// Sensor ref, <pack>.<class_name>
        reference: Ref,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Enable a sensor (at once; kept across restarts)
    Enable {
        /// Sensor ref
        reference: Ref,
    },
    /// Disable a sensor (at once; kept across restarts)
    Disable {
        /// Sensor ref
        reference: Ref,
    },
}

const COLUMNS: [(&str, &str); 6] = [
    ("ref", "/ref"),
    ("enabled", "/enabled"),
    ("state", "/status/state"),
    ("poll_interval", "/poll_interval"),
    ("emitted", "/status/emitted"),
    ("last_error", "/status/last_error"),
];

const PROPERTIES: [(&str, &str); 18] = [
    ("ref", "/ref"),
    ("pack", "/pack"),
    ("description", "/description"),
    ("enabled", "/enabled"),
    ("entry_point", "/entry_point"),
    ("poll_interval", "/poll_interval"),
    ("trigger_types", "/trigger_types"),
    ("webhooks", "/webhooks"),
    ("state", "/status/state"),
    ("calls", "/status/calls"),
    ("failures", "/status/failures"),
    ("consecutive_failures", "/status/consecutive_failures"),
    ("emitted", "/status/emitted"),
    ("last_call", "/status/last_call"),
    ("last_success", "/status/last_success"),
    ("last_error", "/status/last_error"),
    ("next_poll", "/status/next_poll"),
    ("last_duration_ms", "/status/last_duration_ms"),
];

pub async fn run(client: &Client, command: SensorCommand) -> Result<u8, Failure> {
    match command {
        SensorCommand::List {
            pack,
            enabled,
            json,
        } => {
            let list = client
                .list(
                    "/api/v1/sensortypes",
                    &[
                        ("pack", pack),
                        ("enabled", enabled.map(|e| e.to_string())),
                        ("limit", Some("1000".into())),
                    ],
                )
                .await?;
            print_records(&list, &COLUMNS, json);
        }
        SensorCommand::Get { reference, json } => {
            let sensor = client
                .get(&format!("/api/v1/sensortypes/{reference}"))
                .await?
                .body;
            print_record(&sensor, &PROPERTIES, json);
        }
        SensorCommand::Enable { reference } => set_enabled(client, &reference, true).await?,
        SensorCommand::Disable { reference } => set_enabled(client, &reference, false).await?,
    }
    Ok(0)
}

async fn set_enabled(client: &Client, reference: &Ref, enabled: bool) -> Result<(), Failure> {
    let path = format!("/api/v1/sensortypes/{reference}");
    let sensor = client.set_enabled(&path, enabled).await?;
    print_table(&records(&json!([sensor]), &COLUMNS));
    Ok(())
}
