//! `apogee admin trace`: a message's trace (send, store, each consuming group with its latency and
//! result), as mqadmin's QueryMsgTraceById. The trace records are found by QUERY_MESSAGE on the trace
//! topic, keyed by the traced message id (`apogee_client::trace`).

use clap::Subcommand;
use serde_json::json;

use super::{AdminError, Ctx, Report};
use apogee_client::trace::view;

#[derive(Subcommand, Debug)]
pub enum Verb {
    /// A message's trace as a table: send, store, each consuming group.
    #[command(name = "trace")]
    Trace {
        /// The message id (the client-made UNIQ_KEY id a send returns).
        msg_id: String,
        /// The trace topic.
        #[arg(short = 't', long = "traceTopic", default_value = apogee_net::topic::TRACE_TOPIC_DEFAULT)]
        trace_topic: String,
    },
}

pub async fn run(verb: Verb, ctx: &Ctx) -> Result<Report, AdminError> {
    let Verb::Trace {
        msg_id,
        trace_topic,
    } = verb;
    let records = ctx.admin.message_trace(&trace_topic, &msg_id).await?;
    if records.is_empty() {
        return Err(AdminError::NotFound(format!(
            "no trace of {msg_id} in topic `{trace_topic}` (from {})",
            ctx.namesrv
        )));
    }
    let steps = view::steps(&records);
    let json_steps: Vec<_> = steps
        .iter()
        .map(|r| {
            json!({
                "step": r[0], "group": r[1], "time": r[2], "costMs": r[3], "result": r[4], "detail": r[5],
            })
        })
        .collect();
    let mut report = Report::new(
        json!({ "msgId": msg_id, "records": records.len(), "steps": json_steps }),
        &view::HEADER,
    );
    for r in steps {
        report.row(r.to_vec());
    }
    report
        .notes
        .push(format!("trace of {msg_id}: {} record(s)", records.len()));
    Ok(report)
}
