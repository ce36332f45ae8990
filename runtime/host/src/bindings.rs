//! Host bindings for the `squall:plugin` worlds (`action`, `sensor`, `extended-action`,
//! `python-pack`),
//! generated from `wit/`.

#![allow(missing_docs)]

wasmtime::component::bindgen!({
    path: "../../plugin-sdk/wit",
    world: "squall:plugin/action",
    exports: { default: async },
    with: {
        "wasi:http": wasmtime_wasi_http::p2::bindings::http,
        "wasi:io": wasmtime_wasi::p2::bindings::io,
        "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
    },
    require_store_data_send: true,
});

/// The `sensor` world: its shared interfaces (`log`, WASI) are the ones above.
pub mod sensor {
    wasmtime::component::bindgen!({
        path: "../../plugin-sdk/wit",
        world: "squall:plugin/sensor",
        exports: { default: async },
        with: {
            "wasi:http": wasmtime_wasi_http::p2::bindings::http,
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
            "squall:plugin/log": super::squall::plugin::log,
        },
        require_store_data_send: true,
    });
}

/// The `extended-action` world: the `action` world plus the `process` and `triggers` imports
/// (async: a command runs, and an instance is committed, without holding a worker thread).
pub mod extended {
    wasmtime::component::bindgen!({
        path: "../../plugin-sdk/wit",
        world: "squall:plugin/extended-action",
        exports: { default: async },
        imports: {
            "squall:plugin/process.run": async,
            "squall:plugin/triggers.dispatch": async,
            "squall:plugin/mail.send": async,
        },
        with: {
            "wasi:http": wasmtime_wasi_http::p2::bindings::http,
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
            "squall:plugin/log": super::squall::plugin::log,
            "squall:plugin/action-types": super::squall::plugin::action_types,
        },
        require_store_data_send: true,
    });
}

/// The `python-pack` world: `extended-action` plus `st2-datastore` (async: a write commits
/// to the store without holding a worker thread), and the sensor exports.
pub mod python {
    wasmtime::component::bindgen!({
        path: "../../plugin-sdk/wit",
        world: "squall:plugin/python-pack",
        exports: { default: async },
        imports: {
            "squall:plugin/st2-datastore.list-values": async,
            "squall:plugin/st2-datastore.get-value": async,
            "squall:plugin/st2-datastore.set-value": async,
            "squall:plugin/st2-datastore.delete-value": async,
        },
        with: {
            "wasi:http": wasmtime_wasi_http::p2::bindings::http,
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
            "squall:plugin/log": super::squall::plugin::log,
            "squall:plugin/action-types": super::squall::plugin::action_types,
            "squall:plugin/process": super::extended::squall::plugin::process,
            "squall:plugin/triggers": super::extended::squall::plugin::triggers,
            "squall:plugin/mail": super::extended::squall::plugin::mail,
            "squall:plugin/datastore": super::sensor::squall::plugin::datastore,
            "squall:plugin/emit": super::sensor::squall::plugin::emit,
            "squall:plugin/sensor-types": super::sensor::squall::plugin::sensor_types,
        },
        require_store_data_send: true,
    });
}
