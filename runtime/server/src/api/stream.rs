//! `/stream/v1/stream`: server-sent events, as StackStorm's stream service.
//!
//! Each event is `event: <name>` + `data: <record JSON>`; `?events=a,b` keeps only those
//! names. A comment line is sent every 15 s as a heartbeat so proxies keep the connection.

use super::ApiState;
use axum::extract::{Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde::Deserialize;
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

/// Heartbeat interval.
pub const HEARTBEAT: Duration = Duration::from_secs(15);

/// Filters of the stream.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// Comma-separated event names to keep (default: all), e.g. `st2.execution__update`.
    pub events: Option<String>,
}

/// The live event stream.
#[utoipa::path(get, path = "/stream/v1/stream", tag = "stream", params(StreamQuery),
    responses((status = 200, description = "text/event-stream of st2.execution__create, st2.execution__update, st2.trigger_instance__create, st2.trigger_instance__update, st2.rule_enforcement__create, st2.announcement__<route>", content_type = "text/event-stream")))]
pub async fn stream(
    State(state): State<ApiState>,
    Query(q): Query<StreamQuery>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let wanted: Option<Vec<String>> = q.events.map(|e| {
        e.split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    });
    let rx = state.services.bus().subscribe();
    let events = futures_util::stream::unfold((rx, wanted), |(mut rx, wanted)| async move {
        loop {
            match rx.recv().await {
                Ok(e) => {
                    if wanted
                        .as_ref()
                        .is_some_and(|w| !w.iter().any(|n| *n == e.name))
                    {
                        continue;
                    }
                    let event = Event::default().event(&*e.name).data(e.data.to_string());
                    return Some((Ok(event), (rx, wanted)));
                }
                Err(RecvError::Lagged(n)) => {
                    let event = Event::default().comment(format!("lagged: {n} events dropped"));
                    return Some((Ok(event), (rx, wanted)));
                }
                Err(RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(events).keep_alive(KeepAlive::new().interval(HEARTBEAT).text("heartbeat"))
}
