//! `core.uuid`: a new UUID, version 4 (random) or 1 (time-based), as StackStorm's
//! `core.uuid` (`contrib/core/actions/generate_uuid.py`), with the result shape of st2's
//! Python runner: `{"result": "<uuid>", "exit_code": 0, "stdout": "", "stderr": ""}`.
//!
//! A version-1 UUID's node id is random (with the multicast bit set, as RFC 9562 allows when no
//! hardware address is available: the sandbox has none), where Python uses the host's MAC.

use serde::Deserialize;
use squall_plugin::{Context, Error};

/// `core.uuid` parameters (see `packs/core/actions/uuid.yaml`).
#[derive(Deserialize)]
struct Params {
    uuid_type: String,
}

fn random_node() -> [u8; 6] {
    let mut node = [0u8; 6];
    node.copy_from_slice(&uuid::Uuid::new_v4().as_bytes()[..6]);
    node[0] |= 0x01;
    node
}

fn generate(_ctx: &Context, params: Params) -> Result<serde_json::Value, Error> {
    let id = match params.uuid_type.as_str() {
        "uuid4" => uuid::Uuid::new_v4(),
        "uuid1" => uuid::Uuid::now_v1(&random_node()),
        _ => {
            return Err(Error::new(
                "Unknown uuid_type. Only uuid1 and uuid4 are supported",
            ));
        }
    };
    Ok(serde_json::json!({
        "result": id.to_string(),
        "exit_code": 0,
        "stdout": "",
        "stderr": "",
    }))
}

squall_plugin::action!(generate);
