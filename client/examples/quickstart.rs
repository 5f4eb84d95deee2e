//! Produce a few messages and consume them back. Start Apogee first: `cargo run --release -- standalone`.

use std::time::Duration;

use apogee_client::consumer::ConsumeFrom;
use apogee_client::{Message, Producer, ProducerConfig, PullConsumer, PullConsumerConfig};

#[tokio::main]
async fn main() -> Result<(), apogee_client::ClientError> {
    let namesrv = std::env::var("NAMESRV_ADDR").unwrap_or_else(|_| "127.0.0.1:9876".into());
    let producer = Producer::start(ProducerConfig::new(&namesrv, "quickstart-producer")).await?;
    for i in 0..10 {
        let r = producer
            .send(Message::new("quickstart", format!("hello {i}")).with_tags("demo"))
            .await?;
        println!(
            "sent {} to {}#{} at offset {}",
            r.msg_id, r.queue.broker_name, r.queue.queue_id, r.queue_offset
        );
    }
    let mut config = PullConsumerConfig::new(&namesrv, "quickstart-consumer");
    config.consume_from = ConsumeFrom::FirstOffset;
    let consumer = PullConsumer::new(config);
    consumer.subscribe("quickstart", "demo").await?;
    for m in consumer.poll(Duration::from_secs(3)).await {
        println!(
            "received {}: {}",
            m.msg_id,
            String::from_utf8_lossy(&m.body)
        );
    }
    consumer.commit_sync().await
}
