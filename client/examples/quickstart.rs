//! Produce ten messages and consume them back with a pull consumer. Start Apogee first
//! (`cargo run --release -- standalone`), then `cargo run -p apogee-client --example quickstart`
//! (`NAMESRV_ADDR` picks another name server than 127.0.0.1:9876).

use std::time::{Duration, Instant};

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
    // Each poll returns what has arrived; the ten messages are spread over the topic's queues.
    let (mut received, deadline) = (0, Instant::now() + Duration::from_secs(10));
    while received < 10 && Instant::now() < deadline {
        for m in consumer.poll(Duration::from_secs(1)).await {
            println!(
                "received {}: {}",
                m.msg_id,
                String::from_utf8_lossy(&m.body)
            );
            received += 1;
        }
    }
    consumer.commit_sync().await?;
    println!("done: sent 10, received {received}");
    Ok(())
}
