use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use apogee_client::{
    ConsumeResult, Message, Producer, ProducerConfig, PushConsumer, PushConsumerConfig,
};

#[tokio::main]
async fn main() -> Result<(), apogee_client::ClientError> {
    let namesrv = std::env::var("NAMESRV_ADDR").unwrap_or_else(|_| "127.0.0.1:9876".into());
    let producer = Producer::start(ProducerConfig::new(&namesrv, "orders-producer")).await?;
    for i in 0..10 {
        let order = Message::new("orders", format!("order #{i}"))
            .with_tags("created")
            .with_keys([format!("o-{i}")]);
        let sent = producer.send(order).await?;
        println!(
            "sent {} to {:?} at offset {}",
            sent.msg_id, sent.queue, sent.queue_offset
        );
    }

    let consumer = PushConsumer::new(PushConsumerConfig::new(&namesrv, "orders-consumer"));
    consumer.subscribe("orders", "created || paid");
    let received = Arc::new(AtomicUsize::new(0));
    let counter = received.clone();
    consumer
        .start(move |batch| {
            for m in batch {
                println!(
                    "received {}: {}",
                    m.msg_id,
                    String::from_utf8_lossy(&m.body)
                );
            }
            counter.fetch_add(batch.len(), Ordering::Relaxed);
            ConsumeResult::Success // Later: sent back, redelivered through %RETRY%<group> after a delay
        })
        .await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while received.load(Ordering::Relaxed) < 10 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    consumer.shutdown().await;
    println!(
        "done: sent 10, received {}",
        received.load(Ordering::Relaxed)
    );
    Ok(())
}
